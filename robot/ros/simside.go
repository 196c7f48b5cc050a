package ros

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/goroslib/v2"
	"github.com/bluenviron/goroslib/v2/pkg/apimaster"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/diagnostic_msgs"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/geometry_msgs"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/rosgraph_msgs"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/sensor_msgs"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/std_msgs"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/tf2_msgs"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/trajectory_msgs"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/visualization_msgs"

	"github.com/flowact/flowact/robot"
	"github.com/flowact/flowact/robot/ros/msgs"
	"github.com/flowact/flowact/robot/ros/xmlrpc"
)

// Sink receives what a SimSide decodes, in model order. sim.Sim is one. Both methods are called
// from goroslib's subscriber goroutines (one at a time per topic) and must not block; they copy
// what they keep, because the SimSide reuses the values it passes.
type Sink interface {
	WriteCommand(c *robot.Command) error
	WriteTrajectory(tr *robot.Trajectory) error
}

// SimSideConfig configures a SimSide, the robot's end of flowact's interfaces: it publishes what
// a ROS-controlled arm publishes and subscribes to the controllers' command topics. The yaml tags
// name the keys of a configuration file.
//
//	out  Node.Topics.JointStates  sensor_msgs/JointState          PublishJointState
//	in   Node.Topics.Command      std_msgs/Float64MultiArray      -> Sink.WriteCommand
//	in   Node.Topics.Trajectory   trajectory_msgs/JointTrajectory -> Sink.WriteTrajectory
//	out  TF, TFStatic             tf2_msgs/TFMessage              PublishTF, SetStaticTF (latched)
//	out  Markers                  visualization_msgs/MarkerArray  PublishMarkers
//	out  /clock                   rosgraph_msgs/Clock             PublishClock (SimTime only)
//	out  Node.Topics.Embedding    Node.Embedding's type           PublishEmbedding (Embedding only)
//	out  Node.Topics.Diagnostics  diagnostic_msgs/DiagnosticArray PublishStatus
//
// Names resolve and remap as Node's do (Node.Remaps apply to every topic here).
type SimSideConfig struct {
	// Node is the node's config; its zero Name means DefaultSimName. Its Embedding, Diagnostics
	// and service names are used only as described above.
	Node Config `yaml:"node"`
	// TF and TFStatic are the transform topics; defaults "/tf" and "/tf_static".
	TF       string `yaml:"tf"`
	TFStatic string `yaml:"tf_static"`
	// Markers is the scene's marker topic; default "/flowact/markers".
	Markers string `yaml:"markers"`
	// SimTime makes the node the ROS clock: it publishes /clock and sets /use_sim_time to true on
	// the parameter server at every registration, so nodes started afterwards follow it; when Run
	// ends it deletes the parameter again (if still true), so that nodes started later do not
	// wait for a clock that has gone. Without SimTime, a true /use_sim_time is logged as a warning.
	SimTime bool `yaml:"sim_time"`
	// Embedding advertises Node.Topics.Embedding for PublishEmbedding (a synthetic VLM).
	Embedding bool `yaml:"embedding"`
}

// commandSubQueue is goroslib's queue on the per-tick command subscription. Unlike the runtime's
// latest-value inputs (subscriberQueue), every command counts here: goroslib drops a message that
// finds the queue full, silently, and a robot that misses one command sees the next as a double
// step (twice the velocity, a spike in acceleration and jerk). 64 is 0.64 s of stall at 100 Hz;
// the sink's WriteCommand only copies, so the queue is normally empty.
const commandSubQueue = 64

// JointStateQueue is the length of the joint-state FIFO: 32 messages is 0.32 s at 100 Hz, a
// stall the simulator catches up from without losing samples.
const JointStateQueue = 32

// Defaults of SimSideConfig.
const (
	DefaultSimName  = "flowact_sim"
	DefaultTF       = "/tf"
	DefaultTFStatic = "/tf_static"
	DefaultMarkers  = "/flowact/markers"
	// ClockTopic is where ROS nodes with /use_sim_time read the time (goroslib subscribes to
	// this name itself).
	ClockTopic = "/clock"
)

