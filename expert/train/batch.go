package train

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
)

// Batch is B training examples in normalized space. A Source fills it; the trainer owns it.
type Batch struct {
	B, H, D int
	// Actions holds the target chunks, B x H x D row-major.
	Actions []float32
	// Embedding holds each example's condition tokens, B x Tokens x Width.
	Tokens, Width int
	Embedding     []float32
	// State holds each example's proprioceptive state, B x StateDim.
	StateDim int
	State    []float32
	// DimMask marks real action dimensions (B x D; 1 real, 0 padding); nil means all real.
	DimMask []float32
	// Len is each example's number of valid steps (the rest of the chunk is padding); nil means H.
	Len []int
}

// Source produces training batches. Next fills dst with B examples (dst.B is set by the caller;
// the source sets everything else, reusing dst's slices when they are large enough) drawing any
// randomness from r, which the trainer derives from its seed and the step.
type Source interface {
	Next(dst *Batch, r *rand.Rand) error
}

// ErrBatch reports a batch that does not fit the network being trained.
var ErrBatch = errors.New("train: batch does not fit the network")

// check validates a batch's sizes.
func (b *Batch) check(h, d, width, state int) error {
	switch {
	case b.H != h || b.D != d:
		return fmt.Errorf("%w: chunk %d x %d, network %d x %d", ErrBatch, b.H, b.D, h, d)
	case b.Width != width || b.Tokens <= 0:
		return fmt.Errorf("%w: embedding %d x %d, network width %d", ErrBatch, b.Tokens, b.Width, width)
	case b.StateDim != state:
		return fmt.Errorf("%w: state %d, network %d", ErrBatch, b.StateDim, state)
	case len(b.Actions) != b.B*h*d || len(b.Embedding) != b.B*b.Tokens*b.Width || len(b.State) != b.B*state:
		return fmt.Errorf("%w: data lengths %d, %d, %d for B = %d", ErrBatch, len(b.Actions), len(b.Embedding), len(b.State), b.B)
	case b.DimMask != nil && len(b.DimMask) != b.B*d:
		return fmt.Errorf("%w: dim mask has %d values, want %d", ErrBatch, len(b.DimMask), b.B*d)
	case b.Len != nil && len(b.Len) != b.B:
		return fmt.Errorf("%w: %d lengths for B = %d", ErrBatch, len(b.Len), b.B)
	}
	for i, v := range b.Actions {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("%w: action %d is %v", ErrBatch, i, v)
		}
	}
	for i, l := range b.Len {
		if l < 0 || l > h {
			return fmt.Errorf("%w: example %d has length %d of %d", ErrBatch, i, l, h)
		}
	}
	return nil
}

// steps returns example i's valid length.
func (b *Batch) steps(i int) int {
	if b.Len == nil {
		return b.H
	}
	return b.Len[i]
}

// pooled writes the mean of example i's embedding tokens to dst (length Width), summing then
// scaling exactly as nn does.
func (b *Batch) pooled(dst []float32, i int) {
	clear(dst)
	e := b.Embedding[i*b.Tokens*b.Width : (i+1)*b.Tokens*b.Width]
	for k := 0; k < b.Tokens; k++ {
		for j, v := range e[k*b.Width : (k+1)*b.Width] {
			dst[j] += v
		}
	}
	inv := 1 / float32(b.Tokens)
	for j := range dst {
		dst[j] *= inv
	}
}

func (b *Batch) resize(h, d, tokens, width, state int) {
	b.H, b.D, b.Tokens, b.Width, b.StateDim = h, d, tokens, width, state
	b.Actions = growF(b.Actions, b.B*h*d)
	b.Embedding = growF(b.Embedding, b.B*tokens*width)
	b.State = growF(b.State, b.B*state)
	b.DimMask, b.Len = nil, nil
}

func growF(s []float32, n int) []float32 {
	if cap(s) < n {
		return make([]float32, n)
	}
	return s[:n]
}

// Mixture is a conditional toy: the condition (a one-hot embedding token of width Classes)
// selects one of several 2-D Gaussian mixtures, and a chunk is a single 2-D point (H = 1, D = 2).
// Class c's modes are Modes[c], each with standard deviation Std, equally likely.
type Mixture struct {
	Modes [][][2]float64
	Std   float64
}

// FourAndTwo is the Mixture used in the tests: class 0 is 4 Gaussians on the circle of radius 2
// at 45° + k·90°, class 1 is 2 Gaussians at (0, ±1.5); std 0.15. Modes are 19 (class 0) and 20
// (class 1) standard deviations apart, so a sampler either resolves them or visibly does not.
func FourAndTwo() Mixture {
	var c0 [][2]float64
	for k := 0; k < 4; k++ {
		a := math.Pi/4 + float64(k)*math.Pi/2
		c0 = append(c0, [2]float64{2 * math.Cos(a), 2 * math.Sin(a)})
	}
	c1 := [][2]float64{{0, 1.5}, {0, -1.5}}
	return Mixture{Modes: [][][2]float64{c0, c1}, Std: 0.15}
}

// Next draws a class uniformly for each example, then a mode, then the point.
func (m Mixture) Next(b *Batch, r *rand.Rand) error {
	nc := len(m.Modes)
	b.resize(1, 2, 1, nc, 0)
	clear(b.Embedding)
	for i := 0; i < b.B; i++ {
		c := r.IntN(nc)
		b.Embedding[i*nc+c] = 1
		p := m.Sample(c, r)
		b.Actions[2*i], b.Actions[2*i+1] = float32(p[0]), float32(p[1])
	}
	return nil
}

// Sample draws one point of class c.
func (m Mixture) Sample(c int, r *rand.Rand) [2]float64 {
	mu := m.Modes[c][r.IntN(len(m.Modes[c]))]
	return [2]float64{mu[0] + m.Std*r.NormFloat64(), mu[1] + m.Std*r.NormFloat64()}
}

// Bimodal is a toy of chunks with two modes and an uninformative condition: each chunk of H
// steps (D = 1) is the ramp a_i = ±Slope·(i+1)/H plus noise of standard deviation Std, the sign
// drawn with equal probability. The condition is one constant token of width 1 and a state of
// length 1 (zero).
type Bimodal struct {
	H     int
	Slope float64
	Std   float64
}

// Next fills b with B chunks.
func (m Bimodal) Next(b *Batch, r *rand.Rand) error {
	b.resize(m.H, 1, 1, 1, 1)
	for i := 0; i < b.B; i++ {
		m.Chunk(b.Actions[i*m.H:(i+1)*m.H], r.IntN(2) == 0, r)
		b.Embedding[i] = 1
		b.State[i] = 0
	}
	return nil
}

// Chunk writes one chunk of the up (positive) or down mode to dst.
func (m Bimodal) Chunk(dst []float32, up bool, r *rand.Rand) {
	s := m.Slope
	if !up {
		s = -s
	}
	for i := range dst {
		dst[i] = float32(s*float64(i+1)/float64(m.H) + m.Std*r.NormFloat64())
	}
}
