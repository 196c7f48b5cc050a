package ros

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/goroslib/v2"
	"github.com/bluenviron/goroslib/v2/pkg/apimaster"
	"github.com/bluenviron/goroslib/v2/pkg/msgproc"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/diagnostic_msgs"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/rosgraph_msgs"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/sensor_msgs"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/std_msgs"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/std_srvs"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/trajectory_msgs"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/visualization_msgs"

	"github.com/flowact/flowact/robot"
	"github.com/flowact/flowact/robot/ros/msgs"
	"github.com/flowact/flowact/robot/ros/xmlrpc"
)

// TriggerFunc answers a std_srvs/Trigger call: a nil error is success with message, an error is
// failure with the error's text.
type TriggerFunc func() (message string, err error)

// Handlers are the service callbacks. A nil handler means the service is not advertised. They
// run on goroslib's goroutines, one call at a time per service, and must not block for long.
type Handlers struct {
	Start, Stop, Hold, Reset TriggerFunc
}

// Errors returned by Run.
var (
	// ErrShutdown: the master or a tool (rosnode kill, a node registering with the same name)
	// asked the node to shut down. It wraps the reason.
	ErrShutdown = errors.New("ros: shutdown requested")
	// ErrRunning: Run was called more than once.
	ErrRunning = errors.New("ros: node already ran")
	// ErrMaster: the master did not answer, or did not take the node, within
	// Config.ConnectTimeout of Run's start.
	ErrMaster = errors.New("ros: ROS master unreachable")
)

// Node is flowact's ROS node. New builds it without I/O; Run connects to the master (waiting
// and retrying while it is absent), registers the topics and services, registers them again
// in place when the master restarts, and unregisters when its context ends. Inputs land in
// latest-value mailboxes (JointStates, Embeddings); outputs go through Driver, ReportStatus and
// the periodic /diagnostics.
type Node struct {
	nm     *names
	log    *slog.Logger
	model  *robot.Model
	h      Handlers
	joints *JointStates
	emb    *Embeddings
	clock  *Clock
	cmd    *commandBox
	traj   latest[trajectory_msgs.JointTrajectory]
	marks  latest[visualization_msgs.MarkerArray]
	status statusBoard
	driver *Driver

	ready     chan struct{}
	readyOnce sync.Once
	ran       atomic.Bool
	done      atomic.Bool // Run has returned
	connected atomic.Bool
	regs      atomic.Uint64 // successful registrations
	shutdown  chan string   // reasons from goroslib's shutdown handler, capacity 1
	stopReq   chan struct{} // closed when a shutdown was requested from outside
	stopOnce  sync.Once
	stopWhy   atomic.Pointer[string]
	gone      atomic.Bool               // the current goroslib node was told to shut down (goroslibLog)
	ref       atomic.Pointer[[]float64] // the last command another node sent, seen while waiting (awaitCommandTopic)
	rpc       *xmlrpc.Client            // parameter server and self publisherUpdate calls
	httpc     *http.Client              // master API calls (goroslib's client), on its own transport

	cc      *cmdConn // the command connection; nil with Config.SingleNode
	ccStart func()   // starts cc.run (Run sets it); called once, by serve
	ccStop  func()   // stops it and waits (Run sets it)
	first   bool     // serve has run for the first registration
}

