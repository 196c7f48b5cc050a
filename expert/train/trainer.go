package train

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"reflect"
	"sync"
	"time"

	G "gorgonia.org/gorgonia"

	"github.com/flowact/flowact/expert/ckpt"
	"github.com/flowact/flowact/expert/nn"
	"github.com/flowact/flowact/expert/nn/blas32"
	"github.com/flowact/flowact/expert/path"
)

// Objective is what the network is trained to output.
type Objective int

const (
	// FlowMatching trains the velocity of the conditional flow-matching path (the default).
	FlowMatching Objective = iota
	// Regression trains the network, fed x = 0 and t = 0, to output the chunk itself under the
	// same masked MSE: the deterministic regressor baseline that averages modes. Its prediction
	// is one Velocity evaluation at x = 0, t = 0.
	Regression
)

// String returns the objective's name in a checkpoint manifest (ckpt.ObjectiveFlowMatching,
// ckpt.ObjectiveRegression).
func (o Objective) String() string {
	switch o {
	case FlowMatching:
		return ckpt.ObjectiveFlowMatching
	case Regression:
		return ckpt.ObjectiveRegression
	}
	return fmt.Sprintf("Objective(%d)", int(o))
}

// ParseObjective parses a manifest's objective; "" is FlowMatching (checkpoints from before
// objectives were recorded).
func ParseObjective(s string) (Objective, error) {
	switch s {
	case "", ckpt.ObjectiveFlowMatching:
		return FlowMatching, nil
	case ckpt.ObjectiveRegression:
		return Regression, nil
	}
	return 0, fmt.Errorf("%w: objective %q: want %s or %s", ErrConfig, s, ckpt.ObjectiveFlowMatching, ckpt.ObjectiveRegression)
}

// Config configures a training run. Zero values take the documented defaults.
type Config struct {
	Steps     int // optimizer steps; required
	BatchSize int // examples per step; default 64

	LR     float64 // peak learning rate; default 1e-3
	MinLR  float64 // learning rate at the end of the cosine decay; default 0
	Warmup int     // steps of linear warmup from 0 to LR; default 0
	Beta1  float64 // AdamW first-moment decay; default 0.9
	Beta2  float64 // AdamW second-moment decay; default 0.999
	Eps    float64 // AdamW epsilon; default 1e-8
	Decay  float64 // AdamW decoupled weight decay on weight matrices (not biases); default 0
	Clip   float64 // global gradient-norm clip; 0 means none
	EMA    float64 // decay of the weights' moving average, warmed up (see EMADecay); 0 means none
	Seed   uint64  // every random draw derives from (Seed, step)

	// Scheduler is the probability path (default path.CondOT); TimeDist the training-time
	// distribution (default path.Uniform). Validate refuses a pair whose velocity target can be
	// infinite (path.ValidateTraining: Polynomial{N < 1}, infinite at t = 0).
	Scheduler path.Scheduler
	TimeDist  path.TimeDist
	// MaxPrefix is the largest committed prefix: each example commits d ~ U{0..MaxPrefix}
	// (capped at its valid length) leading steps, fed clean and left out of the loss. Default 0.
	MaxPrefix int
	// ColdPrefix is the share of examples trained with no prefix (the cold start: a loop's first
	// chunk, or any chunk after the plan ran out); the others commit d ~ U{1..MaxPrefix}. With
	// MaxPrefix 20 the uniform draw gives the cold start 1 example in 21. 0 keeps the uniform
	// U{0..MaxPrefix} (and its random draws, so former runs repeat bit for bit); in [0, 1).
	ColdPrefix float64
	// PrefixDrift makes the committed prefix stale, as a deployed loop's is: the prefix is the
	// plan of a chunk sampled a delay earlier, which drifts from where the data go, while in the
	// data the prefix is the demonstrator's own future and tells where the target went. With
	// PrefixDrift s > 0 every example with a prefix of d steps gets, per action dimension, a
	// drift rate v ~ N(0, s^2) in normalized units per step: step i < d of the prefix is moved by
	// v (i + 1), and the steps after it rejoin the data within PrefixRecover steps along a cubic
	// that continues the drift's offset and slope and ends at zero with zero slope. The loss
	// counts the rejoining steps, so the expert learns to leave a stale plan for the one the
	// observation calls for. 0 (the default) draws nothing, so former runs repeat bit for bit.
	PrefixDrift float64
	// PrefixRecover is the number of steps a drifted prefix rejoins the data in (default 10,
	// 200 ms at 50 Hz).
	PrefixRecover int
	Objective     Objective

	// ValEvery is the validation period in steps (0: only at the end, if a validation source
	// is given); ValBatches the number of validation batches (default 4).
	ValEvery   int
	ValBatches int

	// Progress receives a progress bar (terminal) or periodic lines (other writers) every
	// LogEvery steps (default 100); Log receives one JSON object per logged step. nil: silent.
	Progress io.Writer
	Log      io.Writer
	LogEvery int
	// Now gives the wall clock for rates and the checkpoint date; default time.Now.
	Now func() time.Time
	// Threads is the matrix products' threads, 1 or 2; 0 means 1. Gorgonia's BLAS is one per
	// process: the last Trainer made sets it for all (results do not depend on it: every
	// element of a product is summed in the same order on one thread or two).
	Threads int

	// Checkpoint, if not nil, is called by Run after every CheckpointEvery-th step (0: never)
	// but the last, with the steps done (typically to call Save); its error ends the run.
	Checkpoint      func(step int) error
	CheckpointEvery int
}

