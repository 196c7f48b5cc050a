package ros

import (
	"context"
	"errors"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/goroslib/v2"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/diagnostic_msgs"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/sensor_msgs"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/std_msgs"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/tf2_msgs"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/trajectory_msgs"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/visualization_msgs"

	"github.com/flowact/flowact/internal/rostest"
	"github.com/flowact/flowact/robot"
	"github.com/flowact/flowact/robot/ros/xmlrpc"
)

func TestTrajectoryDecoder(t *testing.T) {
	m := testModel() // shoulder, elbow, wrist
	pt := func(d time.Duration, pos ...float64) trajectory_msgs.JointTrajectoryPoint {
		return trajectory_msgs.JointTrajectoryPoint{Positions: pos, TimeFromStart: d}
	}
	start := time.Unix(5, 0)
	tests := []struct {
		name    string
		msg     trajectory_msgs.JointTrajectory
		wantErr error // nil: want pos
		pos     []float64
		tfs     []time.Duration
	}{
		{name: "model order",
			msg: trajectory_msgs.JointTrajectory{Header: std_msgs.Header{Stamp: start}, JointNames: []string{"shoulder", "elbow", "wrist"},
				Points: []trajectory_msgs.JointTrajectoryPoint{pt(time.Second, 1, 2, 3), pt(2*time.Second, 4, 5, 6)}},
			pos: []float64{1, 2, 3, 4, 5, 6}, tfs: []time.Duration{time.Second, 2 * time.Second}},
		{name: "reordered by name",
			msg: trajectory_msgs.JointTrajectory{Header: std_msgs.Header{Stamp: start}, JointNames: []string{"wrist", "shoulder", "elbow"},
				Points: []trajectory_msgs.JointTrajectoryPoint{pt(time.Second, 3, 1, 2)}},
			pos: []float64{1, 2, 3}, tfs: []time.Duration{time.Second}},
		{name: "unknown joint",
			msg:     trajectory_msgs.JointTrajectory{JointNames: []string{"shoulder", "elbow", "gripper"}, Points: []trajectory_msgs.JointTrajectoryPoint{pt(time.Second, 1, 2, 3)}},
			wantErr: ErrJointNames},
		{name: "unknown joint, wrong count",
			msg:     trajectory_msgs.JointTrajectory{JointNames: []string{"shoulder", "elbow", "wrist", "gripper"}, Points: []trajectory_msgs.JointTrajectoryPoint{pt(time.Second, 1, 2, 3, 4)}},
			wantErr: ErrJointNames},
		{name: "missing joint",
			msg:     trajectory_msgs.JointTrajectory{JointNames: []string{"shoulder", "elbow"}, Points: []trajectory_msgs.JointTrajectoryPoint{pt(time.Second, 1, 2)}},
			wantErr: ErrJointNames},
		{name: "repeated joint",
			msg:     trajectory_msgs.JointTrajectory{JointNames: []string{"shoulder", "elbow", "elbow"}, Points: []trajectory_msgs.JointTrajectoryPoint{pt(time.Second, 1, 2, 3)}},
			wantErr: ErrJointNames},
		{name: "short point",
			msg:     trajectory_msgs.JointTrajectory{JointNames: []string{"shoulder", "elbow", "wrist"}, Points: []trajectory_msgs.JointTrajectoryPoint{pt(time.Second, 1, 2)}},
			wantErr: simAnyErr},
	}
	d := newTrajectoryDecoder(m)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := d.decode(&tc.msg)
			if tc.wantErr != nil {
				if err == nil || (tc.wantErr != simAnyErr && !errors.Is(err, tc.wantErr)) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(tr.Positions, tc.pos) || !slices.Equal(tr.TimeFromStart, tc.tfs) || !tr.Start.Equal(tc.msg.Header.Stamp) {
				t.Errorf("got %+v, want positions %v times %v start %v", tr, tc.pos, tc.tfs, tc.msg.Header.Stamp)
			}
		})
	}
	msg := tests[1].msg
	if a := testing.AllocsPerRun(100, func() { d.decode(&msg) }); a != 0 {
		t.Errorf("decode allocates %v times per message", a)
	}
}

