package policy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowact/flowact/policy/chunk"
	"github.com/flowact/flowact/policy/safety"
	"github.com/flowact/flowact/robot"
)

// Deps are what a Loop drives and is driven by.
type Deps struct {
	Driver   robot.Driver // required
	Inferer  Inferer      // required; e.g. NewExpert(model, sampler, normalizer, seed)
	Clock    robot.Clock  // nil: robot.WallClock
	Logger   *slog.Logger // nil: discard
	Recorder Recorder     // nil: none
	// Embeddings, if set, is where the tick reads the latest embedding; otherwise it reads the
	// mailbox PutEmbedding fills.
	Embeddings EmbeddingSource
	// Plan, if set, is shown the plan each time a chunk is spliced into it (a visualization of
	// the planned path).
	Plan PlanObserver
}

// PlanObserver is shown the plan whenever a chunk changes it: the targets the splicer holds
// from the tick of the change on, before the safety filter; and an empty plan when the loop
// stops executing it (idle, holding, braking, faulted, or at the plan's end). It runs on the
// control tick: it must neither block nor allocate (copy what it keeps, or skip when busy).
type PlanObserver interface {
	// ObservePlan receives the plan from tick k on: rows of D joint positions in model order,
	// row-major, at most H rows. rows is the loop's and valid only during the call.
	ObservePlan(k int64, rows []float64)
}

// Loop is the real-time control loop. Build it with New, run it with Run; command it with
// Start, Stop, Hold and Reset from any goroutine.
type Loop struct {
	cfg       Config
	drv       robot.Driver
	inf       Inferer
	clock     robot.Clock
	log       *slog.Logger
	rec       Recorder
	src       EmbeddingSource
	plan      PlanObserver
	planBuf   []float64 // H x D: the plan shown to plan
	planShown bool      // plan was last shown a non-empty plan
	h, d      int
	period    time.Duration
	lag       int // the robot's lag in ticks (LagShift of Config.RobotLag): a chunk starts up to lag ticks before its request

	m       safety.Machine
	filter  *safety.Filter
	guard   *safety.StateGuard
	wd      *safety.Watchdogs
	splicer chunk.Splicer
	meter   *chunk.Meter
	tel     *Telemetry
	emb     atomic.Pointer[Embedding]
	ran     atomic.Bool
	delayEs atomic.Int64 // the current delay estimate, for snapshots
	async   bool         // Run's worker serves inference; else InferPending does
	width   int          // the embedding width the inferer takes; 0: unknown

	// The last chunk results, for diagnostics: ticks of the last accepted and rejected one
	// (-1: none yet) and the last rejection's cause.
	lastAccept, lastReject atomic.Int64
	lastGated              atomic.Int64  // the tick of the last chunk the gate held (-1: none)
	gatedSpread            atomic.Uint64 // its spread (float64 bits)
	gatedState             atomic.Uint64 // how far its state lay outside (float64 bits; 0: held for its spread alone)
	gatedFeature           atomic.Int64  // the state feature farthest out
	rejectCause            atomic.Pointer[error]
	embCause               atomic.Pointer[error] // the last invalid embedding's
	tickNow                atomic.Int64          // the current tick, for snapshots
	noState                atomic.Bool           // no joint state read yet, for snapshots

	reqCh chan *Request
	resCh chan result

	// Owned by the tick.
	started              bool      // a Step has run: start is set
	start                time.Time // the time of tick 0
	pending              bool      // (without the worker) a request waits for InferPending
	holding              bool      // (without the worker) held is a result to deliver at heldAt
	held                 result
	reqAt                time.Time // the time of the tick that made the pending request
	heldAt               time.Time
	st                   robot.State
	cmd                  robot.Command
	target               []float64
	req                  Request
	reqGen               uint64
	prefix               []float64
	sent                 []float64 // the commands of the last lag ticks: tick j's in row j mod lag (lag x D)
	sentAt               []int64   // the tick each row of sent is for; -1: none
	guideW               []float64
	res                  chunk.Chunk // written by the worker between a request and its result
	resBuf               []float64   // res.Data's storage, restored before every request
	inflight             bool
	gen                  uint64
	live                 bool // the filter holds the last sent command of this run
	hadPlan              bool // a chunk was spliced since the last start
	cold                 bool // the worker's first result has been seen
	delays               []int
	coldDelay            int // the first chunk's delay (-1: none yet), for shift until one after it is measured
	delayN               int
	delayI               int
	prevNow              time.Time
	seq                  uint64
	obsAt                time.Time // the stamp of the observation whose chunk was spliced this tick; zero if none
	lastPos, prevPos     []float64 // the last two distinct joint states read, for measuredVelocity
	lastStamp, prevStamp time.Time
	everState            bool // a joint state has been read
	vel                  []float64
	refReader            robot.ReferenceReader // the driver's, if it is one
	ref                  []float64             // its reference, read at a start
	embSeen              *float32              // the Data of the last embedding validated (its first element), and its verdict
	embStamp             time.Time
	embErr               error

	out output // commands per tick, or trajectories
	k   int64  // the current tick
}

type result struct {
	err     error
	latency time.Duration
}