// SimTopics are a SimSide's resolved (absolute, remapped) topic names.
type SimTopics struct {
	JointStates, Command, Trajectory, TF, TFStatic, Markers, Clock, Embedding, Diagnostics string
}

// Transform is one frame of the kinematic tree as tf carries it: Child's frame in Parent's.
type Transform struct {
	Parent, Child string
	Pose          robot.Pose
}

// MarkerShape is a visualization_msgs/Marker type.
type MarkerShape int32

// Marker shapes (the subset flowact draws).
const (
	MarkerCube     MarkerShape = MarkerShape(visualization_msgs.Marker_CUBE)
	MarkerSphere   MarkerShape = MarkerShape(visualization_msgs.Marker_SPHERE)
	MarkerCylinder MarkerShape = MarkerShape(visualization_msgs.Marker_CYLINDER)
	// MarkerLineStrip joins Points in order with a line Scale[0] wide.
	MarkerLineStrip MarkerShape = MarkerShape(visualization_msgs.Marker_LINE_STRIP)
)

// Marker is one shape to draw: Pose is its centre and orientation in the array's frame, Scale
// its size along its axes in m (a sphere's diameters; a cylinder's diameters and height along
// its z axis), RGBA its colour with components in [0, 1].
type Marker struct {
	NS    string // namespace, e.g. "targets"
	ID    int32  // unique within NS
	Shape MarkerShape
	Pose  robot.Pose
	Scale [3]float64
	RGBA  [4]float32
	// Frame is the marker's own frame, e.g. a link; "" means the array's frame.
	Frame string
	// FrameLocked makes rviz re-transform the marker into its frame on every redraw, so that a
	// marker attached to a moving link follows /tf rather than the marker rate.
	FrameLocked bool
	// Points are a line strip's vertices, in the marker's frame after Pose (m).
	Points [][3]float64
}

// SimSideStats counts what a SimSide did. All counters only grow.
type SimSideStats struct {
	Commands         uint64 // Float64MultiArray commands handed to the sink
	CommandsRejected uint64 // commands dropped: wrong length, non-finite values, or the sink's error
	Trajectories     uint64 // JointTrajectory messages handed to the sink
	// TrajectoriesRejected counts trajectories dropped: an unknown, repeated or missing joint
	// name, points of the wrong length, or the sink's error.
	TrajectoriesRejected uint64
	JointStates          uint64 // JointState messages handed to the publisher
	Dropped              uint64 // outgoing messages replaced before the sender took them (all topics)
}

// SimSide is the simulator's ROS node. NewSimSide builds it without I/O; Run connects (waiting
// for an absent master), registers, re-registers after a master restart, and unregisters when its
// context ends, like Node.Run. The Publish methods never block: each stores a fresh message for a
// sender goroutine of Run to hand to goroslib. Joint states wait in a FIFO of JointStateQueue
// messages, so that every sample reaches the wire (a simulator that falls behind and catches up
// publishes the whole burst, and a rosbag of it has every sample); the other topics keep only
// their latest message. A message that does not fit (a full FIFO, or a latest message not taken
// before the next) is dropped and counted in Dropped, as are messages stored while no master
// connection exists.
type SimSide struct {
	nm     *names
	topics SimTopics
	cfg    SimSideConfig
	log    *slog.Logger
	model  *robot.Model
	jnames []string // model order; shared by every outgoing JointState, never modified
	sink   Sink

	joints  queue[sensor_msgs.JointState]
	clock   latest[rosgraph_msgs.Clock]
	tf      latest[tf2_msgs.TFMessage]
	markers latest[visualization_msgs.MarkerArray]
	embMA   latest[std_msgs.Float32MultiArray]
	embC    latest[msgs.Embedding]
	diag    latest[diagnostic_msgs.DiagnosticArray]
	static  atomic.Pointer[tf2_msgs.TFMessage]
	seq     atomic.Uint32

	rpc    *xmlrpc.Client // parameter server calls
	cmdIn  commandDecoder
	trajIn trajectoryDecoder
	warn   rateLog

	ready     chan struct{}
	readyOnce sync.Once
	ran       atomic.Bool
	regs      atomic.Uint64
	shutdown  chan string
	stats     struct{ cmds, cmdsBad, trajs, trajsBad, states atomic.Uint64 }
}