func (c Config) withDefaults() Config {
	if c.BatchSize == 0 {
		c.BatchSize = 64
	}
	if c.LR == 0 {
		c.LR = 1e-3
	}
	if c.Beta1 == 0 {
		c.Beta1 = 0.9
	}
	if c.Beta2 == 0 {
		c.Beta2 = 0.999
	}
	if c.Eps == 0 {
		c.Eps = 1e-8
	}
	if c.Scheduler == nil {
		c.Scheduler = path.CondOT{}
	}
	if c.TimeDist == nil {
		c.TimeDist = path.Uniform{}
	}
	if c.ValBatches == 0 {
		c.ValBatches = 4
	}
	if c.PrefixRecover == 0 {
		c.PrefixRecover = 10
	}
	if c.LogEvery == 0 {
		c.LogEvery = 100
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// ErrConfig reports an invalid training configuration.
var ErrConfig = errors.New("train: invalid config")

// Validate checks the config (after defaults).
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.Steps <= 0:
		return fmt.Errorf("%w: steps %d", ErrConfig, c.Steps)
	case c.BatchSize <= 0:
		return fmt.Errorf("%w: batch size %d", ErrConfig, c.BatchSize)
	case c.LR < 0 || c.MinLR < 0 || c.MinLR > c.LR:
		return fmt.Errorf("%w: learning rates %g, %g", ErrConfig, c.LR, c.MinLR)
	case c.Warmup < 0 || c.Warmup > c.Steps:
		return fmt.Errorf("%w: warmup %d of %d steps", ErrConfig, c.Warmup, c.Steps)
	case c.Beta1 < 0 || c.Beta1 >= 1 || c.Beta2 < 0 || c.Beta2 >= 1 || c.Eps <= 0:
		return fmt.Errorf("%w: adam betas %g, %g, eps %g", ErrConfig, c.Beta1, c.Beta2, c.Eps)
	case c.Decay < 0 || c.Clip < 0 || c.EMA < 0 || c.EMA >= 1:
		return fmt.Errorf("%w: decay %g, clip %g, ema %g", ErrConfig, c.Decay, c.Clip, c.EMA)
	case c.MaxPrefix < 0:
		return fmt.Errorf("%w: max prefix %d", ErrConfig, c.MaxPrefix)
	case !(c.ColdPrefix >= 0 && c.ColdPrefix < 1):
		return fmt.Errorf("%w: cold prefix share %g not in [0, 1)", ErrConfig, c.ColdPrefix)
	case c.ColdPrefix > 0 && c.MaxPrefix == 0:
		return fmt.Errorf("%w: cold prefix share %g without a max prefix", ErrConfig, c.ColdPrefix)
	case !(c.PrefixDrift >= 0 && c.PrefixDrift <= 1):
		return fmt.Errorf("%w: prefix drift %g not in [0, 1] (normalized units per step)", ErrConfig, c.PrefixDrift)
	case c.PrefixDrift > 0 && c.MaxPrefix == 0:
		return fmt.Errorf("%w: prefix drift %g without a max prefix", ErrConfig, c.PrefixDrift)
	case c.PrefixRecover < 0:
		return fmt.Errorf("%w: prefix recover %d steps", ErrConfig, c.PrefixRecover)
	case c.Threads < 0 || c.Threads > 2:
		return fmt.Errorf("%w: threads %d, want 1 or 2 (0 means 1)", ErrConfig, c.Threads)
	case c.Objective != FlowMatching && c.Objective != Regression:
		return fmt.Errorf("%w: objective %d", ErrConfig, c.Objective)
	case c.ValEvery < 0 || c.ValBatches < 0 || c.LogEvery < 0:
		return fmt.Errorf("%w: negative period", ErrConfig)
	}
	if c.Objective == FlowMatching {
		// A scheduler and time distribution whose velocity target can be infinite
		// (Polynomial{N < 1} at t = 0) are refused here, before any step writes one.
		if err := path.ValidateTraining(c.Scheduler, c.TimeDist); err != nil {
			return fmt.Errorf("%w: %w", ErrConfig, err)
		}
	}
	return nil
}