// simAnyErr marks a test case that wants some error.
var simAnyErr = errors.New("any error")

func TestCommandDecoder(t *testing.T) {
	tests := []struct {
		name string
		msg  std_msgs.Float64MultiArray
		want []float64 // nil: want an error
	}{
		{"plain", std_msgs.Float64MultiArray{Data: []float64{1, 2, 3}}, []float64{1, 2, 3}},
		{"data offset", std_msgs.Float64MultiArray{Layout: std_msgs.MultiArrayLayout{DataOffset: 1}, Data: []float64{9, 1, 2, 3}}, []float64{1, 2, 3}},
		{"short", std_msgs.Float64MultiArray{Data: []float64{1, 2}}, nil},
		{"long", std_msgs.Float64MultiArray{Data: []float64{1, 2, 3, 4}}, nil},
		{"offset past the end", std_msgs.Float64MultiArray{Layout: std_msgs.MultiArrayLayout{DataOffset: 7}, Data: []float64{1, 2, 3}}, nil},
		{"NaN", std_msgs.Float64MultiArray{Data: []float64{1, math.NaN(), 3}}, nil},
		{"Inf", std_msgs.Float64MultiArray{Data: []float64{1, 2, math.Inf(-1)}}, nil},
	}
	d := commandDecoder{cmd: robot.Command{Position: make([]float64, 3)}}
	for _, tc := range tests {
		c, err := d.decode(&tc.msg, 3)
		if tc.want == nil {
			if err == nil {
				t.Errorf("%s: no error", tc.name)
			}
			continue
		}
		if err != nil || !slices.Equal(c.Position, tc.want) {
			t.Errorf("%s: got %v, %v; want %v", tc.name, c, err, tc.want)
		}
	}
}

// simRecordSink keeps every command and trajectory it receives (copies).
type simRecordSink struct {
	mu    sync.Mutex
	cmds  [][]float64
	trajs []robot.Trajectory
}

func (r *simRecordSink) WriteCommand(c *robot.Command) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cmds = append(r.cmds, slices.Clone(c.Position))
	return nil
}

func (r *simRecordSink) WriteTrajectory(tr *robot.Trajectory) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.trajs = append(r.trajs, robot.Trajectory{Start: tr.Start, TimeFromStart: slices.Clone(tr.TimeFromStart), Positions: slices.Clone(tr.Positions)})
	return nil
}

// last returns the last command received (nil before the first).
func (r *simRecordSink) last() []float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.cmds) == 0 {
		return nil
	}
	return r.cmds[len(r.cmds)-1]
}

func (r *simRecordSink) counts() (int, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.cmds), len(r.trajs)
}

// firsts are the first values of the commands received so far.
func (r *simRecordSink) firsts() []float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	v := make([]float64, len(r.cmds))
	for i, c := range r.cmds {
		v[i] = c[0]
	}
	return v
}

// streamNumbered writes command k (its first joint at k) to d every 10 ms until the returned
// stop is called; stop ends the stream and returns the numbers the driver took (a full queue
// refuses one with robot.ErrBusy, which a loop would take back).
func streamNumbered(t *testing.T, d robot.Driver) (stop func() []float64) {
	var mu sync.Mutex
	var accepted []float64
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		c := robot.Command{Position: make([]float64, 3)}
		for k := 1; ; k++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			c.Position[0] = float64(k)
			if err := d.WriteCommand(&c); err == nil {
				mu.Lock()
				accepted = append(accepted, float64(k))
				mu.Unlock()
			} else if !errors.Is(err, robot.ErrBusy) {
				t.Errorf("WriteCommand: %v", err)
				return
			}
		}
	})
	var once sync.Once
	stop = func() []float64 {
		once.Do(func() { cancel(); wg.Wait() })
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(accepted)
	}
	t.Cleanup(func() { stop() })
	return stop
}

