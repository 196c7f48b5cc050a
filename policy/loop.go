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
}

// Loop is the real-time control loop. Build it with New, run it with Run; command it with
// Start, Stop, Hold and Reset from any goroutine.
type Loop struct {
	cfg    Config
	drv    robot.Driver
	inf    Inferer
	clock  robot.Clock
	log    *slog.Logger
	rec    Recorder
	src    EmbeddingSource
	tw     robot.TrajectoryWriter // non-nil: trajectory output
	h, d   int
	period time.Duration

	m       safety.Machine
	filter  *safety.Filter
	wd      *safety.Watchdogs
	splicer chunk.Splicer
	meter   *chunk.Meter
	tel     *Telemetry
	emb     atomic.Pointer[Embedding]
	ran     atomic.Bool
	delayEs atomic.Int64 // the current delay estimate, for snapshots

	reqCh chan *Request
	resCh chan result

	// Owned by the tick.
	st       robot.State
	cmd      robot.Command
	target   []float64
	req      Request
	reqGen   uint64
	prefix   []float64
	guideW   []float64
	res      chunk.Chunk // written by the worker between a request and its result
	resBuf   []float64   // res.Data's storage, restored before every request
	inflight bool
	gen      uint64
	live     bool // the filter holds the last sent command of this run
	hadPlan  bool // a chunk was spliced since the last start
	cold     bool // the worker's first result has been seen
	delays   []int
	delayN   int
	delayI   int
	prevNow  time.Time
	seq      uint64
	obsAt    time.Time // the stamp of the observation whose chunk was spliced this tick; zero if none

	// Trajectory output.
	scratch  *safety.Filter // predicts the filter's commands
	traj     robot.Trajectory
	trajT    []time.Duration // full buffers that traj slices
	trajP    []float64
	action   []float64
	trajMode int8  // what the last trajectory does: 0 none, trajPlan, trajBrake
	trajK    int64 // the tick it was written at: its point i is for tick trajK+1+i
	trajN    int   // its points
	k        int64 // the current tick
}

