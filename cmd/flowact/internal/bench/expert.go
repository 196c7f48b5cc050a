package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"time"

	"github.com/flowact/flowact/expert"
	"github.com/flowact/flowact/expert/nn"
	"github.com/flowact/flowact/expert/ode"
)

// ErrConfig is wrapped by every invalid configuration.
var ErrConfig = errors.New("bench: bad config")

// Sizes are the network sizes of an expert measurement: the chunk (H x D), the condition (Tokens
// embedding tokens and a state of State values) and each architecture's widths. The embedding's
// width is MLPEmbed for the MLP and TFEmbed for the transformer.
type Sizes struct {
	H      int `json:"h"`
	D      int `json:"d"`
	Tokens int `json:"tokens"`
	State  int `json:"state"`

	MLPHidden int `json:"mlp_hidden"`
	MLPLayers int `json:"mlp_layers"`
	MLPEmbed  int `json:"mlp_embed"`

	TFWidth    int `json:"tf_width"`
	TFLayers   int `json:"tf_layers"`
	TFHeads    int `json:"tf_heads"`
	TFMLPRatio int `json:"tf_mlp_ratio"`
	TFEmbed    int `json:"tf_embed"`
}

// Reference returns the reference configurations of issue 3: an MLP of 3 residual blocks of
// width 1024 conditioned on 16 tokens of 512, and a transformer of width 256, 4 layers, 4 heads
// and MLP ratio 4 conditioned on 16 tokens of 256; both for 50 x 7 chunks and a state of 7.
func Reference() Sizes {
	return Sizes{H: 50, D: 7, Tokens: 16, State: 7,
		MLPHidden: 1024, MLPLayers: 3, MLPEmbed: 512,
		TFWidth: 256, TFLayers: 4, TFHeads: 4, TFMLPRatio: 4, TFEmbed: 256}
}

// Validate reports a non-positive size; the networks' own configs check the rest (heads dividing
// the width, ...).
func (s Sizes) Validate() error {
	for _, f := range []struct {
		name string
		v    int
	}{{"h", s.H}, {"d", s.D}, {"tokens", s.Tokens}, {"state", s.State},
		{"mlp_hidden", s.MLPHidden}, {"mlp_layers", s.MLPLayers}, {"mlp_embed", s.MLPEmbed},
		{"tf_width", s.TFWidth}, {"tf_layers", s.TFLayers}, {"tf_heads", s.TFHeads},
		{"tf_mlp_ratio", s.TFMLPRatio}, {"tf_embed", s.TFEmbed}} {
		if f.v <= 0 {
			return fmt.Errorf("%w: size %s is %d, want > 0", ErrConfig, f.name, f.v)
		}
	}
	return nil
}

// flopper is a network with an analytic FLOP count (both of expert/nn's have one).
type flopper interface {
	nn.Net
	FLOPs(tokens int) (bind, velocity int64)
}