// Point is one logged step of a run.
type Point struct {
	Step     int     `json:"step"`
	Loss     float64 `json:"loss"`               // mean training loss since the last point
	ValLoss  float64 `json:"val_loss,omitempty"` // validation loss, if computed at this step
	LR       float64 `json:"lr"`
	GradNorm float64 `json:"grad_norm"` // before clipping, at this step
	Elapsed  float64 `json:"elapsed_s"`
}

// Trainer trains one network. It owns the network's gorgonia graph; the network's weights are
// the graph's (raw, not averaged) parameters and change in place as training runs.
type Trainer struct {
	cfg  Config
	net  nn.Net
	step int

	m, v, ema [][]float32 // per parameter, in net.Params() order

	// Built on the first batch (the transformer's graph depends on the token count).
	b      *builder
	g      graph
	vm     G.VM
	loss   *G.Node
	tokens int

	bt           Batch
	x            []float32 // network input chunks
	ts           []float64
	ds           []int
	drift        []float64 // an example's drift rates (Config.PrefixDrift)
	lossMaskData []float32 // loss weights: mask / number of loss terms
	targetData   []float32
	gradBufs     [][]float32
	upd          update
	lastNorm     float64
	swap         [][]float32 // the training weights while Validate runs the moving average

	// History holds the logged points of every Run.
	History []Point

	keepAll              bool // compile the whole graph, unneeded gradients too (tests)
	graphNodes, runNodes int  // nodes of the graph and of what runs
}

// New returns a trainer for net starting at step 0.
func New(net nn.Net, cfg Config) (*Trainer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	useKernels.Do(func() { G.Use(kernelBLAS) })
	kernelBLAS.SetThreads(cfg.Threads)
	t := &Trainer{cfg: cfg, net: net}
	for _, p := range net.Params() {
		t.m = append(t.m, make([]float32, len(p.Data)))
		t.v = append(t.v, make([]float32, len(p.Data)))
		if cfg.EMA > 0 {
			t.ema = append(t.ema, append([]float32(nil), p.Data...))
		}
	}
	return t, nil
}

// useKernels gives gorgonia (a process-wide setting of its own) expert/nn's matrix kernels as
// its BLAS, once, when the first Trainer is made; kernelBLAS is that BLAS (its thread count set
// by each New). Both are package state only because gorgonia's BLAS is.
var (
	useKernels sync.Once
	kernelBLAS = &blas32.Implementation{}
)

// Step returns the number of optimizer steps taken.
func (t *Trainer) Step() int { return t.step }

// Close releases the graph's machine.
func (t *Trainer) Close() {
	if t.vm != nil {
		t.vm.Close()
		t.vm = nil
	}
}

