package dataset

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// loaderDir writes n episodes of different lengths, episode e's elbow values offset by 1e4 e so
// that (state[1]) identifies the episode and tick of a sample, plus one bad bag.
func loaderDir(t testing.TB, n int) (paths []string, bad string) {
	t.Helper()
	dir := t.TempDir()
	for e := range n {
		ep := synthEpisode(time.Duration(100+30*e) * time.Millisecond)
		for i := range ep.States {
			ep.States[i].Position[1] += 1e4 * float64(e)
			ep.Actions[i].Position[1] += 1e4 * float64(e)
		}
		p := filepath.Join(dir, fmt.Sprintf("ep%02d.bag", e))
		if err := WriteEpisode(p, ep, WriterConfig{}); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	bad = filepath.Join(dir, "bad.bag")
	if err := os.WriteFile(bad, []byte("#ROSBAG V2.0\nnope"), 0o644); err != nil {
		t.Fatal(err)
	}
	return paths, bad
}

// epoch drains one epoch and returns each sample's key (the state's elbow value) in order.
func epoch(t *testing.T, l *Loader, check func(*Batch)) []float64 {
	t.Helper()
	var keys []float64
	var b Batch
	for {
		err := l.Next(&b)
		if err == io.EOF {
			return keys
		}
		if err != nil {
			t.Fatal(err)
		}
		if b.N == 0 || len(b.State) != b.N*b.D || len(b.Action) != b.N*b.H*b.D || len(b.Mask) != b.N*b.H || len(b.Embedding) != b.N*b.Tokens*b.Width {
			t.Fatalf("batch shapes: N %d, %d states, %d actions, %d masks, %d embedding values", b.N, len(b.State), len(b.Action), len(b.Mask), len(b.Embedding))
		}
		if len(l.left) > l.cfg.Resident {
			t.Fatalf("%d episodes resident, limit %d", len(l.left), l.cfg.Resident)
		}
		for i := range b.N {
			keys = append(keys, b.State[i*b.D+1])
			// The synthetic action is the state + 0.5, so row 0 of the chunk matches the state.
			if b.Action[i*b.H*b.D] != b.State[i*b.D]+0.5 || b.Mask[i*b.H] != 1 {
				t.Fatalf("sample %d: action row 0 %v for state %v", i, b.Action[i*b.H*b.D:i*b.H*b.D+b.D], b.State[i*b.D:(i+1)*b.D])
			}
		}
		if check != nil {
			check(&b)
		}
	}
}

func TestLoader(t *testing.T) {
	paths, bad := loaderDir(t, 6)
	all := append(slices.Clone(paths), bad)
	cfg := LoaderConfig{Horizon: 4, BatchSize: 7, Resident: 2, Seed: 11}
	l, err := NewLoader(all, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var want []float64
	for _, p := range paths {
		a, err := Load(p, Config{})
		if err != nil {
			t.Fatal(err)
		}
		for k := range a.N {
			want = append(want, a.StateAt(k)[1])
		}
	}
	e0 := epoch(t, l, nil)
	if got := slices.Sorted(slices.Values(e0)); !slices.Equal(got, slices.Sorted(slices.Values(want))) {
		t.Fatalf("epoch 0 drew %d samples, want each of %d once", len(e0), len(want))
	}
	if slices.Equal(e0, want) {
		t.Error("epoch 0 is not shuffled")
	}
	if errs := l.Errors(); len(errs) != 1 || errs[0].Path != bad || !errors.Is(errs[0], ErrTruncated) {
		t.Errorf("errors %v, want the bad bag", errs)
	}
	e1 := epoch(t, l, nil)
	if len(e1) != len(e0) || slices.Equal(e0, e1) {
		t.Errorf("epoch 1: %d samples, same order as epoch 0: %v", len(e1), slices.Equal(e0, e1))
	}
	if l.Epoch() != 2 || len(l.Errors()) != 1 {
		t.Errorf("epoch %d, %d errors after two epochs", l.Epoch(), len(l.Errors()))
	}
	// Same seed, same order; another seed, another.
	l2, _ := NewLoader(all, cfg)
	if e := epoch(t, l2, nil); !slices.Equal(e, e0) {
		t.Error("same seed gave another order")
	}
	cfg.Seed = 12
	l3, _ := NewLoader(all, cfg)
	if e := epoch(t, l3, nil); slices.Equal(e, e0) {
		t.Error("seeds 11 and 12 gave the same order")
	}
	// Sequential: the files' order, ticks in order; DropLast keeps full batches only.
	l4, _ := NewLoader(paths, LoaderConfig{Horizon: 4, BatchSize: 7, Sequential: true, DropLast: true})
	e := epoch(t, l4, func(b *Batch) {
		if b.N != 7 {
			t.Errorf("DropLast: batch of %d", b.N)
		}
	})
	if n := len(want) / 7 * 7; !slices.Equal(e, want[:n]) {
		t.Errorf("sequential epoch differs from the files' order")
	}
}

func TestLoaderAllBad(t *testing.T) {
	_, bad := loaderDir(t, 0)
	l, err := NewLoader([]string{bad}, LoaderConfig{Horizon: 2, BatchSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	var b Batch
	err = l.Next(&b)
	var errs Errors
	if !errors.As(err, &errs) || len(errs) != 1 {
		t.Errorf("Next over only bad bags: %v", err)
	}
	if _, err := NewLoader(nil, LoaderConfig{Horizon: 2, BatchSize: 2}); err == nil {
		t.Error("loader without paths accepted")
	}
	if _, err := NewLoader([]string{bad}, LoaderConfig{BatchSize: 2}); err == nil {
		t.Error("loader without horizon accepted")
	}
}

func TestLoaderShapeMismatch(t *testing.T) {
	paths, _ := loaderDir(t, 2)
	other := synthEpisode(100 * time.Millisecond)
	for i := range other.Embeddings {
		other.Embeddings[i] = Embedding{Stamp: other.Embeddings[i].Stamp, Tokens: 1, Width: 3, Data: []float32{1, 2, 3}}
	}
	odd := filepath.Join(filepath.Dir(paths[0]), "odd.bag")
	if err := WriteEpisode(odd, other, WriterConfig{}); err != nil {
		t.Fatal(err)
	}
	l, err := NewLoader(append(paths, odd), LoaderConfig{Horizon: 2, BatchSize: 5, Sequential: true})
	if err != nil {
		t.Fatal(err)
	}
	n := len(epoch(t, l, nil))
	if errs := l.Errors(); len(errs) != 1 || errs[0].Path != odd || !errors.Is(errs[0], ErrShape) {
		t.Errorf("errors %v, want the 1 x 3 episode as ErrShape", errs)
	}
	if n == 0 {
		t.Error("no samples from the good episodes")
	}
}

func TestLoaderKeep(t *testing.T) {
	paths, _ := loaderDir(t, 3)
	// Keep episode 1 only (its elbow values are offset by 1e4).
	keep := func(a *Aligned) bool { return a.StateAt(0)[1] >= 1e4 && a.StateAt(0)[1] < 2e4 }
	l, err := NewLoader(paths, LoaderConfig{Horizon: 2, BatchSize: 4, Keep: keep})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // the skip is remembered across epochs
		keys := epoch(t, l, nil)
		if len(keys) == 0 {
			t.Fatal("no samples")
		}
		for _, k := range keys {
			if k < 1e4 || k >= 2e4 {
				t.Fatalf("sample of another episode: %v", k)
			}
		}
	}
	if len(l.Errors()) != 0 {
		t.Errorf("skipped episodes reported as errors: %v", l.Errors())
	}
	none, _ := NewLoader(paths, LoaderConfig{Horizon: 2, BatchSize: 4, Keep: func(*Aligned) bool { return false }})
	var b Batch
	if err := none.Next(&b); !errors.Is(err, ErrEmpty) {
		t.Errorf("Keep rejecting everything: %v, want ErrEmpty", err)
	}
}