// NewSimSide checks cfg and model and returns the node; it does no I/O. sink receives the
// decoded commands.
func NewSimSide(cfg SimSideConfig, model *robot.Model, sink Sink) (*SimSide, error) {
	if model == nil || sink == nil {
		return nil, fmt.Errorf("%w: nil model or sink", ErrConfig)
	}
	if err := model.Validate(); err != nil {
		return nil, fmt.Errorf("ros: %w", err)
	}
	if cfg.Node.Name == "" {
		cfg.Node.Name = DefaultSimName
	}
	for _, f := range []struct {
		p   *string
		def string
	}{{&cfg.TF, DefaultTF}, {&cfg.TFStatic, DefaultTFStatic}, {&cfg.Markers, DefaultMarkers}} {
		if *f.p == "" {
			*f.p = f.def
		}
	}
	nm, err := cfg.Node.resolve()
	if err != nil {
		return nil, err
	}
	t := SimTopics{JointStates: nm.topics.JointStates, Command: nm.topics.Command, Trajectory: nm.topics.Trajectory,
		Embedding: nm.topics.Embedding, Diagnostics: nm.topics.Diagnostics, Clock: ClockTopic}
	for _, f := range []struct {
		dst *string
		src string
	}{{&t.TF, cfg.TF}, {&t.TFStatic, cfg.TFStatic}, {&t.Markers, cfg.Markers}} {
		r, err := nm.resolveName(f.src)
		if err != nil {
			return nil, fmt.Errorf("%w: topic %q: %v", ErrConfig, f.src, err)
		}
		if to, ok := nm.remaps[r]; ok {
			r = to
		}
		*f.dst = r
	}
	s := &SimSide{
		nm: nm, topics: t, cfg: cfg, model: model, sink: sink,
		log:      nm.cfg.Logger.With("node", nm.node),
		jnames:   model.Names(),
		ready:    make(chan struct{}),
		shutdown: make(chan string, 1),
	}
	if s.rpc, err = xmlrpc.NewClient(xmlrpc.ClientConfig{Timeout: nm.cfg.Timeout}); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	s.cmdIn = commandDecoder{cmd: robot.Command{Position: make([]float64, model.DoF())}}
	s.trajIn = newTrajectoryDecoder(model)
	for _, b := range []interface{ init() }{&s.joints, &s.clock, &s.tf, &s.markers, &s.embMA, &s.embC, &s.diag} {
		b.init()
	}
	return s, nil
}

// Name returns the node's absolute name, e.g. "/flowact_sim".
func (s *SimSide) Name() string { return s.nm.node }

// Topics returns the resolved topic names.
func (s *SimSide) Topics() SimTopics { return s.topics }

// Ready is closed once the node has registered with a master for the first time.
func (s *SimSide) Ready() <-chan struct{} { return s.ready }

// Registrations counts successful registrations: 1 after the first, +1 per master restart.
func (s *SimSide) Registrations() uint64 { return s.regs.Load() }

// Stats returns the counters.
func (s *SimSide) Stats() SimSideStats {
	return SimSideStats{
		Commands: s.stats.cmds.Load(), CommandsRejected: s.stats.cmdsBad.Load(),
		Trajectories: s.stats.trajs.Load(), TrajectoriesRejected: s.stats.trajsBad.Load(),
		JointStates: s.stats.states.Load(),
		Dropped: s.joints.dropped.Load() + s.clock.dropped.Load() + s.tf.dropped.Load() + s.markers.dropped.Load() +
			s.embMA.dropped.Load() + s.embC.dropped.Load() + s.diag.dropped.Load(),
	}
}

