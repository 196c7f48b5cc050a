package node

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowact/flowact/robot"
	"github.com/flowact/flowact/robot/ros"
	"github.com/flowact/flowact/sim"
	"github.com/flowact/flowact/sim/task"
	"github.com/flowact/flowact/sim/vlm"
)

// publisher is what the stepping loop publishes through: *ros.SimSide, or a recorder in tests.
type publisher interface {
	PublishJointState(st *robot.State)
	PublishClock(t time.Time)
	PublishTF(stamp time.Time, tfs []ros.Transform)
	PublishMarkers(stamp time.Time, frame string, ms []ros.Marker)
	PublishEmbedding(tokens, width int, data []float32, stamp time.Time)
	PublishStatus(stamp time.Time, sts ...ros.Status)
}

var _ publisher = (*ros.SimSide)(nil)

// Node is the simulator as a ROS node. New builds it without I/O; Run registers it and steps
// the simulator until its context ends.
type Node struct {
	cfg   Config
	log   *slog.Logger
	model *robot.Model
	s     *sim.Sim
	side  *ros.SimSide

	tk     task.Task // nil without a task
	rb     *task.Robot
	stream *vlm.Stream // nil without Embedding
	tokens int
	width  int
	arm    []ros.Marker // the robot as a stick figure, attached to its links

	ran       atomic.Bool
	offset    atomic.Int64 // ROS time minus simulation time, ns (0 with SimTime)
	steps     atomic.Int64
	late      atomic.Int64
	published atomic.Int64
	metaMu    sync.Mutex
	meta      task.Meta

	// stepMu is held for each step; resume is non-nil while the node is paused, and closed
	// by Resume.
	stepMu sync.Mutex
	resume chan struct{}
	brk    *breakpoint // set by PauseWhen, cleared when it fires

	trace *task.Trace // set by Record before Run; written by the stepping loop
}

// breakpoint pauses the node after the first step whose true state satisfies cond.
type breakpoint struct {
	cond  func(truth *robot.State) bool
	truth robot.State
	hit   chan struct{}
}

// Stats counts what Run did.
type Stats struct {
	Steps       int64 // simulation steps
	Late        int64 // steps that started after their deadline
	JointStates int64 // joint-state messages published
	ROS         ros.SimSideStats
}