// receivedInOrder waits for the last of sent to reach r, then checks that from the first
// command received on (the first ones may precede the connection) every command sent arrived,
// in order. It returns how many were received.
func (r *simRecordSink) receivedInOrder(t *testing.T, sent []float64) (received int) {
	t.Helper()
	if len(sent) == 0 {
		t.Fatal("no command was taken")
	}
	last := sent[len(sent)-1]
	rostest.Eventually(t, 10*time.Second, "the last command at the simulator", func() bool { l := r.last(); return l != nil && l[0] == last })
	got := r.firsts()
	i := slices.Index(sent, got[0])
	if i < 0 {
		t.Fatalf("first command received %v was never sent", got[0])
	}
	if want := sent[i:]; !slices.Equal(got, want) {
		for k := range min(len(got), len(want)) {
			if got[k] != want[k] {
				t.Fatalf("%d commands sent, %d received; the first difference at %d: received %v, sent %v", len(want), len(got), k, got[k], want[k])
			}
		}
		t.Fatalf("%d commands sent, %d received", len(want), len(got))
	}
	return len(got)
}

// runSimSide runs s until the test ends and checks that Run returns nil on cancel.
func runSimSide(t *testing.T, s *SimSide) {
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("SimSide.Run: %v", err)
		}
	})
	select {
	case <-s.Ready():
	case <-time.After(20 * time.Second):
		t.Fatal("simulator node did not register within 20 s")
	}
}

