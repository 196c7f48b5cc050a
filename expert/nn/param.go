package nn

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/flowact/flowact/expert"
	"github.com/flowact/flowact/expert/nn/internal/kern"
)

// Param is one named weight tensor of a network; Data aliases the network's master copy of it.
// The kernels compute with packed copies of the weight matrices (see Net.Repack): after writing
// Data, call Repack.
type Param struct {
	Name  string
	Shape []int
	Data  []float32
}

// Net is a network of this package: a conditional velocity field with named weights.
type Net interface {
	expert.Model
	// Arch names the architecture ("mlp", "transformer"); it is the checkpoint's architecture.
	Arch() string
	// CondShape returns the embedding width and the state length the network is conditioned on.
	CondShape() (width, state int)
	// Params lists the weights in a fixed order; the slices alias the network's storage.
	Params() []Param
	// Repack rebuilds the kernels' packed copies of the weight matrices from Params' Data. The
	// constructors, Init and SetWeights do it; a caller that writes Data directly calls it
	// before the next Bind. It allocates nothing.
	Repack()
	// SetPrecision sets the precision of the kernels' copies of the weight matrices: F32 (the
	// default), F16 (IEEE binary16) or BF16 (bfloat16, rounded to nearest even), the 16-bit
	// ones widened to float32 inside the matrix products with float32 accumulation. Params
	// keep the float32 master copy; biases, position embeddings and normalization stay
	// float32. It allocates the packed copies anew; call it between chunks, not during one.
	SetPrecision(p Precision)
	// Precision returns the precision of the weight matrices' copies.
	Precision() Precision
	// Close stops the network's worker goroutine, if any. It is idempotent.
	Close()
}

// Precision is how the kernels store a network's weight matrices (Net.SetPrecision).
type Precision = kern.Precision

// The weight precisions; their String values "f32", "f16" and "bf16" are what ParsePrecision
// reads (policy files' expert.weights, the --weights flags).
const (
	F32  = kern.F32
	F16  = kern.F16
	BF16 = kern.BF16
)

// ParsePrecision reads "f32", "f16" or "bf16"; anything else is an error wrapping
// ErrPrecision that names it.
func ParsePrecision(s string) (Precision, error) { return kern.ParsePrecision(s) }

// ErrPrecision: an unknown weight precision name.
var ErrPrecision = kern.ErrPrecision

// Errors of this package.
var (
	ErrConfig    = errors.New("nn: invalid config")
	ErrCondition = errors.New("nn: condition does not fit the network")
	// ErrNotFinite: a checkpoint's weight is NaN or infinite (a diverged training, or a broken
	// file whose checksum was made after the damage). Such a network would put NaN in every
	// chunk: Load refuses it.
	ErrNotFinite = errors.New("nn: weight not finite")
)

// core is what every network of this package holds besides its layers: the weights, the
// matrix-product pool, the kernels and the weights' precision, with the Net methods that need
// nothing else.
type core struct {
	ps   params
	pool *kern.Pool
	arch *kern.Arch // nil in a layout-only network
	prec Precision  // of the packed weight matrices
}

// Params lists the weights (see Net).
func (m *core) Params() []Param { return m.ps.list }

// Precision returns the weight matrices' precision (see Net).
func (m *core) Precision() Precision { return m.prec }

// Close stops the worker goroutine (Threads = 2).
func (m *core) Close() { m.pool.Close() }

// WorkerThreads returns the OS thread ids of the threads the network computes on besides the
// caller's (its matrix-product worker, with 2 threads; Linux only), for binding them to CPUs.
func (m *core) WorkerThreads() []int {
	if tid := m.pool.WorkerThread(); tid != 0 {
		return []int{tid}
	}
	return nil
}

// params builds a network's parameter list in one backing array.
// In a dry run (layout only) it records names and shapes and allocates nothing.
type params struct {
	list []Param
	dry  bool
}

func (p *params) add(name string, shape ...int) []float32 {
	if p.dry {
		p.list = append(p.list, Param{Name: name, Shape: shape})
		return nil
	}
	n := 1
	for _, s := range shape {
		n *= s
	}
	p.list = append(p.list, Param{Name: name, Shape: shape, Data: make([]float32, n)})
	return p.list[len(p.list)-1].Data
}

