package refnet

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/flowact/flowact/expert/nn"
	"github.com/flowact/flowact/expert/nn/internal/kern"
)

// Sizes of the reference networks (issue 19).
const (
	H        = 50  // chunk steps
	D        = 7   // action dimensions
	Cond     = 519 // condition: 512 pooled embedding + 7 state
	TimeF    = 64  // sinusoidal time features
	MLPWidth = 1024
	Width    = 256 // transformer width
	Layers   = 4
	Heads    = 4
	Ratio    = 4
	CondTok  = 16 // condition tokens of the transformer
	Steps    = 10 // Euler steps per chunk
)

// Net is a reference network.
type Net interface {
	// Bind does the once-per-chunk work for condition c (Cond values).
	Bind(c []float32)
	// Velocity writes the velocity of x (H·D) at time t to dst.
	Velocity(dst, x []float32, t float64)
	// FLOPs returns the FLOPs of Bind and of one Velocity evaluation.
	FLOPs() (bind, velocity int64)
	// Params returns the number of weights.
	Params() int
	Close()
}

// Chunk samples one chunk: Bind, then Steps Euler steps from the noise in x (H·D, overwritten
// with the chunk); v is H·D scratch.
func Chunk(n Net, c, x, v []float32) {
	n.Bind(c)
	for k := 0; k < Steps; k++ {
		n.Velocity(v, x, float64(k)/Steps)
		for i := range x {
			x[i] += v[i] / Steps
		}
	}
}

// ChunkFLOPs returns the FLOPs of one chunk of n.
func ChunkFLOPs(n Net) int64 {
	b, v := n.FLOPs()
	return b + Steps*v
}

// lin is a linear layer with its packed weights.
type lin struct {
	in, out int
	w       *kern.Matrix
	b       []float32
}

func newLin(r *rand.Rand, in, out int, p nn.Precision) lin {
	w := make([]float32, in*out)
	std := 1 / math.Sqrt(float64(in))
	for i := range w {
		w[i] = float32(std * r.NormFloat64())
	}
	b := make([]float32, out)
	for i := range b {
		b[i] = float32(0.1 * r.NormFloat64())
	}
	return lin{in: in, out: out, w: kern.Best().Pack(w, in, out, p), b: b}
}

func (l *lin) apply(p *kern.Pool, y, x []float32, rows int, ws []float32) {
	p.Linear(y, l.w, l.b, x, rows, ws)
}

// MLP is reference network A.
type MLP struct {
	layers []lin
	pool   *kern.Pool
	in     []float32 // 933: x, time features, condition
	h1, h2 []float32
	ws     []float32
}

// NewMLP returns network A with weights from seed, its weight matrices stored in precision p
// (nn.F32, nn.F16 or nn.BF16), on threads threads (1 or 2).
func NewMLP(seed uint64, p nn.Precision, threads int) *MLP {
	r := rand.New(rand.NewPCG(seed, 0xa))
	m := &MLP{pool: kern.NewPool(threads)}
	dims := []int{H*D + TimeF + Cond, MLPWidth, MLPWidth, MLPWidth, H * D}
	for i := 0; i+1 < len(dims); i++ {
		m.layers = append(m.layers, newLin(r, dims[i], dims[i+1], p))
	}
	m.in = make([]float32, dims[0])
	m.h1, m.h2 = make([]float32, MLPWidth), make([]float32, MLPWidth)
	n := 0
	for _, l := range m.layers {
		n = max(n, l.w.Scratch(1))
	}
	m.ws = make([]float32, n)
	return m
}

// Bind copies the condition into the input.
func (m *MLP) Bind(c []float32) { copy(m.in[H*D+TimeF:], c[:Cond]) }

// Velocity evaluates the MLP.
func (m *MLP) Velocity(dst, x []float32, t float64) {
	copy(m.in, x[:H*D])
	nn.TimeFeatures(m.in[H*D:H*D+TimeF], t)
	ar := kern.Best()
	m.layers[0].apply(m.pool, m.h1, m.in, 1, m.ws)
	ar.SiLU(m.h1)
	m.layers[1].apply(m.pool, m.h2, m.h1, 1, m.ws)
	ar.SiLU(m.h2)
	m.layers[2].apply(m.pool, m.h1, m.h2, 1, m.ws)
	ar.SiLU(m.h1)
	m.layers[3].apply(m.pool, dst, m.h1, 1, m.ws)
}

// FLOPs: no per-chunk products; per evaluation, the four layers.
func (m *MLP) FLOPs() (bind, velocity int64) {
	for _, l := range m.layers {
		velocity += 2 * int64(l.in*l.out)
	}
	return 0, velocity
}

// Params returns the number of weights (matrices and biases).
func (m *MLP) Params() int {
	n := 0
	for _, l := range m.layers {
		n += l.in*l.out + l.out
	}
	return n
}

// Close stops the worker.
func (m *MLP) Close() { m.pool.Close() }

// Normal returns n values drawn from seed, normal: a condition or a noise for the benchmarks.
func Normal(seed uint64, n int) []float32 {
	r := rand.New(rand.NewPCG(seed, 0xc))
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.NormFloat64())
	}
	return s
}

// Kernels names the kernel implementation in use ("avx512", "avx2", "neon" or "go").
func Kernels() string { return kern.Best().Name() }

// Peak is the measured multiply-add throughput of one core with one instruction set.
type Peak struct {
	ISA    string  `json:"isa"`
	GFLOPS float64 `json:"gflops"`
}

// fmtShape names a product.
func fmtShape(m, k, n int) string { return fmt.Sprintf("%dx%dx%d", m, k, n) }

// PrecisionError returns, for network kind ("mlp" or "transformer") with the weights of seed,
// the largest difference between the velocities of weights in precision p and in float32 over
// evaluations at t = 0, 0.5 and 0.9 of one random input, and the largest float32 velocity.
func PrecisionError(kind string, seed uint64, p nn.Precision) (maxDiff, maxAbs float64) {
	mk := func(p nn.Precision) Net {
		if kind == "mlp" {
			return NewMLP(seed, p, 1)
		}
		return NewTransformer(seed, p, 1)
	}
	a, b := mk(nn.F32), mk(p)
	defer a.Close()
	defer b.Close()
	c, x := Normal(seed+1, Cond), Normal(seed+2, H*D)
	a.Bind(c)
	b.Bind(c)
	va, vb := make([]float32, H*D), make([]float32, H*D)
	for _, t := range []float64{0, 0.5, 0.9} {
		a.Velocity(va, x, t)
		b.Velocity(vb, x, t)
		for i := range va {
			maxDiff = math.Max(maxDiff, math.Abs(float64(va[i]-vb[i])))
			maxAbs = math.Max(maxAbs, math.Abs(float64(va[i])))
		}
	}
	return maxDiff, maxAbs
}
