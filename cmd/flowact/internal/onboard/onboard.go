package onboard

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowact/flowact/calib"
	"github.com/flowact/flowact/policy"
	"github.com/flowact/flowact/policy/safety"
	"github.com/flowact/flowact/robot"
	"github.com/flowact/flowact/robot/ros"
)

// Config configures a Runtime. The zero value of each field means the default its comment gives.
type Config struct {
	// ROS is the node's config (name, namespace, master, topics, remaps, private params, the
	// embedding message kind, how long to wait for the master at start and for the last
	// commands at the end); see robot/ros.Config.
	ROS ros.Config
	// Loop is the control loop's config; see policy.Config.
	Loop policy.Config
	// Start starts executing chunks as soon as the node has registered (the loop then waits
	// for a fresh joint state and an embedding). Without it the loop stays idle until the
	// ~start service is called.
	Start bool
	// Logger receives the runtime's, the node's and the loop's log; nil means discard.
	Logger *slog.Logger
	// Recorder, if set, also receives the loop's snapshots (after /diagnostics): the fleet
	// link's telemetry.
	Recorder policy.Recorder
	// Embeddings, if set, replaces the ROS embedding topic as the loop's source (remote
	// embeddings over NATS).
	Embeddings policy.EmbeddingSource
	// Transmissions, if set, says the robot speaks motor units (encoder ticks or motor rad) on
	// its joint state and command topics: the loop's driver is the ROS driver wrapped by
	// calib.Wrap (joint states mapped to joint angles, commands and trajectories to motor
	// units), and the node takes readings in motor units (ROS.MotorUnits: the per-message
	// joint-band check is left to the loop's per-tick state guard, in joint units). nil: the
	// robot speaks joint units.
	Transmissions *calib.Set
	// WrapDriver, if set, wraps the node's driver before the loop gets it (the fleet link's
	// episode recorder taps the states the loop reads and the commands it sends). A wrapper
	// must keep the Driver contract (never block) and implement robot.TrajectoryWriter when
	// the driver it wraps does.
	WrapDriver func(robot.Driver) robot.Driver
	// EELink, if set, is the link whose paths are drawn for rviz on the node's markers topic
	// (ros.Topics.Markers): the current plan's (its targets through forward kinematics, green,
	// namespace NSPlan) and the executed one (the measured joint states', orange, NSExecuted,
	// the last PathHistory points). "" draws nothing.
	EELink string
	// MarkerPeriod is how often the paths are drawn; 0 means DefaultMarkerPeriod.
	MarkerPeriod time.Duration
	// PathHistory bounds the executed path's points; 0 means DefaultPathHistory.
	PathHistory int
}

// StatusName is the /diagnostics status the loop's telemetry is published under.
const StatusName = "flowact: policy"

// Errors.
var (
	// ErrConfig is wrapped by configuration errors.
	ErrConfig = errors.New("onboard: bad config")
	// ErrRunning: Run was called twice.
	ErrRunning = errors.New("onboard: Run called twice")
)

// Validate checks cfg without I/O.
func (c *Config) Validate() error {
	if err := c.ROS.Validate(); err != nil {
		return err
	}
	return c.Loop.Validate()
}

// Runtime is the control loop on a ROS node. New builds it without I/O; Run runs it.
type Runtime struct {
	cfg   Config
	log   *slog.Logger
	node  *ros.Node
	loop  *policy.Loop
	hwID  string
	paths *pathMarkers // nil: no path markers
	ran   atomic.Bool
}