// New checks cfg against the robot model and the inferer's chunk shape and allocates every
// buffer the loop needs. It does no I/O.
func New(cfg Config, deps Deps) (*Loop, error) {
	if deps.Driver == nil || deps.Inferer == nil {
		return nil, fmt.Errorf("policy: New needs a driver and an inferer: %w", ErrConfig)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	model := deps.Driver.Model()
	if model == nil {
		return nil, fmt.Errorf("policy: the driver has no robot model: %w", ErrConfig)
	}
	h, d := deps.Inferer.Shape()
	if h <= 0 || d <= 0 {
		return nil, fmt.Errorf("policy: the inferer's chunks are %d x %d: %w", h, d, ErrConfig)
	}
	if d != model.DoF() {
		return nil, fmt.Errorf("policy: the model acts on %d joints, the robot %q has %d: %w", d, model.Name, model.DoF(), ErrConfig)
	}
	if cfg.Horizon != 0 && cfg.Horizon != h {
		return nil, fmt.Errorf("policy: horizon %d, but the model's chunks have %d steps: %w", cfg.Horizon, h, ErrConfig)
	}
	if cfg.Threshold >= h {
		return nil, fmt.Errorf("policy: threshold %d must be below the horizon %d: %w", cfg.Threshold, h, ErrConfig)
	}
	cfg = cfg.withDefaults(h)
	lag := LagShift(cfg.RobotLag, cfg.Rate)
	if lag >= h {
		return nil, fmt.Errorf("policy: robot_lag %v is %d ticks at %g Hz, not below the horizon %d: %w", cfg.RobotLag, lag, cfg.Rate, h, ErrConfig)
	}
	lim, err := safety.Resolve(model, &cfg.Limits)
	if err != nil {
		return nil, fmt.Errorf("policy: limits: %w", err)
	}
	per := period(cfg.Rate)
	sp, err := chunk.New(cfg.Chunk, h, d)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	l := &Loop{
		cfg: cfg, drv: deps.Driver, inf: deps.Inferer, clock: deps.Clock, log: deps.Logger, rec: deps.Recorder, src: deps.Embeddings, plan: deps.Plan,
		h: h, d: d, period: per, lag: lag,
		filter:    safety.NewFilter(lim, per.Seconds()),
		guard:     safety.NewStateGuard(lim, cfg.Watchdog.StateTolerance),
		wd:        safety.NewWatchdogs(64),
		splicer:   sp,
		meter:     chunk.NewMeter(d, per.Seconds(), cfg.Chunk.BlendTicks+3),
		tel:       newTelemetry(cfg.Chunk.Strategy),
		reqCh:     make(chan *Request, 1),
		resCh:     make(chan result, 1),
		st:        robot.NewState(d),
		cmd:       robot.Command{Position: make([]float64, d)},
		target:    make([]float64, d),
		prefix:    make([]float64, h*d),
		guideW:    make([]float64, h),
		resBuf:    make([]float64, h*d),
		delays:    make([]int, cfg.DelayWindow),
		coldDelay: -1,
		sent:      make([]float64, lag*d),
		sentAt:    make([]int64, lag),
	}
	for i := range l.sentAt {
		l.sentAt[i] = -1
	}
	l.req.Position = make([]float64, d)
	l.lastPos, l.prevPos, l.vel = make([]float64, d), make([]float64, d), make([]float64, d)
	if rr, ok := deps.Driver.(robot.ReferenceReader); ok {
		l.refReader, l.ref = rr, make([]float64, d)
	}
	if l.plan != nil {
		l.planBuf = make([]float64, h*d)
	}
	l.res = chunk.Chunk{H: h, D: d, Data: l.resBuf}
	l.lastAccept.Store(-1)
	l.lastReject.Store(-1)
	l.lastGated.Store(-1)
	if cfg.Gate.MaxStateOut > 0 {
		if so, ok := deps.Inferer.(StateOutMeter); !ok || !so.MeasuresStateOut() {
			return nil, fmt.Errorf("policy: gate.max_state_out %g, but the inferer %T does not know its training data's range of states (an expert with normalization statistics does): %w", cfg.Gate.MaxStateOut, deps.Inferer, ErrConfig)
		}
	}
	if k := max(cfg.Gate.Samples, cfg.Average.Samples); k > 0 {
		what := "gate.samples"
		if cfg.Average.Samples > 0 {
			what = "average.samples"
		}
		ss, ok := deps.Inferer.(SpreadSampler)
		if !ok {
			return nil, fmt.Errorf("policy: %s %d, but the inferer %T draws one sample: %w", what, k, deps.Inferer, ErrConfig)
		}
		if err := ss.SetSpreadSamples(k, cfg.Gate.Rows); err != nil {
			return nil, fmt.Errorf("policy: %s: %w", what, err)
		}
		if cfg.Average.Samples > 0 {
			av, ok := deps.Inferer.(Averager)
			if !ok {
				return nil, fmt.Errorf("policy: average.samples %d, but the inferer %T averages no samples: %w", k, deps.Inferer, ErrConfig)
			}
			within := cfg.Average.Within
			if within == 0 {
				within = DefaultAverageWithin
			}
			if err := av.SetAverage(within); err != nil {
				return nil, fmt.Errorf("policy: average: %w", err)
			}
		}
	}
	if w, ok := deps.Inferer.(interface{ EmbeddingWidth() int }); ok {
		l.width = w.EmbeddingWidth()
	}
	l.out = newCommandOutput(l, lim)
	if cfg.Output == "trajectory" {
		tw, ok := deps.Driver.(robot.TrajectoryWriter)
		if !ok {
			return nil, fmt.Errorf("policy: output trajectory, but the driver %T writes no trajectories: %w", deps.Driver, ErrConfig)
		}
		l.out = newTrajectoryOutput(l, tw, lim)
	}
	if l.clock == nil {
		l.clock = robot.WallClock{}
	}
	if l.log == nil {
		l.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return l, nil
}

// StateOutMeter is an Inferer that may report in chunk.Chunk.StateOut how far the observed state
// lay beyond its training data's range (Expert is one); MeasuresStateOut says whether it does.
type StateOutMeter interface {
	MeasuresStateOut() bool
}

// SpreadSampler is an Inferer that can draw several chunks per request and report their spread
// in chunk.Chunk.Spread (Expert is one); New calls SetSpreadSamples with the larger of
// Config.Gate's and Config.Average's Samples and Gate's Rows.
type SpreadSampler interface {
	SetSpreadSamples(k, rows int) error
}

// Averager is a SpreadSampler that can execute the consensus of its samples (Expert is one);
// New calls SetAverage with Config.Average's Within when averaging.
type Averager interface {
	SetAverage(within float64) error
}

// Period returns the control period.
func (l *Loop) Period() time.Duration { return l.period }

// Telemetry returns the live counters and histograms.
func (l *Loop) Telemetry() *Telemetry { return l.tel }

// Filter returns the safety filter (for its limits and clamp counters).
func (l *Loop) Filter() *safety.Filter { return l.filter }

// Watchdogs returns the watchdogs (for their trip counters).
func (l *Loop) Watchdogs() *safety.Watchdogs { return l.wd }

// State returns the supervisor's state.
func (l *Loop) State() safety.State { return l.m.State() }

// Start starts (or resumes) executing chunks: a fresh plan is asked for at once.
func (l *Loop) Start() error { return l.m.Start() }

// Hold decelerates the robot to a stop and keeps it there until Start.
func (l *Loop) Hold() error { return l.m.Hold() }

// Stop decelerates the robot to a stop, then goes idle (no commands sent).
func (l *Loop) Stop() error { return l.m.Stop() }

// Reset clears a latched fault (the loop then stops and goes idle).
func (l *Loop) Reset() error { return l.m.Reset() }

// Fault latches a fault from outside (e.g. an emergency stop), with a cause.
func (l *Loop) Fault(cause string) { l.m.Trip(cause) }

// PutEmbedding makes e the latest embedding (unless Deps.Embeddings is set). Neither e nor its
// Data may be modified afterwards. Safe to call from any goroutine; never blocks.
func (l *Loop) PutEmbedding(e *Embedding) { l.emb.Store(e) }

// Trigger is a service callback with std_srvs/Trigger's shape (robot/ros.TriggerFunc).
type Trigger func() (message string, err error)

// Triggers returns the start, stop, hold and reset services, for robot/ros.Handlers.
func (l *Loop) Triggers() (start, stop, hold, reset Trigger) {
	wrap := func(f func() error) Trigger {
		return func() (string, error) {
			if err := f(); err != nil {
				return "", err
			}
			return "policy: " + l.m.State().String(), nil
		}
	}
	return wrap(l.Start), wrap(l.Stop), wrap(l.Hold), wrap(l.Reset)
}

// ErrRunning is returned by a second Run or Simulate.
var ErrRunning = errors.New("policy: Run called twice")

// Run ticks on the clock's absolute deadlines until ctx ends, with inference on its own
// goroutine, then decelerates the robot to a stop and returns ctx's error after every
// goroutine it started has stopped. It returns earlier with an error wrapping robot.ErrClosed
// if the driver closes. Each tick is a Step at the clock's time.
func (l *Loop) Run(ctx context.Context) error {
	var iso *isolation
	if l.cfg.IsolateTick {
		var err error
		if iso, err = newIsolation(); err != nil {
			return err
		}
	}
	if !l.ran.CompareAndSwap(false, true) {
		return ErrRunning
	}
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	l.async = true
	pinned := make(chan error, 1)
	wg.Go(func() {
		if iso != nil {
			err := iso.pinWorker(l.inf)
			pinned <- err
			if err != nil {
				return
			}
			defer iso.release(l.inf)
		}
		l.work(wctx)
	})
	if iso != nil {
		if err := <-pinned; err != nil {
			cancel()
			wg.Wait()
			return err
		}
	}
	wg.Go(func() { l.wd.Log(wctx, l.log, l.cfg.Watchdog.LogInterval) })
	if l.rec != nil {
		wg.Go(func() { l.record(wctx) })
	}
	run := func() error {
		err := l.ticks(ctx)
		l.shutdown()
		return err
	}
	var err error
	if iso == nil {
		err = run()
	} else {
		// The ticks (and the braking at the end) on a goroutine of their own, whose OS thread
		// is bound to the tick's CPU and ends with it.
		done := make(chan error, 1)
		go func() {
			if err := iso.pinTick(); err != nil {
				done <- err
				return
			}
			l.log.Info("policy: control tick isolated", "tick_cpu", iso.tickCPU, "inference_cpus", iso.restCPUs())
			done <- run()
		}()
		err = <-done
	}
	cancel()
	wg.Wait()
	return err
}

// Simulate runs the loop in simulated time: it ticks at every period of the clock, whose
// SleepUntil is expected to advance the simulation (sim/episode's clock), and runs each
// inference on the calling goroutine right after the Step that asked for it, holding the chunk
// until the clock has advanced by latency: the chunk is spliced at the first tick at or after
// the request's time plus latency (the next tick for 0). So a run depends only on its seeds,
// not on this machine's speed or its scheduler. The Recorder, if any, is called on this
// goroutine every TelemetryPeriod of clock time. When ctx ends it brakes the robot to a stop on
// the clock, as Run does, and returns ctx's error; an error from the driver ends it too.
func (l *Loop) Simulate(ctx context.Context, latency time.Duration) error {
	if !l.ran.CompareAndSwap(false, true) {
		return ErrRunning
	}
	if latency < 0 {
		return fmt.Errorf("policy: simulated latency %v is negative: %w", latency, ErrConfig)
	}
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Go(func() { l.wd.Log(wctx, l.log, l.cfg.Watchdog.LogInterval) })
	err := l.simulate(ctx, latency)
	l.shutdown()
	cancel()
	wg.Wait()
	return err
}

func (l *Loop) simulate(ctx context.Context, latency time.Duration) error {
	start := l.clock.Now()
	nextRec := start.Add(l.cfg.TelemetryPeriod)
	for k := int64(0); ; k++ {
		t := start.Add(time.Duration(k) * l.period)
		if err := l.clock.SleepUntil(ctx, t); err != nil {
			return err
		}
		if err := l.Step(t); err != nil {
			return err
		}
		l.InferPending(latency)
		if l.rec != nil && !t.Before(nextRec) {
			l.rec.Record(l.Snapshot())
			nextRec = nextRec.Add(l.cfg.TelemetryPeriod)
		}
	}
}

func (l *Loop) ticks(ctx context.Context) error {
	sleep := l.clock.SleepUntil
	if _, ok := l.clock.(robot.WallClock); ok {
		// robot.WallClock makes a timer per call; one reused timer keeps the loop free of
		// allocations between ticks too.
		tm := time.NewTimer(time.Hour)
		defer tm.Stop()
		sleep = func(ctx context.Context, t time.Time) error {
			d := time.Until(t)
			if d <= 0 {
				return ctx.Err()
			}
			tm.Reset(d)
			select {
			case <-tm.C:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	deadline := l.clock.Now()
	for {
		if err := sleep(ctx, deadline); err != nil {
			return err
		}
		now := l.clock.Now()
		if err := l.Step(now); err != nil {
			return err
		}
		l.tel.TickCost.Record(l.clock.Now().Sub(now).Seconds())
		deadline = l.start.Add(time.Duration(l.k+1) * l.period)
	}
}

// Step runs the control tick due at robot time now: tick k = floor((now - start) / period),
// start being the time of the first Step. It is the loop's core, which Run (wall clock or ROS
// time), Simulate (simulated time) and a caller's own scheduler all drive; Step must be called
// from one goroutine, at increasing times. A Step before the next tick's time does nothing. A
// Step after more than one period counts the ticks it skipped as overruns: the robot received
// nothing for them, and the tick runs once, for tick k, with one filter step (actions stay
// aligned with time, and no command ever carries two steps of the filter).
//
// Inference: after Run has started its worker, a tick hands requests to it and takes results
// without blocking. Without Run, a request waits until InferPending runs it.
func (l *Loop) Step(now time.Time) error {
	if !l.started {
		l.started, l.start, l.k = true, now, -1
	}
	k := int64(now.Sub(l.start) / l.period)
	if k <= l.k {
		return nil
	}
	if l.k >= 0 && k > l.k+1 {
		l.tel.Overruns.Add(uint64(k - l.k - 1))
	}
	return l.tick(k, now, l.start.Add(time.Duration(k)*l.period))
}

// InferPending runs the inference the last Step asked for, if one waits, on the calling
// goroutine, and holds its chunk until a Step at or after the request's time plus latency (a
// simulated inference latency). It reports whether it ran one. It is for callers that drive the
// loop with Step outside Run (Simulate does); the Telemetry's Inference histogram then records
// the wall-clock time the inference took.
func (l *Loop) InferPending(latency time.Duration) bool {
	if !l.pending {
		return false
	}
	l.pending = false
	t0 := time.Now()
	err := l.infer(&l.req)
	l.held = result{err: err, latency: time.Since(t0)}
	l.heldAt = l.reqAt.Add(latency)
	l.holding = true
	return true
}

// shutdown brings a moving robot to a stop within its limits, whatever ctx says.
func (l *Loop) shutdown() {
	if l.live {
		l.out.stop()
	}
}

// work is the inference worker: one request at a time, one result per request.
func (l *Loop) work(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case req := <-l.reqCh:
			t0 := l.clock.Now()
			err := l.infer(req)
			l.resCh <- result{err: err, latency: l.clock.Now().Sub(t0)} // room: one request in flight
		}
	}
}

// ErrInferPanic wraps a panic of the Inferer; the loop faults on it (the robot stops).
var ErrInferPanic = errors.New("policy: inference panicked")

// infer runs the Inferer, turning a panic into an error so that a broken model stops the robot
// instead of killing the process mid-motion.
func (l *Loop) infer(req *Request) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %v", ErrInferPanic, p)
		}
	}()
	return l.inf.Infer(&l.res, req)
}

