package train

import (
	"math/rand/v2"
	"testing"

	"github.com/flowact/flowact/expert"
	"github.com/flowact/flowact/expert/nn"
)

// TestPrefixContinuesMode trains an MLP expert with committed prefixes on the bimodal ramp toy
// and checks that chunks sampled after committing the first d steps of one mode continue in that
// mode, while without a prefix both modes appear.
func TestPrefixContinuesMode(t *testing.T) {
	t.Parallel() // the two learning tests share the two cores
	toy := Bimodal{H: 8, Slope: 1.5, Std: 0.05}
	cfg := nn.MLPConfig{H: 8, D: 1, Embed: 1, State: 1, Hidden: 48, Layers: 2, TimeFeatures: 8, TimeWidth: 16, CondWidth: 16}
	tc := Config{Steps: prefixSteps, BatchSize: 64, LR: 1e-2, MinLR: 1e-4, Warmup: 20, Clip: 1, EMA: 0.98, Seed: 2, MaxPrefix: 4, LogEvery: 50}
	net, hist, err := trainToy(toy, cfg, tc)
	if err != nil {
		t.Fatal(err)
	}
	defer net.Close()
	logLoss(t, "flow matching", hist)

	const n = 200
	r := rand.New(rand.NewPCG(42, 0))
	x := make([]float32, toy.H)
	ref := make([]float32, toy.H)
	// up reports whether the uncommitted tail of x rises like the up mode: its mean is positive.
	up := func(x []float32, d int) bool {
		var s float32
		for _, v := range x[d:] {
			s += v
		}
		return s > 0
	}
	for _, tc := range []struct {
		d    int
		mode bool
	}{{0, true}, {2, true}, {3, false}, {4, true}} {
		var ups int
		var dev float64
		for i := 0; i < n; i++ {
			toy.Chunk(ref, tc.mode, r)
			c := &expert.Condition{Tokens: 1, Width: 1, Embedding: []float32{1}, State: []float32{0}, Prefix: ref[:tc.d]}
			f, err := net.Bind(c)
			if err != nil {
				t.Fatal(err)
			}
			expert.Noise(x, r)
			euler(x, f, 20)
			if up(x, tc.d) {
				ups++
			}
			// Distance of the tail from the committed mode's noiseless ramp.
			for s := tc.d; s < toy.H; s++ {
				m := toy.Slope * float64(s+1) / float64(toy.H)
				if !tc.mode {
					m = -m
				}
				dev += (float64(x[s]) - m) * (float64(x[s]) - m)
			}
		}
		share := float64(ups) / n
		if tc.d == 0 {
			t.Logf("no prefix: %.0f%% of chunks go up", 100*share)
			// Both modes: a fair coin gives 50% ± 3.5% (one std for 200 chunks).
			if share < 0.3 || share > 0.7 {
				t.Errorf("without a prefix %.0f%% of chunks go up, want both modes", 100*share)
			}
			continue
		}
		want := 0.0
		if tc.mode {
			want = 1
		}
		rms := dev / float64(n*(toy.H-tc.d))
		t.Logf("prefix of %d steps from the %v mode: %.0f%% of chunks go up; mean squared distance from the committed ramp %.4f", tc.d, map[bool]string{true: "up", false: "down"}[tc.mode], 100*share, rms)
		// Continuation: at most 5% of chunks switch mode (the modes are 30 noise std apart at
		// the last step, so a learned conditional leaves essentially none).
		if d := share - want; d > 0.05 || d < -0.05 {
			t.Errorf("prefix of %d steps: %.0f%% of chunks go up, want %.0f%%", tc.d, 100*share, 100*want)
		}
		// And they follow the ramp: the mean squared distance stays below the squared step
		// between consecutive ramp values (0.035; the data's own noise gives 0.0025).
		if lim := (toy.Slope / float64(toy.H)) * (toy.Slope / float64(toy.H)); rms > lim {
			t.Errorf("prefix of %d steps: mean squared distance from the ramp %.4f > %.4f", tc.d, rms, lim)
		}
	}
}

// prefixSteps is the number of optimizer steps of the prefix test.
const prefixSteps = 400