// build makes the graph and the loss for batches of cfg.BatchSize with the given tokens.
func (t *Trainer) build(tokens int) error {
	B := t.cfg.BatchSize
	h, d := t.net.Shape()
	b := newBuilder(t.net)
	g, err := newGraph(b, t.net, B, tokens)
	if err != nil {
		return err
	}
	t.targetData = make([]float32, B*h*d)
	t.lossMaskData = make([]float32, B*h*d)
	target := b.input("target", t.targetData, B, h*d)
	wmask := b.input("wmask", t.lossMaskData, B, h*d)
	v := g.velocity()
	if v.Shape()[0] != B {
		v = b.do(G.Reshape(v, []int{B, h * d}))
	}
	diff := b.sub(v, target)
	loss := b.do(G.Sum(b.had(wmask, b.had(diff, diff))))
	if b.err != nil {
		return b.err
	}
	grads, err := G.Grad(loss, b.order...)
	if err != nil {
		return fmt.Errorf("train: gradient: %w", err)
	}
	t.b, t.g, t.loss, t.tokens = b, g, loss, tokens
	// Gorgonia's symbolic differentiation makes a gradient node for every operand of every
	// differentiated op, also for the ones nobody asked for: the inputs (the noisy actions,
	// embedding, state, time features), LayerNorm's averaging constants, the target and the
	// mask. Compiling only what the loss and the parameters' gradients depend on leaves those
	// out (for the first layer's input gradient, a product as large as its forward one).
	t.graphNodes = len(b.g.AllNodes())
	run := b.g
	if !t.keepAll {
		run = b.g.ExactSubgraphRoots(append(grads, loss)...)
	}
	t.runNodes = len(run.AllNodes())
	t.vm = G.NewTapeMachine(run, G.BindDualValues(b.order...))
	t.x = make([]float32, B*h*d)
	t.ts = make([]float64, B)
	t.ds = make([]int, B)
	t.drift = make([]float64, 0, d)
	return nil
}

// prepare draws a batch and its flow-matching inputs for one step with rng r, and returns the
// number of loss terms.
func (t *Trainer) prepare(src Source, r *rand.Rand) (float64, error) {
	t.bt.B = t.cfg.BatchSize
	if err := src.Next(&t.bt, r); err != nil {
		return 0, fmt.Errorf("train: batch: %w", err)
	}
	h, d := t.net.Shape()
	width, state := t.net.CondShape()
	if err := t.bt.check(h, d, width, state); err != nil {
		return 0, err
	}
	if t.g == nil {
		if err := t.build(t.bt.Tokens); err != nil {
			return 0, err
		}
	} else if t.bt.Tokens != t.tokens {
		return 0, fmt.Errorf("%w: %d condition tokens, the graph was built for %d", ErrBatch, t.bt.Tokens, t.tokens)
	}
	bt := &t.bt
	var count float64
	for i := 0; i < bt.B; i++ {
		n := bt.steps(i)
		dp := 0
		if t.cfg.MaxPrefix > 0 && t.cfg.Objective == FlowMatching {
			switch {
			case t.cfg.ColdPrefix == 0:
				dp = min(r.IntN(t.cfg.MaxPrefix+1), n)
			case r.Float64() >= t.cfg.ColdPrefix:
				dp = min(1+r.IntN(t.cfg.MaxPrefix), n)
			}
		}
		drift := t.drift[:0]
		if dp > 0 && t.cfg.PrefixDrift > 0 {
			for range d {
				drift = append(drift, t.cfg.PrefixDrift*r.NormFloat64())
			}
		}
		tt := t.cfg.TimeDist.Sample(r)
		if t.cfg.Objective == Regression {
			tt = 0
		}
		c := t.cfg.Scheduler.At(tt)
		t.ts[i], t.ds[i] = tt, dp
		for s := 0; s < h; s++ {
			var off float64
			if len(drift) > 0 {
				off = staleOffset(s, dp, t.cfg.PrefixRecover)
			}
			for j := 0; j < d; j++ {
				k := i*h*d + s*d + j
				x1 := float64(bt.Actions[k])
				if len(drift) > 0 {
					x1 += drift[j] * off
				}
				x0 := r.NormFloat64()
				switch {
				case t.cfg.Objective == Regression:
					t.x[k], t.targetData[k] = 0, float32(x1)
				case s < dp:
					t.x[k], t.targetData[k] = float32(x1), 0
				default:
					t.x[k] = float32(c.Alpha*x1 + c.Sigma*x0)
					t.targetData[k] = float32(c.DAlpha*x1 + c.DSigma*x0)
				}
				w := float32(1)
				if s < dp || s >= n || (bt.DimMask != nil && bt.DimMask[i*d+j] == 0) {
					w = 0
				}
				t.lossMaskData[k] = w
				count += float64(w)
			}
		}
	}
	if count > 0 {
		inv := float32(1 / count)
		for k := range t.lossMaskData {
			t.lossMaskData[k] *= inv
		}
	}
	t.g.set(t.x, t.ts, t.ds, bt)
	return count, nil
}

