#!/usr/bin/env python3
"""A rospy peer for flowact's interop tests.

It publishes sensor_msgs/JointState on /joint_states and an embedding on /flowact/embedding
(std_msgs/Float32MultiArray, or flowact_msgs/Embedding built at run time from the .msg file with
genpy.dynamic, as rosbag does for unknown types); subscribes to /flowact/command
(std_msgs/Float64MultiArray), /flowact/trajectory (trajectory_msgs/JointTrajectory) and
/diagnostics; calls the std_srvs/Trigger services /flowact/start, /flowact/hold and
/flowact/reset. It exits 0 once it has seen a few commands, a trajectory and a diagnostics
message, printing what it got:
"COMMAND <values>", "TRAJECTORY <joint names> | <last positions> | <time_from_start in s>",
"DIAGNOSTICS <status names>", "SERVICE <name> <success> <message>", "MD5 <md5>".
"""
import argparse
import struct
import sys

import genpy.dynamic
import rospy
from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import JointState
from std_msgs.msg import Float32MultiArray, Float64MultiArray, Header, MultiArrayDimension
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

TOKENS, WIDTH = 4, 8


def embedding_class(msg_file):
    text = open(msg_file).read()
    full = text + "\n" + "=" * 80 + "\nMSG: std_msgs/Header\n" + Header._full_text
    return genpy.dynamic.generate_dynamic("flowact_msgs/Embedding", full)["flowact_msgs/Embedding"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--custom", help="path of Embedding.msg: publish flowact_msgs/Embedding")
    ap.add_argument("--embedding-topic", default="/flowact/embedding")
    ap.add_argument("--also-multiarray", action="store_true",
                    help="with --custom: also publish Float32MultiArray on /flowact/embedding")
    ap.add_argument("--joint-states-topic", default="/joint_states")
    ap.add_argument("--commands", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=30)
    ap.add_argument("--services", nargs="*", default=["/flowact/start", "/flowact/hold", "/flowact/reset"])
    args = ap.parse_args(rospy.myargv()[1:])

    rospy.init_node("peer", disable_signals=True)
    values = [i * 0.5 for i in range(TOKENS * WIDTH)]
    multi = Float32MultiArray(data=values)
    multi.layout.dim = [MultiArrayDimension("tokens", TOKENS, TOKENS * WIDTH),
                        MultiArrayDimension("width", WIDTH, WIDTH)]
    pubs = []  # (publisher, message)
    if args.custom:
        cls = embedding_class(args.custom)
        emb = cls(tokens=TOKENS, width=WIDTH, data=struct.pack("<%df" % len(values), *values))
        print("MD5", cls._md5sum, flush=True)
        pubs.append((rospy.Publisher(args.embedding_topic, cls, queue_size=1), emb))
        if args.also_multiarray:
            pubs.append((rospy.Publisher("/flowact/embedding", Float32MultiArray, queue_size=1), multi))
    else:
        pubs.append((rospy.Publisher(args.embedding_topic, Float32MultiArray, queue_size=1), multi))
    pub_js = rospy.Publisher(args.joint_states_topic, JointState, queue_size=1)
    got, trajs, diags = [], [], []
    rospy.Subscriber("/flowact/command", Float64MultiArray, lambda m: got.append(list(m.data)), queue_size=1)
    rospy.Subscriber("/flowact/trajectory", JointTrajectory, trajs.append, queue_size=1)
    rospy.Subscriber("/diagnostics", DiagnosticArray, diags.append, queue_size=1)

    for name in args.services:
        rospy.wait_for_service(name, timeout=args.timeout)
        res = rospy.ServiceProxy(name, Trigger)()
        print("SERVICE", name, res.success, res.message, flush=True)

    js = JointState(name=["wrist", "shoulder", "elbow", "finger"],
                    position=[0.25, 0.5, -0.5, 9.0], velocity=[0.0, 0.1, 0.2, 0.0])
    rate = rospy.Rate(20)
    deadline = rospy.get_time() + args.timeout
    # Keep going until commands came back and every publisher has had a subscriber for a
    # while (subscribers connect asynchronously, so early messages may reach nobody).
    connected_rounds = 0
    while len(got) < args.commands or connected_rounds < 10 or not trajs or not diags:
        if rospy.get_time() > deadline:
            print("TIMEOUT after", len(got), "commands,", len(trajs), "trajectories,",
                  len(diags), "diagnostics", flush=True)
            return 1
        js.header.stamp = rospy.Time.now()
        pub_js.publish(js)
        if all(p.get_num_connections() > 0 for p, _ in pubs) and pub_js.get_num_connections() > 0:
            connected_rounds += 1
        for pub, msg in pubs:
            if hasattr(msg, "header"):
                msg.header.stamp = rospy.Time.now()
            pub.publish(msg)
        rate.sleep()
    print("COMMAND", " ".join(repr(v) for v in got[-1]), flush=True)
    tr = trajs[-1]
    print("TRAJECTORY", " ".join(tr.joint_names), "|", " ".join(repr(v) for v in tr.points[-1].positions),
          "|", " ".join(repr(p.time_from_start.to_sec()) for p in tr.points), flush=True)
    print("DIAGNOSTICS", " ".join(repr(st.name) for st in diags[-1].status), flush=True)
    rospy.signal_shutdown("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
