package vlm

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"gonum.org/v1/gonum/mat"
)

func scene(r *rand.Rand) Scene {
	return Scene{
		Instruction: "reach the red target",
		Goal:        [3]float64{0.2 + 0.3*r.Float64(), -0.3 + 0.6*r.Float64(), 0.1 + 0.4*r.Float64()},
		Objects:     []Object{{Pos: [3]float64{0.3, 0.1, 0.2}, Size: 0.03}},
	}
}

func mustEncoder(t testing.TB, c Config) *Encoder {
	t.Helper()
	e, err := NewEncoder(c)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestDeterministicAndSeeded(t *testing.T) {
	sc := scene(rand.New(rand.NewPCG(1, 1)))
	a, b, c := mustEncoder(t, Config{Seed: 1}), mustEncoder(t, Config{Seed: 1}), mustEncoder(t, Config{Seed: 2})
	ea, eb, ec := make([]float32, 16*256), make([]float32, 16*256), make([]float32, 16*256)
	a.EncodeTo(ea, &sc, rand.New(rand.NewPCG(5, 5)))
	b.EncodeTo(eb, &sc, rand.New(rand.NewPCG(5, 5)))
	c.EncodeTo(ec, &sc, rand.New(rand.NewPCG(5, 5)))
	same := 0
	for i := range ea {
		if ea[i] != eb[i] {
			t.Fatalf("same seeds differ at %d", i)
		}
		if ea[i] == ec[i] {
			same++
		}
	}
	if same > len(ea)/100 {
		t.Errorf("projection seeds 1 and 2 agree on %d of %d values", same, len(ea))
	}
}

func TestNoise(t *testing.T) {
	e := mustEncoder(t, Config{Noise: 0.05})
	sc := scene(rand.New(rand.NewPCG(1, 1)))
	clean, noisy := make([]float32, 4096), make([]float32, 4096)
	e.EncodeTo(clean, &sc, nil)
	e.EncodeTo(noisy, &sc, rand.New(rand.NewPCG(3, 3)))
	var s2 float64
	for i := range clean {
		d := float64(noisy[i] - clean[i])
		s2 += d * d
	}
	// Sample sd over 4096 values has relative sd 1/sqrt(2*4096) = 1.1%; allow 5%.
	if sd := math.Sqrt(s2 / 4096); math.Abs(sd/0.05-1) > 0.05 {
		t.Errorf("noise sd %g, want 0.05", sd)
	}
}

// TestGoalPresentButEntangled checks that a kernel ridge probe recovers the goal from noisy
// embeddings of held-out scenes (the information is present) while no single channel is
// close to a linear function of any goal coordinate (it is entangled).
func TestGoalPresentButEntangled(t *testing.T) {
	const ntrain, ntest = 200, 50
	e := mustEncoder(t, Config{Tokens: 4, Width: 128}) // smaller for speed; same construction
	r := rand.New(rand.NewPCG(11, 12))
	noise := rand.New(rand.NewPCG(13, 14))
	n := ntrain + ntest
	d := 4 * 128
	X := mat.NewDense(n, d, nil)
	Y := mat.NewDense(n, 3, nil)
	emb := make([]float32, d)
	for i := range n {
		sc := scene(r)
		e.EncodeTo(emb, &sc, noise)
		for j, v := range emb {
			X.Set(i, j, float64(v))
		}
		Y.SetRow(i, sc.Goal[:])
	}
	// Linear ridge in the dual: alpha = (K + lambda I)^-1 Y, K = X X^T on the training rows.
	Xtr := X.Slice(0, ntrain, 0, d)
	var K mat.Dense
	K.Mul(Xtr, Xtr.T())
	for i := range ntrain {
		K.Set(i, i, K.At(i, i)+1e-2)
	}
	var alpha mat.Dense
	if err := alpha.Solve(&K, Y.Slice(0, ntrain, 0, 3)); err != nil {
		t.Fatal(err)
	}
	var Kte, pred mat.Dense
	Kte.Mul(X.Slice(ntrain, n, 0, d), Xtr.T())
	pred.Mul(&Kte, &alpha)
	var se float64
	for i := range ntest {
		for k := range 3 {
			dd := pred.At(i, k) - Y.At(ntrain+i, k)
			se += dd * dd
		}
	}
	rmse := math.Sqrt(se / (3 * ntest))
	// The goal box is 0.3-0.6 m wide (sd about 0.1-0.17 m); a 1 cm probe error means the goal
	// is there to read.
	if rmse > 0.01 {
		t.Errorf("linear probe recovers the goal with RMSE %.4f m, want < 0.01", rmse)
	}
	// Entangled: a channel is a nonlinear function of a random mix of all features, so few
	// channels follow one goal coordinate. Random weights make a handful nearly linear in one
	// coordinate by chance (about 2% at the default gain, 1.2); a disentangled code (each channel
	// a coordinate) would have every channel there.
	best := make([]float64, d)
	nearLinear := 0
	for j := range d {
		for k := range 3 {
			best[j] = max(best[j], math.Abs(corr(X.ColView(j), Y.ColView(k))))
		}
		if best[j] > 0.9 {
			nearLinear++
		}
	}
	slices.Sort(best)
	if frac := float64(nearLinear) / float64(d); frac > 0.05 || best[d/2] > 0.6 {
		t.Errorf("%.1f%% of channels have |corr| > 0.9 with a goal coordinate (want < 5%%), median best |corr| %.2f (want < 0.6)", 100*frac, best[d/2])
	}
	t.Logf("probe RMSE %.4f m; best |corr| per channel: median %.2f, max %.3f, %d of %d above 0.9", rmse, best[d/2], best[d-1], nearLinear, d)
}

func corr(a, b mat.Vector) float64 {
	n := float64(a.Len())
	var sa, sb, saa, sbb, sab float64
	for i := range a.Len() {
		x, y := a.AtVec(i), b.AtVec(i)
		sa, sb, saa, sbb, sab = sa+x, sb+y, saa+x*x, sbb+y*y, sab+x*y
	}
	return (sab/n - sa*sb/n/n) / math.Sqrt((saa/n-sa*sa/n/n)*(sbb/n-sb*sb/n/n))
}

func TestInstructionMatters(t *testing.T) {
	e := mustEncoder(t, Config{})
	a, b := Scene{Instruction: "reach the red target"}, Scene{Instruction: "reach the blue target"}
	c := Scene{Instruction: "REACH the  red target!"} // case and punctuation do not matter
	ea, eb, ec := make([]float32, 4096), make([]float32, 4096), make([]float32, 4096)
	e.EncodeTo(ea, &a, nil)
	e.EncodeTo(eb, &b, nil)
	e.EncodeTo(ec, &c, nil)
	diff := 0.0
	for i := range ea {
		diff += math.Abs(float64(ea[i] - eb[i]))
		if ea[i] != ec[i] {
			t.Fatalf("case or punctuation changed the embedding at %d", i)
		}
	}
	if diff/4096 < 0.01 {
		t.Errorf("red vs blue: mean |difference| %g", diff/4096)
	}
}

func TestStreamRateAndLatency(t *testing.T) {
	e := mustEncoder(t, Config{Rate: 8, Latency: 300 * time.Millisecond})
	s := NewStream(e, 1)
	sc := Scene{Instruction: "x"}
	const tick = 20 * time.Millisecond
	var observed []time.Duration
	for k := range 150 {
		now := time.Duration(k) * tick
		if s.Due(now) {
			sc.Goal[0] = now.Seconds() // tag the frame with its time
			s.Observe(now, &sc)
			observed = append(observed, now)
		}
		emb, at, ok := s.Latest(now)
		// The newest observation at or before now - latency.
		var want time.Duration = -1
		for _, o := range observed {
			if o+300*time.Millisecond <= now {
				want = o
			}
		}
		if ok != (want >= 0) || (ok && at != want) {
			t.Fatalf("at %v: Latest = %v, %v; want observation at %v", now, at, ok, want)
		}
		if ok && len(emb) != 4096 {
			t.Fatalf("embedding has %d values", len(emb))
		}
	}
	// 8 Hz: every 125 ms, rounded up to the 20 ms tick: 0, 140, 260, 380, 500, ...
	for i, o := range observed[:5] {
		if want := []time.Duration{0, 140, 260, 380, 500}[i] * time.Millisecond; o != want {
			t.Errorf("observation %d at %v, want %v", i, o, want)
		}
	}
	if got := len(observed); got != 24 { // 3 s at 8 Hz
		t.Errorf("%d observations in 3 s, want 24", got)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []Config{{Tokens: -1}, {Rate: -1}, {Rate: math.Inf(1)}, {Rate: 1e12}, {Noise: math.NaN()}, {Gain: -1}} {
		if _, err := NewEncoder(c); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: error %v, want ErrConfig", c, err)
		}
	}
	c := Config{Latency: -1, Noise: -1}.WithDefaults()
	if c.Latency != 0 || c.Noise != 0 || c.Tokens != 16 || c.Width != 256 || c.Rate != 10 {
		t.Errorf("defaults: %+v", c)
	}
}

func TestEncodeAllocs(t *testing.T) {
	e := mustEncoder(t, Config{})
	s := NewStream(e, 1)
	sc := scene(rand.New(rand.NewPCG(1, 1)))
	now := time.Duration(0)
	if allocs := testing.AllocsPerRun(20, func() {
		s.Observe(now, &sc)
		s.Latest(now)
		now += 100 * time.Millisecond
	}); allocs != 0 {
		t.Errorf("Observe and Latest allocate %v times", allocs)
	}
}

func BenchmarkEncode(b *testing.B) {
	e := mustEncoder(b, Config{})
	sc := scene(rand.New(rand.NewPCG(1, 1)))
	dst := make([]float32, 16*256)
	noise := rand.New(rand.NewPCG(2, 2))
	b.ReportAllocs()
	for b.Loop() {
		e.EncodeTo(dst, &sc, noise)
	}
}

func ExampleStream() {
	enc, err := NewEncoder(Config{Seed: 1}) // 16 x 256 at 10 Hz, 100 ms latency
	if err != nil {
		panic(err)
	}
	s := NewStream(enc, 42)
	sc := Scene{Instruction: "reach the red target", Goal: [3]float64{0.4, 0.1, 0.3}}
	for now := time.Duration(0); now <= 200*time.Millisecond; now += 50 * time.Millisecond {
		if s.Due(now) {
			s.Observe(now, &sc)
		}
		_, at, ok := s.Latest(now)
		fmt.Println(now, ok, at)
	}
	// Output:
	// 0s false 0s
	// 50ms false 0s
	// 100ms true 0s
	// 150ms true 0s
	// 200ms true 100ms
}
