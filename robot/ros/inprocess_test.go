package ros

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/goroslib/v2"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/rosgraph_msgs"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/sensor_msgs"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/std_msgs"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/trajectory_msgs"

	"github.com/flowact/flowact/internal/rostest"
	"github.com/flowact/flowact/robot"
	"github.com/flowact/flowact/robot/robottest"
	"github.com/flowact/flowact/robot/ros/xmlrpc"
)

// Tests that need no ROS installation: flowact's node against the embedded master
// (robot/ros/master) and an in-process goroslib peer node.

// peerNode is a plain goroslib node on master m, logging nowhere.
func peerNode(tb testing.TB, m testMaster, name string) *goroslib.Node {
	tb.Helper()
	gn, err := goroslib.NewNode(goroslib.NodeConf{
		Name: name, MasterAddress: m.URI()[len("http://") : len(m.URI())-1], Host: "127.0.0.1",
		LogDestinations: goroslib.LogDestinationCallback,
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(gn.Close)
	return gn
}

func publisher[T any](tb testing.TB, gn *goroslib.Node, topic string) *goroslib.Publisher {
	tb.Helper()
	p, err := goroslib.NewPublisher(goroslib.PublisherConf{Node: gn, Topic: topic, Msg: new(T)})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(p.Close)
	return p
}

func subscriber[T any](tb testing.TB, gn *goroslib.Node, topic string, cb func(*T)) {
	tb.Helper()
	s, err := goroslib.NewSubscriber(goroslib.SubscriberConf{Node: gn, Topic: topic, Callback: cb, QueueSize: subscriberQueue})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Close)
}

// limitedModel has position and velocity limits, so the conformance suite can check clamping.
func limitedModel() *robot.Model {
	lim := robot.Limits{HasPosition: true, Lower: -2, Upper: 2, Velocity: 1.5}
	return &robot.Model{Name: "arm", Root: "base", Joints: []robot.Joint{
		{Name: "shoulder", Type: robot.Revolute, Parent: "base", Child: "l1", Origin: robot.Identity, Axis: [3]float64{0, 0, 1}, Limits: lim},
		{Name: "elbow", Type: robot.Revolute, Parent: "l1", Child: "l2", Origin: robot.Identity, Axis: [3]float64{0, 1, 0}, Limits: lim},
		{Name: "wrist", Type: robot.Revolute, Parent: "l2", Child: "l3", Origin: robot.Identity, Axis: [3]float64{0, 1, 0}, Limits: lim},
	}}
}

// TestDriverConformsOverROS runs the robot.Driver conformance suite on the ROS driver, with a
// robottest.Fake behind a goroslib peer node standing in for the robot: the peer applies
// /flowact/command and /flowact/trajectory to the Fake and publishes /joint_states from it.
// Step advances the Fake once every command the driver accepted has reached it, and returns
// once the resulting state has come back through ROS.
func TestDriverConformsOverROS(t *testing.T) {
	m := newEmbeddedMaster(t)
	model := limitedModel()
	cfg := testConfig(t, m, "flowact")
	cfg.DiagnosticsPeriod = time.Hour
	n, err := New(cfg, model, Handlers{})
	if err != nil {
		t.Fatal(err)
	}
	runNode(t, n)
	waitReady(t, n)

	fake := robottest.NewFake(model, nil)
	peer := peerNode(t, m, "robot")
	// Commands and trajectories travel on two topics, so the peer may receive them in another
	// order than the driver accepted them. The peer keeps the latest of each and, at Step,
	// applies them in the order the driver accepted them (recorded by orderedDriver).
	d := &orderedDriver{Driver: n.Driver()}
	var cmds, trajs atomic.Uint64
	var lastCmd atomic.Int64 // UnixNano of the last command the peer received
	var pendMu sync.Mutex
	var pendCmd *robot.Command
	var pendTraj *robot.Trajectory
	subscriber(t, peer, "/flowact/command", func(msg *std_msgs.Float64MultiArray) {
		pendMu.Lock()
		pendCmd = &robot.Command{Position: msg.Data}
		pendMu.Unlock()
		cmds.Add(1)
		lastCmd.Store(time.Now().UnixNano())
	})
	subscriber(t, peer, "/flowact/trajectory", func(msg *trajectory_msgs.JointTrajectory) {
		tr := robot.Trajectory{Start: msg.Header.Stamp}
		for _, p := range msg.Points {
			tr.TimeFromStart = append(tr.TimeFromStart, p.TimeFromStart)
			tr.Positions = append(tr.Positions, p.Positions...)
		}
		if !slices.Equal(msg.JointNames, model.Names()) {
			t.Errorf("peer: joint_names %q", msg.JointNames)
		}
		pendMu.Lock()
		pendTraj = &tr
		pendMu.Unlock()
		trajs.Add(1)
	})
	apply := func() {
		pendMu.Lock()
		c, tr := pendCmd, pendTraj
		pendCmd, pendTraj = nil, nil
		pendMu.Unlock()
		writeCmd := func() {
			if c != nil {
				if err := fake.WriteCommand(c); err != nil {
					t.Errorf("peer: %v", err)
				}
			}
		}
		writeTraj := func() {
			if tr != nil {
				if err := fake.WriteTrajectory(tr); err != nil {
					t.Errorf("peer: %v", err)
				}
			}
		}
		if d.lastTraj.Load() > d.lastCmd.Load() {
			writeCmd()
			writeTraj()
		} else {
			writeTraj()
			writeCmd()
		}
	}
	pubJS := publisher[sensor_msgs.JointState](t, peer, "/joint_states")

	// The peer stamps with its own clock: the Fake's stepped time from a fixed origin (the
	// Fake starts at the Unix epoch, which ROS reads as "no stamp").
	origin := time.Unix(1_700_000_000, 0)
	names := model.Names()
	st := robot.NewState(model.DoF())
	var mu sync.Mutex // Step may be called from the suite's goroutines one at a time; be safe
	wait := func(what string, cond func() bool) {
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				panic("ros conformance: timed out waiting for " + what)
			}
			time.Sleep(50 * time.Microsecond)
		}
	}
	step := func(dt time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		// Everything the driver accepted has been sent (or replaced) and has reached the peer.
		// goroslib may drop a message silently when a subscriber queue is full; a command
		// stream that has been quiet for 300 ms counts as arrived.
		wait("commands to reach the peer", func() bool {
			s := n.Driver().Stats()
			quiet := time.Since(time.Unix(0, lastCmd.Load())) > 300*time.Millisecond
			return s.CommandsSent+s.CommandsDropped == s.Commands && (cmds.Load() == s.CommandsSent || quiet) &&
				s.TrajectoriesSent+s.TrajectoriesDropped == s.Trajectories && trajs.Load() == s.TrajectoriesSent
		})
		apply()
		fake.Step(dt)
		if err := fake.ReadState(&st); err != nil {
			panic(err)
		}
		stamp := origin.Add(fake.Now().Sub(time.Unix(0, 0)))
		var got robot.State
		var sent time.Time
		// Until the driver's subscriber has connected to the peer, messages reach nobody:
		// publish again (the same state) every 100 ms until it arrives.
		wait("the state to come back", func() bool {
			if time.Since(sent) > 100*time.Millisecond {
				pubJS.Write(&sensor_msgs.JointState{Header: std_msgs.Header{Stamp: stamp}, Name: names,
					Position: slices.Clone(st.Position), Velocity: slices.Clone(st.Velocity)})
				sent = time.Now()
			}
			return n.JointStates().ReadState(&got) == nil && got.Stamp.Equal(stamp)
		})
	}
	robottest.TestDriver(t, d, robottest.Options{Step: step, Fresh: true, ClampsPosition: true, VelocityLimited: true})
}

