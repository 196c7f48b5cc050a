package policy

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/flowact/flowact/expert/ode"
	"github.com/flowact/flowact/policy/chunk"
)

// TestConsensus builds sample sets whose groups are known and checks which samples
// consensus averages: one group is averaged whole; of two groups far apart, only the first
// sample's, whichever its size; a first sample alone is executed alone; the committed elements
// take no part in the distances.
func TestConsensus(t *testing.T) {
	const k, h, d, lo = 8, 10, 3, 6 // 2 committed rows
	hd := h * d
	r := rand.New(rand.NewPCG(1, 2))
	// samples: sample s is centre[group[s]] + N(0, 0.1^2) noise; the committed elements are
	// equal in every sample, except where a test says.
	samples := func(group []int, centres ...float32) []float32 {
		xs := make([]float32, k*hd)
		for s := range k {
			for i := range hd {
				if i < lo {
					xs[s*hd+i] = 0.5
					continue
				}
				xs[s*hd+i] = centres[group[s]] + float32(0.1*r.NormFloat64())
			}
		}
		return xs
	}
	mean := func(xs []float32, which []int) []float32 {
		m := make([]float32, hd)
		for _, s := range which {
			for i := range hd {
				m[i] += xs[s*hd+i] / float32(len(which))
			}
		}
		return m
	}
	scratch := make([]float64, k*k+k)
	for _, c := range []struct {
		name  string
		group []int
		want  []int // the samples averaged
	}{
		{"one group", []int{0, 0, 0, 0, 0, 0, 0, 0}, []int{0, 1, 2, 3, 4, 5, 6, 7}},
		{"two groups, even", []int{0, 1, 0, 1, 1, 0, 1, 0}, []int{0, 2, 5, 7}},
		{"the first's group small", []int{0, 1, 1, 0, 1, 1, 1, 1}, []int{0, 3}},
		{"the first's group large", []int{0, 0, 0, 1, 0, 0, 0, 0}, []int{0, 1, 2, 4, 5, 6, 7}},
		{"the first alone", []int{0, 1, 1, 1, 1, 1, 1, 1}, []int{0}},
	} {
		xs := samples(c.group, -1, 1)
		dst := make([]float32, hd)
		n := consensus(dst, xs, k, lo, DefaultAverageWithin, scratch)
		if n != len(c.want) {
			t.Errorf("%s: averaged %d samples, want %d (%v)", c.name, n, len(c.want), c.want)
			continue
		}
		want := mean(xs, c.want)
		for i := range dst {
			if math.Abs(float64(dst[i]-want[i])) > 1e-5 {
				t.Fatalf("%s: element %d is %g, the mean of samples %v is %g", c.name, i, dst[i], c.want, want[i])
			}
		}
	}
	// Committed elements that differ (they never do in the expert's batches, which share the
	// prefix) do not count: one group stays whole.
	xs := samples([]int{0, 0, 0, 0, 0, 0, 0, 0}, 0)
	xs[3*hd] = 100
	if n := consensus(make([]float32, hd), xs, k, lo, DefaultAverageWithin, scratch); n != k {
		t.Errorf("a committed element that differs split one group: averaged %d of %d", n, k)
	}
	// A factor of 1 with two samples: the second is the first's nearest neighbour, as the first
	// is its own: both are averaged.
	if n := consensus(make([]float32, hd), samples([]int{0, 1, 0, 0, 0, 0, 0, 0}, -1, 1)[:2*hd], 2, lo, 1, scratch); n != 2 {
		t.Errorf("two samples: averaged %d, want 2", n)
	}
}

