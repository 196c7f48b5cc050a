package bench

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync/atomic"
	"time"

	"github.com/flowact/flowact/policy"
	"github.com/flowact/flowact/policy/chunk"
	"github.com/flowact/flowact/robot"
)

// TickConfig is one control-tick measurement. The zero values take the defaults their comments
// give.
type TickConfig struct {
	// Strategy is the splicing strategy (policy/chunk); "" means policy's default, blend.
	Strategy chunk.Strategy
	// Rate is the control rate in Hz; 0 means 500.
	Rate float64
	// Joints is the robot's joint count; 0 means 7.
	Joints int
	// H is the chunk length in ticks; 0 means 50.
	H int
	// Tokens x Width is the embedding handed to the loop at every tick; 0 means 16 x 256.
	Tokens, Width int
	// Warmup is how many ticks run before the measurement; 0 means 5 H.
	Warmup int
	// Duration is the least wall time of the measurement (waits for inference included); 0 means
	// 2 s. At least MinTicks ticks are measured (0 means 100) and at most MaxTicks (0 means 1<<18).
	Duration           time.Duration
	MinTicks, MaxTicks int
}

func (c TickConfig) withDefaults() TickConfig {
	if c.Strategy == "" {
		c.Strategy = chunk.Blend
	}
	if c.Rate == 0 {
		c.Rate = 500
	}
	if c.Joints == 0 {
		c.Joints = 7
	}
	if c.H == 0 {
		c.H = 50
	}
	if c.Tokens == 0 {
		c.Tokens = 16
	}
	if c.Width == 0 {
		c.Width = 256
	}
	if c.Warmup == 0 {
		c.Warmup = 5 * c.H
	}
	if c.Duration == 0 {
		c.Duration = 2 * time.Second
	}
	if c.MinTicks == 0 {
		c.MinTicks = 100
	}
	if c.MaxTicks == 0 {
		c.MaxTicks = 1 << 18
	}
	return c
}

// Validate reports a bad field (after defaults); the loop's own config (rate range, strategy)
// is checked by policy.New.
func (c TickConfig) Validate() error {
	c = c.withDefaults()
	switch {
	case c.Joints < 0 || c.H < 2 || c.Tokens < 0 || c.Width < 0:
		return fmt.Errorf("%w: tick joints %d, chunk %d, embedding %d x %d", ErrConfig, c.Joints, c.H, c.Tokens, c.Width)
	case c.Warmup < 0 || c.MinTicks < 1 || c.MaxTicks < c.MinTicks:
		return fmt.Errorf("%w: tick warm-up %d, ticks min %d max %d", ErrConfig, c.Warmup, c.MinTicks, c.MaxTicks)
	case c.Duration < 0:
		return fmt.Errorf("%w: duration %v is negative", ErrConfig, c.Duration)
	}
	return nil
}

// TickResult is the measured cost of the control tick with one strategy.
type TickResult struct {
	Strategy string  `json:"strategy"`
	Rate     float64 `json:"rate_hz"`
	Joints   int     `json:"joints"`
	H        int     `json:"h"`
	Ticks    int     `json:"ticks"` // measured ticks

	NsMedian float64 `json:"ns_median"`
	NsP99    float64 `json:"ns_p99"`
	NsMean   float64 `json:"ns_mean"`
	NsMax    float64 `json:"ns_max"`

	// The same by kind of tick: ticks that only run the plan (Plain), ticks that sent a request
	// to the inference worker (Request: waking it may wake an OS thread), and ticks that spliced
	// a chunk (Splice). A tick that did both counts in both.
	Plain   TickStats `json:"plain"`
	Request TickStats `json:"request"`
	Splice  TickStats `json:"splice"`

	Allocs      float64 `json:"allocs_per_tick"`
	Bytes       float64 `json:"bytes_per_tick"`
	AllocsTotal uint64  `json:"allocs_total"` // over all measured ticks

	// The loop's own counters over the whole run (warm-up included): chunks spliced, ticks held
	// (a plan that ran dry: should be 0), missed deadlines (0 on the virtual clock).
	Chunks    uint64 `json:"chunks"`
	HoldTicks uint64 `json:"hold_ticks"`
	Overruns  uint64 `json:"overruns"`
}

