package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync/atomic"
	"time"

	"github.com/flowact/flowact/expert"
	"github.com/flowact/flowact/expert/nn"
	"github.com/flowact/flowact/policy"
	"github.com/flowact/flowact/policy/chunk"
)

// JitterConfig is one measurement of the control tick's timing on the wall clock: policy.Loop's
// Run at Rate on the ideal driver, with or without an expert network computing chunks beside it
// on the loop's inference worker. The zero values take the defaults their comments give.
type JitterConfig struct {
	// Arch is the network the inference worker runs for every chunk (expert/nn, Sizes' widths,
	// random weights, Bind and 10 Euler steps), "" for none (the closed-form wave alone). With a
	// network the loop asks for the next chunk as soon as one is spliced (threshold H - 1), so
	// the worker computes back to back: one tick of hand-over per chunk.
	Arch string
	// Threads is the network's matrix-product threads; 0 means 1.
	Threads int
	// Isolate is policy.Config.IsolateTick: the tick on a CPU of its own, inference on the others.
	Isolate bool
	// Sizes are the network's sizes (H and D are also the tick's chunk and joints).
	Sizes Sizes
	// Rate is the control rate in Hz; 0 means 500.
	Rate float64
	// Warmup runs before the measurement, after the first chunk arrived; 0 means 500 ms.
	Warmup time.Duration
	// Duration is the measurement's wall time; 0 means 3 s.
	Duration time.Duration
	// Seed seeds the weights, condition and noise.
	Seed uint64
}

func (c JitterConfig) withDefaults() JitterConfig {
	if c.Threads == 0 {
		c.Threads = 1
	}
	if c.Rate == 0 {
		c.Rate = 500
	}
	if c.Warmup == 0 {
		c.Warmup = 500 * time.Millisecond
	}
	if c.Duration == 0 {
		c.Duration = 3 * time.Second
	}
	return c
}

// JitterResult is the control tick's timing in one JitterConfig. Late is how long after its
// deadline a tick started (the wake-up from the loop's sleep: the jitter the robot sees); Tick
// is the tick's own time, from the end of its sleep to the start of the next.
type JitterResult struct {
	Arch    string  `json:"arch"` // "" for no network
	Threads int     `json:"threads"`
	Isolate bool    `json:"isolate_tick"`
	Rate    float64 `json:"rate_hz"`
	Ticks   int     `json:"ticks"` // measured ticks

	LateUsMedian float64 `json:"late_us_median"`
	LateUsP99    float64 `json:"late_us_p99"`
	LateUsMax    float64 `json:"late_us_max"`
	TickUsMedian float64 `json:"tick_us_median"`
	TickUsP99    float64 `json:"tick_us_p99"`
	TickUsMax    float64 `json:"tick_us_max"`

	// Over the measurement: ticks the loop missed (policy's overrun counter), chunks the network
	// computed and the median time of one, and the share of the wall time the inference worker
	// was computing (about: a chunk is counted when it ends).
	Overruns      uint64  `json:"overruns"`
	Inferences    int64   `json:"inferences"`
	InferMsMedian float64 `json:"infer_ms_median"`
	Busy          float64 `json:"busy"`
	HoldTicks     uint64  `json:"hold_ticks"`
}

