package onboard

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowact/flowact/calib"
	"github.com/flowact/flowact/policy"
	"github.com/flowact/flowact/policy/chunk"
	"github.com/flowact/flowact/policy/safety"
	"github.com/flowact/flowact/robot"
	"github.com/flowact/flowact/robot/ros"
	"github.com/flowact/flowact/robot/ros/master"
	"github.com/flowact/flowact/robot/ros/xmlrpc"
	"github.com/flowact/flowact/robot/urdf"
	"github.com/flowact/flowact/sim/node"
	"github.com/flowact/flowact/sim/task"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// noEnv keeps the tests off the caller's ROS_* environment.
func noEnv(string) string { return "" }

// goal is an Inferer whose every chunk holds one fixed joint target: the loop, the safety
// filter and the ROS transport must bring the simulated arm there.
type goal struct {
	h      int
	target atomic.Pointer[[]float64]
}

func newGoal(h int, target []float64) *goal {
	g := &goal{h: h}
	g.target.Store(&target)
	return g
}

func (g *goal) Shape() (int, int) { return g.h, len(*g.target.Load()) }

func (g *goal) Infer(dst *chunk.Chunk, req *policy.Request) error {
	if req.Embedding.Data == nil {
		return errors.New("no embedding")
	}
	target := *g.target.Load()
	d := len(target)
	dst.H, dst.D, dst.Start = g.h, d, req.Tick
	dst.Data = dst.Data[:g.h*d]
	for i := range g.h {
		copy(dst.Data[i*d:(i+1)*d], target)
	}
	return nil
}