// TestSimSideInProcess runs the simulator's node and flowact's runtime node (Node) against the
// embedded master: commands and trajectories from the runtime's Driver reach the sink in model
// order, joint states reach the runtime's mailbox, and a goroslib peer sees /tf, /tf_static,
// markers and the embedding, and the runtime's clock follows /clock; a trajectory with an unknown joint is counted and dropped.
func TestSimSideInProcess(t *testing.T) {
	m := newEmbeddedMaster(t)
	sink := &simRecordSink{}
	sc := SimSideConfig{Node: testConfig(t, m, ""), SimTime: true, Embedding: true}
	sc.Node.Name = ""
	side, err := NewSimSide(sc, testModel(), sink)
	if err != nil {
		t.Fatal(err)
	}
	if side.Name() != "/"+DefaultSimName {
		t.Errorf("name %q", side.Name())
	}
	side.SetStaticTF(time.Unix(1, 0), []Transform{{Parent: "wrist_link", Child: "tool", Pose: robot.Pose{Pos: [3]float64{0, 0, 0.1}, Rot: robot.Identity.Rot}}})
	runSimSide(t, side)

	rt, err := New(testConfig(t, m, "flowact"), testModel(), Handlers{})
	if err != nil {
		t.Fatal(err)
	}
	stopRT := runNode(t, rt)
	defer stopRT()
	waitReady(t, rt)

	peer := peerNode(t, m, "peer")
	var mu sync.Mutex
	var tf, static *tf2_msgs.TFMessage
	var markers *visualization_msgs.MarkerArray
	var emb *std_msgs.Float32MultiArray
	var diag *diagnostic_msgs.DiagnosticArray
	subscriber(t, peer, "/tf", func(m *tf2_msgs.TFMessage) { mu.Lock(); tf = m; mu.Unlock() })
	subscriber(t, peer, "/tf_static", func(m *tf2_msgs.TFMessage) { mu.Lock(); static = m; mu.Unlock() })
	subscriber(t, peer, DefaultMarkers, func(m *visualization_msgs.MarkerArray) { mu.Lock(); markers = m; mu.Unlock() })
	subscriber(t, peer, "/flowact/embedding", func(m *std_msgs.Float32MultiArray) { mu.Lock(); emb = m; mu.Unlock() })
	subscriber(t, peer, "/diagnostics", func(m *diagnostic_msgs.DiagnosticArray) {
		if len(m.Status) > 0 && m.Status[0].Name == "flowact: sim" { // the runtime node publishes here too
			mu.Lock()
			diag = m
			mu.Unlock()
		}
	})
	trajPub, err := goroslib.NewPublisher(goroslib.PublisherConf{Node: peer, Topic: "/flowact/trajectory", Msg: &trajectory_msgs.JointTrajectory{}})
	if err != nil {
		t.Fatal(err)
	}
	defer trajPub.Close()

	stamp := time.Unix(42, 5e8)
	rot := robot.RotAxisAngle([3]float64{0, 0, 1}, math.Pi/2)
	st := robot.State{Stamp: stamp, Position: []float64{0.1, 0.2, 0.3}, Velocity: []float64{1, 2, 3}, Effort: make([]float64, 3)}
	got := robot.NewState(3)
	rostest.Eventually(t, 10*time.Second, "the runtime reads the simulator's joint state, and the peer sees every topic", func() bool {
		side.PublishJointState(&st)
		side.PublishTF(stamp, []Transform{{Parent: "base", Child: "shoulder_link", Pose: robot.Pose{Pos: [3]float64{1, 2, 3}, Rot: rot}}})
		side.PublishMarkers(stamp, "base", []Marker{{NS: "targets", ID: 0, Shape: MarkerSphere, Pose: robot.Pose{Pos: [3]float64{0.5, 0, 0.2}, Rot: robot.Identity.Rot}, Scale: [3]float64{0.1, 0.1, 0.1}, RGBA: [4]float32{1, 0, 0, 1}}})
		side.PublishClock(stamp)
		side.PublishEmbedding(2, 3, []float32{1, 2, 3, 4, 5, 6}, stamp)
		side.PublishStatus(stamp, Status{Level: LevelWarn, Name: "flowact: sim", Message: "late", Values: []KeyValue{{"steps", "7"}}})
		time.Sleep(20 * time.Millisecond)
		mu.Lock()
		defer mu.Unlock()
		return rt.JointStates().ReadState(&got) == nil && tf != nil && static != nil && markers != nil && rt.Clock().Now().Equal(stamp) && emb != nil && diag != nil
	})
	if !slices.Equal(got.Position, st.Position) || !slices.Equal(got.Velocity, st.Velocity) || !got.Stamp.Equal(stamp) {
		t.Errorf("runtime read %+v, want %+v", got, st)
	}
	mu.Lock()
	if len(tf.Transforms) != 1 || tf.Transforms[0].ChildFrameId != "shoulder_link" || tf.Transforms[0].Header.FrameId != "base" ||
		math.Abs(tf.Transforms[0].Transform.Rotation.Z-math.Sqrt(0.5)) > 1e-12 || tf.Transforms[0].Transform.Translation.Z != 3 {
		t.Errorf("/tf: %+v", tf)
	}
	if len(static.Transforms) != 1 || static.Transforms[0].ChildFrameId != "tool" {
		t.Errorf("/tf_static: %+v", static)
	}
	if len(markers.Markers) != 2 || markers.Markers[0].Action != int32(visualization_msgs.Marker_DELETEALL) ||
		markers.Markers[1].Type != int32(visualization_msgs.Marker_SPHERE) || markers.Markers[1].Color.R != 1 || markers.Markers[1].Header.FrameId != "base" {
		t.Errorf("markers: %+v", markers)
	}
	if d := diag.Status[0]; d.Level != int8(LevelWarn) || d.Message != "late" || len(d.Values) != 1 || d.Values[0].Value != "7" || !diag.Header.Stamp.Equal(stamp) {
		t.Errorf("diagnostics %+v", diag)
	}
	if !rt.Clock().Sim() {
		t.Error("the runtime node, started after the simulator, does not follow /clock")
	}
	if len(emb.Layout.Dim) != 2 || emb.Layout.Dim[0].Size != 2 || emb.Layout.Dim[1].Size != 3 || !slices.Equal(emb.Data, []float32{1, 2, 3, 4, 5, 6}) {
		t.Errorf("embedding: %+v", emb)
	}
	mu.Unlock()
	if v, err := rt.Param(context.Background(), "/use_sim_time"); err != nil {
		t.Errorf("/use_sim_time: %v", err)
	} else if b, ok := v.AsBool(); !ok || !b {
		t.Errorf("/use_sim_time = %v, want true", v)
	}

	// Commands and trajectories from the runtime's driver.
	cmd := robot.Command{Position: []float64{0.4, 0.5, 0.6}}
	tr := robot.Trajectory{TimeFromStart: []time.Duration{time.Second}, Positions: []float64{0.7, 0.8, 0.9}}
	rostest.Eventually(t, 10*time.Second, "a command and a trajectory reach the sink", func() bool {
		if err := rt.Driver().WriteCommand(&cmd); err != nil {
			t.Fatal(err)
		}
		if err := rt.Driver().WriteTrajectory(&tr); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
		c, k := sink.counts()
		return c > 0 && k > 0
	})
	sink.mu.Lock()
	if !slices.Equal(sink.cmds[0], cmd.Position) || !slices.Equal(sink.trajs[0].Positions, tr.Positions) || !sink.trajs[0].Start.IsZero() {
		t.Errorf("sink got %v / %+v", sink.cmds[0], sink.trajs[0])
	}
	sink.mu.Unlock()

	// A peer's trajectory in another joint order is mapped by name; one with an unknown joint is
	// counted and dropped.
	_, before := sink.counts()
	bad := &trajectory_msgs.JointTrajectory{JointNames: []string{"wrist", "shoulder", "gripper"},
		Points: []trajectory_msgs.JointTrajectoryPoint{{Positions: []float64{1, 2, 3}, TimeFromStart: time.Second}}}
	good := &trajectory_msgs.JointTrajectory{JointNames: []string{"wrist", "shoulder", "elbow"},
		Points: []trajectory_msgs.JointTrajectoryPoint{{Positions: []float64{-3, -1, -2}, TimeFromStart: time.Second}}}
	rostest.Eventually(t, 10*time.Second, "the peer's trajectories arrive", func() bool {
		trajPub.Write(bad)
		trajPub.Write(good)
		time.Sleep(20 * time.Millisecond)
		_, k := sink.counts()
		return k > before && side.Stats().TrajectoriesRejected > 0
	})
	sink.mu.Lock()
	if last := sink.trajs[len(sink.trajs)-1]; !slices.Equal(last.Positions, []float64{-1, -2, -3}) {
		t.Errorf("reordered trajectory reached the sink as %v, want [-1 -2 -3]", last.Positions)
	}
	sink.mu.Unlock()
	if s := side.Stats(); s.Commands == 0 || s.Trajectories == 0 || s.JointStates == 0 {
		t.Errorf("stats %+v", s)
	}

	// A second simulator registering while /use_sim_time is already true (goroslib then
	// subscribes its node to /clock, the topic it also publishes) still works.
	sc2 := SimSideConfig{Node: testConfig(t, m, "sim2"), SimTime: true}
	sc2.Node.Topics = Topics{JointStates: "/sim2/joint_states", Command: "/sim2/command", Trajectory: "/sim2/trajectory"}
	side2, err := NewSimSide(sc2, testModel(), sink)
	if err != nil {
		t.Fatal(err)
	}
	runSimSide(t, side2)
	var js2 bool
	subscriber(t, peer, "/sim2/joint_states", func(*sensor_msgs.JointState) { mu.Lock(); js2 = true; mu.Unlock() })
	rostest.Eventually(t, 10*time.Second, "the second simulator's joint states", func() bool {
		side2.PublishJointState(&st)
		side2.PublishClock(stamp.Add(time.Second))
		time.Sleep(20 * time.Millisecond)
		mu.Lock()
		defer mu.Unlock()
		return js2
	})
}