// TestExpertAverage: with average on, the executed chunk is the mean of the K samples of one
// batch when the expert sees one way to go (a small random MLP's samples form one group), the
// spread is still reported, Averaged says how many, and Infer still allocates nothing; the
// configuration is refused by name when it cannot work.
func TestExpertAverage(t *testing.T) {
	const h, d, width, k = 8, 3, 16, 6
	net := newMLP(t, h, d, width, 32)
	n, _ := NewNorm(testSet(d), 0, h, d)
	sampler := &ode.Fixed{Method: ode.Midpoint, Steps: 4}
	spread := NewExpert(net, sampler, n, 5)
	if err := spread.SetSpreadSamples(k, 0); err != nil {
		t.Fatal(err)
	}
	avg := NewExpert(net, &ode.Fixed{Method: ode.Midpoint, Steps: 4}, n, 5)
	if err := avg.SetAverage(2); !errors.Is(err, ErrConfig) {
		t.Errorf("average before SetSpreadSamples: %v, want ErrConfig", err)
	}
	if err := avg.SetSpreadSamples(k, 0); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []float64{0.5, -1, math.NaN(), math.Inf(1)} {
		if err := avg.SetAverage(bad); !errors.Is(err, ErrConfig) {
			t.Errorf("SetAverage(%g): %v, want ErrConfig", bad, err)
		}
	}
	if err := avg.SetAverage(1e9); err != nil { // every sample is within: the mean of all
		t.Fatal(err)
	}
	req := &Request{Seq: 9, Position: []float64{0.1, 0.2, 0.3}, Prefix: []float64{0.1, 0.2, 0.3},
		Embedding: Embedding{Tokens: 1, Width: width, Data: rampEmbedding(width)}}
	both := inferEach(t, req, h*d, spread, avg)
	cs, ca := both[0], both[1]
	if ca.Averaged != k || cs.Averaged != 0 {
		t.Errorf("Averaged %d with average on, %d off; want %d and 0", ca.Averaged, cs.Averaged, k)
	}
	if ca.Spread != cs.Spread || ca.Spread == 0 {
		t.Errorf("spread %g with average on, %g off: want the same, nonzero", ca.Spread, cs.Spread)
	}
	// The reference mean: the expert's own K samples (spread.xs holds them, normalized),
	// averaged, unnormalized and moved to the absolute frame as Infer does.
	m := make([]float32, h*d)
	for s := range k {
		for i := range m {
			m[i] += spread.xs[s*h*d+i] / k
		}
	}
	want := make([]float64, h*d)
	n.UnnormalizeActions(want, m)
	copy(want, req.Prefix)
	var moved float64
	for i := range want {
		if math.Abs(ca.Data[i]-want[i]) > 1e-5 {
			t.Fatalf("element %d of the averaged chunk %g, the samples' mean %g", i, ca.Data[i], want[i])
		}
		moved = max(moved, math.Abs(ca.Data[i]-cs.Data[i]))
	}
	if moved == 0 {
		t.Errorf("the averaged chunk equals the first sample")
	}
	if a := testing.AllocsPerRun(10, func() { _ = avg.Infer(&ca, req) }); a != 0 {
		t.Errorf("Infer with averaging allocates %v times", a)
	}
	// Averaging follows a later change of the sample count, and one sample turns it off.
	for _, c := range []struct{ k, want int }{{2 * k, 2 * k}, {1, 0}} {
		if err := avg.SetSpreadSamples(c.k, 0); err != nil {
			t.Fatal(err)
		}
		if got := inferEach(t, req, h*d, avg)[0].Averaged; got != c.want {
			t.Errorf("after SetSpreadSamples(%d): averaged %d samples, want %d", c.k, got, c.want)
		}
	}
}

// TestAverageConfig: averaging is off by default; a single sample, a factor below 1, a factor
// without samples and a sample count that disagrees with the gate's are refused by name; a loop
// with average.samples refuses an inferer that draws one sample or cannot average.
func TestAverageConfig(t *testing.T) {
	for _, c := range []struct {
		a   AverageConfig
		g   GateConfig
		bad string
	}{
		{AverageConfig{}, GateConfig{}, ""},
		{AverageConfig{Samples: 8}, GateConfig{}, ""},
		{AverageConfig{Samples: 8, Within: 3}, GateConfig{Samples: 8, MaxSpread: 1}, ""},
		{AverageConfig{Samples: 1}, GateConfig{}, "average.samples"},
		{AverageConfig{Samples: MaxSpreadSamples + 1}, GateConfig{}, "average.samples"},
		{AverageConfig{Samples: 8, Within: 0.5}, GateConfig{}, "average.within"},
		{AverageConfig{Samples: 8, Within: math.NaN()}, GateConfig{}, "average.within"},
		{AverageConfig{Samples: 8, Within: math.Inf(1)}, GateConfig{}, "average.within"},
		{AverageConfig{Within: 2}, GateConfig{}, "needs average.samples"},
		{AverageConfig{Samples: 8}, GateConfig{Samples: 4}, "differ"},
	} {
		cfg := Config{Average: c.a, Gate: c.g}
		err := cfg.Validate()
		switch {
		case c.bad == "" && err != nil:
			t.Errorf("%+v, %+v: %v", c.a, c.g, err)
		case c.bad != "" && (!errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), c.bad)):
			t.Errorf("%+v, %+v: %v, want an ErrConfig naming %s", c.a, c.g, err, c.bad)
		}
	}
	drv := newDriver(t, armModel(), 10*time.Millisecond, []float64{0, 0, 0})
	plain := inferFunc{h: 10, d: 3, f: func(*chunk.Chunk, *Request) error { return nil }}
	if _, err := New(Config{Average: AverageConfig{Samples: 4}}, Deps{Driver: drv, Inferer: plain}); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "average.samples") {
		t.Errorf("average.samples with an inferer that draws one sample: %v", err)
	}
	spreadOnly := &spreadInferer{h: 10, d: 3, goal: []float64{0, 0, 0}, spread: func(uint64) float64 { return 0.1 }}
	if _, err := New(Config{Average: AverageConfig{Samples: 4}}, Deps{Driver: drv, Inferer: spreadOnly}); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "averages no samples") {
		t.Errorf("average.samples with an inferer that measures a spread but cannot average: %v", err)
	}
}
