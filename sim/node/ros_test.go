package node

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flowact/flowact/dataset"
	"github.com/flowact/flowact/internal/rostest"
	"github.com/flowact/flowact/robot"
	"github.com/flowact/flowact/robot/ros"
	"github.com/flowact/flowact/sim"
	"github.com/flowact/flowact/sim/task"
)

// Tests against Debian's ROS 1 tools (rostopic, rosbag, rospy), each on Debian's rosmaster and
// on flowact's embedded master.

// rosConfig is a node config for the master at uri with short periods, ignoring the caller's
// ROS_* environment.
func rosConfig(t testing.TB, uri, name string) ros.Config {
	return ros.Config{Name: name, MasterURI: uri, Host: "127.0.0.1", Getenv: func(string) string { return "" },
		WatchPeriod: 200 * time.Millisecond, RetryMin: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond,
		Logger: rostest.Logger(t)}
}

// startNode runs a node until the test ends (or stop is called) and waits for its registration.
// stop cancels Run, checks that it returned nil and that the master no longer knows the node.
func startNode(t *testing.T, uri string, cfg Config) (n *Node, stop func()) {
	t.Helper()
	m, rc := ur5(t)
	if cfg.Logger == nil {
		cfg.Logger = rostest.Logger(t)
	}
	n, err := New(m, rc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- n.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-errc:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("Run did not return within 15 s of cancel")
		}
		if lookupNode(t, uri, n.Name()) {
			t.Errorf("the master still knows %s after Run returned", n.Name())
		}
	}
	t.Cleanup(stop)
	select {
	case <-n.Ready():
	case err := <-errc:
		t.Fatalf("Run: %v", err)
	case <-time.After(45 * time.Second):
		t.Fatal("the simulator did not register within 45 s")
	}
	return n, stop
}

var (
	avgRate   = regexp.MustCompile(`average rate: ([0-9.]+)`)
	stampSecs = regexp.MustCompile(`(?m)^secs:\s*([0-9]+)\s+^nsecs:\s*([0-9]+)`)
)

// hz runs rostopic hz on topic until it has printed its first rate (Python's start-up takes
// seconds on a loaded machine), then for d more, and returns the last average rate it printed.
// rostopic hz times messages as they reach it, so on a loaded machine a starved tool that
// catches up on a burst reports more than the node sends: the rate is judged by stampRate.
func hz(t *testing.T, env []string, topic string, d time.Duration) float64 {
	p := rostest.Start(t, env, "rostopic", "hz", "-w", "100", topic)
	rostest.Eventually(t, 60*time.Second, "rostopic hz "+topic+" to print a rate", func() bool {
		return avgRate.MatchString(p.Stdout())
	})
	time.Sleep(d)
	p.Stop(syscall.SIGINT)
	all := avgRate.FindAllStringSubmatch(p.Stdout(), -1)
	r, err := strconv.ParseFloat(all[len(all)-1][1], 64)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("rostopic hz %s: %.2f Hz", topic, r)
	return r
}

// stampRate reads n consecutive messages of topic with rostopic echo (its subscriber queue is
// unbounded, so a starved tool loses nothing) and returns the rate their header stamps give:
// (n-1) over the time from the first stamp to the last. The stamps are the node's own clock,
// so the figure does not depend on the machine's load; a node that steps at another rate, skips
// steps or drops messages moves it.
func stampRate(t *testing.T, env []string, topic string, n int) float64 {
	t.Helper()
	out := rostest.Run(t, env, 60*time.Second, "rostopic", "echo", "-n", strconv.Itoa(n), topic+"/header/stamp")
	m := stampSecs.FindAllStringSubmatch(out, -1)
	if len(m) != n {
		t.Fatalf("rostopic echo %s/header/stamp: %d stamps, want %d:\n%s", topic, len(m), n, out)
	}
	stamp := func(i int) float64 {
		s, err1 := strconv.ParseInt(m[i][1], 10, 64)
		ns, err2 := strconv.ParseInt(m[i][2], 10, 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("stamp %q", m[i][0])
		}
		return float64(s) + float64(ns)*1e-9
	}
	span := stamp(n-1) - stamp(0)
	if span <= 0 {
		t.Fatalf("%s: stamps do not advance: %v to %v", topic, stamp(0), stamp(n-1))
	}
	r := float64(n-1) / span
	t.Logf("%s: %d stamps over %.3f s: %.2f Hz", topic, n, span, r)
	return r
}