// TestSimSideConfig checks defaults, remapping of the extra topics, and bad configs.
func TestSimSideConfig(t *testing.T) {
	cfg := SimSideConfig{Node: Config{Getenv: envMap{}.get, Namespace: "/robot1",
		Remaps: map[string]string{"/tf": "/robot1/tf", "markers": "/viz"}}, Markers: "markers"}
	s, err := NewSimSide(cfg, testModel(), &simRecordSink{})
	if err != nil {
		t.Fatal(err)
	}
	want := SimTopics{JointStates: "/joint_states", Command: "/flowact/command", Trajectory: "/flowact/trajectory",
		TF: "/robot1/tf", TFStatic: "/tf_static", Markers: "/viz", Clock: "/clock", Embedding: "/flowact/embedding",
		Diagnostics: "/diagnostics"}
	if s.Topics() != want {
		t.Errorf("topics %+v, want %+v", s.Topics(), want)
	}
	if s.Name() != "/robot1/flowact_sim" {
		t.Errorf("name %q", s.Name())
	}
	for _, bad := range []SimSideConfig{
		{Node: Config{Getenv: envMap{}.get}, TF: "bad name"},
		{Node: Config{Getenv: envMap{}.get, MasterURI: "ftp://x"}},
	} {
		if _, err := NewSimSide(bad, testModel(), &simRecordSink{}); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: err %v, want ErrConfig", bad, err)
		}
	}
	if _, err := NewSimSide(SimSideConfig{}, nil, &simRecordSink{}); !errors.Is(err, ErrConfig) {
		t.Errorf("nil model: %v", err)
	}
}