// staleOffset is the displacement of step s, in units of the drift rate, of an example whose
// prefix of d steps drifted (Config.PrefixDrift): s + 1 within the prefix, then a cubic
// Hermite segment over recover steps from the prefix's last offset d and slope 1 to offset 0
// and slope 0.
func staleOffset(s, d, recover int) float64 {
	if s < d {
		return float64(s + 1)
	}
	u := float64(s-d+1) / float64(recover)
	if u >= 1 {
		return 0
	}
	p0, m0 := float64(d), float64(recover) // offset and slope (per unit of u) at the prefix's end
	return p0*(2*u*u*u-3*u*u+1) + m0*(u*u*u-2*u*u+u)
}

// run executes the graph once and returns the loss.
func (t *Trainer) run() (float64, error) {
	if err := t.vm.RunAll(); err != nil {
		return 0, fmt.Errorf("train: graph: %w", err)
	}
	defer t.reset()
	return float64(t.loss.Value().Data().(float32)), nil
}

// reset readies the machine for the next run. Gorgonia accumulates gradients into the
// parameters' dual values across runs, so they are zeroed here.
func (t *Trainer) reset() {
	for _, n := range t.b.order {
		if g, err := n.Grad(); err == nil {
			clear(g.Data().([]float32))
		}
	}
	t.vm.Reset()
}

// LR returns the learning rate at step s (0-based): linear warmup, then cosine decay to MinLR.
func (t *Trainer) LR(s int) float64 {
	c := t.cfg
	if s < c.Warmup {
		return c.LR * float64(s+1) / float64(c.Warmup)
	}
	span := c.Steps - c.Warmup
	if span <= 0 {
		return c.LR
	}
	p := math.Min(1, float64(s-c.Warmup)/float64(span))
	return c.MinLR + 0.5*(c.LR-c.MinLR)*(1+math.Cos(math.Pi*p))
}

// stepRand is the random stream of step s: every draw of a step depends only on (Seed, s), so a
// resumed run repeats an uninterrupted one bit for bit.
func (t *Trainer) stepRand(s int) *rand.Rand {
	return rand.New(rand.NewPCG(t.cfg.Seed, uint64(s)))
}

// Run trains from the current step to cfg.Steps. val, if not nil, gives the validation loss
// every ValEvery steps and at the end. It stops early with ctx's error.
func (t *Trainer) Run(ctx context.Context, src, val Source) error {
	rep := newReporter(t.cfg, t.step)
	defer rep.finish()
	var sum float64
	var n int
	for t.step < t.cfg.Steps {
		if err := ctx.Err(); err != nil {
			return err
		}
		s := t.step
		count, err := t.prepare(src, t.stepRand(s))
		if err != nil {
			return err
		}
		loss, err := t.runUpdate(s, count)
		if err != nil {
			return err
		}
		sum += loss
		n++
		t.step++
		last := t.step == t.cfg.Steps
		if t.step%t.cfg.LogEvery == 0 || last {
			p := Point{Step: t.step, Loss: sum / float64(n), LR: t.LR(s), GradNorm: t.lastNorm}
			sum, n = 0, 0
			if val != nil && (last || (t.cfg.ValEvery > 0 && t.step%t.cfg.ValEvery == 0)) {
				if p.ValLoss, err = t.Validate(val); err != nil {
					return err
				}
			}
			p.Elapsed = rep.elapsed()
			t.History = append(t.History, p)
			if err := rep.point(p); err != nil {
				return err
			}
		}
		if t.cfg.Checkpoint != nil && t.cfg.CheckpointEvery > 0 && t.step%t.cfg.CheckpointEvery == 0 && !last {
			if err := t.cfg.Checkpoint(t.step); err != nil {
				return err
			}
		}
	}
	return nil
}