// New checks cfg and model and returns a node; it does no I/O.
func New(cfg Config, model *robot.Model, h Handlers) (*Node, error) {
	if model == nil {
		return nil, fmt.Errorf("%w: nil model", ErrConfig)
	}
	if err := model.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	nm, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	// goroslib v2.1.4 replaces the namespace by $ROS_NAMESPACE whenever it is set, so a
	// different namespace from the config or __ns:= cannot be honoured.
	if env := os.Getenv("ROS_NAMESPACE"); env != "" && env != nm.cfg.Namespace {
		return nil, fmt.Errorf("%w: namespace %q conflicts with ROS_NAMESPACE=%q (goroslib always uses the environment; unset it or make them agree, with a leading and no trailing slash)",
			ErrConfig, nm.cfg.Namespace, env)
	}
	n := &Node{
		nm:       nm,
		log:      nm.cfg.Logger.With("node", nm.node),
		model:    model,
		h:        h,
		clock:    newClock(),
		cmd:      newCommandBox(model.DoF()),
		ready:    make(chan struct{}),
		shutdown: make(chan string, 1),
		stopReq:  make(chan struct{}),
	}
	n.traj.init()
	n.marks.init()
	if n.rpc, err = xmlrpc.NewClient(xmlrpc.ClientConfig{Timeout: nm.cfg.Timeout}); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	n.httpc = &http.Client{Timeout: nm.cfg.Timeout, Transport: &http.Transport{MaxIdleConnsPerHost: 2, IdleConnTimeout: 30 * time.Second}}
	n.joints = NewJointStates(model, n.clock.Now)
	if nm.cfg.MotorUnits {
		n.joints.lims = nil // readings in motor units: no joint band to check them against
	}
	n.emb = NewEmbeddings(n.clock.Now)
	n.driver = &Driver{n: n}
	if !nm.cfg.SingleNode {
		n.cc = newCmdConn(n)
	}
	return n, nil
}

// Name returns the node's absolute name, e.g. "/flowact".
func (n *Node) Name() string { return n.nm.node }

// Topics returns the resolved (absolute, remapped) topic and service names.
func (n *Node) Topics() Topics { return n.nm.topics }

// JointStates returns the joint state mailbox.
func (n *Node) JointStates() *JointStates { return n.joints }

// Embeddings returns the embedding mailbox.
func (n *Node) Embeddings() *Embeddings { return n.emb }

// Clock returns ROS time (sim time when /use_sim_time is set).
func (n *Node) Clock() *Clock { return n.clock }

// Driver returns the robot.Driver over this node.
func (n *Node) Driver() *Driver { return n.driver }

// Ready is closed once the node has registered with a master for the first time.
func (n *Node) Ready() <-chan struct{} { return n.ready }

// Connected reports whether the node is registered with a reachable master.
func (n *Node) Connected() bool { return n.connected.Load() }

// Registrations counts successful registrations: 1 after the first, +1 per master restart.
func (n *Node) Registrations() uint64 { return n.regs.Load() }

// ReportStatus sets a status published with every /diagnostics message (replacing any earlier
// status with the same Name).
func (n *Node) ReportStatus(s Status) { n.status.set(s) }

// PublishMarkers publishes ms in frame (e.g. the model's root link; a marker may name its own),
// stamped stamp, on Topics.Markers as one MarkerArray that first deletes the topic's markers
// (DELETEALL). It never blocks: the latest array waits for the sender, and one replaced before
// it was sent is dropped.
func (n *Node) PublishMarkers(stamp time.Time, frame string, ms []Marker) {
	n.marks.put(markerArray(stamp, frame, ms))
}

// MasterURI returns the master the node registers with: Config.MasterURI, else
// $ROS_MASTER_URI, else DefaultMasterURI.
func (n *Node) MasterURI() string { return n.nm.cfg.MasterURI }

// Run runs the node until ctx ends (connect ctx to SIGINT and SIGTERM): then it waits, at most
// Config.FlushTimeout, for the commands and trajectories already written to reach the
// publishers, unregisters everything from the master and returns nil (within about
// Config.Timeout when a master call is under way, as goroslib's calls cannot be cancelled). A
// master that is absent is waited for (at most Config.ConnectTimeout before the first
// registration, then ErrMaster), as is one that restarts. It returns an error for a shutdown
// request or a second call.
func (n *Node) Run(ctx context.Context) error {
	if !n.ran.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer n.clock.end()
	defer n.done.Store(true)
	defer n.rpc.Close()
	defer n.httpc.CloseIdleConnections()
	// The command connection runs from the first registration until the node is done.
	bctx, bcancel := context.WithCancel(context.WithoutCancel(ctx))
	var bwg sync.WaitGroup
	defer func() {
		bcancel()
		bwg.Wait()
	}()
	n.ccStop = func() {
		bcancel()
		bwg.Wait()
	}
	if n.cc != nil {
		n.ccStart = func() {
			bwg.Go(func() {
				if err := n.cc.run(bctx); err != nil {
					n.log.Warn("ros: the command connection ended: nothing reaches the robot any more", "err", err)
				}
			})
		}
	}
	m := member[*session]{
		nm: n.nm, log: n.log, rpc: n.rpc, kind: "node", regs: &n.regs,
		connect:   n.connect,
		serve:     n.serve,
		connected: n.connected.Store,
	}
	return m.run(ctx)
}