func (l *Loop) record(ctx context.Context) {
	t := l.clock.Now()
	for {
		t = t.Add(l.cfg.TelemetryPeriod)
		if l.clock.SleepUntil(ctx, t) != nil {
			return
		}
		l.rec.Record(l.Snapshot())
	}
}

// tick runs one control period k that started at now (its deadline was deadline).
func (l *Loop) tick(k int64, now, deadline time.Time) error {
	t := l.tel
	l.k = k
	l.tickNow.Store(k)
	t.Ticks.Add(1)
	if !l.prevNow.IsZero() {
		t.TickPeriod.Record(now.Sub(l.prevNow).Seconds())
	}
	t.TickJitter.Record(now.Sub(deadline).Seconds())
	l.prevNow = now

	// Observations.
	stateOK := false
	stateAge := math.Inf(1)
	if err := l.drv.ReadState(&l.st); err == nil {
		l.everState = true
		age := now.Sub(l.st.Stamp)
		stateAge = age.Seconds()
		stateOK = age <= l.cfg.Watchdog.StateMaxAge && len(l.st.Position) == l.d
	} else if errors.Is(err, robot.ErrBadState) {
		// The driver saw a reading beyond a limit since the last tick (one the next message may
		// have overwritten): as a state the guard refuses.
		t.ReadErrors.Add(1)
		l.wd.FireCause(safety.StateInvalid, k, now, 0, err)
		if l.commandingOrStarting() {
			l.fault(k, now, err.Error())
		}
	} else if !errors.Is(err, robot.ErrNoState) {
		t.ReadErrors.Add(1)
	}
	if stateOK && !l.st.Stamp.Equal(l.lastStamp) {
		// The previous distinct state, for the velocity at a start (measuredVelocity).
		copy(l.prevPos, l.lastPos)
		copy(l.lastPos, l.st.Position)
		l.prevStamp, l.lastStamp = l.lastStamp, l.st.Stamp
	}
	if stateOK {
		// Every state, not only the first: a reading out of the limits or a jump no motion
		// explains is never chased. Running (or starting), it latches a fault (the robot
		// decelerates on the commands, not on the reading); otherwise it is reported and the next
		// state starts afresh. Jumps count only while the loop commands the robot: idle, it may
		// be moved by hand, or a simulator reset.
		if !l.live || l.m.State() == safety.Idle { // idle: live ends this tick
			l.guard.Reset()
		}
		if err := l.guard.Check(l.st.Position, l.st.Stamp); err != nil {
			stateOK = false
			l.wd.FireCause(safety.StateInvalid, k, now, 0, err)
			if l.commandingOrStarting() {
				l.fault(k, now, err.Error())
			}
			l.guard.Reset()
		}
	}
	var emb Embedding
	if l.src != nil {
		if e, err := l.src.Latest(); err == nil {
			emb = e
		}
	} else if e := l.emb.Load(); e != nil {
		emb = *e
	}
	embOK, embAge := false, math.Inf(1)
	if emb.Data != nil {
		embAge = now.Sub(emb.Stamp).Seconds()
		embOK = now.Sub(emb.Stamp) <= l.cfg.Watchdog.EmbeddingMaxAge
		if err := l.checkEmbedding(&emb); err != nil {
			embOK = false
			l.wd.SetCause(safety.EmbeddingInvalid, true, k, now, 0, err)
		} else {
			l.wd.Set(safety.EmbeddingInvalid, false, k, now, 0)
		}
	}
	if l.everState {
		// Before the first state there is nothing to be stale: a start-up trip would take the
		// first-occurrence log line from a real one (the snapshot says "no joint state yet").
		l.wd.Set(safety.StateStale, !stateOK, k, now, stateAge)
	}
	l.noState.Store(!l.everState)
	l.wd.Set(safety.EmbeddingStale, !embOK, k, now, embAge)

	st := l.m.State()
	if gen := l.m.Generation(); gen != l.gen {
		l.gen = gen // a new Start: a fresh plan
		l.splicer.Reset()
		l.hadPlan = false
	}
	l.obsAt = time.Time{}
	if l.async {
		select {
		case r := <-l.resCh:
			l.inflight = false
			l.arrive(r, k, now, st == safety.Running && stateOK)
		default:
		}
	} else if l.holding && !now.Before(l.heldAt) {
		l.holding, l.inflight = false, false
		l.arrive(l.held, k, now, st == safety.Running && stateOK)
	}

	planned := false
	switch st {
	case safety.Idle:
		l.out.idle()
		l.live = false
		l.splicer.Reset()
		l.hidePlan(k)
		l.wd.Set(safety.Starved, false, k, now, 0)
		return nil
	case safety.Running:
		if !l.live {
			if !stateOK {
				return nil // wait for a fresh joint state to start from (StateStale is active)
			}
			// Start from the robot's motion, not from rest: another node may have left it
			// moving (a killed instance, a second one taking the name). When the driver knows
			// the position the robot holds from the controller before (robot.ReferenceReader)
			// and the robot is near it, start from that at rest: a lagging robot's measured
			// position differs from its reference by the tracking error, a step at the robot.
			pos, vel := l.st.Position, l.measuredVelocity()
			if l.refReader != nil && l.refReader.ReadReference(l.ref) && l.nearReference() {
				pos, vel = l.ref, nil
				l.log.Info("policy: starting from the position the robot holds from the controller before", "tick", k)
			}
			if err := l.filter.ResetMoving(pos, vel); err != nil {
				l.fault(k, now, err.Error())
				return nil
			}
			l.live = true
			l.meter.Reset()
		}
		switch {
		case !stateOK:
			// Decelerate to a stop; the plan's actions elapse meanwhile, so drop it.
			l.splicer.Reset()
			l.hadPlan = false
			l.hold()
		case l.splicer.Action(l.target, k):
			l.wd.Set(safety.Starved, false, k, now, 0)
			l.out.plan(l.cmd.Position, l.target)
			l.observeSeam(l.target)
			planned = true
		default:
			if l.hadPlan {
				l.wd.Set(safety.Starved, true, k, now, 0)
			}
			l.hold()
		}
		if stateOK && embOK && !l.inflight && l.splicer.End()-k-1 <= int64(l.cfg.Threshold) {
			l.request(k, emb)
		}
	default: // Holding, Stopping, Fault
		l.wd.Set(safety.Starved, false, k, now, 0)
		if !l.live {
			l.m.Settle()
			return nil
		}
		l.hold()
		if st == safety.Stopping && l.filter.AtRest(0) {
			l.m.Settle()
		}
	}

	if !planned {
		l.hidePlan(k) // holding, braking or out of plan: no plan is being executed
	}
	if err := l.out.send(k, now, planned, !l.obsAt.IsZero()); err != nil {
		return err
	}
	if l.lag > 0 {
		// What the robot was commanded at tick k (the filter's last command: a command the
		// driver refused leaves the one before), for the committed rows of a lagged request.
		i := int(k % int64(l.lag))
		l.filter.Last(l.sent[i*l.d : (i+1)*l.d])
		l.sentAt[i] = k
	}
	if !l.obsAt.IsZero() {
		t.ObsToCommand.Record(l.clock.Now().Sub(l.obsAt).Seconds())
	}
	return nil
}

