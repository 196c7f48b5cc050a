package train

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/flowact/flowact/expert/nn"
)

// TestColdPrefix checks the committed-prefix lengths one step draws: with ColdPrefix c a share c
// of the examples has none and the others 1..MaxPrefix, every length appearing; with 0 the
// lengths are uniform on 0..MaxPrefix.
func TestColdPrefix(t *testing.T) {
	const B, maxPrefix = 2000, 4
	for _, tc := range []struct {
		cold float64
		want float64 // share of examples with no prefix
	}{{0, 1.0 / (maxPrefix + 1)}, {0.5, 0.5}, {0.2, 0.2}} {
		net, err := nn.NewMLP(nn.MLPConfig{H: 5, D: 2, Embed: 2, State: 1, Hidden: 8, Layers: 1, TimeFeatures: 4, TimeWidth: 4, CondWidth: 4}, rand.New(rand.NewPCG(1, 1)))
		if err != nil {
			t.Fatal(err)
		}
		tr, err := New(net, Config{Steps: 1, BatchSize: B, MaxPrefix: maxPrefix, ColdPrefix: tc.cold, Seed: 3})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tr.prepare(&fixedSource{b: parityBatch(rand.New(rand.NewPCG(2, 2)), B, 5, 2, 1, 2, 1)}, tr.stepRand(0)); err != nil {
			t.Fatal(err)
		}
		var count [maxPrefix + 1]int
		for _, d := range tr.ds {
			if d < 0 || d > maxPrefix {
				t.Fatalf("cold %g: prefix %d outside 0..%d", tc.cold, d, maxPrefix)
			}
			count[d]++
		}
		tr.Close()
		net.Close()
		// Each count is binomial(B, p): 5 standard deviations is a false alarm once in 1.7 million.
		within := func(n int, p float64) bool {
			return math.Abs(float64(n)-B*p) <= 5*math.Sqrt(B*p*(1-p))
		}
		if !within(count[0], tc.want) {
			t.Errorf("cold %g: %d of %d examples without a prefix, want about %.0f", tc.cold, count[0], B, B*tc.want)
		}
		for d := 1; d <= maxPrefix; d++ {
			if p := (1 - tc.want) / maxPrefix; !within(count[d], p) {
				t.Errorf("cold %g: %d of %d examples with prefix %d, want about %.0f", tc.cold, count[d], B, d, B*p)
			}
		}
	}
	for _, c := range []Config{
		{Steps: 1, MaxPrefix: 4, ColdPrefix: -0.1},
		{Steps: 1, MaxPrefix: 4, ColdPrefix: 1},
		{Steps: 1, MaxPrefix: 4, ColdPrefix: math.NaN()},
		{Steps: 1, ColdPrefix: 0.2}, // no prefixes at all: every example is a cold start
	} {
		if err := c.Validate(); !errors.Is(err, ErrConfig) {
			t.Errorf("Validate(cold %g, max prefix %d) = %v, want ErrConfig", c.ColdPrefix, c.MaxPrefix, err)
		}
	}
}
