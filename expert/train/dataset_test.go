package train

import (
	"errors"
	"io"
	"testing"

	"github.com/flowact/flowact/dataset"
)

// fakeLoader serves batches of n samples each, then io.EOF, per epoch.
type fakeLoader struct {
	sizes []int // batch sizes of one epoch
	i     int
}

func (f *fakeLoader) Next(b *dataset.Batch) error {
	if f.i == len(f.sizes) {
		f.i = 0
		b.N = 0
		return io.EOF
	}
	n := f.sizes[f.i]
	f.i++
	const h, d = 3, 2
	*b = dataset.Batch{N: n, H: h, D: d, Tokens: 1, Width: 2,
		Embedding: make([]float32, n*2), State: make([]float64, n*d), Action: make([]float64, n*h*d), Mask: make([]float32, n*h)}
	for i := 0; i < n; i++ {
		b.Embedding[2*i] = float32(i)
		b.State[i*d] = 10
		for k := 0; k < h*d; k++ {
			b.Action[i*h*d+k] = float64(k)
		}
		// Sample i has min(i+1, h) recorded rows.
		for k := 0; k < min(i+1, h); k++ {
			b.Mask[i*h+k] = 1
		}
	}
	return nil
}

func TestDatasetSource(t *testing.T) {
	half := func(dst []float32, src []float64) {
		for i, v := range src {
			dst[i] = float32(v / 2)
		}
	}
	src := &DatasetSource{Loader: &fakeLoader{sizes: []int{4, 2}}, NormalizeState: half, NormalizeAction: half}
	var b Batch
	b.B = 4
	// The short batch at the epoch's end and the end itself are skipped.
	for k := 0; k < 3; k++ {
		if err := src.Next(&b, nil); err != nil {
			t.Fatal(err)
		}
		if b.H != 3 || b.D != 2 || b.StateDim != 2 || b.Embedding[2*3] != 3 || b.State[0] != 5 || b.Actions[5] != 2.5 {
			t.Fatalf("batch %+v", b)
		}
		for i, want := range []int{1, 2, 3, 3} {
			if b.Len[i] != want {
				t.Fatalf("lengths %v", b.Len)
			}
		}
		if err := b.check(3, 2, 2, 2); err != nil {
			t.Fatal(err)
		}
	}
	small := &DatasetSource{Loader: &fakeLoader{sizes: []int{2}}, NormalizeState: half, NormalizeAction: half}
	if err := small.Next(&b, nil); !errors.Is(err, ErrTooSmall) {
		t.Fatalf("too small: %v", err)
	}
	if err := (&DatasetSource{}).Next(&b, nil); !errors.Is(err, ErrConfig) {
		t.Fatalf("unconfigured: %v", err)
	}
}