func (l *Loop) hold() {
	l.out.hold(l.cmd.Position)
	l.tel.HoldTicks.Add(1)
	l.observeSeam(l.cmd.Position)
}

func (l *Loop) observeSeam(x []float64) {
	if s, done := l.meter.Observe(x); done {
		l.tel.recordSeam(s)
	}
}

func (l *Loop) fault(k int64, now time.Time, cause string) {
	l.m.Trip(cause)
	l.wd.FireCause(safety.Faulted, k, now, 0, errors.New(cause))
}

// commandingOrStarting reports whether a bad joint reading now must latch a fault: the loop
// commands the robot (live and not gone idle: live ends at the idle tick), or is about to start.
func (l *Loop) commandingOrStarting() bool {
	st := l.m.State()
	return l.live && st != safety.Idle || st == safety.Running
}

// maxVelocityGap is the oldest a previous joint state may be for a velocity differenced from it:
// two messages of a 10 Hz publisher.
const maxVelocityGap = 200 * time.Millisecond

// measuredVelocity returns the robot's joint velocities at the current state: the driver's
// measured ones (JointState.velocity) when any is non-zero and all are finite, else the
// difference of the last two distinct states' positions when they are at most maxVelocityGap
// apart, else nil (at rest).
// nearReference reports whether every measured position lies within the state tolerance
// (watchdog.state_tolerance) of l.ref.
func (l *Loop) nearReference() bool {
	tol := l.cfg.Watchdog.StateTolerance
	if tol <= 0 {
		tol = safety.DefaultStateTolerance
	}
	for i, r := range l.ref {
		if !(math.Abs(r-l.st.Position[i]) <= tol) {
			return false
		}
	}
	return true
}