// New returns a node simulating model m (loaded with its robot config rc, e.g. by
// urdf.LoadConfig) configured by cfg. It draws the task's scene; it does no I/O.
func New(m *robot.Model, rc robot.Config, cfg Config) (*Node, error) {
	if m == nil {
		return nil, fmt.Errorf("%w: nil model", ErrConfig)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	home := make([]float64, m.DoF())
	for i, j := range m.Joints {
		if v, ok := rc.Home[j.Name]; ok {
			home[i] = v
		} else if j.Limits.HasPosition {
			home[i] = min(max(0, j.Limits.Lower), j.Limits.Upper)
		}
	}
	if cfg.Sim.Initial == nil {
		cfg.Sim.Initial = home
	}
	s, err := sim.New(m, cfg.Sim)
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	rc.EnsureDefaults()
	t := &cfg.ROS.Node.Topics
	for _, f := range []struct {
		dst *string
		src string
	}{
		{&t.JointStates, rc.Topics.JointStates}, {&t.Command, rc.Topics.Command}, {&t.Trajectory, rc.Topics.Trajectory},
	} {
		if *f.dst == "" {
			*f.dst = f.src
		}
	}
	if cfg.ROS.Node.Logger == nil {
		cfg.ROS.Node.Logger = cfg.Logger
	}
	n := &Node{cfg: cfg, log: cfg.Logger, model: m, s: s}
	side, err := ros.NewSimSide(cfg.ROS, m, rosSink{n})
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	n.side = side
	// Fixed joints never move: publish them once, latched, on /tf_static.
	var sc sim.Scene
	s.SceneTo(&sc)
	var static []ros.Transform
	for _, f := range sc.Frames[m.DoF():] {
		static = append(static, ros.Transform{Parent: f.Parent, Child: f.Child, Pose: f.Pose})
	}
	if len(static) > 0 {
		side.SetStaticTF(time.Time{}, static)
	}
	n.arm = armMarkers(m)
	if cfg.Task.Name != "" {
		if n.rb, err = task.NewRobot(m, rc.EELink, cfg.Sim.Initial); err != nil {
			return nil, fmt.Errorf("node: %w", err)
		}
		if n.tk, err = task.New(cfg.Task); err != nil {
			return nil, fmt.Errorf("node: %w", err)
		}
		// The scene's PCG stream is sim/episode's (seed, 1): the node shows the scene of the
		// in-process episode with the same seed.
		if err := n.tk.Reset(rand.New(rand.NewPCG(cfg.Seed, 1)), n.rb); err != nil {
			return nil, fmt.Errorf("node: %w", err)
		}
		n.meta = n.tk.Meta()
		s.SetObjects(sceneObjects(n.tk, 0))
	}
	if cfg.Embedding {
		enc, err := vlm.NewEncoder(cfg.VLM)
		if err != nil {
			return nil, fmt.Errorf("node: %w", err)
		}
		n.tokens, n.width = enc.Shape()
		n.stream = vlm.NewStream(enc, cfg.Seed^0x5a5a5a5a) // sim/episode's noise seed for the VLM
	}
	return n, nil
}

// sceneObjects returns the task's targets and obstacles at elapsed time t.
func sceneObjects(tk task.Task, t time.Duration) ([]sim.Target, []sim.Obstacle) {
	var sc sim.Scene
	tk.SceneTo(&sc, t)
	return sc.Targets, sc.Obstacles
}

// Sim returns the simulator (for inspection: its true state, stats and faults).
func (n *Node) Sim() *sim.Sim { return n.s }

// Rate returns the step rate, Hz.
func (n *Node) Rate() float64 { return n.cfg.Rate }

// Name returns the node's absolute ROS name.
func (n *Node) Name() string { return n.side.Name() }

// Topics returns the resolved topic names.
func (n *Node) Topics() ros.SimTopics { return n.side.Topics() }

// Ready is closed once the node has registered with the master (and stepping begins).
func (n *Node) Ready() <-chan struct{} { return n.side.Ready() }

// Instruction returns the task's instruction, or "" without a task.
func (n *Node) Instruction() string {
	if n.tk == nil {
		return ""
	}
	return n.tk.Instruction()
}

// Meta returns the task's metadata so far (the zero Meta without a task).
func (n *Node) Meta() task.Meta {
	n.metaMu.Lock()
	defer n.metaMu.Unlock()
	return n.meta
}

// Record makes the node record its task's episode, from the start until the task ends, into
// the Trace it returns (task.Trace: true joint positions, end effector, goal and scene at every
// step). Call it before Run, on a node with a task; read the Trace once Run has returned. It
// returns nil for a node without a task or one already running.
func (n *Node) Record() *task.Trace {
	if n.tk == nil || n.ran.Load() {
		return nil
	}
	if n.trace == nil {
		n.trace = new(task.Trace)
		var truth robot.State
		n.s.TrueStateTo(&truth)
		n.trace.Add(n.tk, n.s.Elapsed(), truth.Position, n.rb.EEPos(truth.Position))
	}
	return n.trace
}

// Stats returns the counters.
func (n *Node) Stats() Stats {
	return Stats{Steps: n.steps.Load(), Late: n.late.Load(), JointStates: n.published.Load(), ROS: n.side.Stats()}
}

// Run registers the node (waiting for an absent master), steps the simulator and publishes until
// ctx ends; then it unregisters and returns nil. It returns the ROS side's error if the node is
// shut down from outside (rosnode kill, a node taking its name), and an error on a second call.
func (n *Node) Run(ctx context.Context) error {
	if !n.ran.CompareAndSwap(false, true) {
		return fmt.Errorf("node: Run called twice")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if !n.cfg.SimTime {
		// Provisional until stepping starts (loop): trajectories that arrive in between map to
		// about the right simulation time.
		n.offset.Store(int64(n.cfg.Clock.Now().Sub(n.s.Now())))
	}
	var wg sync.WaitGroup
	var rosErr error
	wg.Go(func() {
		rosErr = n.side.Run(ctx)
		cancel() // a shutdown request ends the loop too
	})
	select {
	case <-n.side.Ready():
		n.loop(ctx, n.side)
	case <-ctx.Done():
	}
	cancel()
	wg.Wait()
	if rosErr != nil {
		return fmt.Errorf("node: %w", rosErr)
	}
	return nil
}

// loop steps and publishes until ctx ends.
func (n *Node) loop(ctx context.Context, pub publisher) {
	cfg := n.cfg
	clk := cfg.Clock
	t0 := clk.Now()
	var offset time.Duration // ROS time minus simulation time
	if !cfg.SimTime {
		offset = t0.Sub(n.s.Now())
		n.offset.Store(int64(offset))
	}
	l := n.newStepper(pub, offset)
	paced := !math.IsInf(cfg.Speed, 1)
	wallPeriod := time.Duration(math.Round(float64(l.period) / cfg.Speed))
	n.log.Info("node: stepping", "rate_hz", cfg.Rate, "sim_time", cfg.SimTime, "speed", cfg.Speed, "task", cfg.Task.Name, "instruction", n.Instruction())
	for k := int64(1); ; k++ {
		if paced {
			deadline := t0.Add(time.Duration(k) * wallPeriod)
			if clk.Now().After(deadline) {
				n.late.Add(1)
			}
			if clk.SleepUntil(ctx, deadline) != nil {
				return
			}
		}
		paused, ok := n.gate(ctx)
		if !ok {
			return
		}
		if paused {
			// Step k is due one period after Resume; the pause made no step late.
			t0 = clk.Now().Add(-time.Duration(k-1) * wallPeriod)
			if !cfg.SimTime {
				// ROS time went on while the simulation stood still.
				l.offset = clk.Now().Sub(n.s.Now())
				n.offset.Store(int64(l.offset))
			}
		}
		l.step(k)
		if b := n.brk; b != nil {
			n.s.TrueStateTo(&b.truth)
			if b.cond(&b.truth) {
				n.brk = nil
				n.resume = make(chan struct{})
				close(b.hit)
			}
		}
		n.stepMu.Unlock()
	}
}

// gate waits while the node is paused and returns holding stepMu, reporting whether it waited;
// ok is false (stepMu not held) when ctx ended.
func (n *Node) gate(ctx context.Context) (paused, ok bool) {
	n.stepMu.Lock()
	for n.resume != nil {
		ch := n.resume
		n.stepMu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return paused, false
		}
		paused = true
		n.stepMu.Lock()
	}
	if ctx.Err() != nil {
		n.stepMu.Unlock()
		return paused, false
	}
	return paused, true
}

// Pause stops stepping the simulation, as Gazebo's pause_physics does: once it returns, no step
// is under way and none starts until Resume; the simulated state, /joint_states and (with
// SimTime) /clock stand still. Commands that arrive meanwhile are kept and act from the next
// step. Pause and Resume may be called from any goroutine; pausing a paused node does nothing.
func (n *Node) Pause() {
	n.stepMu.Lock()
	if n.resume == nil {
		n.resume = make(chan struct{})
	}
	n.stepMu.Unlock()
}

// PauseWhen sets a breakpoint: the node pauses (as Pause does) right after the first step at
// whose end cond holds for the true state (sim.Sim.TrueStateTo), and the returned channel is
// closed then. cond runs on the stepping goroutine and must not block or keep its argument. A
// new PauseWhen replaces a breakpoint that has not fired (its channel is never closed).
func (n *Node) PauseWhen(cond func(truth *robot.State) bool) <-chan struct{} {
	b := &breakpoint{cond: cond, truth: robot.NewState(n.model.DoF()), hit: make(chan struct{})}
	n.stepMu.Lock()
	n.brk = b
	n.stepMu.Unlock()
	return b.hit
}

// Resume continues stepping after Pause: the next step is due one period later (wall-paced
// nodes do not catch up on the paused time; without SimTime the simulated time then lags ROS
// time by the pause). Resuming a running node does nothing.
func (n *Node) Resume() {
	n.stepMu.Lock()
	if n.resume != nil {
		close(n.resume)
		n.resume = nil
	}
	n.stepMu.Unlock()
}

// stepper is the stepping loop's state: the schedule and the buffers every step reuses.
type stepper struct {
	n        *Node
	pub      publisher
	period   time.Duration
	offset   time.Duration // ROS time minus simulation time
	simStart time.Time

	tfEvery, markerEvery, diagEvery int64 // in steps

	st, truth  robot.State
	sc         sim.Scene
	vsc        vlm.Scene
	tfs        []ros.Transform
	markers    []ros.Marker
	lastStamp  time.Time     // of the last joint state published
	lastObs    time.Duration // observation time of the last embedding published
	taskDone   bool
	lateBefore int64 // late steps at the last status
}

func (n *Node) newStepper(pub publisher, offset time.Duration) *stepper {
	cfg := n.cfg
	every := func(rate float64) int64 { return max(1, int64(math.Round(cfg.Rate/rate))) }
	diagPeriod := cfg.ROS.Node.DiagnosticsPeriod
	if diagPeriod == 0 {
		diagPeriod = ros.DefaultDiagnosticsPeriod
	}
	return &stepper{
		n: n, pub: pub, offset: offset, simStart: n.s.Now(),
		period:  time.Duration(math.Round(float64(time.Second) / cfg.Rate)),
		tfEvery: every(cfg.TFRate), markerEvery: every(cfg.MarkerRate), diagEvery: every(1 / diagPeriod.Seconds()),
		st:      robot.NewState(n.model.DoF()),
		tfs:     make([]ros.Transform, n.model.DoF()),
		lastObs: -1,
	}
}

// step runs step k (1, 2, ...): it advances the simulation by one period and publishes what is
// due. It allocates nothing (once its buffers have grown) except on diagnostic steps, whose
// status holds fresh strings, and while Record's trace grows (a copy of the joints per step).
func (l *stepper) step(k int64) {
	n, pub, offset := l.n, l.pub, l.offset
	n.s.Step(l.period)
	n.steps.Add(1)
	now := n.s.Now()
	elapsed := now.Sub(l.simStart)
	pub.PublishClock(now) // sim time only

	if err := n.s.ReadState(&l.st); err == nil && !l.st.Stamp.Equal(l.lastStamp) {
		l.lastStamp = l.st.Stamp
		l.st.Stamp = l.st.Stamp.Add(offset)
		pub.PublishJointState(&l.st)
		n.published.Add(1)
	}

	if n.tk != nil {
		if !l.taskDone {
			n.s.TrueStateTo(&l.truth)
			ee := n.rb.EEPos(l.truth.Position)
			l.taskDone = n.tk.Update(elapsed, ee)
			if n.trace != nil {
				n.trace.Add(n.tk, elapsed, l.truth.Position, ee)
			}
			m := n.tk.Meta()
			n.metaMu.Lock()
			n.meta = m
			n.metaMu.Unlock()
			if l.taskDone {
				n.log.Info("node: task over", "task", m.Task, "success", m.Success, "elapsed", m.Elapsed, "distance_m", m.Distance)
			}
		}
		if n.stream != nil {
			if n.stream.Due(elapsed) {
				n.tk.ObserveTo(&l.vsc, elapsed)
				n.stream.Observe(elapsed, &l.vsc)
			}
			if emb, at, ok := n.stream.Latest(elapsed); ok && at != l.lastObs {
				l.lastObs = at
				pub.PublishEmbedding(n.tokens, n.width, emb, l.simStart.Add(at+offset))
			}
		}
	}

	if k%l.tfEvery == 0 {
		n.s.SceneTo(&l.sc)
		for i := range l.tfs {
			f := &l.sc.Frames[i]
			l.tfs[i] = ros.Transform{Parent: f.Parent, Child: f.Child, Pose: f.Pose}
		}
		pub.PublishTF(now.Add(offset), l.tfs)
	}
	if k%l.diagEvery == 0 {
		late := n.late.Load()
		pub.PublishStatus(now.Add(offset), n.status(late-l.lateBefore, l.diagEvery))
		l.lateBefore = late
	}
	if k%l.markerEvery == 0 {
		l.markers = append(l.markers[:0], n.arm...)
		if n.tk != nil {
			n.tk.SceneTo(&l.sc, elapsed)
			n.s.SetObjects(l.sc.Targets, l.sc.Obstacles)
			l.markers = appendMarkers(l.markers, l.sc.Targets, l.sc.Obstacles)
		}
		pub.PublishMarkers(now.Add(offset), n.model.Root, l.markers)
	}
}

// status is the node's diagnostic status: warn when steps started late since the last status
// (steps of them), when commands were rejected, or when the task failed.
func (n *Node) status(late, steps int64) ros.Status {
	st := n.Stats()
	s := ros.Status{Level: ros.LevelOK, Name: "flowact: sim", Message: "ok", HardwareID: n.model.Name}
	i64 := func(v int64) string { return strconv.FormatInt(v, 10) }
	u64 := func(v uint64) string { return strconv.FormatUint(v, 10) }
	s.Values = []ros.KeyValue{
		{Key: "rate_hz", Value: strconv.FormatFloat(n.cfg.Rate, 'g', -1, 64)},
		{Key: "sim_time", Value: strconv.FormatBool(n.cfg.SimTime)},
		{Key: "steps", Value: i64(st.Steps)},
		{Key: "late", Value: i64(st.Late)},
		{Key: "joint_states", Value: i64(st.JointStates)},
		{Key: "commands", Value: u64(st.ROS.Commands)},
		{Key: "commands_rejected", Value: u64(st.ROS.CommandsRejected)},
		{Key: "trajectories", Value: u64(st.ROS.Trajectories)},
		{Key: "trajectories_rejected", Value: u64(st.ROS.TrajectoriesRejected)},
		{Key: "dropped", Value: u64(st.ROS.Dropped)},
	}
	if late > 0 {
		s.Level, s.Message = ros.LevelWarn, fmt.Sprintf("%d of %d steps late: the machine cannot keep the rate", late, steps)
	}
	if st.ROS.CommandsRejected+st.ROS.TrajectoriesRejected > 0 && s.Level == ros.LevelOK {
		s.Level, s.Message = ros.LevelWarn, "commands rejected (see the log)"
	}
	if n.tk != nil {
		m := n.Meta()
		s.Values = append(s.Values,
			ros.KeyValue{Key: "task", Value: m.Task},
			ros.KeyValue{Key: "instruction", Value: m.Instruction},
			ros.KeyValue{Key: "success", Value: strconv.FormatBool(m.Success)},
			ros.KeyValue{Key: "distance_m", Value: strconv.FormatFloat(m.Distance, 'f', 4, 64)})
	}
	return s
}

// rosSink hands the ROS side's commands to the simulator, converting a trajectory's start from
// ROS time to simulation time (in real time they differ by the offset fixed when stepping began and moved by each pause).
type rosSink struct{ n *Node }

func (k rosSink) WriteCommand(c *robot.Command) error { return k.n.s.WriteCommand(c) }

func (k rosSink) WriteTrajectory(tr *robot.Trajectory) error {
	if tr.Start.IsZero() { // start on arrival
		return k.n.s.WriteTrajectory(tr)
	}
	t := *tr
	t.Start = t.Start.Add(-time.Duration(k.n.offset.Load()))
	return k.n.s.WriteTrajectory(&t)
}

// Marker namespaces.
const (
	nsArm       = "arm"
	nsTargets   = "targets"
	nsObstacles = "obstacles"
)

// Sizes of the arm's stick figure, m: the shipped URDFs have no visual geometry, so rviz shows
// the arm through these markers (and the frames of /tf).
const (
	armLinkDiameter  = 0.04
	armJointDiameter = 0.06
)

// armMarkers draws the robot as a stick figure: a cylinder from each link's origin to each child
// joint's origin, in the parent link's frame, and a sphere at every joint, in the child link's
// frame. The shapes are fixed in their links' frames and frame-locked, so rviz moves them with
// /tf at its rate, not at the marker rate.
func armMarkers(m *robot.Model) []ros.Marker {
	var out []ros.Marker
	blue := [4]float32{0.35, 0.45, 0.6, 1}
	joints := append(append([]robot.Joint(nil), m.Joints...), m.Fixed...)
	for _, j := range joints {
		p := j.Origin.Pos
		l := math.Sqrt(p[0]*p[0] + p[1]*p[1] + p[2]*p[2])
		if l > 1e-6 {
			out = append(out, ros.Marker{NS: nsArm, ID: int32(len(out)), Shape: ros.MarkerCylinder, Frame: j.Parent, FrameLocked: true,
				Pose:  robot.Pose{Pos: [3]float64{p[0] / 2, p[1] / 2, p[2] / 2}, Rot: robot.RotZTo([3]float64{p[0] / l, p[1] / l, p[2] / l})},
				Scale: [3]float64{armLinkDiameter, armLinkDiameter, l}, RGBA: blue})
		}
		out = append(out, ros.Marker{NS: nsArm, ID: int32(len(out)), Shape: ros.MarkerSphere, Frame: j.Child, FrameLocked: true,
			Pose:  robot.Identity,
			Scale: [3]float64{armJointDiameter, armJointDiameter, armJointDiameter}, RGBA: blue})
	}
	return out
}

// appendMarkers draws targets as spheres and obstacles as capsules: a cylinder from A to B and a
// sphere at each end (one sphere when A == B).
func appendMarkers(dst []ros.Marker, targets []sim.Target, obstacles []sim.Obstacle) []ros.Marker {
	for i, t := range targets {
		d := 2 * t.Radius
		dst = append(dst, ros.Marker{NS: nsTargets, ID: int32(i), Shape: ros.MarkerSphere,
			Pose: robot.Pose{Pos: t.Pos, Rot: robot.Identity.Rot}, Scale: [3]float64{d, d, d}, RGBA: t.RGBA})
	}
	grey := [4]float32{0.5, 0.5, 0.5, 0.8}
	for i, o := range obstacles {
		d := 2 * o.Radius
		id := int32(3 * i)
		dst = append(dst, ros.Marker{NS: nsObstacles, ID: id, Shape: ros.MarkerSphere,
			Pose: robot.Pose{Pos: o.A, Rot: robot.Identity.Rot}, Scale: [3]float64{d, d, d}, RGBA: grey})
		ab := [3]float64{o.B[0] - o.A[0], o.B[1] - o.A[1], o.B[2] - o.A[2]}
		l := math.Sqrt(ab[0]*ab[0] + ab[1]*ab[1] + ab[2]*ab[2])
		if l == 0 {
			continue
		}
		dst = append(dst, ros.Marker{NS: nsObstacles, ID: id + 1, Shape: ros.MarkerSphere,
			Pose: robot.Pose{Pos: o.B, Rot: robot.Identity.Rot}, Scale: [3]float64{d, d, d}, RGBA: grey})
		mid := [3]float64{(o.A[0] + o.B[0]) / 2, (o.A[1] + o.B[1]) / 2, (o.A[2] + o.B[2]) / 2}
		dst = append(dst, ros.Marker{NS: nsObstacles, ID: id + 2, Shape: ros.MarkerCylinder,
			Pose: robot.Pose{Pos: mid, Rot: robot.RotZTo([3]float64{ab[0] / l, ab[1] / l, ab[2] / l})}, Scale: [3]float64{d, d, l}, RGBA: grey})
	}
	return dst
}