// orderedDriver numbers the writes its Driver accepts, so the test's peer can apply commands
// and trajectories in that order.
type orderedDriver struct {
	*Driver
	seq, lastCmd, lastTraj atomic.Uint64
}

func (d *orderedDriver) WriteCommand(c *robot.Command) error {
	err := d.Driver.WriteCommand(c)
	if err == nil {
		d.lastCmd.Store(d.seq.Add(1))
	}
	return err
}

func (d *orderedDriver) WriteTrajectory(tr *robot.Trajectory) error {
	err := d.Driver.WriteTrajectory(tr)
	if err == nil {
		d.lastTraj.Store(d.seq.Add(1))
	}
	return err
}

// TestSimTime: with /use_sim_time set, the node's Clock follows /clock and SleepUntil waits for
// it; a private list parameter from the command line reads back through Param.
func TestSimTime(t *testing.T) {
	m := newEmbeddedMaster(t)
	peer := peerNode(t, m, "sim")
	if err := peer.ParamSetBool("/use_sim_time", true); err != nil {
		t.Fatal(err)
	}
	clock := publisher[rosgraph_msgs.Clock](t, peer, "/clock")
	cfg := testConfig(t, m, "flowact")
	if _, err := cfg.ParseArgs([]string{"_gains:=[1, 2.5]", "_mode:=fast"}); err != nil {
		t.Fatal(err)
	}
	n, err := New(cfg, testModel(), Handlers{})
	if err != nil {
		t.Fatal(err)
	}
	runNode(t, n)
	waitReady(t, n)
	c := n.Clock()
	if !c.Sim() {
		t.Fatal("clock is not sim time with /use_sim_time set")
	}
	t0 := time.Unix(1000, 0)
	rostest.Eventually(t, 10*time.Second, "sim time from /clock", func() bool {
		clock.Write(&rosgraph_msgs.Clock{Clock: t0})
		return c.Now().Equal(t0)
	})
	woke := make(chan error, 1)
	go func() { woke <- c.SleepUntil(context.Background(), t0.Add(500*time.Millisecond)) }()
	clock.Write(&rosgraph_msgs.Clock{Clock: t0.Add(200 * time.Millisecond)})
	select {
	case err := <-woke:
		t.Fatalf("SleepUntil returned before sim time reached its deadline: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	rostest.Eventually(t, 10*time.Second, "SleepUntil to return", func() bool {
		clock.Write(&rosgraph_msgs.Clock{Clock: t0.Add(600 * time.Millisecond)})
		select {
		case err := <-woke:
			if err != nil {
				t.Fatal(err)
			}
			return true
		default:
			return false
		}
	})

	ctx := context.Background()
	gains, err := n.ParamFloat64s(ctx, "~gains")
	if err != nil || !slices.Equal(gains, []float64{1, 2.5}) {
		t.Errorf("~gains = %v, %v", gains, err)
	}
	if v, err := n.Param(ctx, "/flowact/mode"); err != nil || !xmlrpc.Equal(v, xmlrpc.String("fast")) {
		t.Errorf("/flowact/mode = %v, %v", v, err)
	}
	if _, err := n.Param(ctx, "~missing"); err == nil {
		t.Error("missing parameter read without error")
	}
}