func embeddedMaster(t *testing.T) string {
	t.Helper()
	m, err := master.New(master.Config{Addr: "127.0.0.1:0", Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m.URI()
}

// lookupNode asks the master at uri for node's URI: "" when it does not know the node.
func lookupNode(t *testing.T, uri, name string) string {
	t.Helper()
	c, err := xmlrpc.NewClient(xmlrpc.ClientConfig{Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	v, err := c.Call(context.Background(), uri, "lookupNode", xmlrpc.String("/test"), xmlrpc.String(name))
	if err != nil {
		t.Fatal(err)
	}
	a, _ := v.AsArray()
	if len(a) != 3 {
		t.Fatalf("lookupNode: %v", v)
	}
	if code, _ := a[0].AsInt(); code != 1 {
		return ""
	}
	s, _ := a[2].AsString()
	return s
}

func eventually(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRunDrivesSimulator runs the runtime against the simulator node (sim/node, with the
// synthetic VLM publishing flowact_msgs/Embedding) on the embedded master, once per output kind
// (a Float64MultiArray per tick; a JointTrajectory per plan change): the arm reaches the
// inferer's target through ROS; the Trigger services are registered; cancelling the context
// mid-motion brakes the arm to rest, unregisters the node and returns nil. With sim time the
// simulator is the ROS clock (/clock, /use_sim_time, here at twice real time) and the loop ticks
// on it. The node told to go from outside mid-motion, as `rosnode kill` does (the slave API's
// shutdown) or as a node registering with the same name makes the master do, brakes the arm
// as a cancel does (goroslib ends its connection the moment the request arrives: the commands
// go through the command connection, /clock too), unregisters and Run returns nil; a node that
// took the name is ready only once the old one has stopped.
func TestRunDrivesSimulator(t *testing.T) {
	for _, c := range []struct {
		name, output string
		simTime      bool
		stop         string // cancel, kill, duplicate
	}{
		{"command", "command", false, "cancel"},
		{"trajectory", "trajectory", false, "cancel"},
		{"sim_time", "command", true, "cancel"},
		{"rosnode_kill", "trajectory", false, "kill"},
		{"rosnode_kill_sim_time", "command", true, "kill"},
		{"duplicate_node", "command", true, "duplicate"},
	} {
		t.Run(c.name, func(t *testing.T) { testDrivesSimulator(t, c.output, c.simTime, c.stop) })
	}
}

// startSimNode runs the simulator node (the UR5 on reach, the synthetic VLM's embedding as
// flowact_msgs/Embedding) against the master at uri until the test ends, and returns it once it
// is ready.
func startSimNode(t *testing.T, uri string, m *robot.Model, rc robot.Config, simTime bool, speed float64) *node.Node {
	t.Helper()
	sn, err := node.New(m, rc, node.Config{
		Task: task.Config{Name: "reach"}, Seed: 1, Embedding: true, SimTime: simTime, Speed: speed,
		ROS:    ros.SimSideConfig{Node: ros.Config{MasterURI: uri, Host: "127.0.0.1", Embedding: ros.EmbeddingCustom, Getenv: noEnv}},
		Logger: quiet(),
	})
	if err != nil {
		t.Fatal(err)
	}
	sctx, scancel := context.WithCancel(context.Background())
	simDone := make(chan error, 1)
	go func() { simDone <- sn.Run(sctx) }()
	t.Cleanup(func() {
		scancel()
		if err := <-simDone; err != nil {
			t.Errorf("simulator: %v", err)
		}
	})
	<-sn.Ready()
	return sn
}

func testDrivesSimulator(t *testing.T, output string, simTime bool, stop string) {
	uri := embeddedMaster(t)
	m, rc, err := urdf.Shipped("ur5")
	if err != nil {
		t.Fatal(err)
	}
	home := rc.HomePosition(m)
	target := slices.Clone(home)
	target[0] += 0.3 // rad: 0.3 s at the tightened 2 rad/s, well inside the limits
	target[2] -= 0.2

	speed := 0.0
	if simTime {
		speed = 2
	}
	// With sim time the simulator sets /use_sim_time when it registers: start after it.
	sn := startSimNode(t, uri, m, rc, simTime, speed)
	cfg := Config{
		ROS: ros.Config{MasterURI: uri, Host: "127.0.0.1", Embedding: ros.EmbeddingCustom, Getenv: noEnv, ConnectTimeout: 5 * time.Second,
			Topics: ros.Topics{Command: rc.Topics.Command, Trajectory: rc.Topics.Trajectory, JointStates: rc.Topics.JointStates}},
		Loop:  policy.Config{Rate: 50, TelemetryPeriod: 100 * time.Millisecond, Output: output},
		Start: true, Logger: quiet(),
	}
	g := newGoal(10, target)
	rt, err := New(cfg, m, g)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rt.Run(ctx) }()
	defer cancel()

	<-rt.Ready()
	name := rt.Node().Name()
	if name != "/flowact" || lookupNode(t, uri, name) == "" {
		t.Fatalf("node %q not registered", name)
	}
	for _, srv := range []string{"start", "stop", "hold", "reset"} {
		if !lookupService(t, uri, name+"/"+srv) {
			t.Errorf("service %s/%s not registered", name, srv)
		}
	}
	st := robot.NewState(m.DoF())
	eventually(t, 20*time.Second, "the arm reaches the target", func() bool {
		sn.Sim().TrueStateTo(&st)
		for i := range target {
			if math.Abs(st.Position[i]-target[i]) > 0.005 {
				return false
			}
		}
		return true
	})
	snap := rt.Loop().Snapshot()
	ss := sn.Stats().ROS
	if snap.State != safety.Running || snap.Counters.Chunks == 0 {
		t.Errorf("state %v, %d chunks", snap.State, snap.Counters.Chunks)
	}
	if rt.Node().Clock().Sim() != simTime {
		t.Errorf("the runtime's clock follows /clock: %v, want %v", rt.Node().Clock().Sim(), simTime)
	}
	if (output == "command") != (ss.Commands > 0) || (output == "trajectory") != (ss.Trajectories > 0) {
		t.Errorf("output %s: the simulator received %d commands and %d trajectories", output, ss.Commands, ss.Trajectories)
	}

	// Send the arm away again and cancel mid-motion: the loop brakes within its limits, so the
	// reference (what the simulator was told to track) comes to rest well short of the new
	// target but past where it was at the cancel, by about the braking distance at the UR5's
	// 2 rad/s, 8 rad/s^2 and 80 rad/s^3: v^2/(2a) + v a/(2j) = 0.25 + 0.1 rad. An abrupt stop
	// would leave it within a tick's step or two (0.04 rad each) of the cancel point.
	//
	// With sim time the simulator pauses itself at the first step at which the arm is at full
	// speed, until the runtime has been cancelled, so the cancel lands at a known simulated
	// instant whatever the machine's load, and the braking distance is checked tightly. On the
	// wall clock the cancel lands a scheduling delay later: the target is far enough (4 rad, 2 s
	// at full speed) that only an ignored cancel reaches it, and only the lower bound, which no
	// delay can make pass, is checked.
	far := slices.Clone(target)
	far[0] += 4
	fullSpeed := func(s *robot.State) bool { return s.Velocity[0] > 1.8 }
	var paused <-chan struct{}
	if simTime {
		paused = sn.PauseWhen(fullSpeed)
	}
	g.target.Store(&far)
	ref := make([]float64, m.DoF())
	if simTime {
		select {
		case <-paused:
		case <-time.After(20 * time.Second):
			t.Fatal("the arm did not reach full speed toward the new target")
		}
	} else {
		eventually(t, 10*time.Second, "the arm moves at full speed toward the new target", func() bool {
			sn.Sim().TrueStateTo(&st)
			return fullSpeed(&st)
		})
	}
	sn.Sim().TrueStateTo(&st)
	if st.Position[0] > far[0]-1 {
		t.Fatalf("the arm is at %.3f rad, within 1 rad of the target %.3f, before the cancel: the machine stalled for over a second", st.Position[0], far[0])
	}
	sn.Sim().ReferenceTo(ref)
	atCancel := ref[0]
	switch stop {
	case "cancel":
		cancel()
	case "kill": // what rosnode kill does
		c, err := xmlrpc.NewClient(xmlrpc.ClientConfig{Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Call(context.Background(), lookupNode(t, uri, name), "shutdown", xmlrpc.String("/rosnode"), xmlrpc.String("user request")); err != nil {
			t.Fatalf("shutdown: %v", err)
		}
		c.Close()
	case "duplicate": // another node takes the name: the master tells this one to go
		dup, err := ros.New(ros.Config{Name: "flowact", MasterURI: uri, Host: "127.0.0.1", Getenv: noEnv, Logger: quiet()}, m, ros.Handlers{})
		if err != nil {
			t.Fatal(err)
		}
		dctx, dcancel := context.WithCancel(context.Background())
		dupDone := make(chan error, 1)
		go func() { dupDone <- dup.Run(dctx) }()
		defer func() { dcancel(); <-dupDone }()
		select {
		case <-rt.Node().ShutdownRequested():
		case <-time.After(10 * time.Second):
			t.Fatal("the node was not told to go when another took its name")
		}
		// The old instance's command connection publishes on the command topic until its loop
		// has stopped: the new node must not be ready (and command) before.
		select {
		case <-dup.Ready():
			t.Fatal("the new node was ready while the one it replaced was braking")
		default:
		}
		defer func() {
			select {
			case <-dup.Ready():
			case <-time.After(10 * time.Second):
				t.Error("the new node was not ready 10 s after the old one stopped")
			}
		}()
	}
	if simTime {
		// The loop ticks on /clock: it brakes once the simulation runs again.
		sn.Resume()
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("Run did not return after the stop (%s)", stop)
	}
	if stop == "duplicate" {
		if lookupNode(t, uri, name) == "" {
			t.Errorf("%s not registered: the old node's unregistration removed the new one", name)
		}
	} else if lookupNode(t, uri, name) != "" {
		t.Errorf("%s still registered after Run returned", name)
	}
	// A trajectory keeps running in the simulator after the last message: let it end.
	// At rest: unchanged over 25 simulation steps (a quarter second at the default 100 Hz) (a wall-clock pause proves nothing on a
	// loaded machine).
	prev, prevStep := math.NaN(), int64(0)
	eventually(t, 5*time.Second, "the reference comes to rest", func() bool {
		sn.Sim().ReferenceTo(ref)
		step := sn.Stats().Steps
		if ref[0] != prev {
			prev, prevStep = ref[0], step
		}
		return step-prevStep >= 25
	})
	braked := ref[0] - atCancel
	t.Logf("braked %.3f rad after the stop (%s)", braked, stop)
	lo, hi := 0.2, math.Inf(1)
	if simTime {
		// 0.29-0.35 rad of braking from 1.8-2 rad/s, plus the commands already on their way at the pause (a few
		// ticks' steps, 0.04 rad each).
		lo, hi = 0.25, 0.55
	}
	if braked < lo || braked > hi || ref[0] > far[0]-0.5 {
		t.Errorf("reference moved %.3f rad after the cancel (to %.3f, target %.3f); want a braking distance in [%.2f, %.2f] rad", braked, ref[0], far[0], lo, hi)
	}
}

// lookupService reports whether the master at uri knows the service.
func lookupService(t *testing.T, uri, name string) bool {
	t.Helper()
	c, err := xmlrpc.NewClient(xmlrpc.ClientConfig{Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	v, err := c.Call(context.Background(), uri, "lookupService", xmlrpc.String("/test"), xmlrpc.String(name))
	if err != nil {
		t.Fatal(err)
	}
	a, _ := v.AsArray()
	if len(a) != 3 {
		t.Fatalf("lookupService: %v", v)
	}
	code, _ := a[0].AsInt()
	return code == 1
}

// TestRunUnreachableMaster: no master at the address: Run gives ErrMaster after the connect
// timeout, with one line naming the URI and the cause.
func TestRunUnreachableMaster(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	m, _, err := urdf.Shipped("ur5")
	if err != nil {
		t.Fatal(err)
	}
	uri := "http://" + addr + "/"
	rt, err := New(Config{ROS: ros.Config{MasterURI: uri, Getenv: noEnv, ConnectTimeout: 300 * time.Millisecond}, Logger: quiet()}, m, newGoal(4, make([]float64, m.DoF())))
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	err = rt.Run(context.Background())
	if !errors.Is(err, ros.ErrMaster) || !strings.Contains(err.Error(), uri) || strings.Contains(err.Error(), "\n") {
		t.Errorf("Run: %v; want ErrMaster naming %s on one line", err, uri)
	}
	if d := time.Since(t0); d > 5*time.Second {
		t.Errorf("gave up after %v, want about 300 ms", d)
	}
	if err := rt.Run(context.Background()); !errors.Is(err, ErrRunning) {
		t.Errorf("second Run: %v", err)
	}
}

// TestRunCancelWhileWaiting: cancelling while the master is absent returns nil at once.
func TestRunCancelWhileWaiting(t *testing.T) {
	m, _, err := urdf.Shipped("ur5")
	if err != nil {
		t.Fatal(err)
	}
	rt, err := New(Config{ROS: ros.Config{MasterURI: "http://127.0.0.1:1/", Getenv: noEnv}, Logger: quiet()}, m, newGoal(4, make([]float64, m.DoF())))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := rt.Run(ctx); err != nil {
		t.Errorf("Run: %v, want nil on cancellation", err)
	}
}

func TestNewBadConfig(t *testing.T) {
	m, _, err := urdf.Shipped("ur5")
	if err != nil {
		t.Fatal(err)
	}
	inf := newGoal(4, make([]float64, m.DoF()))
	arm5, arm5Cfg, err := urdf.Shipped("arm5")
	if err != nil {
		t.Fatal(err)
	}
	nom, err := calib.Nominal(arm5, arm5Cfg.Motors, nil)
	if err != nil {
		t.Fatal(err)
	}
	arm5Set, err := calib.NewSet(arm5, nom)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		cfg  Config
		inf  policy.Inferer
		want error
	}{
		{"bad node name", Config{ROS: ros.Config{Name: "a/b", Getenv: noEnv}}, inf, ros.ErrConfig},
		{"bad rate", Config{ROS: ros.Config{Getenv: noEnv}, Loop: policy.Config{Rate: 5}}, inf, policy.ErrConfig},
		{"negative flush", Config{ROS: ros.Config{Getenv: noEnv, FlushTimeout: -1}}, inf, ros.ErrConfig},
		{"wrong joints", Config{ROS: ros.Config{Getenv: noEnv}}, newGoal(4, make([]float64, 3)), policy.ErrConfig},
		{"no inferer", Config{ROS: ros.Config{Getenv: noEnv}}, nil, ErrConfig},
		{"another robot's transmissions", Config{ROS: ros.Config{Getenv: noEnv}, Transmissions: arm5Set}, inf, ErrConfig},
	} {
		if _, err := New(c.cfg, m, c.inf); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
}

// TestStatus checks the diagnostic status built from a snapshot: level, message, and the
// figures an operator reads in rqt_runtime_monitor.
func TestStatus(t *testing.T) {
	h := policy.NewHistogram()
	for range 99 {
		h.Record(1e-3)
	}
	h.Record(0.1)
	hs := h.Snapshot()
	snap := &policy.Snapshot{
		State: safety.Fault, Cause: "nan", Level: policy.Error, Message: "fault: nan", Strategy: chunk.Blend, Rate: 50,
		Counters: policy.Counters{Ticks: 10, Overruns: 2},
		Active:   []safety.Trip{safety.StateStale, safety.EmbeddingStale},
		Hist:     policy.Histograms{TickJitter: hs, Inference: hs},
	}
	snap.Clamps[safety.Velocity], snap.Clamps[safety.Position] = 3, 1
	snap.Trips[safety.StateStale] = 4
	s := Status(snap, "ur5")
	if s.Level != ros.LevelError || s.Message != "fault: nan" || s.Name != StatusName || s.HardwareID != "ur5" {
		t.Errorf("status %+v", s)
	}
	got := map[string]string{}
	for _, kv := range s.Values {
		if _, dup := got[kv.Key]; dup {
			t.Errorf("key %q twice", kv.Key)
		}
		got[kv.Key] = kv.Value
	}
	for k, want := range map[string]string{
		"state": "fault", "fault_cause": "nan", "rate_hz": "50", "ticks": "10", "overruns": "2",
		"tick_jitter.p50_s": "0.001", "tick_jitter.max_s": "0.1", "inference.p99_s": "0.001", "tick_cost.p99_s": "0",
		"clamps": "4", "clamps.velocity": "3", "watchdog.state_stale": "4",
		"watchdog.active": "state_stale,embedding_stale", "late": "0",
	} {
		if got[k] != want {
			t.Errorf("%s = %q, want %q", k, got[k], want)
		}
	}
	for _, c := range []struct {
		in   policy.Level
		want ros.Level
	}{{policy.OK, ros.LevelOK}, {policy.Warn, ros.LevelWarn}, {policy.Error, ros.LevelError}} {
		snap.Level = c.in
		if got := Status(snap, "").Level; got != c.want {
			t.Errorf("level %v -> %v, want %v", c.in, got, c.want)
		}
	}
}
