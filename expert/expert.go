package expert

import (
	"errors"
	"fmt"
	"math/rand/v2"
)

// Chunk is an action chunk of H steps by D action dimensions, row-major: step i, dimension j is
// Data[i*D+j].
type Chunk struct {
	H, D int
	Data []float32
}

// NewChunk returns a zeroed H x D chunk.
func NewChunk(h, d int) Chunk {
	if h <= 0 || d <= 0 {
		panic(fmt.Sprintf("expert: bad chunk shape %d x %d", h, d))
	}
	return Chunk{H: h, D: d, Data: make([]float32, h*d)}
}

// Row returns step i of c, aliasing c.Data.
func (c Chunk) Row(i int) []float32 { return c.Data[i*c.D : (i+1)*c.D] }

// Validate reports whether c's shape and data agree and every value is finite.
func (c Chunk) Validate() error {
	if c.H <= 0 || c.D <= 0 {
		return fmt.Errorf("expert: chunk shape %d x %d: %w", c.H, c.D, ErrShape)
	}
	if len(c.Data) != c.H*c.D {
		return fmt.Errorf("expert: chunk %d x %d has %d values: %w", c.H, c.D, len(c.Data), ErrShape)
	}
	for i, v := range c.Data {
		if v != v || v > maxFinite || v < -maxFinite {
			return fmt.Errorf("expert: chunk step %d dim %d is %v: %w", i/c.D, i%c.D, v, ErrNotFinite)
		}
	}
	return nil
}

const maxFinite = 3.4028234663852886e38

// Condition is what the expert is conditioned on, in normalized space.
//
// Prefix holds the committed actions for real-time chunking (Black et al. 2025): its first
// len(Prefix)/D rows are actions of this chunk that are already executing or committed. A model
// that supports prefix conditioning treats those rows as clean data (flow time 1) and a sampler
// holds them fixed; nil means no committed prefix.
type Condition struct {
	Tokens, Width int       // embedding shape
	Embedding     []float32 // Tokens x Width, row-major
	State         []float32 // proprioceptive state, normalized
	Prefix        []float32 // committed leading actions, d x D row-major; nil for none
}

// PrefixLen returns the number of committed steps for action dimension d.
func (c *Condition) PrefixLen(d int) int {
	if c == nil || d <= 0 {
		return 0
	}
	return len(c.Prefix) / d
}

// Field is a velocity field v(x, t) with its condition already bound. x and dst have length Dim()
// (a flattened H x D chunk) and may not alias. Velocity allocates nothing.
type Field interface {
	Dim() int
	Velocity(dst, x []float32, t float64)
}

// Model is a conditional velocity field. Bind does the work that depends only on the condition
// (embedding projections, cross-attention keys and values) once per chunk and returns a Field
// that reuses it for every solver step. The returned Field is valid until the next Bind on the
// same Model; a Model is not safe for concurrent use.
type Model interface {
	Shape() (h, d int)
	Bind(c *Condition) (Field, error)
}

// Sampler integrates a Field from noise at t = 0 to data at t = 1. It reads the initial noise x0
// (length f.Dim()) and writes the sample to dst; dst may alias x0. Sample allocates nothing once
// the sampler's workspace fits f.Dim().
type Sampler interface {
	Sample(dst, x0 []float32, f Field) error
}

// Noise fills dst with independent standard normal values from r.
func Noise(dst []float32, r *rand.Rand) {
	for i := range dst {
		dst[i] = float32(r.NormFloat64())
	}
}

// Errors shared by the expert's packages.
var (
	ErrShape     = errors.New("shape mismatch")
	ErrNotFinite = errors.New("value is NaN or Inf")
)
