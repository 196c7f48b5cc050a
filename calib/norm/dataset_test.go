package norm

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/flowact/flowact/dataset"
)

func TestCompute(t *testing.T) {
	dir := t.TempDir()
	joints := []string{"a", "b"}
	r := rand.New(rand.NewPCG(7, 8))
	t0 := time.Unix(1700000000, 0)
	var paths []string
	var states, actions [2][]float64 // reference columns
	for e := range 3 {
		ep := &dataset.Episode{Meta: dataset.Meta{Version: dataset.MetaVersion, Task: "t", Joints: joints, Rate: 50}}
		for i := range 100 + 40*e {
			st := t0.Add(time.Duration(i) * 20 * time.Millisecond)
			p := []float64{r.NormFloat64(), 3 + 0.1*r.Float64()}
			ep.States = append(ep.States, dataset.JointState{Stamp: st, Position: p})
			ep.Actions = append(ep.Actions, dataset.Action{Stamp: st, Position: []float64{p[0] + 0.5, math.Exp(r.NormFloat64())}})
		}
		ep.Embeddings = []dataset.Embedding{{Stamp: t0, Tokens: 1, Width: 1, Data: []float32{1}}}
		p := filepath.Join(dir, fmt.Sprintf("ep%d.bag", e))
		if err := dataset.WriteEpisode(p, ep, dataset.WriterConfig{}); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
		// The reference reads what the dataset package aligns: every tick (here every message).
		a, err := dataset.Load(p, dataset.Config{})
		if err != nil {
			t.Fatal(err)
		}
		for k := range a.N {
			for j := range 2 {
				states[j] = append(states[j], a.StateAt(k)[j])
				actions[j] = append(actions[j], a.ActionAt(k)[j])
			}
		}
	}
	bad := filepath.Join(dir, "bad.bag")
	if err := os.WriteFile(bad, []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	const bins = 512
	set, err := Compute(append(paths, bad), dataset.Config{}, bins)
	var errs dataset.Errors
	if !errors.As(err, &errs) || len(errs) != 1 || errs[0].Path != bad {
		t.Fatalf("Compute error %v, want the bad bag listed", err)
	}
	if err := set.Validate(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(set.State.Names, joints) || set.State.Count != int64(len(states[0])) {
		t.Fatalf("names %v, count %d, want %v, %d", set.State.Names, set.State.Count, joints, len(states[0]))
	}
	for _, c := range []struct {
		name string
		st   *Stats
		cols [2][]float64
	}{{"state", &set.State, states}, {"action", &set.Action, actions}} {
		for j := range 2 {
			mean, std, q01, q99, lo, hi := twoPass(c.cols[j])
			tol := 4 * (hi - lo) / (bins - 2) // the documented quantile bound
			if math.Abs(c.st.Mean[j]-mean) > 1e-12*(1+math.Abs(mean)) || math.Abs(c.st.Std[j]-std) > 1e-12*(1+std) ||
				c.st.Min[j] != lo || c.st.Max[j] != hi || math.Abs(c.st.Q01[j]-q01) > tol || math.Abs(c.st.Q99[j]-q99) > tol {
				t.Errorf("%s %d: %v %v %v %v %v %v, want %v %v %v %v %v %v (quantiles within %g)", c.name, j,
					c.st.Mean[j], c.st.Std[j], c.st.Q01[j], c.st.Q99[j], c.st.Min[j], c.st.Max[j], mean, std, q01, q99, lo, hi, tol)
			}
		}
	}
	if _, err := Compute([]string{bad}, dataset.Config{}, 0); err == nil {
		t.Error("Compute over only a bad bag succeeded")
	}
}