// BenchmarkJointStateLatency measures JointState publish (a goroslib publisher in another node
// of this process) -> flowact's mailbox over loopback TCPROS, through the embedded master:
// median and p99 per message, from just before Publisher.Write to the receive time the mailbox
// stamps in Store. The benchmark waits for each message with short sleeps, not by spinning: a
// spinning observer takes a P from goroslib's goroutines and multiplies the latency it measures.
func BenchmarkJointStateLatency(b *testing.B) {
	m := newEmbeddedMaster(b)
	cfg := Config{Name: "flowact", MasterURI: m.URI(), Host: "127.0.0.1", Getenv: envMap{}.get,
		DiagnosticsPeriod: time.Hour, Logger: rostest.Logger(b)}
	n, err := New(cfg, testModel(), Handlers{})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	defer func() { cancel(); <-done }()
	<-n.Ready()
	pub := publisher[sensor_msgs.JointState](b, peerNode(b, m, "bench"), "/joint_states")
	names := []string{"shoulder", "elbow", "wrist"}
	j := n.JointStates()
	received := func(v float64) (time.Time, bool) {
		j.mu.Lock()
		defer j.mu.Unlock()
		return j.recv[0], j.seen[0] && j.pos[0] == v
	}
	send := func(v float64) time.Duration {
		start := time.Now()
		pub.Write(&sensor_msgs.JointState{Name: names, Position: []float64{v, 0, 0}})
		for {
			if at, ok := received(v); ok {
				return at.Sub(start)
			}
			if time.Since(start) > 2*time.Second {
				return -1
			}
			time.Sleep(20 * time.Microsecond)
		}
	}
	// Until the subscriber has connected, messages reach nobody.
	for i := 1; send(float64(-i)) < 0; i++ {
		if i > 10 {
			b.Fatal("no joint state arrived")
		}
	}
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d := send(float64(i))
		if d < 0 {
			b.Fatalf("message %d lost", i)
		}
		lat = append(lat, d)
	}
	b.StopTimer()
	reportLatency(b, lat)
}

func reportLatency(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "median-ns")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
}

// TestDuplicateNameShutsDown: a second node registering flowact's name makes the master send
// flowact a shutdown request; Run ends with ErrShutdown, as a ROS node would.
func TestDuplicateNameShutsDown(t *testing.T) {
	m := newEmbeddedMaster(t)
	n, err := New(testConfig(t, m, "flowact"), testModel(), Handlers{})
	if err != nil {
		t.Fatal(err)
	}
	stop := runNode(t, n)
	waitReady(t, n)
	peerNode(t, m, "flowact")
	rostest.Eventually(t, 10*time.Second, "the node to stop", func() bool { return !n.Connected() })
	if err := stop(); !errors.Is(err, ErrShutdown) {
		t.Errorf("Run: %v, want ErrShutdown", err)
	}
}