// ShutdownRequested is closed when the master or a tool asked the node to shut down (`rosnode
// kill`, the master's shutdown, another node registering with this name), or its command
// connection, and ShutdownReason says why. goroslib v2.1.4 ends its own node the moment the
// request arrives (its publishers, subscribers and /clock with it), but the per-tick commands
// travel on the node's command connection (Config.CommandNode), which goes on carrying what
// is written to the Driver (and /clock, on sim time) until Run's context ends, at most
// Config.BrakeTimeout: stop the loop (it brakes to rest), then cancel Run, which flushes,
// unregisters both connections and returns an error wrapping ErrShutdown. Joint states and
// embeddings no longer arrive meanwhile. With Config.SingleNode Run returns at once and
// nothing can be published after the request.
func (n *Node) ShutdownRequested() <-chan struct{} { return n.stopReq }

// ShutdownReason is the reason of a shutdown request ("" before one).
func (n *Node) ShutdownReason() string {
	if p := n.stopWhy.Load(); p != nil {
		return *p
	}
	return ""
}

// subscriberQueue is goroslib's per-subscriber queue between the socket reader and the
// callback. Not 0: then the reader waits for the callback, stops reading the socket, and data
// goes stale in the TCP buffers. Not 1 either: when the queue is full goroslib drops the NEW
// message, so with one slot the latest value is lost whenever it arrives while the callback
// runs and one message waits. The callbacks here only store into a mailbox (microseconds), so
// the queue drains at once and a few slots cost no staleness: the latest value always wins
// in the mailbox.
const subscriberQueue = 4

// session is one registration of a Node: a goroslib node and everything created on it.
type session struct {
	clock   *Clock
	gn      *goroslib.Node
	master  *apimaster.Client
	selfURI string
	sim     bool
	pubCmd  *goroslib.Publisher
	pubTraj *goroslib.Publisher
	pubDiag *goroslib.Publisher
	pubMark *goroslib.Publisher
	subs    []*goroslib.Subscriber
	srvs    []*goroslib.ServiceProvider
	reg     registered // to register again in place with a restarted master
}

// typeName is the ROS type of a goroslib message value or pointer.
func typeName(msg any) string {
	t, err := msgproc.Type(reflect.Indirect(reflect.ValueOf(msg)).Interface())
	if err != nil {
		panic(err) // goroslib's own message types always have one
	}
	return t
}