// NewNet builds the network arch (nn.ArchMLP or nn.ArchTransformer) of sizes s with threads
// threads and random weights from seed (nn.Init, gain 1). The caller closes it.
func (s Sizes) NewNet(arch string, threads int, seed uint64) (nn.Net, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if err := s.CheckArch(arch, threads); err != nil {
		return nil, err
	}
	r := rand.New(rand.NewPCG(seed, 0x6e6e))
	var net nn.Net
	var err error
	if arch == nn.ArchMLP {
		net, err = nn.NewMLP(s.mlp(threads), r)
	} else {
		net, err = nn.NewTransformer(s.transformer(threads), r)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	nn.Init(net, r, 1)
	return net, nil
}

func (s Sizes) mlp(threads int) nn.MLPConfig {
	return nn.MLPConfig{H: s.H, D: s.D, Embed: s.MLPEmbed, State: s.State,
		Hidden: s.MLPHidden, Layers: s.MLPLayers, Threads: threads}
}

func (s Sizes) transformer(threads int) nn.TransformerConfig {
	return nn.TransformerConfig{H: s.H, D: s.D, Embed: s.TFEmbed, State: s.State,
		Width: s.TFWidth, Layers: s.TFLayers, Heads: s.TFHeads, MLPRatio: s.TFMLPRatio, Threads: threads}
}

// CheckArch reports whether s describes a valid network of architecture arch with threads
// threads (nn's own config validation), without building it.
func (s Sizes) CheckArch(arch string, threads int) error {
	if err := s.Validate(); err != nil {
		return err
	}
	var err error
	switch arch {
	case nn.ArchMLP:
		err = s.mlp(threads).Validate()
	case nn.ArchTransformer:
		err = s.transformer(threads).Validate()
	default:
		return fmt.Errorf("%w: unknown architecture %q (want %s or %s)", ErrConfig, arch, nn.ArchMLP, nn.ArchTransformer)
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return nil
}

// Solvers returns the solver names Expert knows: the fixed-step methods of expert/ode and its
// adaptive Dormand-Prince 5(4) pair.
func Solvers() []string { return []string{"euler", "midpoint", "heun", "rk4", "dopri5"} }

// Dormand-Prince settings of the measurement: ode's default tolerances (1e-4 relative and
// absolute), and a budget far above what a smooth field needs (a few dozen evaluations) that
// still bounds a measurement on a field the solver cannot resolve.
const (
	dopriTol      = 1e-4
	dopriMaxEvals = 2000
)

// solver is what the expert/ode samplers share beyond expert.Sampler.
type solver interface {
	Solve(ctx context.Context, dst, x0 []float32, f expert.Field) (ode.Stats, error)
}

// newSolver returns the solver name with steps uniform steps (fixed-step methods only) and
// whether it is adaptive.
func newSolver(name string, steps int) (solver, bool, error) {
	m := map[string]ode.Method{"euler": ode.Euler, "midpoint": ode.Midpoint, "heun": ode.Heun, "rk4": ode.RK4}
	if meth, ok := m[name]; ok {
		s := &ode.Fixed{Method: meth, Steps: steps}
		if err := s.Validate(); err != nil {
			return nil, false, fmt.Errorf("%w: %w", ErrConfig, err)
		}
		return s, false, nil
	}
	if name == "dopri5" {
		return &ode.DormandPrince{RTol: dopriTol, ATol: dopriTol, MaxEvals: dopriMaxEvals}, true, nil
	}
	return nil, false, fmt.Errorf("%w: unknown solver %q (want one of %v)", ErrConfig, name, Solvers())
}

// ExpertConfig is one expert measurement. The zero values of the optional fields take the
// defaults their comments give.
type ExpertConfig struct {
	Arch   string // nn.ArchMLP or nn.ArchTransformer
	Solver string // one of Solvers()
	// Steps is the number of uniform steps of a fixed-step solver; 0 means 10 (pi0's default).
	Steps int
	// Threads is the network's matrix-product threads, 1 or 2; 0 means 1.
	Threads int
	// Batch is the number of chunks sampled in one call (BindBatch: B conditions, one field over
	// B chunks); 0 means 1, at most MaxBatch.
	Batch int
	// Sizes are the network's sizes; the zero value means Reference().
	Sizes Sizes
	// Duration is the least total time of the timed chunks; 0 means 2 s.
	Duration time.Duration
	// Warmup is the number of untimed chunks first; 0 means 1 with one thread, 3 with two (the
	// runtime's caches of channel waiters fill up over the first chunks).
	Warmup int
	// MinReps is the least number of timed chunks; 0 means 3. MaxReps bounds it; 0 means 4096.
	MinReps, MaxReps int
	// Seed seeds the weights, the condition and the noise.
	Seed uint64
	// Weights is the precision of the network's copies of its weight matrices
	// (nn.Net.SetPrecision); the zero value is F32.
	Weights nn.Precision
}

func (c ExpertConfig) withDefaults() ExpertConfig {
	if c.Steps == 0 {
		c.Steps = 10
	}
	if c.Threads == 0 {
		c.Threads = 1
	}
	if c.Batch == 0 {
		c.Batch = 1
	}
	if c.Warmup == 0 {
		c.Warmup = 1
		if c.Threads == 2 {
			c.Warmup = 3
		}
	}
	if c.Sizes == (Sizes{}) {
		c.Sizes = Reference()
	}
	if c.Duration == 0 {
		c.Duration = 2 * time.Second
	}
	if c.MinReps == 0 {
		c.MinReps = 3
	}
	if c.MaxReps == 0 {
		c.MaxReps = 4096
	}
	return c
}

// Validate reports a bad field (after defaults); the architecture and solver names are checked
// by Expert.
func (c ExpertConfig) Validate() error {
	c = c.withDefaults()
	switch {
	case c.Steps < 0:
		return fmt.Errorf("%w: steps %d, want > 0", ErrConfig, c.Steps)
	case c.Threads != 1 && c.Threads != 2:
		return fmt.Errorf("%w: threads %d, want 1 or 2", ErrConfig, c.Threads)
	case c.Batch < 1 || c.Batch > MaxBatch:
		return fmt.Errorf("%w: batch %d, want 1 to %d", ErrConfig, c.Batch, MaxBatch)
	case c.Duration < 0:
		return fmt.Errorf("%w: duration %v is negative", ErrConfig, c.Duration)
	case c.Warmup < 0:
		return fmt.Errorf("%w: warm-up %d is negative", ErrConfig, c.Warmup)
	case c.MinReps < 0 || c.MaxReps < 0 || c.MinReps > c.MaxReps:
		return fmt.Errorf("%w: repetitions min %d max %d", ErrConfig, c.MinReps, c.MaxReps)
	}
	return c.Sizes.Validate()
}

// MaxBatch bounds ExpertConfig.Batch (a sanity limit on memory: the reference transformer's
// workspace grows by about 2 MB per chunk).
const MaxBatch = 256

// ExpertResult is the measured latency of one architecture, solver, thread count and batch. The
// times, CPU time, FLOPs and allocations are per call, which samples Batch chunks.
type ExpertResult struct {
	Arch    string `json:"arch"`
	Solver  string `json:"solver"`
	Steps   int    `json:"steps,omitempty"` // fixed-step solvers only
	Threads int    `json:"threads"`
	Batch   int    `json:"batch"`
	Weights string `json:"weights"` // f32, f16 or bf16
	Params  int    `json:"params"`  // the network's weights
	Reps    int    `json:"reps"`    // timed chunks

	MsMedian float64 `json:"ms_median"`
	MsP99    float64 `json:"ms_p99"`
	MsMin    float64 `json:"ms_min"`
	MsMean   float64 `json:"ms_mean"`

	Evals  float64 `json:"evals_per_chunk"` // velocity evaluations (mean; constant for fixed steps)
	MFLOP  float64 `json:"mflop_per_chunk"` // analytic: Batch x (Bind + Evals velocity evaluations)
	GFLOPS float64 `json:"gflops"`          // total FLOPs over total time

	// CPUMs is the process's CPU time (all threads) per chunk: on a loaded machine the wall time
	// stretches while the CPU time stays what the chunk costs. GFLOPPerCPUs is the total FLOPs
	// over that CPU time. Both are 0 where the CPU time is not known (non-unix systems).
	CPUMs        float64 `json:"cpu_ms_per_chunk"`
	GFLOPPerCPUs float64 `json:"gflop_per_cpu_s"`
	// PeakShare is GFLOPS over Threads times the measured FMA peak of one core (set by the
	// caller when the peak was measured; 0 otherwise).
	PeakShare float64 `json:"peak_share,omitempty"`

	Allocs      float64 `json:"allocs_per_chunk"`
	Bytes       float64 `json:"bytes_per_chunk"`
	AllocsTotal uint64  `json:"allocs_total"` // over all Reps chunks
}

// Expert measures c (see the package documentation). It returns early with ctx's error when ctx
// ends, and with an error if the adaptive solver exhausts its evaluation budget.
func Expert(ctx context.Context, c ExpertConfig) (ExpertResult, error) {
	if err := c.Validate(); err != nil {
		return ExpertResult{}, err
	}
	c = c.withDefaults()
	s, adaptive, err := newSolver(c.Solver, c.Steps)
	if err != nil {
		return ExpertResult{}, err
	}
	net, err := c.Sizes.NewNet(c.Arch, c.Threads, c.Seed)
	if err != nil {
		return ExpertResult{}, err
	}
	defer net.Close()
	fl, ok := net.(flopper)
	if !ok {
		return ExpertResult{}, fmt.Errorf("bench: %s network has no FLOP count", c.Arch)
	}
	net.SetPrecision(c.Weights)
	res := ExpertResult{Arch: c.Arch, Solver: c.Solver, Threads: c.Threads, Batch: c.Batch, Weights: c.Weights.String()}
	if !adaptive {
		res.Steps = c.Steps
	}
	for _, p := range net.Params() {
		res.Params += len(p.Data)
	}

	r := rand.New(rand.NewPCG(c.Seed, 0xc0d))
	width, state := net.CondShape()
	conds := make([]*expert.Condition, c.Batch)
	for i := range conds {
		conds[i] = &expert.Condition{Tokens: c.Sizes.Tokens, Width: width,
			Embedding: make([]float32, c.Sizes.Tokens*width), State: make([]float32, state)}
		expert.Noise(conds[i].Embedding, r)
		expert.Noise(conds[i].State, r)
	}
	h, d := net.Shape()
	x0, x := make([]float32, c.Batch*h*d), make([]float32, c.Batch*h*d)
	chunk := func() (ode.Stats, error) {
		expert.Noise(x0, r)
		f, err := bind(net, conds)
		if err != nil {
			return ode.Stats{}, err
		}
		st, err := s.Solve(ctx, x, x0, f)
		if err != nil {
			if ctx.Err() != nil {
				return st, ctx.Err()
			}
			return st, fmt.Errorf("bench: %s with %s: %w", c.Arch, c.Solver, err)
		}
		return st, nil
	}

	// Collect the garbage of the construction now rather than during the measurement (a cycle
	// also empties the runtime's caches of channel waiters, which the threads=2 pool refills);
	// then warm up: the first Bind and Solve size the workspaces.
	runtime.GC()
	for range c.Warmup {
		if _, err := chunk(); err != nil {
			return res, err
		}
	}
	ms := make([]float64, 0, c.MaxReps)
	evals := 0
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	cpu0 := cpuSeconds()
	start := time.Now()
	for len(ms) < c.MaxReps && (len(ms) < c.MinReps || time.Since(start) < c.Duration) {
		t0 := time.Now()
		st, err := chunk()
		dt := time.Since(t0)
		if err != nil {
			return res, err
		}
		ms = append(ms, float64(dt)/float64(time.Millisecond))
		evals += st.Evals
	}
	cpu := cpuSeconds() - cpu0
	runtime.ReadMemStats(&m1)
	n := float64(len(ms))
	res.Reps = len(ms)
	res.AllocsTotal = m1.Mallocs - m0.Mallocs
	res.Allocs = float64(res.AllocsTotal) / n
	res.Bytes = float64(m1.TotalAlloc-m0.TotalAlloc) / n
	res.Evals = float64(evals) / n
	bind, vel := fl.FLOPs(c.Sizes.Tokens)
	total := float64(c.Batch) * (n*float64(bind) + float64(evals)*float64(vel))
	res.MFLOP = total / n / 1e6
	sum := 0.0
	for _, v := range ms {
		sum += v
	}
	res.MsMean = sum / n
	if sum > 0 {
		res.GFLOPS = total / (sum / 1e3) / 1e9
	}
	if cpu > 0 {
		res.CPUMs = cpu * 1e3 / n
		res.GFLOPPerCPUs = total / cpu / 1e9
	}
	slices.Sort(ms)
	res.MsMin, res.MsMedian, res.MsP99 = ms[0], Quantile(ms, 0.5), Quantile(ms, 0.99)
	return res, nil
}

// bind binds conds to net: Bind for one, BindBatch for more.
func bind(net nn.Net, conds []*expert.Condition) (expert.Field, error) {
	if len(conds) == 1 {
		return net.Bind(conds[0])
	}
	switch m := net.(type) {
	case *nn.MLP:
		f, err := m.BindBatch(conds)
		if err != nil {
			return nil, err
		}
		return f, nil
	case *nn.Transformer:
		f, err := m.BindBatch(conds)
		if err != nil {
			return nil, err
		}
		return f, nil
	}
	return nil, fmt.Errorf("bench: %s network has no batch binding", net.Arch())
}

// Quantile returns the nearest-rank q-quantile (0 < q <= 1) of sorted, a non-empty increasing
// slice: the smallest value with at least a fraction q of the values at or below it.
func Quantile(sorted []float64, q float64) float64 {
	// ceil(n q) - 1, less a hair so that n q = 99 (from 0.99 x 100 in floating point) gives 98.
	k := int(math.Ceil(float64(len(sorted))*q-1e-9)) - 1
	return sorted[max(0, min(k, len(sorted)-1))]
}