// TickStats are the quantiles of one kind of tick.
type TickStats struct {
	Ticks    int     `json:"ticks"`
	NsMedian float64 `json:"ns_median"`
	NsP99    float64 `json:"ns_p99"`
}

// Kinds of tick, a bit set.
const (
	tickRequest = 1 << iota
	tickSplice
)

// Tick measures the control tick of policy.Loop (see the package documentation).
func Tick(ctx context.Context, c TickConfig) (TickResult, error) {
	if err := c.Validate(); err != nil {
		return TickResult{}, err
	}
	c = c.withDefaults()
	period := time.Duration(float64(time.Second) / c.Rate)
	tb := &tickBench{emb: make([]float32, c.Tokens*c.Width), tokens: c.Tokens, width: c.Width}
	t := time.Unix(1_000_000, 0)
	tb.now.Store(t.UnixNano())
	m := benchArm(c.Joints)
	inf := &waveInferer{h: c.H, d: c.Joints, dt: period.Seconds()}
	drv := &idealDriver{m: m, pos: make([]float64, c.Joints), clock: tb}
	inf.wave(drv.pos, 0)
	l, err := policy.New(policy.Config{Rate: c.Rate, Horizon: c.H, Chunk: chunk.Config{Strategy: c.Strategy}},
		policy.Deps{Driver: drv, Inferer: inf, Clock: tb, Embeddings: tb})
	if err != nil {
		return TickResult{}, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if err := l.Start(); err != nil {
		return TickResult{}, err
	}
	tel := l.Telemetry()
	ns := make([]float64, 0, c.MaxTicks)
	kinds := make([]uint8, 0, c.MaxTicks)
	var m0, m1 runtime.MemStats
	var wallStart time.Time
	for i := 0; ; i++ {
		if err := ctx.Err(); err != nil {
			return TickResult{}, err
		}
		if i == c.Warmup/2 {
			runtime.GC() // the construction's garbage, collected before the warm-up ends (see Expert)
		}
		measuring := i >= c.Warmup
		if i == c.Warmup {
			runtime.ReadMemStats(&m0)
			wallStart = time.Now()
		}
		requests, chunks := tel.Requests.Load(), tel.Chunks.Load()
		tb.now.Store(t.UnixNano())
		w0 := time.Now()
		err := l.Step(t)
		w1 := time.Now()
		if err != nil {
			return TickResult{}, fmt.Errorf("bench: tick: %w", err)
		}
		if measuring {
			ns = append(ns, float64(w1.Sub(w0)))
			var k uint8
			if tel.Requests.Load() != requests {
				k |= tickRequest
			}
			if tel.Chunks.Load() != chunks {
				k |= tickSplice
			}
			kinds = append(kinds, k)
			if len(ns) == cap(ns) || len(ns) >= c.MinTicks && w1.Sub(wallStart) >= c.Duration {
				runtime.ReadMemStats(&m1)
				break
			}
		}
		// The inference the tick asked for, outside the timed tick: its chunk is spliced at the
		// next tick, so the plan never runs dry and every tick is a steady-state tick.
		l.InferPending(0)
		t = t.Add(period)
	}
	res := TickResult{Strategy: string(c.Strategy), Rate: c.Rate, Joints: c.Joints, H: c.H, Ticks: len(ns),
		Chunks: tel.Chunks.Load(), HoldTicks: tel.HoldTicks.Load(), Overruns: tel.Overruns.Load()}
	n := float64(len(ns))
	res.AllocsTotal = m1.Mallocs - m0.Mallocs
	res.Allocs = float64(res.AllocsTotal) / n
	res.Bytes = float64(m1.TotalAlloc-m0.TotalAlloc) / n
	sum := 0.0
	for _, v := range ns {
		sum += v
	}
	res.NsMean = sum / n
	res.Plain = kindStats(ns, kinds, func(k uint8) bool { return k == 0 })
	res.Request = kindStats(ns, kinds, func(k uint8) bool { return k&tickRequest != 0 })
	res.Splice = kindStats(ns, kinds, func(k uint8) bool { return k&tickSplice != 0 })
	slices.Sort(ns)
	res.NsMedian, res.NsP99, res.NsMax = Quantile(ns, 0.5), Quantile(ns, 0.99), ns[len(ns)-1]
	return res, nil
}

// kindStats returns the quantiles of the ticks whose kind is selected (after the measurement: it
// allocates).
func kindStats(ns []float64, kinds []uint8, sel func(uint8) bool) TickStats {
	var v []float64
	for i, k := range kinds {
		if sel(k) {
			v = append(v, ns[i])
		}
	}
	if len(v) == 0 {
		return TickStats{}
	}
	slices.Sort(v)
	return TickStats{Ticks: len(v), NsMedian: Quantile(v, 0.5), NsP99: Quantile(v, 0.99)}
}

// benchArm is a d-joint revolute arm with every limit the safety filter uses (a typical
// manipulator's: ±3 rad, 2 rad/s, 20 rad/s², 2000 rad/s³).
func benchArm(d int) *robot.Model {
	m := &robot.Model{Name: "bench", Root: "base"}
	for j := range d {
		m.Joints = append(m.Joints, robot.Joint{Name: fmt.Sprintf("j%d", j), Type: robot.Revolute,
			Limits: robot.Limits{HasPosition: true, Lower: -3, Upper: 3, Velocity: 2, Acceleration: 20, Jerk: 2000}})
	}
	return m
}

// tickBench is the measurement's virtual clock and embedding source: its time is set before
// each Step; nothing sleeps on it.
type tickBench struct {
	now           atomic.Int64 // virtual time, ns since the Unix epoch
	emb           []float32
	tokens, width int
}

func (tb *tickBench) Now() time.Time { return time.Unix(0, tb.now.Load()) }

func (tb *tickBench) SleepUntil(ctx context.Context, t time.Time) error {
	if v := t.UnixNano(); v > tb.now.Load() {
		tb.now.Store(v)
	}
	return ctx.Err()
}

// Latest implements policy.EmbeddingSource: the same embedding, always fresh.
func (tb *tickBench) Latest() (policy.Embedding, error) {
	return policy.Embedding{Stamp: tb.Now(), Tokens: tb.tokens, Width: tb.width, Data: tb.emb}, nil
}

// idealDriver is a robot that reaches every command at once: its state is the last command,
// measured now.
type idealDriver struct {
	m     *robot.Model
	pos   []float64
	clock robot.Clock
}

func (d *idealDriver) Model() *robot.Model { return d.m }

func (d *idealDriver) ReadState(dst *robot.State) error {
	dst.Stamp = d.clock.Now()
	copy(dst.Position, d.pos)
	clear(dst.Velocity)
	clear(dst.Effort)
	return nil
}

func (d *idealDriver) WriteCommand(c *robot.Command) error {
	copy(d.pos, c.Position)
	return nil
}

// Wave parameters: each joint follows 0.5 sin(2π 0.25 t + 0.5 j) rad, whose speed (0.79 rad/s),
// acceleration (1.2 rad/s²) and jerk (1.9 rad/s³) are well inside benchArm's limits.
const (
	waveAmp   = 0.5
	waveFreq  = 0.25
	wavePhase = 0.5
)

// waveInferer is a closed-form Inferer: row i of a chunk is the wave at tick req.Start+i, with
// the committed prefix (prefix) or frozen rows (guided) written back exactly, as policy.Expert
// does.
type waveInferer struct {
	h, d int
	dt   float64
}

func (w *waveInferer) Shape() (h, d int) { return w.h, w.d }

func (w *waveInferer) wave(dst []float64, tick int64) {
	t := float64(tick) * w.dt
	for j := range dst {
		dst[j] = waveAmp * math.Sin(2*math.Pi*waveFreq*t+wavePhase*float64(j))
	}
}

func (w *waveInferer) Infer(dst *chunk.Chunk, req *policy.Request) error {
	dst.H, dst.D, dst.Start = w.h, w.d, req.Start
	dst.Data = dst.Data[:w.h*w.d]
	for i := range w.h {
		w.wave(dst.Data[i*w.d:(i+1)*w.d], req.Start+int64(i))
	}
	copy(dst.Data, req.Prefix)
	if req.Frozen > 0 && len(req.Guide) >= req.Frozen*w.d {
		copy(dst.Data, req.Guide[:req.Frozen*w.d])
	}
	return nil
}