// PublishJointState publishes st (model order; Stamp is the measurement time) as a JointState
// with the model's joint names. It copies st, and panics if st's slices do not have the model's
// DoF values (a programmer error).
func (s *SimSide) PublishJointState(st *robot.State) {
	n := len(s.jnames)
	if len(st.Position) != n || len(st.Velocity) != n || len(st.Effort) != n {
		panic(fmt.Sprintf("ros: PublishJointState: state has %d/%d/%d values for %d joints", len(st.Position), len(st.Velocity), len(st.Effort), n))
	}
	vals := make([]float64, 3*n) // one allocation for the three arrays
	copy(vals, st.Position)
	copy(vals[n:], st.Velocity)
	copy(vals[2*n:], st.Effort)
	s.stats.states.Add(1)
	s.joints.put(&sensor_msgs.JointState{
		Header:   std_msgs.Header{Seq: s.seq.Add(1) - 1, Stamp: st.Stamp},
		Name:     s.jnames,
		Position: vals[:n:n], Velocity: vals[n : 2*n : 2*n], Effort: vals[2*n:],
	})
}

// PublishClock publishes t on /clock. It is a no-op unless SimTime is set.
func (s *SimSide) PublishClock(t time.Time) {
	if s.cfg.SimTime {
		s.clock.put(&rosgraph_msgs.Clock{Clock: t})
	}
}

// PublishTF publishes the transforms, stamped stamp, on the TF topic.
func (s *SimSide) PublishTF(stamp time.Time, tfs []Transform) {
	s.tf.put(tfMessage(stamp, tfs))
}

// SetStaticTF sets the transforms published, latched, on the TF static topic at every
// registration (fixed joints, as robot_state_publisher does).
func (s *SimSide) SetStaticTF(stamp time.Time, tfs []Transform) {
	s.static.Store(tfMessage(stamp, tfs))
}

func tfMessage(stamp time.Time, tfs []Transform) *tf2_msgs.TFMessage {
	m := &tf2_msgs.TFMessage{Transforms: make([]geometry_msgs.TransformStamped, len(tfs))}
	for i, t := range tfs {
		x, y, z, w := t.Pose.Quaternion()
		m.Transforms[i] = geometry_msgs.TransformStamped{
			Header:       std_msgs.Header{Stamp: stamp, FrameId: t.Parent},
			ChildFrameId: t.Child,
			Transform: geometry_msgs.Transform{
				Translation: geometry_msgs.Vector3{X: t.Pose.Pos[0], Y: t.Pose.Pos[1], Z: t.Pose.Pos[2]},
				Rotation:    geometry_msgs.Quaternion{X: x, Y: y, Z: z, W: w},
			},
		}
	}
	return m
}

// PublishMarkers publishes ms in frame (e.g. the model's root link; a marker may name its own),
// stamped stamp, as one
// MarkerArray that first deletes every marker of this node (DELETEALL), so shapes that are gone
// from ms vanish in rviz.
func (s *SimSide) PublishMarkers(stamp time.Time, frame string, ms []Marker) {
	s.markers.put(markerArray(stamp, frame, ms))
}

// markerArray converts ms into one MarkerArray that first deletes every marker of the topic
// (DELETEALL).
func markerArray(stamp time.Time, frame string, ms []Marker) *visualization_msgs.MarkerArray {
	arr := &visualization_msgs.MarkerArray{Markers: make([]visualization_msgs.Marker, 0, len(ms)+1)}
	arr.Markers = append(arr.Markers, visualization_msgs.Marker{
		Header: std_msgs.Header{Stamp: stamp, FrameId: frame},
		Action: int32(visualization_msgs.Marker_DELETEALL),
	})
	for _, m := range ms {
		x, y, z, w := m.Pose.Quaternion()
		f := frame
		if m.Frame != "" {
			f = m.Frame
		}
		arr.Markers = append(arr.Markers, visualization_msgs.Marker{
			Header: std_msgs.Header{Stamp: stamp, FrameId: f}, FrameLocked: m.FrameLocked,
			Ns: m.NS, Id: m.ID, Type: int32(m.Shape), Action: int32(visualization_msgs.Marker_ADD),
			Pose: geometry_msgs.Pose{
				Position:    geometry_msgs.Point{X: m.Pose.Pos[0], Y: m.Pose.Pos[1], Z: m.Pose.Pos[2]},
				Orientation: geometry_msgs.Quaternion{X: x, Y: y, Z: z, W: w},
			},
			Scale:  geometry_msgs.Vector3{X: m.Scale[0], Y: m.Scale[1], Z: m.Scale[2]},
			Color:  std_msgs.ColorRGBA{R: m.RGBA[0], G: m.RGBA[1], B: m.RGBA[2], A: m.RGBA[3]},
			Points: points(m.Points),
		})
	}
	return arr
}

