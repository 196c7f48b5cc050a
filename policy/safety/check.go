package safety

import (
	"errors"
	"fmt"
	"math"
)

// Errors of CheckChunk.
var (
	ErrShape     = errors.New("safety: chunk has the wrong shape")
	ErrNotFinite = errors.New("safety: chunk has a NaN or Inf value")
)

// CheckChunk rejects a chunk of actions (h x d row-major, joint targets) whose shape differs from
// wantH x wantD or that holds a NaN or Inf. It allocates only for the error.
func CheckChunk(h, d int, data []float64, wantH, wantD int) error {
	if h != wantH || d != wantD || len(data) != h*d {
		return fmt.Errorf("safety: chunk %d x %d with %d values, want %d x %d: %w", h, d, len(data), wantH, wantD, ErrShape)
	}
	for i, v := range data {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("safety: chunk step %d joint %d is %v: %w", i/d, i%d, v, ErrNotFinite)
		}
	}
	return nil
}
