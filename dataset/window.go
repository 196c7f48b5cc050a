package dataset

import (
	"fmt"
	"slices"
)

// Sample is one training example at a tick: the embedding and state there and the chunk of the
// next H actions, H x D row-major, starting with the tick's own action. Past the end of the
// episode the chunk repeats the last action (holding still is what the robot does after the
// last command; zeros would be a jump to the joint origin) and Mask marks those rows 0.
type Sample struct {
	Embedding []float32 // Tokens x Width
	State     []float64 // D
	Action    []float64 // H x D
	Mask      []float32 // H: 1 for a recorded action, 0 for padding
}

// SampleTo fills dst with the sample at tick k and horizon h, reusing dst's slices when large
// enough (then it allocates nothing). It panics if k or h is out of range.
func (a *Aligned) SampleTo(dst *Sample, k, h int) {
	dst.Embedding = slices.Grow(dst.Embedding[:0], a.Tokens*a.Width)[:a.Tokens*a.Width]
	dst.State = slices.Grow(dst.State[:0], a.D)[:a.D]
	dst.Action = slices.Grow(dst.Action[:0], h*a.D)[:h*a.D]
	dst.Mask = slices.Grow(dst.Mask[:0], h)[:h]
	a.fill(dst.Embedding, dst.State, dst.Action, dst.Mask, k, h)
}

// fill writes tick k's sample into slices of exactly the right lengths.
func (a *Aligned) fill(emb []float32, state, action []float64, mask []float32, k, h int) {
	if k < 0 || k >= a.N || h <= 0 {
		panic(fmt.Sprintf("dataset: sample at tick %d with horizon %d of a %d-tick episode", k, h, a.N))
	}
	copy(emb, a.EmbeddingAt(k))
	copy(state, a.StateAt(k))
	d := a.D
	real := min(h, a.N-k)
	copy(action, a.Action[k*d:(k+real)*d])
	last := a.ActionAt(a.N - 1)
	for i := real; i < h; i++ {
		copy(action[i*d:], last)
	}
	for i := range mask {
		if i < real {
			mask[i] = 1
		} else {
			mask[i] = 0
		}
	}
}
