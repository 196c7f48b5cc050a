#!/usr/bin/python3
"""Write a bag with rospy's rosbag API, as `rosbag record` would record a robot: a stand-in for
recorded user data in dataset's interop test (ros_test.go).

usage: write_bag.py OUT.bag COMPRESSION   (none, bz2 or lz4)

Topics (no flowact metadata, so the reader needs the rate and joint order from its config):
  /arm/joint_states  sensor_msgs/JointState      100 Hz for 2 s, names [wrist, gripper, shoulder,
                                                 elbow]; position of joint j in (shoulder, elbow,
                                                 wrist) at step k is j + k/1000, gripper 0.04
  /arm/command       std_msgs/Float64MultiArray  100 Hz, in (shoulder, elbow, wrist) order:
                                                 j + k/1000 + 0.5
  /vlm/embedding     std_msgs/Float32MultiArray  5 Hz from 15 ms, dims [2 tokens, 3 wide]:
                                                 value i of embedding e is 10 e + i
Record times equal header stamps, from t0 = 1700000100 s.
"""
import sys

import rosbag
import rospy
from sensor_msgs.msg import JointState
from std_msgs.msg import Float32MultiArray, Float64MultiArray, MultiArrayDimension


def main():
    out, compression = sys.argv[1], sys.argv[2]
    t0 = rospy.Time(1700000100, 0)
    order = {"shoulder": 0, "elbow": 1, "wrist": 2}
    names = ["wrist", "gripper", "shoulder", "elbow"]
    with rosbag.Bag(out, "w", compression=compression) as bag:
        for k in range(200):
            t = t0 + rospy.Duration(0, k * 10000000)
            js = JointState()
            js.header.seq = k
            js.header.stamp = t
            js.name = names
            js.position = [0.04 if n == "gripper" else order[n] + k / 1000.0 for n in names]
            js.velocity = [0.1] * len(names)
            bag.write("/arm/joint_states", js, t)
            cmd = Float64MultiArray()
            cmd.layout.dim = [MultiArrayDimension(label="joints", size=3, stride=3)]
            cmd.data = [j + k / 1000.0 + 0.5 for j in range(3)]
            bag.write("/arm/command", cmd, t)
            if k % 20 == 1:  # t = 10 ms + 200 ms e; written after the states at that time
                e = k // 20
                emb = Float32MultiArray()
                emb.layout.dim = [MultiArrayDimension(label="tokens", size=2, stride=6),
                                  MultiArrayDimension(label="width", size=3, stride=3)]
                emb.data = [10.0 * e + i for i in range(6)]
                bag.write("/vlm/embedding", emb, t + rospy.Duration(0, 5000000))


if __name__ == "__main__":
    main()