// connect makes one attempt to register. On error it has closed whatever it opened.
func (n *Node) connect(ctx context.Context) (s *session, err error) {
	n.gone.Store(false)
	master, gn, err := joinMaster(ctx, n.nm, n.httpc, n.log, n.shutdown, &n.gone)
	if err != nil {
		return nil, err
	}
	s = &session{clock: n.clock, gn: gn, master: master}
	defer func() {
		if err != nil {
			s.close()
			s = nil
		}
	}()
	for _, p := range n.nm.params {
		if err := setParam(ctx, n.rpc, n.nm, p.key, p.val); err != nil {
			return s, err
		}
	}
	if err := offerDescription(ctx, n.rpc, n.nm, n.log); err != nil {
		return s, err
	}
	if set, err := gn.ParamIsSet("/use_sim_time"); err != nil {
		return s, fmt.Errorf("ros: /use_sim_time: %w", err)
	} else if set {
		if s.sim, err = gn.ParamGetBool("/use_sim_time"); err != nil {
			return s, fmt.Errorf("ros: /use_sim_time: %w", err)
		}
	}
	n.clock.set(s.sim, gn)

	t := n.nm.topics
	if n.cc == nil { // else the command connection publishes the commands
		if s.pubCmd, err = goroslib.NewPublisher(goroslib.PublisherConf{Node: gn, Topic: t.Command, Msg: &std_msgs.Float64MultiArray{}}); err != nil {
			return s, fmt.Errorf("ros: publisher %s: %w", t.Command, err)
		}
		s.reg.pubs = append(s.reg.pubs, registration{t.Command, typeName(std_msgs.Float64MultiArray{})})
	}
	if s.pubTraj, err = goroslib.NewPublisher(goroslib.PublisherConf{Node: gn, Topic: t.Trajectory, Msg: &trajectory_msgs.JointTrajectory{}}); err != nil {
		return s, fmt.Errorf("ros: publisher %s: %w", t.Trajectory, err)
	}
	if s.pubDiag, err = goroslib.NewPublisher(goroslib.PublisherConf{Node: gn, Topic: t.Diagnostics, Msg: &diagnostic_msgs.DiagnosticArray{}}); err != nil {
		return s, fmt.Errorf("ros: publisher %s: %w", t.Diagnostics, err)
	}
	if s.pubMark, err = goroslib.NewPublisher(goroslib.PublisherConf{Node: gn, Topic: t.Markers, Msg: &visualization_msgs.MarkerArray{}}); err != nil {
		return s, fmt.Errorf("ros: publisher %s: %w", t.Markers, err)
	}
	s.reg.pubs = append(s.reg.pubs, []registration{
		{t.Trajectory, typeName(trajectory_msgs.JointTrajectory{})},
		{t.Diagnostics, typeName(diagnostic_msgs.DiagnosticArray{})},
		{t.Markers, typeName(visualization_msgs.MarkerArray{})},
		{"/rosout", typeName(rosgraph_msgs.Log{})}, // goroslib's own
	}...)
	if s.sim {
		s.reg.subs = append(s.reg.subs, registration{"/clock", typeName(rosgraph_msgs.Clock{})}) // goroslib's own
	}
	subs := []goroslib.SubscriberConf{
		{Node: gn, Topic: t.JointStates, Callback: func(m *sensor_msgs.JointState) { n.joints.Store(m) }, QueueSize: subscriberQueue},
	}
	s.reg.subs = append(s.reg.subs, registration{t.JointStates, typeName(sensor_msgs.JointState{})})
	switch n.nm.cfg.Embedding {
	case EmbeddingCustom:
		subs = append(subs, goroslib.SubscriberConf{Node: gn, Topic: t.Embedding, Callback: n.emb.StoreCustom, QueueSize: subscriberQueue})
		s.reg.subs = append(s.reg.subs, registration{t.Embedding, msgs.EmbeddingType})
	default:
		subs = append(subs, goroslib.SubscriberConf{Node: gn, Topic: t.Embedding, Callback: n.emb.StoreMultiArray, QueueSize: subscriberQueue})
		s.reg.subs = append(s.reg.subs, registration{t.Embedding, typeName(std_msgs.Float32MultiArray{})})
	}
	for _, c := range subs {
		sub, err := goroslib.NewSubscriber(c)
		if err != nil {
			return s, fmt.Errorf("ros: subscriber %s: %w", c.Topic, err)
		}
		s.subs = append(s.subs, sub)
	}
	for _, sv := range []struct {
		name string
		f    TriggerFunc
	}{{t.Start, n.h.Start}, {t.Stop, n.h.Stop}, {t.Hold, n.h.Hold}, {t.Reset, n.h.Reset}} {
		if sv.f == nil {
			continue
		}
		f := sv.f
		sp, err := goroslib.NewServiceProvider(goroslib.ServiceProviderConf{
			Node: gn, Name: sv.name, Srv: &std_srvs.Trigger{},
			Callback: func(*std_srvs.TriggerReq) (*std_srvs.TriggerRes, bool) {
				msg, err := f()
				if err != nil {
					return &std_srvs.TriggerRes{Success: false, Message: err.Error()}, true
				}
				return &std_srvs.TriggerRes{Success: true, Message: msg}, true
			},
		})
		if err != nil {
			return s, fmt.Errorf("ros: service %s: %w", sv.name, err)
		}
		s.srvs = append(s.srvs, sp)
		uri, err := master.LookupService(sv.name)
		if err != nil {
			return s, fmt.Errorf("ros: lookupService %s after registering: %w", sv.name, err)
		}
		s.reg.srvs = append(s.reg.srvs, registration{sv.name, uri})
	}
	// The master now knows this node: remember the URI it gives, to notice later when it forgets.
	if s.selfURI, err = master.LookupNode(n.nm.node); err != nil {
		return s, fmt.Errorf("ros: lookupNode %s after registering: %w", n.nm.node, err)
	}
	return s, nil
}