func (l *Loop) measuredVelocity() []float64 {
	v := l.st.Velocity
	if len(v) == l.d {
		moving, finite := false, true
		for _, x := range v {
			moving = moving || x != 0
			finite = finite && !math.IsNaN(x) && !math.IsInf(x, 0)
		}
		if moving && finite {
			return v
		}
	}
	dt := l.lastStamp.Sub(l.prevStamp)
	if l.prevStamp.IsZero() || dt <= 0 || dt > maxVelocityGap || !l.lastStamp.Equal(l.st.Stamp) {
		return nil
	}
	for i := range l.vel {
		l.vel[i] = (l.lastPos[i] - l.prevPos[i]) / dt.Seconds()
	}
	return l.vel
}

// reject counts a rejected chunk (or failed inference) at tick k with its cause.
func (l *Loop) reject(k int64, now time.Time, err error) {
	l.tel.Rejected.Add(1)
	l.lastReject.Store(k)
	l.rejectCause.Store(&err)
	l.wd.FireCause(safety.ChunkRejected, k, now, 0, err)
}

// checkEmbedding validates e once per embedding (a new Data or Stamp): its shape, the width the
// inferer takes, and finite values. The verdict of the last one is kept, so a bad embedding
// costs one scan.
func (l *Loop) checkEmbedding(e *Embedding) error {
	var first *float32
	if len(e.Data) > 0 {
		first = &e.Data[0]
	}
	if first == l.embSeen && e.Stamp.Equal(l.embStamp) && first != nil {
		return l.embErr
	}
	l.embSeen, l.embStamp, l.embErr = first, e.Stamp, nil
	switch {
	case e.Tokens <= 0 || e.Width <= 0 || len(e.Data) != e.Tokens*e.Width:
		l.embErr = fmt.Errorf("policy: embedding of %d values for %d x %d: %w", len(e.Data), e.Tokens, e.Width, ErrEmbedding)
	case l.width > 0 && e.Width != l.width:
		l.embErr = fmt.Errorf("policy: embedding width %d, the model takes %d: %w", e.Width, l.width, ErrEmbedding)
	default:
		for i, v := range e.Data {
			if f := float64(v); math.IsNaN(f) || math.IsInf(f, 0) {
				l.embErr = fmt.Errorf("policy: embedding value %d (token %d) is %v: %w", i, i/e.Width, v, ErrEmbedding)
				break
			}
		}
	}
	if l.embErr != nil {
		err := l.embErr
		l.embCause.Store(&err)
	}
	return l.embErr
}