// New builds the node and the loop for model, driven by inf (e.g. policy.NewExpert). It does no
// I/O.
func New(cfg Config, model *robot.Model, inf policy.Inferer) (*Runtime, error) {
	if model == nil || inf == nil {
		return nil, fmt.Errorf("%w: New needs a robot model and an inferer", ErrConfig)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.ROS.Logger == nil {
		cfg.ROS.Logger = cfg.Logger
	}
	if cfg.MarkerPeriod < 0 || cfg.PathHistory < 0 {
		return nil, fmt.Errorf("%w: negative marker period or path history", ErrConfig)
	}
	if cfg.MarkerPeriod == 0 {
		cfg.MarkerPeriod = DefaultMarkerPeriod
	}
	if cfg.PathHistory == 0 {
		cfg.PathHistory = DefaultPathHistory
	}
	r := &Runtime{cfg: cfg, log: cfg.Logger, hwID: model.Name}
	// The services call the loop, which needs the node's driver: the closures read r.loop,
	// which is set before New returns and so before any service can be called.
	trig := func(f func(l *policy.Loop) error) ros.TriggerFunc {
		return func() (string, error) {
			if err := f(r.loop); err != nil {
				return "", err
			}
			return "policy: " + r.loop.State().String(), nil
		}
	}
	h := ros.Handlers{
		Start: trig((*policy.Loop).Start),
		Stop:  trig((*policy.Loop).Stop),
		Hold:  trig((*policy.Loop).Hold),
		Reset: trig((*policy.Loop).Reset),
	}
	if cfg.Transmissions != nil {
		if cfg.Transmissions.Model() != model && !slices.Equal(cfg.Transmissions.Model().Names(), model.Names()) {
			return nil, fmt.Errorf("%w: the transmissions are for joints %v, the robot has %v", ErrConfig, cfg.Transmissions.Model().Names(), model.Names())
		}
		cfg.ROS.MotorUnits = true
	}
	node, err := ros.New(cfg.ROS, model, h)
	if err != nil {
		return nil, err
	}
	var drv robot.Driver = node.Driver()
	if cfg.Transmissions != nil {
		if drv, err = calib.Wrap(drv, cfg.Transmissions); err != nil {
			return nil, err
		}
	}
	var rec policy.Recorder = diagnostics{r}
	if cfg.Recorder != nil {
		rec = recorders{rec, cfg.Recorder}
	}
	var src policy.EmbeddingSource = node.Embeddings()
	if cfg.Embeddings != nil {
		src = cfg.Embeddings
	}
	if cfg.WrapDriver != nil {
		drv = cfg.WrapDriver(drv) // after calib: the recorder taps joint units, as the loop reads them
	}
	deps := policy.Deps{
		Driver:     drv,
		Inferer:    inf,
		Clock:      node.Clock(),
		Logger:     cfg.Logger,
		Recorder:   rec,
		Embeddings: src,
	}
	if cfg.EELink != "" {
		h, _ := inf.Shape()
		if r.paths, err = newPathMarkers(node, model, cfg.EELink, h, cfg.PathHistory); err != nil {
			return nil, fmt.Errorf("%w: EELink: %w", ErrConfig, err)
		}
		deps.Plan = r.paths
	}
	loop, err := policy.New(cfg.Loop, deps)
	if err != nil {
		return nil, err
	}
	r.node, r.loop = node, loop
	return r, nil
}

// Node returns the ROS node.
func (r *Runtime) Node() *ros.Node { return r.node }

// Loop returns the control loop (to Start, Stop, Hold, Reset it and read its telemetry).
func (r *Runtime) Loop() *policy.Loop { return r.loop }

// Ready is closed once the node has registered with the master.
func (r *Runtime) Ready() <-chan struct{} { return r.node.Ready() }

// Run runs the node (which waits for the master, at most Config.ROS.ConnectTimeout: then the
// error wraps ros.ErrMaster) and the loop until ctx ends, then stops the robot, lets the node
// flush the last commands and unregister, and returns nil. See the package documentation.
func (r *Runtime) Run(ctx context.Context) error {
	if !r.ran.CompareAndSwap(false, true) {
		return ErrRunning
	}
	// The node outlives ctx: the loop still publishes while it brings the robot to rest.
	nctx, ncancel := context.WithCancel(context.WithoutCancel(ctx))
	defer ncancel()
	nodeDone := make(chan error, 1)
	go func() { nodeDone <- r.node.Run(nctx) }()
	stopNode := func() error {
		ncancel()
		return <-nodeDone
	}

	select {
	case <-r.node.Ready():
	case err := <-nodeDone:
		return fmt.Errorf("onboard: ROS node %s ended before registering: %w", r.node.Name(), err)
	case <-ctx.Done():
		return stopNode()
	}
	r.log.Info("onboard: registered", "node", r.node.Name(), "master", r.node.MasterURI(), "command", r.node.Topics().Command,
		"embedding", r.node.Topics().Embedding, "output", outputName(r.cfg.Loop.Output))
	if r.cfg.Start {
		if err := r.loop.Start(); err != nil {
			stopNode()
			return fmt.Errorf("onboard: start: %w", err)
		}
	}

	lctx, lcancel := context.WithCancel(ctx)
	defer lcancel()
	loopDone := make(chan error, 1)
	go func() { loopDone <- r.loop.Run(lctx) }()
	if r.paths != nil {
		var wg sync.WaitGroup
		mctx, mcancel := context.WithCancel(nctx)
		wg.Go(func() { r.paths.run(mctx, r.cfg.MarkerPeriod) })
		defer func() { mcancel(); wg.Wait() }()
	}

	var loopErr, nodeErr error
	select {
	case loopErr = <-loopDone:
		// ctx ended (the robot is at rest) or the driver closed: the node flushes the last
		// commands, then unregisters.
		nodeErr = stopNode()
	case <-r.node.ShutdownRequested():
		// Told to go from outside (rosnode kill, the master, a node taking the name). goroslib
		// has closed that connection already; the per-tick commands travel on the node's command
		// connection (robot/ros: Config.CommandNode), which carries the loop's stop until
		// stopNode. The stop was asked for: not an error.
		r.log.Warn("onboard: shut down from outside", "reason", r.node.ShutdownReason(), "output", outputName(r.cfg.Loop.Output))
		lcancel()
		loopErr = <-loopDone
		if nodeErr = stopNode(); errors.Is(nodeErr, ros.ErrShutdown) {
			nodeErr = nil
		}
	case nodeErr = <-nodeDone:
		// The node ended on its own (it could not register again): nothing reaches the robot
		// any more; stop the loop.
		lcancel()
		loopErr = <-loopDone
	}
	switch {
	case nodeErr != nil:
		return nodeErr
	case loopErr != nil && !errors.Is(loopErr, context.Canceled) && !errors.Is(loopErr, context.DeadlineExceeded):
		return loopErr
	}
	r.log.Info("onboard: stopped and unregistered", "node", r.node.Name())
	return nil
}

func outputName(o string) string {
	if o == "" {
		return "command"
	}
	return o
}

// The ROS embedding mailbox is the loop's embedding source as it is.
var _ policy.EmbeddingSource = (*ros.Embeddings)(nil)

// recorders hands each snapshot to several recorders; the first gets its own copy.
type recorders [2]policy.Recorder

func (r recorders) Record(s *policy.Snapshot) {
	c := *s
	r[0].Record(&c)
	r[1].Record(s)
}

// diagnostics publishes the loop's snapshots as the node's /diagnostics status.
type diagnostics struct{ r *Runtime }

func (d diagnostics) Record(s *policy.Snapshot) { d.r.node.ReportStatus(Status(s, d.r.hwID)) }

// Status converts a loop snapshot into a diagnostic status named StatusName: the state and its
// message, tick jitter, overruns, inference latency, chunk delay, seam jerk, clamps per kind,
// watchdog trips and the active ones. Durations are in seconds.
func Status(s *policy.Snapshot, hardwareID string) ros.Status {
	st := ros.Status{Name: StatusName, Message: s.Message, HardwareID: hardwareID}
	switch s.Level {
	case policy.OK:
		st.Level = ros.LevelOK
	case policy.Warn:
		st.Level = ros.LevelWarn
	default:
		st.Level = ros.LevelError
	}
	kv := func(k, v string) { st.Values = append(st.Values, ros.KeyValue{Key: k, Value: v}) }
	kv("state", s.State.String())
	if s.Cause != "" {
		kv("fault_cause", s.Cause)
	}
	kv("strategy", string(s.Strategy))
	kv("rate_hz", num(s.Rate))
	kv("delay_estimate_ticks", strconv.Itoa(s.DelayEst))
	c := &s.Counters
	for _, v := range []struct {
		k string
		n uint64
	}{
		{"ticks", c.Ticks}, {"overruns", c.Overruns}, {"requests", c.Requests}, {"chunks", c.Chunks}, {"late", c.Late},
		{"rejected", c.Rejected}, {"stale", c.Stale}, {"hold_ticks", c.HoldTicks}, {"read_errors", c.ReadErrors},
		{"write_errors", c.WriteErrors}, {"refused", c.Refused}, {"gated", c.Gated},
	} {
		kv(v.k, strconv.FormatUint(v.n, 10))
	}
	h := &s.Hist
	for _, v := range []struct {
		key string
		h   *policy.HistogramSnapshot
	}{{"tick_jitter", &h.TickJitter}, {"tick_cost", &h.TickCost}, {"inference", &h.Inference}, {"obs_to_command", &h.ObsToCommand}} {
		kv(v.key+".p50_s", num(v.h.Quantile(0.5)))
		kv(v.key+".p99_s", num(v.h.Quantile(0.99)))
		kv(v.key+".max_s", num(v.h.Max))
	}
	kv("chunk_delay.p99_ticks", num(h.Delay.Quantile(0.99)))
	if h.Spread.N > 0 { // loop.gate.samples: the expert's spread per chunk
		kv("spread.p50", num(h.Spread.Quantile(0.5)))
		kv("spread.p99", num(h.Spread.Quantile(0.99)))
		kv("spread.max", num(h.Spread.Max))
	}
	kv("seam_jerk.p50_rad_s3", num(h.SeamJerk.Quantile(0.5)))
	kv("seam_jerk.p99_rad_s3", num(h.SeamJerk.Quantile(0.99)))
	for k, n := range s.Clamps {
		kv("clamps."+safety.Kind(k).String(), strconv.FormatUint(n, 10))
	}
	kv("clamps", strconv.FormatUint(s.Clamps.Total(), 10))
	for k, n := range s.Trips {
		kv("watchdog."+safety.Trip(k).String(), strconv.FormatUint(n, 10))
	}
	active := "none"
	if len(s.Active) > 0 {
		names := make([]string, len(s.Active))
		for i, tr := range s.Active {
			names[i] = tr.String()
		}
		active = strings.Join(names, ",")
	}
	kv("watchdog.active", active)
	return st
}

// num formats a value with 4 significant digits (diagnostics are for people and rqt).
func num(v float64) string {
	if math.IsInf(v, 0) || math.IsNaN(v) {
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}