func pyStrings(v []string) string {
	q := make([]string, len(v))
	for i, s := range v {
		q[i] = strconv.Quote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

func yamlList(v []float64) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.FormatFloat(x, 'g', -1, 64)
	}
	return "[" + strings.Join(s, ", ") + "]"
}

// Rates of the interop tests. The published stamps must give them within ±20% (stampRate); a
// node that steps at the wrong rate, skips steps or publishes twice falls outside. rostopic hz
// must report a rate, but its figure is not judged: it times arrivals on the wall clock, and on
// a loaded 2-core machine a starved tool catching up reported 69 Hz for this 50 Hz stream.
const (
	testRate   = 50.0
	faultyRate = 50.0
)

// TestROS runs the simulator node against each master with Debian's tools: rostopic hz holds the
// rate, rostopic echo decodes the joint states in model order, a fault shows in the published
// states, rostopic pub commands and trajectories move the arm, rosbag record of the node and a
// rospy commander reads back as a dataset, and the node unregisters on cancel.
func TestROS(t *testing.T) {
	rostest.Require(t, "rosmaster", "rostopic", "rosbag", "python3")
	m, rc := ur5(t)
	names := m.Names()
	for _, mk := range masterKinds {
		t.Run(mk.name, func(t *testing.T) {
			t.Parallel()
			uri := mk.start(t)
			env := rostest.Env(t, uri)
			// The embedding goes out as flowact_msgs/Embedding: goroslib encodes a Float32MultiArray
			// element by element, which costs more CPU than the rest of the node together.
			mainCfg := rosConfig(t, uri, "")
			mainCfg.Embedding = ros.EmbeddingCustom
			n, stop := startNode(t, uri, Config{Rate: testRate, Task: task.Config{Name: "reach"}, Seed: 7, Embedding: true,
				ROS: ros.SimSideConfig{Node: mainCfg}})
			home := n.cfg.Sim.Initial
			// A second node with sensor faults on its own topics: half the samples dropped, and
			// position noise of 0.01 rad.
			fcfg := rosConfig(t, uri, "faulty_sim")
			fcfg.Topics = ros.Topics{JointStates: "/faulty/joint_states", Command: "/faulty/command", Trajectory: "/faulty/trajectory"}
			_, _ = startNode(t, uri, Config{Rate: faultyRate,
				Sim: sim.Config{Faults: sim.Faults{StateDrop: 0.5, PositionNoise: 0.01, Seed: 9}},
				ROS: ros.SimSideConfig{Node: fcfg, TF: "/faulty/tf", TFStatic: "/faulty/tf_static", Markers: "/faulty/markers"}})

			t.Run("tools", func(t *testing.T) {
				t.Run("hz", func(t *testing.T) {
					t.Parallel()
					before := n.Stats()
					if r := hz(t, env, "/joint_states", 3*time.Second); r <= 0 {
						t.Errorf("rostopic hz /joint_states: %.1f Hz", r)
					}
					r := stampRate(t, env, "/joint_states", 100)
					after := n.Stats()
					t.Logf("node: %d steps (%d late), %d joint states, %d dropped by the mailbox in the window",
						after.Steps-before.Steps, after.Late-before.Late, after.JointStates-before.JointStates, after.ROS.Dropped-before.ROS.Dropped)
					if r < 0.8*testRate || r > 1.2*testRate {
						t.Errorf("/joint_states stamps: %.1f Hz, want %v ± 20%%", r, testRate)
					}
				})
				t.Run("hz with drops", func(t *testing.T) {
					t.Parallel()
					// Half the samples are dropped: 25 Hz. Over 100 messages the 99 gaps are each
					// geometric (mean 2 periods, sd 1.4), so the rate is 25 ± 1.8 Hz (1 sd);
					// ±40% excludes the 50 Hz of no drops by far.
					if r := stampRate(t, env, "/faulty/joint_states", 100); r < 0.3*faultyRate || r > 0.7*faultyRate {
						t.Errorf("/faulty/joint_states stamps: %.1f Hz, want about %v", r, faultyRate/2)
					}
				})
				t.Run("echo", func(t *testing.T) {
					t.Parallel()
					msgs := parseEcho(t, rostest.Run(t, env, 30*time.Second, "rostopic", "echo", "-n", "1", "/joint_states"))
					if len(msgs) != 1 || !slices.Equal(msgs[0].Name, names) || !near(msgs[0].Position, home, 1e-9) {
						t.Fatalf("rostopic echo /joint_states: %+v; want names %v at %v", msgs, names, home)
					}
					stamp := time.Unix(msgs[0].Header.Stamp.Secs, msgs[0].Header.Stamp.Nsecs)
					if d := time.Since(stamp); d < 0 || d > 10*time.Second {
						t.Errorf("joint state stamped %v, %v before now: want wall time", stamp, d)
					}
				})
				t.Run("echo with noise", func(t *testing.T) {
					t.Parallel()
					msgs := parseEcho(t, rostest.Run(t, env, 30*time.Second, "rostopic", "echo", "-n", "20", "/faulty/joint_states"))
					var sum2 float64
					var cnt int
					for _, msg := range msgs {
						for i, p := range msg.Position {
							sum2 += (p - home[i]) * (p - home[i])
							cnt++
						}
					}
					// 120 draws of sd 0.01 at rest: the RMS lies within 0.007..0.013 (over 4 sd).
					if rms := math.Sqrt(sum2 / float64(cnt)); len(msgs) != 20 || rms < 0.007 || rms > 0.013 {
						t.Errorf("%d noisy states, RMS error %.4f; want 20, 0.01", len(msgs), rms)
					}
				})
				t.Run("diagnostics", func(t *testing.T) {
					t.Parallel()
					out := rostest.Run(t, env, 30*time.Second, "rostopic", "echo", "-n", "2", "/diagnostics")
					if !strings.Contains(out, `name: "flowact: sim"`) || !strings.Contains(out, "key: \"steps\"") || !strings.Contains(out, "hardware_id: \""+m.Name+"\"") {
						t.Errorf("rostopic echo /diagnostics:\n%s", out)
					}
				})
				t.Run("topics", func(t *testing.T) {
					t.Parallel()
					out := rostest.Run(t, env, 30*time.Second, "rostopic", "list", "-v")
					for _, want := range []string{"/tf [tf2_msgs/TFMessage]", "/tf_static [tf2_msgs/TFMessage]",
						"/flowact/markers [visualization_msgs/MarkerArray]", "/flowact/embedding [flowact_msgs/Embedding]",
						rc.Topics.Command + " [std_msgs/Float64MultiArray]", rc.Topics.Trajectory + " [trajectory_msgs/JointTrajectory]"} {
						if !strings.Contains(out, want) {
							t.Errorf("rostopic list -v lacks %q:\n%s", want, out)
						}
					}
				})
			})

			t.Run("command", func(t *testing.T) {
				target := slices.Clone(home)
				for i, d := range []float64{0.2, -0.1, 0.1, 0.1, -0.1, 0.2} {
					target[i] += d
				}
				p := rostest.Start(t, env, "rostopic", "pub", "-r", "20", rc.Topics.Command, "std_msgs/Float64MultiArray",
					fmt.Sprintf("{layout: {dim: [], data_offset: 0}, data: %s}", yamlList(target)))
				var st robot.State
				rostest.Eventually(t, 45*time.Second, "the arm reaches the commanded position", func() bool {
					n.Sim().TrueStateTo(&st)
					return near(st.Position, target, 1e-3)
				})
				msgs := parseEcho(t, rostest.Run(t, env, 30*time.Second, "rostopic", "echo", "-n", "1", "/joint_states"))
				if len(msgs) != 1 || !near(msgs[0].Position, target, 1e-3) {
					t.Errorf("rostopic echo after the command: %+v, want %v", msgs, target)
				}
				p.Stop(syscall.SIGINT)
				if s := n.Stats().ROS; s.Commands == 0 {
					t.Errorf("stats %+v", s)
				}
			})

			t.Run("trajectory", func(t *testing.T) {
				var st robot.State
				n.Sim().TrueStateTo(&st)
				mid, final := slices.Clone(st.Position), slices.Clone(st.Position)
				for i, d := range []float64{-0.2, 0.1, -0.1, -0.1, 0.1, -0.2} {
					mid[i] += d / 2
					final[i] += d
				}
				// joint_names in reverse model order: the node maps them by name.
				rev := func(v []float64) []float64 { r := slices.Clone(v); slices.Reverse(r); return r }
				rnames := slices.Clone(names)
				slices.Reverse(rnames)
				before := n.Stats().ROS
				// A rospy publisher sends the trajectory, starting 0.3 s from now, then one that
				// names a joint the robot does not have (dropped and counted).
				script := fmt.Sprintf(`
import rospy
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint
rospy.init_node("trajectory_sender")
pub = rospy.Publisher(%q, JointTrajectory, queue_size=10)
while pub.get_num_connections() == 0 and not rospy.is_shutdown():
    rospy.sleep(0.05)
names = %s
points = [JointTrajectoryPoint(positions=%s, time_from_start=rospy.Duration(0.5)),
          JointTrajectoryPoint(positions=%s, time_from_start=rospy.Duration(1.0))]
traj = JointTrajectory(joint_names=names, points=points)
traj.header.stamp = rospy.Time.now() + rospy.Duration(0.3)  # an absolute start, in wall time
pub.publish(traj)
rospy.sleep(1.8)
bad = JointTrajectory(joint_names=["gripper_joint"] + names[1:], points=points)
for _ in range(3):  # rospy sends from a thread: give it time on a loaded machine
    pub.publish(bad)
    rospy.sleep(0.3)
rospy.sleep(1.0)
`, rc.Topics.Trajectory, pyStrings(rnames), yamlList(rev(mid)), yamlList(rev(final)))
				p := rostest.Start(t, env, "python3", "-c", script)
				rostest.Eventually(t, 45*time.Second, "the arm follows the trajectory to its last point", func() bool {
					n.Sim().TrueStateTo(&st)
					return near(st.Position, final, 1e-3)
				})
				p.Wait(t, 30*time.Second)
				rostest.Eventually(t, 20*time.Second, "the bad trajectory is counted", func() bool {
					return n.Stats().ROS.TrajectoriesRejected > before.TrajectoriesRejected
				})
				if s := n.Stats().ROS; s.Trajectories <= before.Trajectories {
					t.Errorf("stats %+v", s)
				}
				n.Sim().TrueStateTo(&st)
				if !near(st.Position, final, 1e-3) {
					t.Errorf("the rejected trajectory moved the arm to %v", st.Position)
				}
			})

			t.Run("rosbag", func(t *testing.T) {
				bag := filepath.Join(t.TempDir(), "sim.bag")
				rec := rostest.Start(t, env, "rosbag", "record", "-O", bag, "/joint_states", rc.Topics.Command, "/flowact/embedding")
				rostest.Eventually(t, 45*time.Second, "rosbag record subscribes", func() bool {
					return len(subscribers(t, uri, "/flowact/embedding")) > 0 && len(subscribers(t, uri, rc.Topics.Command)) > 1 &&
						len(subscribers(t, uri, "/joint_states")) > 0
				})
				var st robot.State
				n.Sim().TrueStateTo(&st)
				// A rospy commander: 2 s of a 0.5 Hz sine about the current position at 20 Hz.
				script := fmt.Sprintf(`
import math, rospy
from std_msgs.msg import Float64MultiArray
rospy.init_node("commander")
pub = rospy.Publisher(%q, Float64MultiArray, queue_size=10)
while pub.get_num_connections() < 2 and not rospy.is_shutdown():
    rospy.sleep(0.05)
q0 = %s
rate = rospy.Rate(20)
for k in range(40):
    s = 0.2 * math.sin(2 * math.pi * 0.5 * k / 20.0)
    pub.publish(Float64MultiArray(data=[q + s for q in q0]))
    rate.sleep()
`, rc.Topics.Command, yamlList(st.Position))
				rostest.Run(t, env, 60*time.Second, "python3", "-c", script)
				time.Sleep(200 * time.Millisecond) // the last messages reach the recorder
				// rosbag record closes the bag on SIGINT: allow it 10 s.
				rec.Signal(syscall.SIGINT)
				rec.Exited(t, 10*time.Second)
				ep, err := dataset.Read(bag, dataset.Config{Rate: 20,
					Topics: dataset.Topics{JointStates: "/joint_states", Command: rc.Topics.Command, Embedding: "/flowact/embedding"}})
				if err != nil {
					t.Fatalf("dataset.Read of rosbag record's bag: %v\nrosbag: %s", err, rec.Output())
				}
				if !slices.Equal(ep.Meta.Joints, names) || len(ep.Actions) < 35 || len(ep.Actions) > 40 || len(ep.States) < 100 || len(ep.Embeddings) < 20 {
					t.Fatalf("episode: joints %v, %d states, %d actions, %d embeddings; want %v, >= 100, 35..40, >= 20",
						ep.Meta.Joints, len(ep.States), len(ep.Actions), len(ep.Embeddings), names)
				}
				al, err := dataset.Align(ep, 0, dataset.ActionsFromCommand)
				if err != nil {
					t.Fatal(err)
				}
				// The commander ran 2 s at 20 Hz: the aligned episode spans the commands.
				if al.N < 30 || al.Tokens*al.Width != len(al.EmbeddingAt(0)) {
					t.Errorf("aligned: %d ticks, embedding %d x %d", al.N, al.Tokens, al.Width)
				}
				// The arm followed the commands: the last state is near the last action (the
				// commander's last target; the first-order lag is 50 ms).
				last := ep.States[len(ep.States)-1].Position
				if !near(last, ep.Actions[len(ep.Actions)-1].Position, 0.05) {
					t.Errorf("last state %v, last command %v", last, ep.Actions[len(ep.Actions)-1].Position)
				}
			})

			stop()
		})
	}
}

