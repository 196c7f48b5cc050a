package onboard

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/flowact/flowact/policy"
	"github.com/flowact/flowact/robot"
	"github.com/flowact/flowact/robot/ros"
	"github.com/flowact/flowact/robot/ros/xmlrpc"
)

// Config configures a Runtime. The zero value of each field means the default its comment gives.
type Config struct {
	// ROS is the node's config (name, namespace, master, topics, remaps, private params, the
	// embedding message kind); see robot/ros.Config.
	ROS ros.Config
	// Loop is the control loop's config; see policy.Config.
	Loop policy.Config
	// Start starts executing chunks as soon as the node has registered (the loop then waits
	// for a fresh joint state and an embedding). Without it the loop stays idle until the
	// ~start service is called.
	Start bool
	// ConnectTimeout bounds the wait for the ROS master at start; 0 means
	// DefaultConnectTimeout, a negative value waits forever.
	ConnectTimeout time.Duration
	// FlushTimeout bounds the wait, after the loop has stopped the robot, for the last commands
	// to reach the publisher before the node unregisters; 0 means DefaultFlushTimeout.
	FlushTimeout time.Duration
	// Logger receives the runtime's, the node's and the loop's log; nil means discard.
	Logger *slog.Logger
	// Recorder, if set, also receives the loop's snapshots (after /diagnostics): the fleet
	// link's telemetry.
	Recorder policy.Recorder
	// Embeddings, if set, replaces the ROS embedding topic as the loop's source (remote
	// embeddings over NATS).
	Embeddings policy.EmbeddingSource
}

// Defaults of Config.
const (
	// DefaultConnectTimeout: roslaunch waits 10 s for a master it did not start.
	DefaultConnectTimeout = 10 * time.Second
	// DefaultFlushTimeout: a command waits at most one sender wake-up (microseconds); 200 ms
	// covers a loaded machine and still ends a SIGINT promptly.
	DefaultFlushTimeout = 200 * time.Millisecond
)

// StatusName is the /diagnostics status the loop's telemetry is published under.
const StatusName = "flowact: policy"

// Errors.
var (
	// ErrConfig is wrapped by configuration errors.
	ErrConfig = errors.New("onboard: bad config")
	// ErrMaster: the ROS master did not answer, or the node could not register, within
	// Config.ConnectTimeout.
	ErrMaster = errors.New("onboard: ROS master unreachable")
	// ErrRunning: Run was called twice.
	ErrRunning = errors.New("onboard: Run called twice")
)

// Validate checks cfg without I/O.
func (c *Config) Validate() error {
	if err := c.ROS.Validate(); err != nil {
		return err
	}
	if err := c.Loop.Validate(); err != nil {
		return err
	}
	if c.FlushTimeout < 0 {
		return fmt.Errorf("%w: flush timeout %v is negative", ErrConfig, c.FlushTimeout)
	}
	return nil
}

// MasterURI returns the master the node will use: Config.ROS.MasterURI, else $ROS_MASTER_URI
// (through Config.ROS.Getenv), else ros.DefaultMasterURI.
func (c *Config) MasterURI() string {
	if c.ROS.MasterURI != "" {
		return c.ROS.MasterURI
	}
	getenv := c.ROS.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	if u := getenv("ROS_MASTER_URI"); u != "" {
		return u
	}
	return ros.DefaultMasterURI
}