// runUpdate runs the graph on the prepared step and applies one AdamW update.
func (t *Trainer) runUpdate(s int, count float64) (float64, error) {
	if err := t.vm.RunAll(); err != nil {
		return 0, fmt.Errorf("train: graph: %w", err)
	}
	loss := float64(t.loss.Value().Data().(float32))
	grads := t.gradBufs[:0]
	for _, n := range t.b.order {
		gv, err := n.Grad()
		if err != nil {
			t.reset()
			return 0, fmt.Errorf("train: gradient of %s: %w", n.Name(), err)
		}
		grads = append(grads, gv.Data().([]float32))
	}
	t.gradBufs = grads
	u := &t.upd
	*u = update{t: t, s: s, grads: grads, apply: count > 0}
	kernelBLAS.Run(u, 2)
	norm := u.norm
	*u = update{}
	t.lastNorm = norm
	if math.IsNaN(norm) || math.IsInf(norm, 0) {
		// The update was not applied (update.Phase sees the norm first).
		t.reset()
		return 0, fmt.Errorf("train: step %d: gradient norm is %v", s, norm)
	}
	t.reset()
	return loss, nil
}

// update is one optimizer step over the two threads of the matrix products (blas32.Run): phase
// 0 sums the squares of each half of the gradient, phase 1 clips by the norm and applies AdamW
// to each half of the parameters. The halves are the same on one thread and on two (each
// parameter's first and second half of its elements), and the norm is always the sum of the two
// halves' sums, so results do not depend on the threads.
type update struct {
	t     *Trainer
	s     int
	grads [][]float32
	apply bool
	sq    [2]float64 // the halves' sums of squares (phase 0)
	norm  float64    // the gradient's norm (phase 1)
}

func (u *update) Phase(part, parts, ph int) {
	for h := part; h < 2; h += parts {
		if ph == 0 {
			sq := 0.0
			for _, g := range u.grads {
				for _, x := range halfOf(g, h) {
					sq += float64(x) * float64(x)
				}
			}
			u.sq[h] = sq
			continue
		}
		norm := math.Sqrt(u.sq[0] + u.sq[1])
		if h == 0 {
			u.norm = norm
		}
		if !u.apply || math.IsNaN(norm) || math.IsInf(norm, 0) {
			continue
		}
		gs := 1.0
		if c := u.t.cfg.Clip; c > 0 && norm > c {
			gs = c / norm
		}
		u.t.adamW(u.s, u.grads, gs, h)
	}
}

// halfOf returns half h (0 or 1) of x's elements.
func halfOf[T any](x []T, h int) []T {
	m := len(x) / 2
	if h == 0 {
		return x[:m]
	}
	return x[m:]
}

// adamW applies one AdamW step (Loshchilov & Hutter 2019) to half h of every parameter's
// elements: bias-corrected Adam moments and a decoupled weight decay on weight matrices, fused
// with the moving average's update in one float32 pass over each parameter (the per-step
// constants are computed in float64 once).
func (t *Trainer) adamW(s int, grads [][]float32, gscale float64, h int) {
	c := t.cfg
	lr := t.LR(s)
	k := float64(s + 1)
	bc1 := 1 - math.Pow(c.Beta1, k)
	bc2 := 1 - math.Pow(c.Beta2, k)
	b1, b2 := float32(c.Beta1), float32(c.Beta2)
	gs := float32(gscale)
	// upd = (m/bc1) / (sqrt(v/bc2) + eps) = m·(sqrt(bc2)/bc1) / (sqrt(v) + eps·sqrt(bc2)).
	stepSize := float32(lr * math.Sqrt(bc2) / bc1)
	eps := float32(c.Eps * math.Sqrt(bc2))
	ed := EMADecay(c.EMA, s) // warmed up: see EMADecay
	ema, emaKeep := float32(1-ed), float32(ed)
	for i, p := range t.net.Params() {
		w := halfOf(p.Data, h)
		g, m, v := halfOf(grads[i][:len(p.Data)], h), halfOf(t.m[i], h), halfOf(t.v[i], h)
		g, m, v = g[:len(w)], m[:len(w)], v[:len(w)]
		keep := float32(1)
		if len(p.Shape) >= 2 {
			keep = float32(1 - lr*c.Decay)
		}
		var e []float32
		if t.ema != nil {
			e = halfOf(t.ema[i], h)[:len(w)]
		}
		for j, wj := range w {
			gj := g[j] * gs
			mj := b1*m[j] + (1-b1)*gj
			vj := b2*v[j] + (1-b2)*gj*gj
			m[j], v[j] = mj, vj
			wj = wj*keep - stepSize*mj/(float32(math.Sqrt(float64(vj)))+eps)
			w[j] = wj
			if e != nil {
				e[j] = emaKeep*e[j] + ema*wj
			}
		}
	}
}