func (s *session) attrs() []any { return []any{"uri", s.selfURI, "sim_time", s.sim} }

// close unregisters and closes everything in s: services, subscribers and publishers first
// (each unregisters itself), then the goroslib node.
func (s *session) close() {
	s.clock.detach(s.gn)
	for _, sp := range s.srvs {
		sp.Close()
	}
	for _, sub := range s.subs {
		sub.Close()
	}
	for _, p := range []*goroslib.Publisher{s.pubCmd, s.pubTraj, s.pubDiag, s.pubMark} {
		if p != nil {
			p.Close()
		}
	}
	closeGoroslib(s.gn)
}

// errForgotten: the master no longer knows this node and registering again in place failed:
// Run builds a new connection.
var errForgotten = errors.New("ros: master forgot the node")

// serve runs the senders and watches the registration until ctx ends (nil), a shutdown is
// requested (ErrShutdown) or the master cannot take the node back (errForgotten, handled by
// Run). A master that forgot the node (it restarted) gets every registration again, in place:
// same slave URI, same TCPROS server, so connections to peers that do not re-register (rospy
// and roscpp nodes never do) survive the restart.
func (n *Node) serve(ctx context.Context, s *session) error {
	if !n.first {
		// The first registration: wait until the command topic is ours alone, then register
		// the command connection; only then is the node ready.
		n.first = true
		if n.cc != nil {
			if err := n.awaitCommandTopic(ctx, s); err != nil {
				return err
			}
			n.ccStart()
			t := time.NewTimer(n.nm.cfg.CommandWait)
			select {
			case <-n.cc.ready:
			case <-ctx.Done():
			case <-t.C:
				t.Stop()
				return fmt.Errorf("ros: the command connection %s did not register within %v", n.cc.nm.node, n.nm.cfg.CommandWait)
			}
			t.Stop()
		}
		if ctx.Err() != nil {
			return nil
		}
		n.readyOnce.Do(func() { close(n.ready) })
	}
	n.traj.discard()
	n.marks.discard()
	// The senders outlive ctx until the last commands are out (flush).
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	if s.pubCmd != nil {
		n.cmd.discard()
		n.cmd.sending.Store(true)
		wg.Go(func() {
			defer n.cmd.sending.Store(false)
			n.sendCommands(sctx, s.pubCmd, &n.gone)
		})
	}
	sendTraj := sender(&n.traj, s.pubTraj)
	wg.Go(func() { sendTraj(sctx) })
	wg.Go(func() { n.sendDiagnostics(sctx, s.pubDiag) })
	sendMarks := sender(&n.marks, s.pubMark)
	wg.Go(func() { sendMarks(sctx) })
	defer func() {
		if ctx.Err() != nil {
			n.flush()
		}
		cancel()
		wg.Wait()
	}()

	err := watchMaster(ctx, n.log, n.nm.cfg.WatchPeriod, n.shutdown, s.master, n.nm.node, s.selfURI,
		n.connected.Store,
		inPlace(n.log, &n.regs, n.connected.Store, s.selfURI, func() error {
			return reregister(ctx, n.rpc, n.nm, n.log, s.master, s.selfURI, &s.reg)
		}))
	if errors.Is(err, ErrShutdown) {
		n.connected.Store(false)
		n.requestStop(err)
		if n.cc != nil {
			if cs := n.cc.cur.Load(); cs != nil {
				n.keepCommanding(ctx, s, cs)
			}
		}
	}
	return err
}