// Jitter runs one measurement (see JitterConfig).
func Jitter(ctx context.Context, c JitterConfig) (JitterResult, error) {
	c = c.withDefaults()
	if c.Rate < 50 || c.Rate > 1000 || c.Warmup < 0 || c.Duration < 0 || c.Threads < 1 || c.Threads > 2 {
		return JitterResult{}, fmt.Errorf("%w: jitter rate %g Hz, warm-up %v, duration %v, threads %d", ErrConfig, c.Rate, c.Warmup, c.Duration, c.Threads)
	}
	s := c.Sizes
	if s.H < 2 || s.D < 1 {
		return JitterResult{}, fmt.Errorf("%w: jitter chunk %d x %d", ErrConfig, s.H, s.D)
	}
	period := time.Duration(float64(time.Second) / c.Rate)
	inf := &netInferer{wave: waveInferer{h: s.H, d: s.D, dt: period.Seconds()}}
	tokens, width := s.Tokens, s.TFEmbed
	if c.Arch != "" {
		net, err := s.NewNet(c.Arch, c.Threads, c.Seed)
		if err != nil {
			return JitterResult{}, err
		}
		defer net.Close()
		sv, _, err := newSolver("euler", 10)
		if err != nil {
			return JitterResult{}, err
		}
		r := rand.New(rand.NewPCG(c.Seed, 0x717))
		var state int
		width, state = net.CondShape()
		inf.net, inf.solver, inf.rng = net, sv, r
		inf.cond = &expert.Condition{Tokens: tokens, Width: width, Embedding: make([]float32, tokens*width), State: make([]float32, state)}
		expert.Noise(inf.cond.Embedding, r)
		expert.Noise(inf.cond.State, r)
		h, d := net.Shape()
		inf.x0, inf.x = make([]float32, h*d), make([]float32, h*d)
		inf.ms = make([]float64, 0, 1<<16)
	}
	clk := &jitterClock{
		late: make([]float64, 0, int(c.Rate*c.Duration.Seconds())+64),
		tick: make([]float64, 0, int(c.Rate*c.Duration.Seconds())+64),
	}
	src := &wallEmbeddings{emb: make([]float32, tokens*width), tokens: tokens, width: width}
	m := benchArm(s.D)
	drv := &idealDriver{m: m, pos: make([]float64, s.D), clock: clk}
	inf.wave.wave(drv.pos, 0)
	cfg := policy.Config{Rate: c.Rate, Horizon: s.H, IsolateTick: c.Isolate}
	if c.Arch != "" {
		cfg.Threshold = s.H - 1
	}
	l, err := policy.New(cfg, policy.Deps{Driver: drv, Inferer: inf, Clock: clk, Embeddings: src})
	if err != nil {
		return JitterResult{}, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if err := l.Start(); err != nil {
		return JitterResult{}, err
	}
	runtime.GC()
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- l.Run(rctx) }()
	tel := l.Telemetry()
	wait := func(d time.Duration) error {
		select {
		case err := <-done:
			if err == nil {
				err = fmt.Errorf("bench: the loop stopped")
			}
			return err
		case <-ctx.Done():
			cancel()
			<-done
			return ctx.Err()
		case <-time.After(d):
			return nil
		}
	}
	for i := 0; tel.Chunks.Load() == 0; i++ {
		if i > 6000 {
			cancel()
			<-done
			return JitterResult{}, fmt.Errorf("bench: no chunk within 60 s")
		}
		if err := wait(10 * time.Millisecond); err != nil {
			return JitterResult{}, err
		}
	}
	if err := wait(c.Warmup); err != nil {
		return JitterResult{}, err
	}
	over0, hold0, busy0, n0 := tel.Overruns.Load(), tel.HoldTicks.Load(), inf.busy.Load(), inf.n.Load()
	t0 := time.Now()
	clk.recording.Store(true)
	if err := wait(c.Duration); err != nil {
		return JitterResult{}, err
	}
	clk.recording.Store(false)
	wall := time.Since(t0)
	over1, hold1, busy1, n1 := tel.Overruns.Load(), tel.HoldTicks.Load(), inf.busy.Load(), inf.n.Load()
	cancel()
	<-done // after Run returns, the clock's and the inferer's samples are ours
	res := JitterResult{Arch: c.Arch, Threads: c.Threads, Isolate: c.Isolate, Rate: c.Rate, Ticks: len(clk.late),
		Overruns: over1 - over0, HoldTicks: hold1 - hold0, Inferences: n1 - n0,
		Busy: float64(busy1-busy0) / float64(wall)}
	if c.Arch == "" {
		res.Threads = 0
	}
	if len(clk.late) == 0 {
		return res, fmt.Errorf("bench: no tick measured")
	}
	slices.Sort(clk.late)
	slices.Sort(clk.tick)
	res.LateUsMedian, res.LateUsP99, res.LateUsMax = Quantile(clk.late, 0.5)/1e3, Quantile(clk.late, 0.99)/1e3, clk.late[len(clk.late)-1]/1e3
	if len(clk.tick) > 0 {
		res.TickUsMedian, res.TickUsP99, res.TickUsMax = Quantile(clk.tick, 0.5)/1e3, Quantile(clk.tick, 0.99)/1e3, clk.tick[len(clk.tick)-1]/1e3
	}
	if len(inf.ms) > 0 {
		slices.Sort(inf.ms)
		res.InferMsMedian = Quantile(inf.ms, 0.5)
	}
	return res, nil
}