// EMADecay returns the decay of the weights' moving average at update s (0-based):
// min(ema, (1+s)/(10+s)), the warm-up of TensorFlow's ExponentialMovingAverage with num_updates.
// Without it the average starts from the initial weights and forgets them as ema^s: with
// ema = 0.999 they still make 74% of it after 300 steps (0.999^300), so a short run's checkpoint
// is mostly its random initialization. With it the decay starts at 0.1 and follows
// (1+s)/(10+s), an average over the last ~s/9 steps, until it reaches ema, at update
// 9/(1-ema) - 10 (8990 for 0.999, 890 for 0.99); from there it is the configured decay, so a run
// long past that point (the shipped recipe: 20000 steps at 0.999) averages as it did without
// the warm-up, and what precedes that point keeps a weight of at most ema^(steps - 8990)
// (2e-5 there).
func EMADecay(ema float64, s int) float64 {
	return min(ema, float64(1+s)/float64(10+s))
}

// Validate returns the mean loss over ValBatches batches of val, drawn from a fixed stream so
// values at different steps compare. It evaluates the weights a checkpoint would hold (the
// moving average when EMA is on) and leaves the training weights as they were, bit for bit.
func (t *Trainer) Validate(val Source) (float64, error) {
	if t.ema != nil {
		ps := t.net.Params()
		if t.swap == nil {
			t.swap = make([][]float32, len(ps))
			for i, p := range ps {
				t.swap[i] = make([]float32, len(p.Data))
			}
		}
		for i, p := range ps {
			copy(t.swap[i], p.Data)
			copy(p.Data, t.ema[i])
		}
		defer func() {
			for i, p := range ps {
				copy(p.Data, t.swap[i])
			}
		}()
	}
	var sum float64
	for i := 0; i < t.cfg.ValBatches; i++ {
		r := rand.New(rand.NewPCG(t.cfg.Seed^valStream, uint64(i)))
		if _, err := t.prepare(val, r); err != nil {
			return 0, err
		}
		l, err := t.run()
		if err != nil {
			return 0, err
		}
		sum += l
	}
	return sum / float64(max(t.cfg.ValBatches, 1)), nil
}

// valStream separates the validation stream from the training streams (an arbitrary constant).
const valStream = 0x9e3779b97f4a7c15

// CopyTo copies the trained weights into dst, a network of the same architecture and config:
// the moving average if ema is set (and EMA is on), else the raw weights.
func (t *Trainer) CopyTo(dst nn.Net, ema bool) error {
	src := t.net.Params()
	ps := dst.Params()
	if dst.Arch() != t.net.Arch() || len(ps) != len(src) {
		return fmt.Errorf("train: copy to %s with %d tensors: %w", dst.Arch(), len(ps), ErrConfig)
	}
	for i, p := range ps {
		if p.Name != src[i].Name || len(p.Data) != len(src[i].Data) {
			return fmt.Errorf("train: copy: tensor %q vs %q: %w", p.Name, src[i].Name, ckpt.ErrShape)
		}
		if ema && t.ema != nil {
			copy(p.Data, t.ema[i])
		} else {
			copy(p.Data, src[i].Data)
		}
	}
	dst.Repack()
	return nil
}

// component names a scheduler or distribution by its Go type name with its exported fields as
// parameters.
func component(v any) ckpt.Component {
	ty := reflect.TypeOf(v)
	for ty.Kind() == reflect.Pointer {
		ty = ty.Elem()
	}
	params, err := json.Marshal(v)
	if err != nil {
		params = nil
	}
	return ckpt.Component{Name: ty.Name(), Params: params}
}