// TestEnvironmentAndRemaps: the master comes from ROS_MASTER_URI and the host from ROS_IP (as
// the node's Getenv sees them), a ROS command line renames the node, remaps the joint states
// and sets a private parameter; data then flows on the remapped topic.
func TestEnvironmentAndRemaps(t *testing.T) {
	m := newEmbeddedMaster(t)
	cfg := Config{
		Getenv:      envMap{"ROS_MASTER_URI": m.URI(), "ROS_IP": "127.0.0.1"}.get,
		WatchPeriod: 150 * time.Millisecond, Logger: rostest.Logger(t),
	}
	if _, err := cfg.ParseArgs([]string{"__name:=pilot", "__ns:=/lab", "/joint_states:=/arm/joint_states", "_rate:=50"}); err != nil {
		t.Fatal(err)
	}
	if os.Getenv("ROS_NAMESPACE") != "" {
		t.Skip("ROS_NAMESPACE is set in this environment; goroslib would override __ns")
	}
	n, err := New(cfg, testModel(), Handlers{})
	if err != nil {
		t.Fatal(err)
	}
	runNode(t, n)
	waitReady(t, n)
	if n.Name() != "/lab/pilot" {
		t.Errorf("name %q", n.Name())
	}
	peer := peerNode(t, m, "arm")
	pub := publisher[sensor_msgs.JointState](t, peer, "/arm/joint_states")
	var st robot.State
	rostest.Eventually(t, 10*time.Second, "joint state on the remapped topic", func() bool {
		pub.Write(&sensor_msgs.JointState{Name: []string{"shoulder", "elbow", "wrist"}, Position: []float64{3, 2, 1}})
		return n.JointStates().ReadState(&st) == nil && slices.Equal(st.Position, []float64{3, 2, 1})
	})
	if v, err := peer.ParamGetInt("/lab/pilot/rate"); err != nil || v != 50 {
		t.Errorf("/lab/pilot/rate = %v, %v", v, err)
	}
	if uri, err := n.Param(context.Background(), "/lab/pilot/rate"); err != nil || !xmlrpc.Equal(uri, xmlrpc.Int(50)) {
		t.Errorf("Param = %v, %v", uri, err)
	}
}

// BenchmarkLoopbackBaseline is the floor under BenchmarkJointStateLatency on this machine: 8
// bytes over a loopback TCP connection to a reader goroutine, timed the same way (from before
// the write to the reader's time.Now()). The difference between the two is what goroslib's
// goroutine hand-offs, reflection decoding and the mailbox add.
func BenchmarkLoopbackBaseline(b *testing.B) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	var seen atomic.Uint64
	var at atomic.Int64
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 8)
		for {
			if _, err := io.ReadFull(c, buf); err != nil {
				return
			}
			at.Store(time.Now().UnixNano())
			seen.Store(binary.LittleEndian.Uint64(buf))
		}
	}()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 8)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 1; i <= b.N; i++ {
		start := time.Now()
		binary.LittleEndian.PutUint64(buf, uint64(i))
		if _, err := c.Write(buf); err != nil {
			b.Fatal(err)
		}
		for seen.Load() != uint64(i) {
			time.Sleep(20 * time.Microsecond)
		}
		lat = append(lat, time.Unix(0, at.Load()).Sub(start))
	}
	b.StopTimer()
	reportLatency(b, lat)
}

// TestReregisterFindsNewPublishers: a publisher that registered with a restarted master before
// the node noticed the restart must still reach the node: registering again in place hands the
// master's publisher list to the node's own subscriber (a publisherUpdate to itself).
func TestReregisterFindsNewPublishers(t *testing.T) {
	m := newEmbeddedMaster(t)
	cfg := testConfig(t, m, "flowact")
	cfg.WatchPeriod = time.Second // slow enough for the peer to register first
	n, err := New(cfg, testModel(), Handlers{})
	if err != nil {
		t.Fatal(err)
	}
	runNode(t, n)
	waitReady(t, n)
	m.Stop(t)
	m.Start(t)
	// goroslib's HTTP client (http.DefaultTransport) may hold a kept-alive connection to the
	// old master: the first call on it fails with EOF, so try again.
	var late *goroslib.Node
	rostest.Eventually(t, 10*time.Second, "a peer node on the new master", func() bool {
		gn, err := goroslib.NewNode(goroslib.NodeConf{Name: "late", MasterAddress: m.URI()[len("http://") : len(m.URI())-1],
			Host: "127.0.0.1", LogDestinations: goroslib.LogDestinationCallback})
		late = gn
		return err == nil
	})
	t.Cleanup(late.Close)
	pub := publisher[sensor_msgs.JointState](t, late, "/joint_states")
	rostest.Eventually(t, 20*time.Second, "the node to register again", func() bool { return n.Registrations() >= 2 })
	var st robot.State
	rostest.Eventually(t, 10*time.Second, "joint state from the publisher that came first", func() bool {
		pub.Write(&sensor_msgs.JointState{Name: []string{"shoulder", "elbow", "wrist"}, Position: []float64{5, 6, 7}})
		return n.JointStates().ReadState(&st) == nil && slices.Equal(st.Position, []float64{5, 6, 7})
	})
}