// ErrEmbedding is wrapped by the cause of an EmbeddingInvalid trip.
var ErrEmbedding = errors.New("policy: bad embedding")

// stateFeature names feature i of the expert's state: a joint of the robot model, or a
// coordinate of the end effector's position after them.
func (l *Loop) stateFeature(i int) string {
	joints := l.drv.Model().Joints
	switch {
	case i >= 0 && i < len(joints):
		return joints[i].Name
	case i >= len(joints) && i < len(joints)+EEStateDim:
		return "end effector " + string("xyz"[i-len(joints)])
	}
	return fmt.Sprintf("state feature %d", i)
}

// arrive handles the worker's result at tick k.
func (l *Loop) arrive(r result, k int64, now time.Time, accept bool) {
	t := l.tel
	t.Inference.Record(r.latency.Seconds())
	c := &l.res
	c.Start = l.req.Start // the loop's bookkeeping, not the inferer's
	d := k - l.req.Tick   // the inference's delay; the chunk's first lag+d rows are in the past
	wasCold := !l.cold
	l.cold = true
	if wasCold && r.err == nil {
		l.coldDelay = int(d)
	}
	if !wasCold && l.reqGen == l.gen && r.err == nil {
		l.delays[l.delayI] = int(d)
		l.delayI = (l.delayI + 1) % len(l.delays)
		l.delayN = min(l.delayN+1, len(l.delays))
		l.delayEs.Store(int64(l.delayEstimate()))
	}
	if errors.Is(r.err, ErrInferPanic) {
		l.reject(k, now, r.err)
		l.fault(k, now, r.err.Error())
		return
	}
	if l.reqGen != l.gen || !accept {
		t.Stale.Add(1)
		return
	}
	if r.err != nil {
		l.reject(k, now, r.err)
		return
	}
	if err := safety.CheckChunk(c.H, c.D, c.Data, l.h, l.d); err != nil {
		l.reject(k, now, err)
		return
	}
	if c.Spread > 0 {
		t.Spread.Record(c.Spread)
	}
	if c.StateOut > 0 {
		t.StateOut.Record(c.StateOut)
	}
	unsure := l.cfg.Gate.MaxSpread > 0 && !(c.Spread <= l.cfg.Gate.MaxSpread)
	outside := l.cfg.Gate.MaxStateOut > 0 && !(c.StateOut <= l.cfg.Gate.MaxStateOut)
	if unsure || outside {
		// The expert is unsure of this chunk, or was asked from a state outside everything it
		// was trained on: not executed. The plan is dropped too (it was made from older
		// observations of the situation the expert is now unsure of): the tick decelerates to
		// a stop, and asks again.
		t.Gated.Add(1)
		l.lastGated.Store(k)
		l.gatedSpread.Store(math.Float64bits(c.Spread))
		l.gatedState.Store(0)
		if outside {
			l.gatedState.Store(math.Float64bits(c.StateOut))
			l.gatedFeature.Store(int64(c.StateOutAt))
		}
		l.splicer.Reset()
		l.hadPlan = false
		return
	}
	l.lastAccept.Store(k)
	t.Delay.Record(float64(d))
	t.QueueDepth.Record(float64(max(l.splicer.End()-k, 0)))
	if k-c.Start >= int64(l.h) {
		t.Late.Add(1)
		l.wd.Fire(safety.ChunkLate, k, now, float64(k-c.Start))
		return
	}
	// Rows are in the past for the ticks the robot spent executing the plan. If the plan ended
	// at tick e before the arrival, the robot has held still since e, so only the rows before e
	// are consumed and the chunk resumes from there at tick k, instead of jumping d rows ahead
	// of the robot; if there was none (End 0: the cold start, or a plan dropped), none are, not
	// even the lag's rows before the request (the robot held still then too).
	if e := l.splicer.End(); e < k {
		consumed := int64(0)
		if e > 0 {
			consumed = max(e-c.Start, 0)
		}
		c.Start = k - consumed
	}
	// The committed rows are the plan's own actions (the Expert writes them back; this makes
	// it so for any Inferer): the splicer hands over after them.
	c.Frozen = 0
	if l.req.Frozen > 0 { // guided: the guide's committed rows (its prefix, if any, is a part)
		c.Frozen = copy(c.Data, l.req.Guide[:l.req.Frozen*l.d]) / l.d
	} else if n := len(l.req.Prefix); n > 0 {
		c.Frozen = copy(c.Data, l.req.Prefix) / l.d
	}
	l.splicer.Splice(c, k)
	l.hadPlan = true
	l.showPlan(k)
	t.Chunks.Add(1)
	l.obsAt = l.req.Stamp
	if s, done := l.meter.Mark(k); done {
		t.recordSeam(s)
	}
}