func points(ps [][3]float64) []geometry_msgs.Point {
	if len(ps) == 0 {
		return nil
	}
	out := make([]geometry_msgs.Point, len(ps))
	for i, p := range ps {
		out[i] = geometry_msgs.Point{X: p[0], Y: p[1], Z: p[2]}
	}
	return out
}

// PublishEmbedding publishes a tokens x width embedding (row-major; copied) stamped stamp, as
// Node.Embedding's type: a Float32MultiArray with dims [tokens, width] or a flowact_msgs/Embedding.
// It is a no-op unless Embedding is set, and panics if len(data) != tokens*width.
func (s *SimSide) PublishEmbedding(tokens, width int, data []float32, stamp time.Time) {
	if tokens*width != len(data) || tokens <= 0 || width <= 0 {
		panic(fmt.Sprintf("ros: PublishEmbedding: %d values for %d x %d", len(data), tokens, width))
	}
	if !s.cfg.Embedding {
		return
	}
	if s.nm.cfg.Embedding == EmbeddingCustom {
		m := &msgs.Embedding{}
		EncodeCustom(m, tokens, width, data, stamp)
		s.embC.put(m)
		return
	}
	s.embMA.put(&std_msgs.Float32MultiArray{
		Layout: std_msgs.MultiArrayLayout{Dim: []std_msgs.MultiArrayDimension{
			{Label: "tokens", Size: uint32(tokens), Stride: uint32(tokens * width)},
			{Label: "width", Size: uint32(width), Stride: uint32(width)},
		}},
		Data: append([]float32(nil), data...),
	})
}

// PublishStatus publishes the statuses, stamped stamp, as one DiagnosticArray.
func (s *SimSide) PublishStatus(stamp time.Time, sts ...Status) {
	arr := &diagnostic_msgs.DiagnosticArray{Header: std_msgs.Header{Stamp: stamp}, Status: make([]diagnostic_msgs.DiagnosticStatus, len(sts))}
	for i, st := range sts {
		arr.Status[i] = statusMsg(st)
	}
	s.diag.put(arr)
}

// Run runs the node until ctx ends; then it unregisters everything and returns nil. Like
// Node.Run it waits for an absent master (at most Node.ConnectTimeout before the first
// registration, then ErrMaster) and registers again after a restart. It returns an error for a
// shutdown request (rosnode kill, another node taking the name) or a second call.
func (s *SimSide) Run(ctx context.Context) error {
	if !s.ran.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer s.rpc.Close()
	if s.cfg.SimTime {
		defer s.clearSimTime()
	}
	m := member[*simSession]{
		nm: s.nm, log: s.log, rpc: s.rpc, kind: "simulator", regs: &s.regs,
		connect:    s.connect,
		serve:      s.serve,
		registered: func() { s.readyOnce.Do(func() { close(s.ready) }) },
	}
	return m.run(ctx)
}

// simSession is one registration of a SimSide.
type simSession struct {
	gn      *goroslib.Node
	master  *apimaster.Client
	selfURI string
	simTime bool
	pubs    []*goroslib.Publisher
	subs    []*goroslib.Subscriber
	senders []func(context.Context) // each drains one mailbox into one publisher
	reg     registered              // to register again in place with a restarted master
}

func (ss *simSession) attrs() []any { return []any{"uri", ss.selfURI, "sim_time", ss.simTime} }

func (ss *simSession) close() {
	for _, sub := range ss.subs {
		sub.Close()
	}
	for _, p := range ss.pubs {
		p.Close()
	}
	closeGoroslib(ss.gn)
}

// queueSender returns the loop that hands q's messages to pub, in order, until ctx ends.
func queueSender[T any](q *queue[T], pub *goroslib.Publisher) func(context.Context) {
	return func(ctx context.Context) {
		for {
			select {
			case <-ctx.Done():
				return
			case m := <-q.ch:
				pub.Write(m)
			}
		}
	}
}

