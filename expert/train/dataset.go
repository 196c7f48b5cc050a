package train

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"

	"github.com/flowact/flowact/dataset"
)

// Loader gives batches of recorded samples; *dataset.Loader implements it.
type Loader interface {
	Next(b *dataset.Batch) error
}

// DatasetSource adapts recorded episodes (package dataset: physical units, float64, a mask of
// recorded rows) to training batches (normalized float32, valid lengths). Normalization is the
// caller's (calib/norm lives on the robot side, which expert may not import): NormalizeState and
// NormalizeAction write one example's normalized state (D) and action chunk (H x D). Batches the
// loader returns short at an epoch's end are skipped, and an epoch's end (io.EOF) starts the
// next; the loader's own seed orders the samples, so the trainer's random stream is not used.
type DatasetSource struct {
	Loader          Loader
	NormalizeState  func(dst []float32, state []float64)
	NormalizeAction func(dst []float32, action []float64)

	buf dataset.Batch
}

var _ Source = (*DatasetSource)(nil)

// ErrTooSmall is returned when a whole epoch does not fill one batch.
var ErrTooSmall = errors.New("train: dataset smaller than one batch")

// Next fills dst with dst.B examples.
func (s *DatasetSource) Next(dst *Batch, _ *rand.Rand) error {
	if s.Loader == nil || s.NormalizeState == nil || s.NormalizeAction == nil {
		return fmt.Errorf("%w: dataset source needs a loader and both normalizers", ErrConfig)
	}
	eofs := 0
	for {
		err := s.Loader.Next(&s.buf)
		if errors.Is(err, io.EOF) {
			if eofs++; eofs > 1 {
				return fmt.Errorf("%w: batch size %d", ErrTooSmall, dst.B)
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("train: dataset: %w", err)
		}
		if s.buf.N >= dst.B {
			break
		}
	}
	b := &s.buf
	h, d := b.H, b.D
	dst.resize(h, d, b.Tokens, b.Width, d)
	copy(dst.Embedding, b.Embedding[:dst.B*b.Tokens*b.Width])
	dst.Len = growInt(dst.Len, dst.B)
	for i := 0; i < dst.B; i++ {
		s.NormalizeState(dst.State[i*d:(i+1)*d], b.State[i*d:(i+1)*d])
		s.NormalizeAction(dst.Actions[i*h*d:(i+1)*h*d], b.Action[i*h*d:(i+1)*h*d])
		n := 0
		for _, m := range b.Mask[i*h : (i+1)*h] {
			if m == 0 {
				break
			}
			n++
		}
		dst.Len[i] = n
	}
	return nil
}

func growInt(s []int, n int) []int {
	if cap(s) < n {
		return make([]int, n)
	}
	return s[:n]
}

var _ Loader = (*dataset.Loader)(nil)
