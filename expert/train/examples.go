package train

import (
	"fmt"
	"math/rand/v2"
)

// Examples draws training examples in physical units, one at a time: *dataset.Examples (bags
// aligned at the control rate) is one. DrawTo writes an example's embedding (Tokens x Width),
// state and action chunk (H x D) into slices of the lengths Shape gives, drawing from r, and
// returns the number of recorded action rows (the rest of the chunk is padding).
type Examples interface {
	Shape() (h, d, tokens, width, state int)
	DrawTo(r *rand.Rand, emb []float32, state, action []float64) int
}

// Normalizer maps an example's state and action chunk to the network's normalized float32
// values: the normalizer the policy applies at inference (policy.Norm, with the checkpoint's
// statistics), so that training and inference normalize alike.
type Normalizer interface {
	NormalizeState(dst []float32, src []float64)
	NormalizeActions(dst []float32, src []float64)
}

// ExampleSource is the Source of batches of examples, normalized. The trainer's random stream
// draws the examples, so a run is reproducible from the trainer's seed.
type ExampleSource struct {
	ex            Examples
	norm          Normalizer
	state, action []float64
}

var _ Source = (*ExampleSource)(nil)

// NewExampleSource returns the source of ex's examples normalized by n.
func NewExampleSource(ex Examples, n Normalizer) (*ExampleSource, error) {
	if ex == nil || n == nil {
		return nil, fmt.Errorf("%w: an example source needs examples and a normalizer", ErrConfig)
	}
	return &ExampleSource{ex: ex, norm: n}, nil
}

// Next fills dst with dst.B examples drawn with r.
func (s *ExampleSource) Next(dst *Batch, r *rand.Rand) error {
	h, d, tokens, width, sd := s.ex.Shape()
	dst.resize(h, d, tokens, width, sd)
	dst.Len = growInt(dst.Len, dst.B)
	s.state = growF64(s.state, sd)
	s.action = growF64(s.action, h*d)
	tw := tokens * width
	for i := range dst.B {
		dst.Len[i] = s.ex.DrawTo(r, dst.Embedding[i*tw:(i+1)*tw], s.state, s.action)
		s.norm.NormalizeState(dst.State[i*sd:(i+1)*sd], s.state)
		s.norm.NormalizeActions(dst.Actions[i*h*d:(i+1)*h*d], s.action)
	}
	return nil
}

func growInt(s []int, n int) []int {
	if cap(s) < n {
		return make([]int, n)
	}
	return s[:n]
}

func growF64(s []float64, n int) []float64 {
	if cap(s) < n {
		return make([]float64, n)
	}
	return s[:n]
}