// showPlan shows the plan from tick k on to the PlanObserver: at most H rows (a splice leaves
// no more ahead of its tick). Splicer.Action does not change the splicer.
func (l *Loop) showPlan(k int64) {
	if l.plan == nil {
		return
	}
	n := 0
	for j := k; j < l.splicer.End() && n < l.h; j++ {
		if !l.splicer.Action(l.planBuf[n*l.d:(n+1)*l.d], j) {
			break
		}
		n++
	}
	l.plan.ObservePlan(k, l.planBuf[:n*l.d])
	l.planShown = n > 0
}

// hidePlan shows the PlanObserver an empty plan, once, when the loop stops executing the one
// it was shown.
func (l *Loop) hidePlan(k int64) {
	if l.plan != nil && l.planShown {
		l.plan.ObservePlan(k, l.planBuf[:0])
		l.planShown = false
	}
}

// delayEstimate is the largest delay of the last DelayWindow chunks (the cold start excluded),
// or Threshold before any was measured.
func (l *Loop) delayEstimate() int {
	if l.delayN == 0 {
		return l.cfg.Threshold
	}
	m := 0
	for _, d := range l.delays[:l.delayN] {
		m = max(m, d)
	}
	return m
}

// request hands the observation of tick k to the worker.
func (l *Loop) request(k int64, emb Embedding) {
	r := &l.req
	l.seq++
	r.Seq, r.Tick, r.Stamp, r.Embedding = l.seq, k, l.st.Stamp, emb
	copy(r.Position, l.st.Position)
	// The state read at k reflects the commands of k - lag: the chunk starts there, its first
	// lag rows are the commands already sent since (past), then the plan's.
	lag, d := l.shift(), l.d
	r.Start = k - int64(lag)
	r.Prefix = nil
	if l.cfg.Chunk.Strategy == chunk.Prefix && l.cold {
		p := min(lag+l.delayEstimate()+l.cfg.DelayMargin, l.h-1)
		l.past(l.prefix[:lag*d], k, lag)
		f, fut := max(p-lag, 0), l.prefix[lag*d:]
		if left := l.splicer.End() - k; left > 0 {
			// The plan's actions from k on, up to the estimated arrival but not past the plan's
			// end: if the chunk comes later, the robot holds the plan's last action meanwhile,
			// which is where the expert continues from.
			f = min(f, int(left))
			chunk.Committed(fut[:f*d], l.splicer, k, f, d)
		} else {
			// No plan: the robot holds the last command, and that is what is committed.
			for i := range f {
				l.filter.Last(fut[i*d : (i+1)*d])
			}
		}
		if p = lag + f; p > 0 {
			r.Prefix = l.prefix[:p*d]
		}
	}
	r.Guide, r.GuideWeights, r.Frozen = nil, nil, 0
	if l.cfg.Chunk.Strategy == chunk.Guided && l.cold {
		p := min(lag+l.delayEstimate()+l.cfg.DelayMargin, l.h-1)
		l.past(l.prefix[:lag*d], k, lag)
		fut := l.prefix[lag*d:]
		left := int(max(min(l.splicer.End()-k, int64(l.h-lag)), 0))
		if left > 0 {
			left += lag // the rows the previous plan covers, from Start
			p = min(p, left)
			chunk.Committed(fut, l.splicer, k, l.h-lag, d)
			if q := min(p, left-l.cfg.Chunk.PrefixTail); l.cfg.Chunk.GuidedPrefix && q > 0 {
				// The committed rows are the prefix too, but for those the previous plan, which
				// ends at row left, placed in its last PrefixTail rows.
				r.Prefix = l.prefix[:q*d]
			}
		} else {
			for i := range l.h - lag {
				l.filter.Last(fut[i*d : (i+1)*d])
			}
			left = p
		}
		chunk.GuideWeights(l.guideW, p, left)
		r.Guide, r.GuideWeights, r.Frozen, r.GuidanceWeight = l.prefix, l.guideW, p, l.cfg.Chunk.GuidanceWeight
	}
	l.reqGen = l.gen
	l.res = chunk.Chunk{H: l.h, D: l.d, Data: l.resBuf} // whatever the last inferer did to it
	if !l.async {
		l.pending, l.inflight, l.reqAt = true, true, l.prevNow
		l.tel.Requests.Add(1)
		return
	}
	select {
	case l.reqCh <- r:
		l.inflight = true
		l.tel.Requests.Add(1)
	default: // cannot happen: nothing is in flight
	}
}

// shift returns the ticks a chunk asked for now starts before its request: the robot's lag,
// but no more than leaves the chunk, at its arrival after the estimated delay d, d + m rows
// beyond it (H - shift - d >= d + m, m the delay margin, at least 1 by default), so that the
// next chunk, asked for at once, arrives before the plan runs out even when it is m - 1 ticks
// later than the estimate. A slow expert (d near H/2) thus gets a smaller shift, down to none:
// the rest of the lag is then executed as if it were not there, as without RobotLag. d is the
// delay estimate; until a delay after the cold start is measured, the cold start's own (longer
// than the others on a real machine: lazy allocation, caches; so the shift errs short), and
// before that the whole lag (the cold start's chunk starts at its arrival anyway).
func (l *Loop) shift() int {
	est := l.coldDelay
	if l.delayN > 0 {
		est = l.delayEstimate()
	}
	if l.lag == 0 || est < 0 {
		return l.lag
	}
	return min(l.lag, max(l.h-2*est-l.cfg.DelayMargin, 0))
}