// jitterClock is the wall clock, whose SleepUntil (called by the loop's tick goroutine alone)
// records, while recording is set, each tick's lateness and the time since the previous wake-up.
type jitterClock struct {
	recording  atomic.Bool
	timer      *time.Timer
	woke       time.Time // the end of the last sleep; zero before the first
	late, tick []float64 // ns
}

func (c *jitterClock) Now() time.Time { return time.Now() }

func (c *jitterClock) SleepUntil(ctx context.Context, t time.Time) error {
	rec := c.recording.Load()
	if rec && !c.woke.IsZero() && len(c.tick) < cap(c.tick) {
		c.tick = append(c.tick, float64(time.Since(c.woke)))
	}
	if d := time.Until(t); d > 0 {
		if c.timer == nil {
			c.timer = time.NewTimer(d)
		} else {
			c.timer.Reset(d)
		}
		select {
		case <-c.timer.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	c.woke = time.Now()
	if rec && len(c.late) < cap(c.late) {
		c.late = append(c.late, float64(c.woke.Sub(t)))
	}
	return ctx.Err()
}

// wallEmbeddings is a fresh embedding at every call.
type wallEmbeddings struct {
	emb           []float32
	tokens, width int
}

func (w *wallEmbeddings) Latest() (policy.Embedding, error) {
	return policy.Embedding{Stamp: time.Now(), Tokens: w.tokens, Width: w.width, Data: w.emb}, nil
}

// netInferer computes a chunk of a real network (its output discarded) and returns the
// closed-form wave, so that the robot's plan stays smooth whatever the random weights say.
type netInferer struct {
	wave   waveInferer
	net    nn.Net // nil: the wave alone
	solver solver
	rng    *rand.Rand
	cond   *expert.Condition
	x0, x  []float32
	busy   atomic.Int64 // ns spent computing
	n      atomic.Int64 // chunks computed
	ms     []float64    // each chunk's time; the worker's alone until Run returns
}

func (e *netInferer) Shape() (h, d int) { return e.wave.Shape() }

// WorkerThreads passes the network's worker threads to the loop (policy.Config.IsolateTick).
func (e *netInferer) WorkerThreads() []int {
	if w, ok := e.net.(interface{ WorkerThreads() []int }); ok {
		return w.WorkerThreads()
	}
	return nil
}

func (e *netInferer) Infer(dst *chunk.Chunk, req *policy.Request) error {
	if e.net != nil {
		t0 := time.Now()
		expert.Noise(e.x0, e.rng)
		f, err := e.net.Bind(e.cond)
		if err != nil {
			return err
		}
		if _, err := e.solver.Solve(context.Background(), e.x, e.x0, f); err != nil {
			return err
		}
		dt := time.Since(t0)
		e.busy.Add(int64(dt))
		e.n.Add(1)
		if len(e.ms) < cap(e.ms) {
			e.ms = append(e.ms, float64(dt)/float64(time.Millisecond))
		}
	}
	return e.wave.Infer(dst, req)
}