const (
	trajPlan  = 1 // follow the plan, then brake to a stop
	trajBrake = 2 // brake to a stop
)

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
		cfg: cfg, drv: deps.Driver, inf: deps.Inferer, clock: deps.Clock, log: deps.Logger, rec: deps.Recorder, src: deps.Embeddings,
		h: h, d: d, period: per,
		filter:  safety.NewFilter(lim, per.Seconds()),
		wd:      safety.NewWatchdogs(64),
		splicer: sp,
		meter:   chunk.NewMeter(d, per.Seconds(), cfg.Chunk.BlendTicks+3),
		tel:     newTelemetry(cfg.Chunk.Strategy),
		reqCh:   make(chan *Request, 1),
		resCh:   make(chan result, 1),
		st:      robot.NewState(d),
		cmd:     robot.Command{Position: make([]float64, d)},
		target:  make([]float64, d),
		prefix:  make([]float64, h*d),
		guideW:  make([]float64, h),
		resBuf:  make([]float64, h*d),
		delays:  make([]int, cfg.DelayWindow),
	}
	l.req.Position = make([]float64, d)
	l.res = chunk.Chunk{H: h, D: d, Data: l.resBuf}
	if cfg.Output == "trajectory" {
		tw, ok := deps.Driver.(robot.TrajectoryWriter)
		if !ok {
			return nil, fmt.Errorf("policy: output trajectory, but the driver %T writes no trajectories: %w", deps.Driver, ErrConfig)
		}
		// Room for the plan and a stop from full speed: v/a ticks, plus a/j to ramp the
		// deceleration when a jerk limit is given, plus a few for rounding.
		brake := 0.0
		for _, lm := range lim {
			b := lm.Velocity / lm.Acceleration
			if lm.Jerk > 0 {
				b += lm.Acceleration / lm.Jerk
			}
			brake = math.Max(brake, b)
		}
		n := h + int(math.Ceil(brake/per.Seconds())) + 4
		l.tw = tw
		l.scratch = safety.NewFilter(lim, per.Seconds())
		l.trajT, l.trajP = make([]time.Duration, n), make([]float64, n*d)
		for i := range n {
			l.trajT[i] = time.Duration(i+1) * per
		}
		l.action = make([]float64, d)
	}
	if l.clock == nil {
		l.clock = robot.WallClock{}
	}
	if l.log == nil {
		l.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return l, nil
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

// ErrRunning is returned by a second Run.
var ErrRunning = errors.New("policy: Run called twice")

// Run ticks until ctx ends, then decelerates the robot to a stop and returns ctx's error after
// every goroutine it started has stopped. It returns earlier with an error wrapping
// robot.ErrClosed if the driver closes.
func (l *Loop) Run(ctx context.Context) error {
	if !l.ran.CompareAndSwap(false, true) {
		return ErrRunning
	}
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Go(func() { l.work(wctx) })
	wg.Go(func() { l.wd.Log(wctx, l.log, l.cfg.Watchdog.LogInterval) })
	if l.rec != nil {
		wg.Go(func() { l.record(wctx) })
	}
	err := l.ticks(ctx)
	l.shutdown()
	cancel()
	wg.Wait()
	return err
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
	start := l.clock.Now()
	var k int64
	for {
		deadline := start.Add(time.Duration(k) * l.period)
		if err := sleep(ctx, deadline); err != nil {
			return err
		}
		now := l.clock.Now()
		if err := l.tick(k, now, deadline); err != nil {
			return err
		}
		after := l.clock.Now()
		l.tel.TickCost.Record(after.Sub(now).Seconds())
		k++
		if next := start.Add(time.Duration(k) * l.period); after.After(next) {
			// Missed deadlines k..m are skipped, never run in a burst.
			m := int64(after.Sub(start) / l.period)
			l.tel.Overruns.Add(uint64(m - k + 1))
			k = m + 1
		}
	}
}

// shutdown decelerates a moving robot to a stop on the clock, for at most the braking time at
// the acceleration limits plus a few ticks, whatever ctx says.
func (l *Loop) shutdown() {
	if !l.live {
		return
	}
	if l.tw != nil {
		// The whole stop in one trajectory, from the last tick's command and time (a start in
		// the past takes over on arrival).
		l.writeTrajectory(l.k, l.prevNow, false)
		return
	}
	worst := 0.0
	for _, lim := range l.filter.Limits() {
		worst = math.Max(worst, lim.Velocity/lim.Acceleration)
	}
	n := int64(worst/l.period.Seconds()) + 10
	ctx := context.Background()
	t := l.clock.Now()
	for i := int64(0); i < n && !l.filter.AtRest(0); i++ {
		t = t.Add(l.period)
		if l.clock.SleepUntil(ctx, t) != nil {
			return
		}
		l.filter.Hold(l.cmd.Position)
		l.cmd.Stamp = l.clock.Now()
		if err := l.drv.WriteCommand(&l.cmd); err != nil {
			l.tel.WriteErrors.Add(1)
			return
		}
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
		age := now.Sub(l.st.Stamp)
		stateAge = age.Seconds()
		stateOK = age <= l.cfg.Watchdog.StateMaxAge && len(l.st.Position) == l.d
	} else if !errors.Is(err, robot.ErrNoState) {
		t.ReadErrors.Add(1)
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
	}
	l.wd.Set(safety.StateStale, !stateOK, k, now, stateAge)
	l.wd.Set(safety.EmbeddingStale, !embOK, k, now, embAge)

	st := l.m.State()
	if gen := l.m.Generation(); gen != l.gen {
		l.gen = gen // a new Start: a fresh plan
		l.splicer.Reset()
		l.hadPlan = false
	}
	l.obsAt = time.Time{}
	select {
	case r := <-l.resCh:
		l.inflight = false
		l.arrive(r, k, now, st == safety.Running && stateOK)
	default:
	}

	planned := false
	switch st {
	case safety.Idle:
		l.trajMode = 0
		l.live = false
		l.splicer.Reset()
		l.wd.Set(safety.Starved, false, k, now, 0)
		return nil
	case safety.Running:
		if !l.live {
			if !stateOK {
				return nil // wait for a fresh joint state to start from (StateStale is active)
			}
			if err := l.filter.Reset(l.st.Position); err != nil {
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
			if l.tw != nil {
				l.follow()
			} else {
				l.filter.Step(l.cmd.Position, l.target)
			}
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

	if l.tw != nil {
		mode := int8(trajBrake)
		if planned {
			mode = trajPlan
		}
		if mode != l.trajMode || !l.obsAt.IsZero() {
			l.trajMode = mode
			if err := l.writeTrajectory(k, now, planned); err != nil {
				return err
			}
		}
	} else {
		l.cmd.Stamp = now
		if err := l.drv.WriteCommand(&l.cmd); err != nil {
			t.WriteErrors.Add(1)
			if errors.Is(err, robot.ErrClosed) {
				l.live = false
				return fmt.Errorf("policy: write command: %w", err)
			}
		}
	}
	if !l.obsAt.IsZero() {
		t.ObsToCommand.Record(l.clock.Now().Sub(l.obsAt).Seconds())
	}
	return nil
}

// writeTrajectory sends what the filter will command from tick k+1 on if nothing changes: the
// plan (when planned) and then a stop, predicted by a scratch copy of the filter.
func (l *Loop) writeTrajectory(k int64, now time.Time, planned bool) error {
	sc, d, pos := l.scratch, l.d, l.trajP
	sc.CopyState(l.filter)
	limit := len(l.trajT)
	n := 0
	if planned {
		for kk := k + 1; kk < l.splicer.End() && n < limit && l.splicer.Action(l.action, kk); kk++ {
			sc.Step(pos[n*d:(n+1)*d], l.action)
			n++
		}
	}
	for n < limit && !sc.AtRest(0) {
		sc.Hold(pos[n*d : (n+1)*d])
		n++
	}
	if n == 0 { // at rest: one point where it is, replacing whatever ran before
		sc.Last(pos[:d])
		n = 1
	}
	l.traj.Start, l.traj.TimeFromStart, l.traj.Positions = now, l.trajT[:n], pos[:n*d]
	l.trajK, l.trajN = k, n
	if err := l.tw.WriteTrajectory(&l.traj); err != nil {
		l.tel.WriteErrors.Add(1)
		if errors.Is(err, robot.ErrClosed) {
			l.live = false
			return fmt.Errorf("policy: write trajectory: %w", err)
		}
	}
	return nil
}

// follow (trajectory output) makes the active trajectory's point for this tick the last command:
// the robot executes the trajectory, so the filter's history must be its points.
func (l *Loop) follow() {
	if l.trajMode == 0 {
		l.filter.Last(l.cmd.Position) // nothing sent yet: the robot stays where it is
	} else {
		i := int(min(l.k-l.trajK-1, int64(l.trajN-1)))
		copy(l.cmd.Position, l.trajP[i*l.d:(i+1)*l.d])
	}
	l.filter.Follow(l.cmd.Position)
}

func (l *Loop) hold() {
	if l.tw != nil {
		l.follow()
	} else {
		l.filter.Hold(l.cmd.Position)
	}
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
	l.wd.Fire(safety.Faulted, k, now, 0)
}

// arrive handles the worker's result at tick k.
func (l *Loop) arrive(r result, k int64, now time.Time, accept bool) {
	t := l.tel
	t.Inference.Record(r.latency.Seconds())
	c := &l.res
	c.Start = l.req.Tick // the loop's bookkeeping, not the inferer's
	d := k - c.Start
	wasCold := !l.cold
	l.cold = true
	if !wasCold && l.reqGen == l.gen && r.err == nil {
		l.delays[l.delayI] = int(d)
		l.delayI = (l.delayI + 1) % len(l.delays)
		l.delayN = min(l.delayN+1, len(l.delays))
		l.delayEs.Store(int64(l.delayEstimate()))
	}
	if errors.Is(r.err, ErrInferPanic) {
		t.Rejected.Add(1)
		l.fault(k, now, r.err.Error())
		return
	}
	if l.reqGen != l.gen || !accept {
		t.Stale.Add(1)
		return
	}
	if r.err != nil {
		t.Rejected.Add(1)
		l.wd.Fire(safety.ChunkRejected, k, now, 0)
		return
	}
	if err := safety.CheckChunk(c.H, c.D, c.Data, l.h, l.d); err != nil {
		t.Rejected.Add(1)
		l.wd.Fire(safety.ChunkRejected, k, now, 0)
		return
	}
	t.Delay.Record(float64(d))
	t.QueueDepth.Record(float64(max(l.splicer.End()-k, 0)))
	if d >= int64(l.h) {
		t.Late.Add(1)
		l.wd.Fire(safety.ChunkLate, k, now, float64(d))
		return
	}
	// Rows are in the past for the ticks the robot spent executing the plan. If the plan ended
	// at tick e before the arrival (or there was none: the cold start), the robot has held
	// still since e, so only the rows before e are consumed and the chunk resumes from there
	// at tick k, instead of jumping d rows ahead of the robot.
	if e := l.splicer.End(); e < k {
		c.Start = k - max(e-c.Start, 0)
	}
	// The committed rows are the plan's own actions (the Expert writes them back; this makes
	// it so for any Inferer): the splicer hands over after them.
	c.Frozen = 0
	if n := len(l.req.Prefix); n > 0 {
		c.Frozen = copy(c.Data, l.req.Prefix) / l.d
	} else if l.req.Frozen > 0 {
		c.Frozen = copy(c.Data, l.req.Guide[:l.req.Frozen*l.d]) / l.d
	}
	l.splicer.Splice(c, k)
	l.hadPlan = true
	t.Chunks.Add(1)
	l.obsAt = l.req.Stamp
	if s, done := l.meter.Mark(k); done {
		t.recordSeam(s)
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
	r.Prefix = nil
	if l.cfg.Chunk.Strategy == chunk.Prefix && l.cold {
		p := min(l.delayEstimate()+l.cfg.DelayMargin, l.h-1)
		if left := l.splicer.End() - k; left > 0 {
			// The plan's actions from k on, up to the estimated arrival but not past the plan's
			// end: if the chunk comes later, the robot holds the plan's last action meanwhile,
			// which is where the expert continues from.
			p = min(p, int(left))
			chunk.Committed(l.prefix[:p*l.d], l.splicer, k, p, l.d)
		} else {
			// No plan: the robot holds the last command, and that is what is committed.
			for i := range p {
				l.filter.Last(l.prefix[i*l.d : (i+1)*l.d])
			}
		}
		if p > 0 {
			r.Prefix = l.prefix[:p*l.d]
		}
	}
	r.Guide, r.GuideWeights, r.Frozen = nil, nil, 0
	if l.cfg.Chunk.Strategy == chunk.Guided && l.cold {
		p := min(l.delayEstimate()+l.cfg.DelayMargin, l.h-1)
		left := int(max(min(l.splicer.End()-k, int64(l.h)), 0))
		if left > 0 {
			p = min(p, left)
			chunk.Committed(l.prefix, l.splicer, k, l.h, l.d)
		} else {
			for i := range l.h {
				l.filter.Last(l.prefix[i*l.d : (i+1)*l.d])
			}
			left = p
		}
		chunk.GuideWeights(l.guideW, p, left)
		r.Guide, r.GuideWeights, r.Frozen, r.GuidanceWeight = l.prefix, l.guideW, p, l.cfg.Chunk.GuidanceWeight
	}
	l.reqGen = l.gen
	l.res = chunk.Chunk{H: l.h, D: l.d, Data: l.resBuf} // whatever the last inferer did to it
	select {
	case l.reqCh <- r:
		l.inflight = true
		l.tel.Requests.Add(1)
	default: // cannot happen: nothing is in flight
	}
}

// Snapshot returns the loop's state and telemetry (allocates; for diagnostics and recorders).
func (l *Loop) Snapshot() *Snapshot {
	t := l.tel
	s := &Snapshot{
		Time: l.clock.Now(), State: l.m.State(), Cause: l.m.Cause(), Strategy: t.Strategy, Rate: l.cfg.Rate,
		DelayEst: int(l.delayEs.Load()),
		Counters: map[string]uint64{
			"ticks": t.Ticks.Load(), "overruns": t.Overruns.Load(), "requests": t.Requests.Load(),
			"chunks": t.Chunks.Load(), "late": t.Late.Load(), "rejected": t.Rejected.Load(),
			"stale": t.Stale.Load(), "read_errors": t.ReadErrors.Load(), "write_errors": t.WriteErrors.Load(),
			"hold_ticks": t.HoldTicks.Load(), "events_dropped": l.wd.Dropped(),
		},
		Clamps: map[string]uint64{}, Trips: map[string]uint64{},
		Histogram: map[string]HistogramSnapshot{
			"tick_period_s": t.TickPeriod.Snapshot(), "tick_jitter_s": t.TickJitter.Snapshot(),
			"tick_cost_s": t.TickCost.Snapshot(), "inference_s": t.Inference.Snapshot(),
			"obs_to_command_s": t.ObsToCommand.Snapshot(), "delay_ticks": t.Delay.Snapshot(),
			"queue_depth":   t.QueueDepth.Snapshot(),
			"seam_jump_rad": t.SeamJump.Snapshot(), "seam_velocity_rad_s": t.SeamVel.Snapshot(),
			"seam_acceleration_rad_s2": t.SeamAcc.Snapshot(), "seam_jerk_rad_s3": t.SeamJerk.Snapshot(),
		},
	}
	for k := range safety.NumKinds {
		s.Clamps[k.String()] = l.filter.Count(-1, k)
	}
	for tr := range safety.NumTrips {
		s.Trips[tr.String()] = l.wd.Count(tr)
		if tr != safety.ChunkRejected && tr != safety.ChunkLate && tr != safety.Faulted && l.wd.Active(tr) {
			s.Active = append(s.Active, tr.String())
		}
	}
	s.Level, s.Message = OK, s.State.String()
	switch {
	case s.State == safety.Fault:
		s.Level, s.Message = Error, "fault: "+s.Cause
	case s.State == safety.Running && l.wd.Active(safety.StateStale):
		s.Level, s.Message = Warn, "running: joint state stale, decelerating to a stop"
	case s.State == safety.Running && l.wd.Active(safety.Starved):
		s.Level, s.Message = Warn, "running: no chunk at the end of the plan, holding"
	case s.State == safety.Running && l.wd.Active(safety.EmbeddingStale):
		s.Level, s.Message = Warn, "running: embedding stale, finishing the committed actions"
	}
	return s
}