// TestSimSideMasterRestart starts the simulator's node before the master (it waits), then
// restarts the master: the node registers again, and a runtime node started afterwards gets its
// joint states; cancelling Run unregisters it.
func TestSimSideMasterRestart(t *testing.T) {
	m := newEmbeddedMaster(t)
	m.Stop(t)
	side, err := NewSimSide(SimSideConfig{Node: testConfig(t, m, "")}, testModel(), &simRecordSink{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- side.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	time.Sleep(100 * time.Millisecond)
	m.Start(t)
	rostest.Eventually(t, 20*time.Second, "registration after the master starts", func() bool { return side.Registrations() == 1 })
	m.Stop(t)
	m.Start(t)
	rostest.Eventually(t, 20*time.Second, "registration after the master restarts", func() bool { return side.Registrations() == 2 })

	rt, err := New(testConfig(t, m, "flowact"), testModel(), Handlers{})
	if err != nil {
		t.Fatal(err)
	}
	stopRT := runNode(t, rt)
	defer stopRT()
	waitReady(t, rt)
	st := robot.State{Stamp: time.Unix(7, 0), Position: []float64{1, 2, 3}, Velocity: make([]float64, 3), Effort: make([]float64, 3)}
	got := robot.NewState(3)
	rostest.Eventually(t, 10*time.Second, "joint states after the restart", func() bool {
		side.PublishJointState(&st)
		time.Sleep(20 * time.Millisecond)
		return rt.JointStates().ReadState(&got) == nil
	})
	if !slices.Equal(got.Position, st.Position) {
		t.Errorf("read %v, want %v", got.Position, st.Position)
	}
}

// TestSimSideKeepsCommandsAcrossRestart: the master is killed and restarted while the runtime
// streams per-tick commands to the simulator's node. Both register again in place (their
// goroslib nodes, TCPROS servers and the connection between them survive), so the robot side
// receives every command the runtime's driver took, in order, through the restart. Before, the
// simulator's node built a new connection and lost the commands sent while it did (a robot sees
// a double step).
func TestSimSideKeepsCommandsAcrossRestart(t *testing.T) {
	rostest.Require(t, "rosmaster")
	forEachMaster(t, func(t *testing.T, m testMaster) {
		sink := &simRecordSink{}
		side, err := NewSimSide(SimSideConfig{Node: testConfig(t, m, "")}, testModel(), sink)
		if err != nil {
			t.Fatal(err)
		}
		runSimSide(t, side)
		rt, err := New(testConfig(t, m, "flowact"), testModel(), Handlers{})
		if err != nil {
			t.Fatal(err)
		}
		runNode(t, rt)
		waitReady(t, rt)

		// The stream: command k carries k.
		stop := streamNumbered(t, rt.Driver())
		rostest.Eventually(t, 20*time.Second, "commands at the simulator", func() bool { n, _ := sink.counts(); return n >= 10 })

		m.Stop(t)
		rostest.Eventually(t, 10*time.Second, "the runtime to notice the master is gone", func() bool { return !rt.Connected() })
		m.Start(t)
		rostest.Eventually(t, 30*time.Second, "both nodes to register again", func() bool {
			return side.Registrations() >= 2 && rt.Registrations() >= 2 && rt.Connected()
		})
		n0, _ := sink.counts()
		rostest.Eventually(t, 10*time.Second, "commands after the restart", func() bool { n, _ := sink.counts(); return n >= n0+20 })
		received := sink.receivedInOrder(t, stop())
		if got := side.Registrations(); got != 2 {
			t.Errorf("simulator registrations %d, want 2 (one in place after the restart)", got)
		}
		t.Logf("%d commands through the restart, none lost", received)
	})
}

// FuzzSimSideDecode feeds arbitrary joint names, point layouts and values to the command and
// trajectory decoders: they never panic, and what they accept is the message mapped by name.
func FuzzSimSideDecode(f *testing.F) {
	f.Add("shoulder,elbow,wrist", []byte{1, 2, 3, 4, 5, 6, 7, 8, 9}, uint8(3), uint32(0))
	f.Add("wrist,shoulder,elbow", []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, uint8(3), uint32(1))
	f.Add("shoulder,shoulder,wrist", []byte{1, 2, 3}, uint8(3), uint32(9))
	f.Add("", []byte{}, uint8(0), uint32(0))
	f.Add("gripper", []byte{0xff, 0xf8, 0, 0, 0, 0, 0, 0}, uint8(1), uint32(0)) // NaN bits
	m := testModel()
	td := newTrajectoryDecoder(m)
	cd := commandDecoder{cmd: robot.Command{Position: make([]float64, m.DoF())}}
	f.Fuzz(func(t *testing.T, names string, data []byte, width uint8, offset uint32) {
		var vals []float64
		for i := 0; i+8 <= len(data); i += 8 {
			vals = append(vals, math.Float64frombits(uint64(data[i])<<56|uint64(data[i+1])<<48|uint64(data[i+2])<<40|
				uint64(data[i+3])<<32|uint64(data[i+4])<<24|uint64(data[i+5])<<16|uint64(data[i+6])<<8|uint64(data[i+7])))
		}
		for _, b := range data { // small values too, so that most inputs are finite
			vals = append(vals, float64(b))
		}
		if c, err := cd.decode(&std_msgs.Float64MultiArray{Layout: std_msgs.MultiArrayLayout{DataOffset: offset}, Data: vals}, m.DoF()); err == nil {
			if !slices.Equal(c.Position, vals[offset:]) {
				t.Fatalf("command %v from %v at offset %d", c.Position, vals, offset)
			}
		}
		msg := &trajectory_msgs.JointTrajectory{JointNames: strings.Split(names, ",")}
		w := int(width % 8)
		for k := 0; w > 0 && (k+1)*w <= len(vals) && k < 16; k++ {
			msg.Points = append(msg.Points, trajectory_msgs.JointTrajectoryPoint{Positions: vals[k*w : (k+1)*w], TimeFromStart: time.Duration(k+1) * time.Second})
		}
		tr, err := td.decode(msg)
		if err != nil {
			return
		}
		if len(tr.Positions) != len(msg.Points)*m.DoF() {
			t.Fatalf("%d positions for %d points", len(tr.Positions), len(msg.Points))
		}
		for k, pt := range msg.Points {
			for j, name := range msg.JointNames {
				if got, want := tr.Positions[k*m.DoF()+m.Index(name)], pt.Positions[j]; math.Float64bits(got) != math.Float64bits(want) {
					t.Fatalf("point %d joint %s: %v, want %v", k, name, got, want)
				}
			}
		}
	})
}

func BenchmarkTrajectoryDecode(b *testing.B) {
	m := testModel()
	d := newTrajectoryDecoder(m)
	msg := &trajectory_msgs.JointTrajectory{JointNames: []string{"wrist", "shoulder", "elbow"}}
	for k := range 50 { // a 50-point chunk
		msg.Points = append(msg.Points, trajectory_msgs.JointTrajectoryPoint{Positions: []float64{1, 2, 3}, TimeFromStart: time.Duration(k+1) * 20 * time.Millisecond})
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.decode(msg); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPublishJointState(b *testing.B) {
	side, err := NewSimSide(SimSideConfig{Node: Config{Getenv: envMap{}.get}}, testModel(), &simRecordSink{})
	if err != nil {
		b.Fatal(err)
	}
	st := robot.State{Position: []float64{1, 2, 3}, Velocity: []float64{1, 2, 3}, Effort: []float64{1, 2, 3}}
	b.ReportAllocs()
	for b.Loop() {
		side.PublishJointState(&st) // no connection: the mailbox replaces and counts
	}
}

// TestSimSideClearsSimTime checks that a sim-time simulator sets /use_sim_time while it runs and
// deletes it when Run ends.
func TestSimSideClearsSimTime(t *testing.T) {
	m := newEmbeddedMaster(t)
	c, err := xmlrpc.NewClient(xmlrpc.ClientConfig{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	useSimTime := func() (set, on bool) {
		res, err := c.Call(context.Background(), m.URI(), "getParam", xmlrpc.String("/test"), xmlrpc.String("/use_sim_time"))
		if err != nil {
			t.Fatal(err)
		}
		a, _ := res.AsArray()
		if len(a) != 3 {
			t.Fatalf("getParam answered %v", res)
		}
		if code, _ := a[0].AsInt(); code != 1 {
			return false, false
		}
		on, _ = a[2].AsBool()
		return true, on
	}
	side, err := NewSimSide(SimSideConfig{Node: testConfig(t, m, ""), SimTime: true}, testModel(), &simRecordSink{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- side.Run(ctx) }()
	select {
	case <-side.Ready():
	case <-time.After(20 * time.Second):
		t.Fatal("no registration")
	}
	if set, on := useSimTime(); !set || !on {
		t.Errorf("/use_sim_time set %v, %v while the simulator runs; want true", set, on)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if set, _ := useSimTime(); set {
		t.Error("/use_sim_time still set after the simulator stopped")
	}
}

// TestSimQueue checks the joint-state FIFO: a burst up to its length is kept in order, the
// overflow and what is discarded at reconnection are counted.
func TestSimQueue(t *testing.T) {
	var q queue[int]
	q.init()
	for i := range JointStateQueue + 8 {
		q.put(&i)
	}
	if d := q.dropped.Load(); d != 8 {
		t.Errorf("dropped %d of a burst of %d, want 8", d, JointStateQueue+8)
	}
	for want := range 3 {
		if got := <-q.ch; *got != want {
			t.Fatalf("FIFO gave %d, want %d", *got, want)
		}
	}
	q.discard()
	if d := q.dropped.Load(); d != 8+JointStateQueue-3 {
		t.Errorf("dropped %d after discard, want %d", d, 8+JointStateQueue-3)
	}
	if len(q.ch) != 0 {
		t.Errorf("%d left after discard", len(q.ch))
	}
}

// TestSimSideEmbeddingCustom checks the flowact_msgs/Embedding form of PublishEmbedding: it
// decodes back to the values, shape and stamp, and is dropped when Embedding is off.
func TestSimSideEmbeddingCustom(t *testing.T) {
	cfg := SimSideConfig{Node: Config{Getenv: envMap{}.get, Embedding: EmbeddingCustom}, Embedding: true}
	side, err := NewSimSide(cfg, testModel(), &simRecordSink{})
	if err != nil {
		t.Fatal(err)
	}
	data := []float32{1.5, -2, 3, 4.25, 5, -6}
	stamp := time.Unix(3, 7)
	side.PublishEmbedding(3, 2, data, stamp)
	m := side.embC.take()
	if m == nil || side.embMA.take() != nil {
		t.Fatal("the custom embedding was not stored (or a multi-array one was)")
	}
	e, err := DecodeCustom(m, nil, time.Now())
	if err != nil || e.Tokens != 3 || e.Width != 2 || !slices.Equal(e.Data, data) || !e.Stamp.Equal(stamp) {
		t.Errorf("decoded %+v, %v", e, err)
	}
	cfg.Embedding = false
	off, err := NewSimSide(cfg, testModel(), &simRecordSink{})
	if err != nil {
		t.Fatal(err)
	}
	off.PublishEmbedding(3, 2, data, stamp)
	if off.embC.take() != nil {
		t.Error("PublishEmbedding stored a message with Embedding off")
	}
}