// requestStop records a shutdown request from outside (err) and closes ShutdownRequested.
func (n *Node) requestStop(err error) {
	n.stopOnce.Do(func() {
		why := err.Error()
		n.stopWhy.Store(&why)
		close(n.stopReq)
	})
}

// flushPoll is how often flush looks at the counters: a command takes one sender wake-up.
const flushPoll = 2 * time.Millisecond

// flush waits, at most Config.FlushTimeout, until every command and trajectory written has been
// handed to its publisher or replaced by a newer one.
func (n *Node) flush() {
	deadline := time.Now().Add(n.nm.cfg.FlushTimeout)
	for {
		s := n.driver.Stats()
		if s.CommandsSent+s.CommandsDropped >= s.Commands && s.TrajectoriesSent+s.TrajectoriesDropped >= s.Trajectories {
			return
		}
		if time.Now().After(deadline) {
			n.log.Warn("ros: the last commands were not sent in time", "timeout", n.nm.cfg.FlushTimeout)
			return
		}
		time.Sleep(flushPoll)
	}
}

// sendCommands hands the queued commands to pub until ctx ends, or until gone (if not nil) is
// set: goroslib was told to shut down, and pub drops what it is given; the commands left in
// the queue stay queued.
func (n *Node) sendCommands(ctx context.Context, pub *goroslib.Publisher, gone *atomic.Bool) {
	for {
		for {
			if gone != nil && gone.Load() {
				return
			}
			m := n.cmd.take()
			if m == nil {
				break
			}
			pub.Write(m)
			n.cmd.sent.Add(1)
		}
		select {
		case <-ctx.Done():
			return
		case <-n.cmd.signal:
		}
	}
}

func (n *Node) sendDiagnostics(ctx context.Context, pub *goroslib.Publisher) {
	if n.nm.cfg.DiagnosticsPeriod <= 0 {
		return
	}
	t := time.NewTicker(n.nm.cfg.DiagnosticsPeriod)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pub.Write(n.diagnostics())
	}
}

// diagnostics builds the DiagnosticArray: the node's own status, then the reported ones.
func (n *Node) diagnostics() *diagnostic_msgs.DiagnosticArray {
	now := n.clock.Now()
	js, es := n.joints.Stats(), n.emb.Stats()
	st := Status{Level: LevelOK, Name: "flowact: ros", Message: "ok", HardwareID: n.model.Name}
	var maxAge time.Duration = -1
	for _, a := range n.joints.Ages(nil, now) {
		if a < 0 {
			st.Level, st.Message = LevelWarn, "no joint state yet"
			maxAge = -1
			break
		}
		maxAge = max(maxAge, a)
	}
	if es.Stored == 0 && st.Level == LevelOK {
		st.Level, st.Message = LevelWarn, "no embedding yet"
	}
	age := "never"
	if maxAge >= 0 {
		age = maxAge.String()
	}
	st.Values = []KeyValue{
		{"node", n.nm.node},
		{"registrations", u64(n.regs.Load())},
		{"sim_time", fmt.Sprint(n.clock.Sim())},
		{"joint_states.stored", u64(js.Stored)},
		{"joint_states.overwritten", u64(js.Overwritten)},
		{"joint_states.invalid", u64(js.Invalid)},
		{"joint_states.unknown_names", u64(js.Unknown)},
		{"joint_states.max_age", age},
		{"embedding.stored", u64(es.Stored)},
		{"embedding.overwritten", u64(es.Overwritten)},
		{"embedding.invalid", u64(es.Invalid)},
		{"command.sent", u64(n.cmd.sent.Load())},
		{"command.dropped", u64(n.cmd.dropped.Load())},
		{"trajectory.sent", u64(n.traj.sent.Load())},
		{"trajectory.dropped", u64(n.traj.dropped.Load())},
	}
	arr := &diagnostic_msgs.DiagnosticArray{Header: std_msgs.Header{Stamp: now}}
	arr.Status = append(arr.Status, statusMsg(st))
	arr.Status = n.status.appendTo(arr.Status)
	return arr
}