func (s *SimSide) connect(ctx context.Context) (ss *simSession, err error) {
	master, gn, err := joinMaster(ctx, s.nm, &http.Client{Timeout: s.nm.cfg.Timeout}, s.log, s.shutdown, nil)
	if err != nil {
		return nil, err
	}
	ss = &simSession{gn: gn, master: master, simTime: s.cfg.SimTime}
	ss.reg.pubs = []registration{{"/rosout", typeName(rosgraph_msgs.Log{})}} // goroslib's own
	defer func() {
		if err != nil {
			ss.close()
			ss = nil
		}
	}()
	for _, p := range s.nm.params {
		if err := setParam(ctx, s.rpc, s.nm, p.key, p.val); err != nil {
			return ss, err
		}
	}
	if err := offerDescription(ctx, s.rpc, s.nm, s.log); err != nil {
		return ss, err
	}
	// goroslib subscribed to /clock itself if /use_sim_time was true as it started (a
	// simulator on sim time that connects again after its master restarted): read it as it did.
	simSet, _ := gn.ParamIsSet("/use_sim_time")
	simOn := false
	if simSet {
		simOn, _ = gn.ParamGetBool("/use_sim_time")
	}
	if simOn {
		ss.reg.subs = append(ss.reg.subs, registration{ClockTopic, typeName(rosgraph_msgs.Clock{})})
	}
	if s.cfg.SimTime {
		if err := gn.ParamSetBool("/use_sim_time", true); err != nil {
			return ss, fmt.Errorf("ros: set /use_sim_time: %w", err)
		}
		ss.reg.before = func(ctx context.Context) error {
			if err := setParam(ctx, s.rpc, s.nm, "/use_sim_time", xmlrpc.Bool(true)); err != nil {
				return fmt.Errorf("ros: set /use_sim_time: %w", err)
			}
			return nil
		}
	} else if simOn {
		s.log.Warn("ros: /use_sim_time is true but this simulator runs in real time and publishes no /clock: nodes that follow /use_sim_time will wait (rosparam delete /use_sim_time, or run the simulator on sim time)")
	}
	t := s.topics
	pub := func(topic string, msg any, latch bool) (*goroslib.Publisher, error) {
		p, err := goroslib.NewPublisher(goroslib.PublisherConf{Node: gn, Topic: topic, Msg: msg, Latch: latch})
		if err != nil {
			return nil, fmt.Errorf("ros: publisher %s: %w", topic, err)
		}
		ss.pubs = append(ss.pubs, p)
		typ := typeName(msg)
		if _, ok := msg.(*msgs.Embedding); ok {
			typ = msgs.EmbeddingType
		}
		ss.reg.pubs = append(ss.reg.pubs, registration{topic, typ})
		return p, nil
	}
	p, err := pub(t.JointStates, &sensor_msgs.JointState{}, false)
	if err != nil {
		return ss, err
	}
	ss.senders = append(ss.senders, queueSender(&s.joints, p))
	if p, err = pub(t.TF, &tf2_msgs.TFMessage{}, false); err != nil {
		return ss, err
	}
	ss.senders = append(ss.senders, sender(&s.tf, p))
	if p, err = pub(t.Markers, &visualization_msgs.MarkerArray{}, false); err != nil {
		return ss, err
	}
	ss.senders = append(ss.senders, sender(&s.markers, p))
	if p, err = pub(t.Diagnostics, &diagnostic_msgs.DiagnosticArray{}, false); err != nil {
		return ss, err
	}
	ss.senders = append(ss.senders, sender(&s.diag, p))
	if st := s.static.Load(); st != nil {
		if p, err = pub(t.TFStatic, &tf2_msgs.TFMessage{}, true); err != nil {
			return ss, err
		}
		p.Write(st)
	}
	if s.cfg.SimTime {
		if p, err = pub(t.Clock, &rosgraph_msgs.Clock{}, false); err != nil {
			return ss, err
		}
		ss.senders = append(ss.senders, sender(&s.clock, p))
	}
	if s.cfg.Embedding {
		if s.nm.cfg.Embedding == EmbeddingCustom {
			if p, err = pub(t.Embedding, &msgs.Embedding{}, false); err != nil {
				return ss, err
			}
			ss.senders = append(ss.senders, sender(&s.embC, p))
		} else {
			if p, err = pub(t.Embedding, &std_msgs.Float32MultiArray{}, false); err != nil {
				return ss, err
			}
			ss.senders = append(ss.senders, sender(&s.embMA, p))
		}
	}
	for _, c := range []goroslib.SubscriberConf{
		{Node: gn, Topic: t.Command, Callback: s.onCommand, QueueSize: commandSubQueue},
		{Node: gn, Topic: t.Trajectory, Callback: s.onTrajectory, QueueSize: subscriberQueue},
	} {
		sub, err := goroslib.NewSubscriber(c)
		if err != nil {
			return ss, fmt.Errorf("ros: subscriber %s: %w", c.Topic, err)
		}
		ss.subs = append(ss.subs, sub)
	}
	ss.reg.subs = append(ss.reg.subs, registration{t.Command, typeName(std_msgs.Float64MultiArray{})},
		registration{t.Trajectory, typeName(trajectory_msgs.JointTrajectory{})})
	if ss.selfURI, err = master.LookupNode(s.nm.node); err != nil {
		return ss, fmt.Errorf("ros: lookupNode %s after registering: %w", s.nm.node, err)
	}
	return ss, nil
}