// past writes into dst (n x D, n <= lag) the commands sent for the ticks [k-n, k). A tick with
// none recorded (the loop was idle, or had not started) takes the next tick's, the last one the
// filter's last command: what the robot held.
func (l *Loop) past(dst []float64, k int64, n int) {
	d := l.d
	for i := n - 1; i >= 0; i-- {
		row := dst[i*d : (i+1)*d]
		if j := k - int64(n-i); j >= 0 {
			if r := int(j % int64(l.lag)); l.sentAt[r] == j {
				copy(row, l.sent[r*d:(r+1)*d])
				continue
			}
		}
		if i == n-1 {
			l.filter.Last(row)
		} else {
			copy(row, dst[(i+1)*d:(i+2)*d])
		}
	}
}

// Snapshot returns the loop's state and telemetry (allocates; for diagnostics and recorders).
func (l *Loop) Snapshot() *Snapshot {
	t := l.tel
	s := &Snapshot{
		Time: l.clock.Now(), State: l.m.State(), Cause: l.m.Cause(), Strategy: t.Strategy, Rate: l.cfg.Rate,
		DelayEst: int(l.delayEs.Load()),
		Counters: Counters{
			Ticks: t.Ticks.Load(), Overruns: t.Overruns.Load(), Requests: t.Requests.Load(),
			Chunks: t.Chunks.Load(), Late: t.Late.Load(), Rejected: t.Rejected.Load(),
			Stale: t.Stale.Load(), ReadErrors: t.ReadErrors.Load(), WriteErrors: t.WriteErrors.Load(), Refused: t.Refused.Load(),
			HoldTicks: t.HoldTicks.Load(), Gated: t.Gated.Load(), EventsDropped: l.wd.Dropped(),
		},
		Hist: Histograms{
			TickPeriod: t.TickPeriod.Snapshot(), TickJitter: t.TickJitter.Snapshot(),
			TickCost: t.TickCost.Snapshot(), Inference: t.Inference.Snapshot(),
			ObsToCommand: t.ObsToCommand.Snapshot(), Delay: t.Delay.Snapshot(),
			QueueDepth: t.QueueDepth.Snapshot(),
			SeamJump:   t.SeamJump.Snapshot(), SeamVel: t.SeamVel.Snapshot(),
			SeamAcc: t.SeamAcc.Snapshot(), SeamJerk: t.SeamJerk.Snapshot(),
			Spread: t.Spread.Snapshot(), StateOut: t.StateOut.Snapshot(),
		},
	}
	for k := range safety.NumKinds {
		s.Clamps[k] = l.filter.Count(-1, k)
	}
	for tr := range safety.NumTrips {
		s.Trips[tr] = l.wd.Count(tr)
		if tr.Level() && l.wd.Active(tr) {
			s.Active = append(s.Active, tr)
		}
	}
	s.Level, s.Message = OK, s.State.String()
	// Chunk results of the last second: some rejected is a warning, all of them an error.
	k := l.tickNow.Load()
	second := int64(math.Ceil(l.cfg.Rate))
	rejecting := l.lastReject.Load() >= 0 && k-l.lastReject.Load() <= second
	accepting := l.lastAccept.Load() >= 0 && k-l.lastAccept.Load() <= second
	cause := errText(l.rejectCause.Load())
	gating := l.lastGated.Load() >= 0 && k-l.lastGated.Load() <= second && l.lastGated.Load() > l.lastAccept.Load()
	switch {
	case s.State == safety.Fault:
		s.Level, s.Message = Error, "fault: "+s.Cause
	case s.State == safety.Running && l.wd.Active(safety.EmbeddingInvalid) && !accepting:
		s.Level, s.Message = Error, "running: embedding invalid, no chunk asked for: "+errText(l.embCause.Load())
	case l.wd.Active(safety.EmbeddingInvalid):
		s.Level, s.Message = Warn, s.State.String()+": embedding invalid: "+errText(l.embCause.Load())
	case rejecting && !accepting:
		s.Level, s.Message = Error, s.State.String()+": every chunk of the last second rejected: "+cause
	case rejecting:
		s.Level, s.Message = Warn, s.State.String()+": chunks rejected in the last second: "+cause
	case s.State == safety.Running && gating && l.gatedState.Load() != 0:
		s.Level, s.Message = Warn, fmt.Sprintf("running: state outside the expert's training data (%s %.3g sd beyond its range > gate.max_state_out %.3g), holding",
			l.stateFeature(int(l.gatedFeature.Load())), math.Float64frombits(l.gatedState.Load()), l.cfg.Gate.MaxStateOut)
	case s.State == safety.Running && gating:
		s.Level, s.Message = Warn, fmt.Sprintf("running: expert unsure (spread %.3g > gate.max_spread %.3g), holding",
			math.Float64frombits(l.gatedSpread.Load()), l.cfg.Gate.MaxSpread)
	case s.State == safety.Running && l.noState.Load():
		s.Level, s.Message = Warn, "running: no joint state yet"
	case s.State == safety.Running && l.wd.Active(safety.StateStale):
		s.Level, s.Message = Warn, "running: joint state stale, decelerating to a stop"
	case s.State == safety.Running && l.wd.Active(safety.Starved):
		s.Level, s.Message = Warn, "running: no chunk at the end of the plan, holding"
	case s.State == safety.Running && l.wd.Active(safety.EmbeddingStale):
		s.Level, s.Message = Warn, "running: embedding stale, finishing the committed actions"
	}
	return s
}

// errText is the text of *p, "" for nil.
func errText(p *error) string {
	if p == nil || *p == nil {
		return ""
	}
	return (*p).Error()
}