// Init sets every weight matrix of net to a normal with standard deviation gain/sqrt(fan in),
// where fan in is the first dimension, and every vector (bias) to zero; r drives it. Use it to get
// random but well-scaled weights (tests, parity); each network's constructor applies its own
// training initialization.
func Init(net Net, r *rand.Rand, gain float64) {
	for _, p := range net.Params() {
		if len(p.Shape) < 2 {
			clear(p.Data)
			continue
		}
		std := gain / math.Sqrt(float64(p.Shape[0]))
		for i := range p.Data {
			p.Data[i] = float32(r.NormFloat64() * std)
		}
	}
	net.Repack()
}

// TimeFeatures writes the sinusoidal features of flow time t to dst (even length F): for
// k < F/2, dst[k] = sin(2πt/p_k) and dst[F/2+k] = cos(2πt/p_k) with periods p_k geometric from
// 4e-3 to 4 (openpi pi0's posemb_sincos; its min and max periods).
func TimeFeatures(dst []float32, t float64) {
	half := len(dst) / 2
	for k := 0; k < half; k++ {
		frac := 0.0
		if half > 1 {
			frac = float64(k) / float64(half-1)
		}
		period := minPeriod * math.Pow(maxPeriod/minPeriod, frac)
		a := 2 * math.Pi * t / period
		dst[k] = float32(math.Sin(a))
		dst[half+k] = float32(math.Cos(a))
	}
}

const (
	minPeriod = 4e-3
	maxPeriod = 4.0
)

// lnEps is the LayerNorm epsilon (DiT's 1e-6).
const lnEps = 1e-6

// prefixVelocity overwrites the committed rows of v with the straight-path velocity toward the
// committed actions: (p - x)/(1 - t), or 0 at t >= 1.
func prefixVelocity(v, x, p []float32, t float64) {
	if t >= 1 {
		clear(v[:len(p)])
		return
	}
	inv := float32(1 / (1 - t))
	for i, pv := range p {
		v[i] = (pv - x[i]) * inv
	}
}

// checkCond validates a condition against a network's expected sizes.
func checkCond(c *expert.Condition, h, d, width, state int) error {
	if c == nil {
		return fmt.Errorf("%w: nil condition", ErrCondition)
	}
	if c.Tokens <= 0 || c.Width != width {
		return fmt.Errorf("%w: embedding %d x %d, want tokens > 0 of width %d", ErrCondition, c.Tokens, c.Width, width)
	}
	if len(c.Embedding) != c.Tokens*c.Width {
		return fmt.Errorf("%w: embedding has %d values for %d x %d", ErrCondition, len(c.Embedding), c.Tokens, c.Width)
	}
	if len(c.State) != state {
		return fmt.Errorf("%w: state has %d values, want %d", ErrCondition, len(c.State), state)
	}
	if len(c.Prefix)%d != 0 || len(c.Prefix) > h*d {
		return fmt.Errorf("%w: prefix has %d values, want a multiple of D = %d up to H x D = %d", ErrCondition, len(c.Prefix), d, h*d)
	}
	return nil
}

// dense is a linear layer y = x·W + b: W is [in, out] (aliasing its parameter), b has out
// values (nil: none), and packed is W packed for the kernels.
type dense struct {
	w, b    []float32
	in, out int
	packed  *kern.Matrix
}

// pack (re)packs W, allocating the packed matrix the first time and when the precision changes.
func (d *dense) pack(ar *kern.Arch, p Precision) {
	if d.packed == nil || d.packed.Precision() != p {
		d.packed = ar.NewMatrix(d.in, d.out, p)
	}
	d.packed.Set(d.w, d.out, 1)
}

// scratch returns the kernel scratch a product of rows rows by W needs.
func (d *dense) scratch(rows int) int { return d.packed.Scratch(rows) }

// apply computes y = x·W + b for rows rows of x on pool, with scratch ws.
func (d *dense) apply(p *kern.Pool, y, x []float32, rows int, ws []float32) {
	p.Linear(y, d.packed, d.b, x, rows, ws)
}

func grow(s []float32, n int) []float32 {
	if cap(s) < n {
		return make([]float32, n)
	}
	return s[:n]
}

// Sigmoid applies the logistic function 1/(1+e^-x) to x in place with the networks' vectorized
// float32 kernels (the exp of internal/kern: within a few float32 ulps of the exact value). It
// is expert/train's sigmoid, so that training and inference compute SiLU alike.
func Sigmoid(x []float32) { kern.Best().Sigmoid(x) }