// Runtime is the control loop on a ROS node. New builds it without I/O; Run runs it.
type Runtime struct {
	cfg  Config
	log  *slog.Logger
	node *ros.Node
	loop *policy.Loop
	hwID string
	ran  atomic.Bool
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
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	if cfg.FlushTimeout == 0 {
		cfg.FlushTimeout = DefaultFlushTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.ROS.Logger == nil {
		cfg.ROS.Logger = cfg.Logger
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
	node, err := ros.New(cfg.ROS, model, h)
	if err != nil {
		return nil, err
	}
	var rec policy.Recorder = diagnostics{r}
	if cfg.Recorder != nil {
		rec = recorders{rec, cfg.Recorder}
	}
	var src policy.EmbeddingSource = Embeddings{node.Embeddings()}
	if cfg.Embeddings != nil {
		src = cfg.Embeddings
	}
	loop, err := policy.New(cfg.Loop, policy.Deps{
		Driver:     node.Driver(),
		Inferer:    inf,
		Clock:      node.Clock(),
		Logger:     cfg.Logger,
		Recorder:   rec,
		Embeddings: src,
	})
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

// Run connects to the master (at most Config.ConnectTimeout), runs the loop until ctx ends,
// then stops the robot, unregisters and returns nil. See the package documentation.
func (r *Runtime) Run(ctx context.Context) error {
	if !r.ran.CompareAndSwap(false, true) {
		return ErrRunning
	}
	master := r.cfg.MasterURI()
	if err := r.waitMaster(ctx, master); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
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

	var expire <-chan time.Time
	if r.cfg.ConnectTimeout > 0 {
		t := time.NewTimer(r.cfg.ConnectTimeout)
		defer t.Stop()
		expire = t.C
	}
	select {
	case <-r.node.Ready():
	case err := <-nodeDone:
		return fmt.Errorf("onboard: ROS node %s ended before registering: %w", r.node.Name(), err)
	case <-expire:
		stopNode()
		return fmt.Errorf("%w: node %s could not register with %s within %v", ErrMaster, r.node.Name(), master, r.cfg.ConnectTimeout)
	case <-ctx.Done():
		return stopNode()
	}
	r.log.Info("onboard: registered", "node", r.node.Name(), "master", master, "command", r.node.Topics().Command,
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

	var loopErr, nodeErr error
	select {
	case loopErr = <-loopDone:
		// ctx ended (the robot is at rest) or the driver closed.
		r.flush()
		nodeErr = stopNode()
	case nodeErr = <-nodeDone:
		// Shut down from outside: nothing reaches the robot any more; stop the loop.
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

// waitMaster asks the master for its URI until it answers, ctx ends or ConnectTimeout passes.
// It retries with exponential backoff (50 ms doubling to 1 s) and logs nothing: a master that
// never answers gives one error.
func (r *Runtime) waitMaster(ctx context.Context, uri string) error {
	timeout := r.cfg.ConnectTimeout
	attempt := min(time.Second, timeout)
	if timeout < 0 {
		attempt = time.Second
	}
	c, err := xmlrpc.NewClient(xmlrpc.ClientConfig{Timeout: attempt})
	if err != nil {
		return fmt.Errorf("%w: %v", ErrConfig, err)
	}
	defer c.Close()
	var deadline <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		deadline = t.C
	}
	backoff := 50 * time.Millisecond
	for {
		_, err := c.Call(ctx, uri, "getUri", xmlrpc.String(r.node.Name()))
		if err == nil {
			return nil
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-deadline:
			t.Stop()
			return fmt.Errorf("%w: %s did not answer within %v (%v); start roscore or `flowact master`, or point --master / ROS_MASTER_URI at a running one",
				ErrMaster, uri, timeout, cause(err))
		case <-t.C:
		}
		backoff = min(2*backoff, time.Second)
	}
}

// cause shortens a transport error to its innermost message ("connection refused").
func cause(err error) string {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			break
		}
		err = u
	}
	return err.Error()
}

// flush waits, at most FlushTimeout, until every command and trajectory written has been
// handed to the publishers or replaced.
func (r *Runtime) flush() {
	d := r.node.Driver()
	deadline := time.Now().Add(r.cfg.FlushTimeout)
	for {
		s := d.Stats()
		if s.CommandsSent+s.CommandsDropped >= s.Commands && s.TrajectoriesSent+s.TrajectoriesDropped >= s.Trajectories {
			return
		}
		if time.Now().After(deadline) {
			r.log.Warn("onboard: the last commands were not sent in time", "timeout", r.cfg.FlushTimeout)
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// Embeddings is robot/ros's embedding mailbox as the loop's EmbeddingSource. Latest neither
// blocks nor allocates.
type Embeddings struct{ E *ros.Embeddings }

var _ policy.EmbeddingSource = Embeddings{}

// Latest returns the newest embedding (shared: its Data must not be modified).
func (s Embeddings) Latest() (policy.Embedding, error) {
	e, err := s.E.Latest()
	if err != nil {
		return policy.Embedding{}, err
	}
	return policy.Embedding{Stamp: e.Stamp, Tokens: e.Tokens, Width: e.Width, Data: e.Data}, nil
}

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
	for _, k := range []string{"ticks", "overruns", "requests", "chunks", "late", "rejected", "stale", "hold_ticks", "read_errors", "write_errors"} {
		kv(k, strconv.FormatUint(s.Counters[k], 10))
	}
	for _, h := range []struct{ key, hist string }{
		{"tick_jitter", "tick_jitter_s"}, {"tick_cost", "tick_cost_s"}, {"inference", "inference_s"},
		{"obs_to_command", "obs_to_command_s"},
	} {
		hs := s.Histogram[h.hist]
		kv(h.key+".p50_s", num(hs.Quantile(0.5)))
		kv(h.key+".p99_s", num(hs.Quantile(0.99)))
		kv(h.key+".max_s", num(hs.Max))
	}
	dl := s.Histogram["delay_ticks"]
	kv("chunk_delay.p99_ticks", num(dl.Quantile(0.99)))
	jk := s.Histogram["seam_jerk_rad_s3"]
	kv("seam_jerk.p50_rad_s3", num(jk.Quantile(0.5)))
	kv("seam_jerk.p99_rad_s3", num(jk.Quantile(0.99)))
	var clamps uint64
	for _, k := range slices.Sorted(maps.Keys(s.Clamps)) {
		clamps += s.Clamps[k]
		kv("clamps."+k, strconv.FormatUint(s.Clamps[k], 10))
	}
	kv("clamps", strconv.FormatUint(clamps, 10))
	for _, k := range slices.Sorted(maps.Keys(s.Trips)) {
		kv("watchdog."+k, strconv.FormatUint(s.Trips[k], 10))
	}
	active := "none"
	if len(s.Active) > 0 {
		active = strings.Join(s.Active, ",")
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
