package train

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/flowact/flowact/expert/nn"
)

// TestPrefixDrift checks the stale prefixes of Config.PrefixDrift on one step's batch: every
// example with a prefix is fed its data moved by one drift rate per action dimension, v (i + 1)
// at prefix step i, and is trained toward data that rejoin the original within PrefixRecover
// steps along a cubic that is continuous in offset and slope with the prefix and ends at zero;
// examples without a prefix are untouched; the rates spread as N(0, s^2).
func TestPrefixDrift(t *testing.T) {
	const B, H, D, maxPrefix, recover, s = 400, 24, 2, 8, 6, 0.05
	net, err := nn.NewMLP(nn.MLPConfig{H: H, D: D, Embed: 2, State: 1, Hidden: 8, Layers: 1, TimeFeatures: 4, TimeWidth: 4, CondWidth: 4}, rand.New(rand.NewPCG(1, 1)))
	if err != nil {
		t.Fatal(err)
	}
	defer net.Close()
	tr, err := New(net, Config{Steps: 1, BatchSize: B, MaxPrefix: maxPrefix, ColdPrefix: 0.25, PrefixDrift: s, PrefixRecover: recover, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	bt := parityBatch(rand.New(rand.NewPCG(2, 2)), B, H, D, 1, 2, 1)
	if _, err := tr.prepare(&fixedSource{b: bt}, tr.stepRand(0)); err != nil {
		t.Fatal(err)
	}
	var sum2 float64
	var rates int
	for i := range B {
		dp, tt := tr.ds[i], tr.ts[i]
		// CondOT: x_t = t x1 + (1 - t) x0 and target = x1 - x0, so x1 = x_t + (1 - t) target.
		x1 := func(st, j int) float64 {
			k := i*H*D + st*D + j
			if st < dp {
				return float64(tr.x[k]) // committed: fed clean
			}
			return float64(tr.x[k]) + (1-tt)*float64(tr.targetData[k])
		}
		for j := range D {
			data := func(st int) float64 { return float64(bt.Actions[i*H*D+st*D+j]) }
			if dp == 0 {
				for st := range H {
					if d := x1(st, j) - data(st); math.Abs(d) > 1e-4 {
						t.Fatalf("example %d (no prefix), step %d: trained on data moved by %g", i, st, d)
					}
				}
				continue
			}
			v := x1(0, j) - data(0)
			sum2 += v * v
			rates++
			for st := range H {
				want := v * staleOffset(st, dp, recover)
				if d := x1(st, j) - data(st); math.Abs(d-want) > 1e-4 {
					t.Fatalf("example %d, prefix %d, dim %d, step %d: moved by %.5f, want %.5f (rate %.5f)", i, dp, j, st, d, want, v)
				}
			}
		}
	}
	// The offset curve: the prefix's v (i + 1), then a cubic with the same offset and slope at
	// the seam, zero from recover steps after the prefix on.
	for _, dp := range []int{1, 5} {
		for st := range dp {
			if got := staleOffset(st, dp, recover); got != float64(st+1) {
				t.Errorf("staleOffset(%d, %d) = %g, want %d", st, dp, got, st+1)
			}
		}
		if got := staleOffset(dp+recover-1, dp, recover); got != 0 {
			t.Errorf("staleOffset at the end of the recovery = %g, want 0", got)
		}
		// Slope across the seam: the cubic's first step continues the prefix's unit slope to
		// first order (its offset one step on is d + 1 - O(1/recover)).
		if got := staleOffset(dp, dp, 1000); math.Abs(got-float64(dp+1)) > 0.01*float64(dp+1) {
			t.Errorf("staleOffset(%d, %d, 1000) = %g, want about %d", dp, dp, got, dp+1)
		}
	}
	// The rates are N(0, s^2): their mean square within 5 standard errors of s^2.
	ms := sum2 / float64(rates)
	if se := s * s * math.Sqrt(2/float64(rates)); math.Abs(ms-s*s) > 5*se {
		t.Errorf("mean square drift rate %.5f over %d rates, want %.5f +- %.5f", ms, rates, s*s, 5*se)
	}
	for _, c := range []Config{
		{Steps: 1, MaxPrefix: 4, PrefixDrift: -0.1},
		{Steps: 1, MaxPrefix: 4, PrefixDrift: math.NaN()},
		{Steps: 1, MaxPrefix: 4, PrefixDrift: 2},
		{Steps: 1, PrefixDrift: 0.1}, // no prefixes to drift
		{Steps: 1, MaxPrefix: 4, PrefixDrift: 0.1, PrefixRecover: -1},
	} {
		if err := c.Validate(); !errors.Is(err, ErrConfig) {
			t.Errorf("Validate(drift %g, recover %d, max prefix %d) = %v, want ErrConfig", c.PrefixDrift, c.PrefixRecover, c.MaxPrefix, err)
		}
	}
}