// TestROSSimTime runs the node on sim time at twice real time against the embedded master:
// /clock carries simulation time, rostopic (which then follows /use_sim_time) measures the
// configured rate in sim time, and joint states are stamped in sim time.
func TestROSSimTime(t *testing.T) {
	t.Parallel()
	rostest.Require(t, "rosmaster", "rostopic")
	uri := startEmbedded(t)
	env := rostest.Env(t, uri)
	_, _ = startNode(t, uri, Config{Rate: testRate, SimTime: true, Speed: 2, ROS: ros.SimSideConfig{Node: rosConfig(t, uri, "")}})
	t.Run("hz", func(t *testing.T) {
		t.Parallel()
		if r := hz(t, env, "/joint_states", 3*time.Second); r <= 0 {
			t.Errorf("rostopic hz /joint_states on sim time: %.1f Hz", r)
		}
		if r := stampRate(t, env, "/joint_states", 100); r < 0.8*testRate || r > 1.2*testRate {
			t.Errorf("/joint_states stamps on sim time: %.1f Hz, want %v ± 20%%", r, testRate)
		}
	})
	t.Run("echo", func(t *testing.T) {
		t.Parallel()
		msgs := parseEcho(t, rostest.Run(t, env, 30*time.Second, "rostopic", "echo", "-n", "1", "/clock"))
		js := parseEcho(t, rostest.Run(t, env, 30*time.Second, "rostopic", "echo", "-n", "1", "/joint_states"))
		if len(msgs) != 1 || len(js) != 1 {
			t.Fatalf("/clock %+v, /joint_states %+v", msgs, js)
		}
		// Sim time starts at 0 and runs at twice real time: well under an hour into the test
		// (wall time would be decades).
		if c := msgs[0].Clock; c.Secs*1e9+c.Nsecs <= 0 || c.Secs > 3600 {
			t.Errorf("/clock at %d s, want sim time a few seconds from 0: %+v", c.Secs, msgs)
		}
		if s := js[0].Header.Stamp; s.Secs*1e9+s.Nsecs <= 0 || s.Secs > 3600 {
			t.Errorf("joint state stamped %d s, want sim time", s.Secs)
		}
	})
}

// TestROSKill checks that rosnode kill ends Run with ros.ErrShutdown, unregistered.
func TestROSKill(t *testing.T) {
	t.Parallel()
	rostest.Require(t, "rosmaster", "rosnode")
	uri := startEmbedded(t)
	m, rc := ur5(t)
	n, err := New(m, rc, Config{Rate: testRate, Logger: rostest.Logger(t), ROS: ros.SimSideConfig{Node: rosConfig(t, uri, "")}})
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { errc <- n.Run(ctx) }()
	select {
	case <-n.Ready():
	case <-time.After(45 * time.Second):
		t.Fatal("no registration")
	}
	kill := rostest.Start(t, rostest.Env(t, uri), "rosnode", "kill", n.Name())
	kill.Wait(t, 30*time.Second)
	out := kill.Output()
	select {
	case err := <-errc:
		if !errors.Is(err, ros.ErrShutdown) {
			t.Errorf("Run returned %v after rosnode kill, want ros.ErrShutdown; rosnode said:\n%s", err, out)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("Run did not end after rosnode kill:\n%s", out)
	}
	if lookupNode(t, uri, n.Name()) {
		t.Errorf("the master still knows %s", n.Name())
	}
}