// serve runs the senders and watches the registration, as Node.serve does, and registers
// again in place when the master forgot the node, so the command subscription and its
// connections to the runtime survive a master restart (no command is lost meanwhile).
func (s *SimSide) serve(ctx context.Context, ss *simSession) error {
	for _, b := range []interface{ discard() }{&s.joints, &s.clock, &s.tf, &s.markers, &s.embMA, &s.embC, &s.diag} {
		b.discard()
	}
	sctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, f := range ss.senders {
		wg.Go(func() { f(sctx) })
	}
	defer func() {
		cancel()
		wg.Wait()
	}()
	return watchMaster(ctx, s.log, s.nm.cfg.WatchPeriod, s.shutdown, ss.master, s.nm.node, ss.selfURI,
		func(bool) {}, inPlace(s.log, &s.regs, func(bool) {}, ss.selfURI, func() error {
			return reregister(ctx, s.rpc, s.nm, s.log, ss.master, ss.selfURI, &ss.reg)
		}))
}

// onCommand decodes a Float64MultiArray (positions in model order) and hands it to the sink.
func (s *SimSide) onCommand(m *std_msgs.Float64MultiArray) {
	c, err := s.cmdIn.decode(m, len(s.jnames))
	if err == nil {
		err = s.sink.WriteCommand(c)
	}
	if err != nil {
		n := s.stats.cmdsBad.Add(1)
		s.warn.log(s.log, "command", n, err)
		return
	}
	s.stats.cmds.Add(1)
}

// onTrajectory maps a JointTrajectory into model order and hands it to the sink.
func (s *SimSide) onTrajectory(m *trajectory_msgs.JointTrajectory) {
	tr, err := s.trajIn.decode(m)
	if err == nil {
		err = s.sink.WriteTrajectory(tr)
	}
	if err != nil {
		n := s.stats.trajsBad.Add(1)
		s.warn.log(s.log, "trajectory", n, err)
		return
	}
	s.stats.trajs.Add(1)
}

// clearSimTime deletes /use_sim_time when it is still true, as Run ends: the clock it announced
// is gone. Errors (the master is gone too) are only logged.
func (s *SimSide) clearSimTime() {
	if s.regs.Load() == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.nm.cfg.Timeout)
	defer cancel()
	call := func(method string) (xmlrpc.Value, error) {
		code, msg, v, err := masterCall(ctx, s.rpc, s.nm, method, xmlrpc.String("/use_sim_time"))
		if err == nil && code != 1 {
			err = fmt.Errorf("ros: %s: %s", method, msg)
		}
		return v, err
	}
	v, err := call("getParam")
	if err != nil {
		s.log.Debug("ros: /use_sim_time not read at exit", "err", err)
		return
	}
	if on, ok := v.AsBool(); !ok || !on {
		return
	}
	if _, err := call("deleteParam"); err != nil {
		s.log.Warn("ros: could not delete /use_sim_time at exit", "err", err)
	}
}
