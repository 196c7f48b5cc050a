package norm

import (
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// exactQuantile is numpy's default (linear) quantile of sorted values.
func exactQuantile(sorted []float64, q float64) float64 {
	p := q * float64(len(sorted)-1)
	i := int(math.Floor(p))
	j := min(i+1, len(sorted)-1)
	return sorted[i] + (p-float64(i))*(sorted[j]-sorted[i])
}

// twoPass is the reference: mean, then population std around it, and exact quantiles.
func twoPass(col []float64) (mean, std, q01, q99, lo, hi float64) {
	for _, v := range col {
		mean += v
	}
	mean /= float64(len(col))
	for _, v := range col {
		std += (v - mean) * (v - mean)
	}
	std = math.Sqrt(std / float64(len(col)))
	s := slices.Clone(col)
	slices.Sort(s)
	return mean, std, exactQuantile(s, 0.01), exactQuantile(s, 0.99), s[0], s[len(s)-1]
}

func TestAccumulatorMatchesTwoPass(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	gens := []struct {
		name string
		f    func(i, n int) float64
	}{
		{"uniform", func(int, int) float64 { return r.Float64()*3 - 1 }},
		{"normal", func(int, int) float64 { return 0.2 + 0.05*r.NormFloat64() }},
		{"bimodal", func(int, int) float64 {
			if r.IntN(2) == 0 {
				return -1 + 0.1*r.NormFloat64()
			}
			return 2 + 0.1*r.NormFloat64()
		}},
		{"lognormal", func(int, int) float64 { return math.Exp(r.NormFloat64()) }},
		{"constant", func(int, int) float64 { return 0.7 }},
		{"ties", func(int, int) float64 { return float64(r.IntN(5)) }},
		{"ascending", func(i, n int) float64 { return float64(i) / float64(n) }},
		{"descending", func(i, n int) float64 { return 1e3 - float64(i)*1e-3 }},
		{"offset", func(int, int) float64 { return 1e6 + 1e-4*r.NormFloat64() }},
		{"outlier", func(i, n int) float64 {
			if i == n/2 {
				return 1e4
			}
			return r.NormFloat64()
		}},
	}
	const bins = 1024
	for _, n := range []int{1, 2, 5, 20000} {
		a := NewAccumulator(len(gens), bins, nil)
		cols := make([][]float64, len(gens))
		row := make([]float64, len(gens))
		for i := range n {
			for j, g := range gens {
				row[j] = g.f(i, n)
				cols[j] = append(cols[j], row[j])
			}
			if err := a.Add(row); err != nil {
				t.Fatal(err)
			}
		}
		s, err := a.Stats()
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Validate(); err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		bound := a.QuantileErrorBound()
		for j, g := range gens {
			mean, std, q01, q99, lo, hi := twoPass(cols[j])
			// Welford vs two-pass: both are backward stable; 1e-9 of the scale is far above
			// their rounding (n eps ~ 1e-12) and far below any real error.
			scale := math.Max(math.Abs(mean), std) + 1e-300
			if math.Abs(s.Mean[j]-mean) > 1e-9*scale || math.Abs(s.Std[j]-std) > 1e-9*scale+1e-12*math.Abs(mean) {
				t.Errorf("n=%d %s: mean/std %g/%g, want %g/%g", n, g.name, s.Mean[j], s.Std[j], mean, std)
			}
			if s.Min[j] != lo || s.Max[j] != hi {
				t.Errorf("n=%d %s: min/max %g/%g, want %g/%g", n, g.name, s.Min[j], s.Max[j], lo, hi)
			}
			// The documented bound, 4 (max-min)/(bins-2), and the accumulator's own 2w.
			tol := min(bound[j], 4*(hi-lo)/(bins-2))
			if bound[j] > 4*(hi-lo)/(bins-2)+1e-300 {
				t.Errorf("n=%d %s: error bound %g above 4 range/(bins-2) = %g", n, g.name, bound[j], 4*(hi-lo)/(bins-2))
			}
			if e := math.Abs(s.Q01[j] - q01); e > tol {
				t.Errorf("n=%d %s: q01 %g, want %g within %g (off %g)", n, g.name, s.Q01[j], q01, tol, e)
			}
			if e := math.Abs(s.Q99[j] - q99); e > tol {
				t.Errorf("n=%d %s: q99 %g, want %g within %g (off %g)", n, g.name, s.Q99[j], q99, tol, e)
			}
		}
	}
}

func TestAccumulatorRejects(t *testing.T) {
	a := NewAccumulator(2, 0, []string{"a", "b"})
	for _, row := range [][]float64{{1}, {1, math.NaN()}, {math.Inf(-1), 0}, {2e300, 0}} {
		if err := a.Add(row); err == nil {
			t.Errorf("Add(%v) accepted", row)
		}
	}
	if _, err := a.Stats(); !errors.Is(err, ErrInvalid) {
		t.Errorf("Stats of nothing: %v, want ErrInvalid", err)
	}
	if a.Count() != 0 {
		t.Errorf("rejected rows counted: %d", a.Count())
	}
}

func testStats() Stats {
	return Stats{Count: 10, Names: []string{"j1", "j2", "j3"},
		Mean: []float64{0.1, -2, 5}, Std: []float64{0.5, 0, 3},
		Q01: []float64{-1, -2, -1}, Q99: []float64{1.2, -2, 11},
		Min: []float64{-1.5, -2, -2}, Max: []float64{2, -2, 12}}
}

func TestNormalizeInverse(t *testing.T) {
	s := testStats()
	r := rand.New(rand.NewPCG(3, 4))
	for _, m := range []Mode{MeanStd, Quantile} {
		x := make([]float64, 5*3) // a 5 x 3 chunk
		for i := range x {
			x[i] = s.Mean[i%3] + 4*r.NormFloat64()
		}
		y := slices.Clone(x)
		s.Normalize(y, m)
		s.Unnormalize(y, m)
		for i := range x {
			if math.Abs(y[i]-x[i]) > 1e-6*math.Max(1, math.Abs(x[i])) {
				t.Errorf("%v: x[%d] %g -> %g", m, i, x[i], y[i])
			}
		}
		x32 := make([]float32, len(x))
		for i := range x {
			x32[i] = float32(x[i])
		}
		y32 := slices.Clone(x32)
		s.Normalize32(y32, m)
		s.Unnormalize32(y32, m)
		for i := range x32 {
			// float32 keeps 24 bits: 1e-6 relative plus rounding of the normalized value,
			// which for the constant dimension is scaled by 1/Eps on the way out.
			if math.Abs(float64(y32[i]-x32[i])) > 1e-6*math.Max(1, math.Abs(float64(x32[i]))) {
				t.Errorf("%v float32: x[%d] %g -> %g", m, i, x32[i], y32[i])
			}
		}
	}
}

func TestNormalizeValues(t *testing.T) {
	s := testStats()
	tests := []struct {
		m    Mode
		in   []float64
		want []float64
	}{
		{MeanStd, []float64{0.1, -2, 8}, []float64{0, 0, 3 / (3 + Eps)}},
		{MeanStd, []float64{0.6, -2 + 1e-6, 5}, []float64{0.5 / (0.5 + Eps), 1e-6 / Eps, 0}},
		{Quantile, []float64{-1, -2, -1}, []float64{-1, -1, -1}},
		{Quantile, []float64{1.2, -2, 11}, []float64{2*2.2/(2.2+Eps) - 1, -1, 2*12/(12+Eps) - 1}},
	}
	for _, tc := range tests {
		x := slices.Clone(tc.in)
		s.Normalize(x, tc.m)
		for i := range x {
			if math.Abs(x[i]-tc.want[i]) > 1e-9 {
				t.Errorf("%v %v: got %v, want %v", tc.m, tc.in, x, tc.want)
				break
			}
		}
	}
}

func TestNormalizeAllocs(t *testing.T) {
	s := testStats()
	x := make([]float64, 50*3)
	x32 := make([]float32, 50*3)
	for _, m := range []Mode{MeanStd, Quantile} {
		if n := testing.AllocsPerRun(100, func() {
			s.Normalize(x, m)
			s.Unnormalize(x, m)
			s.Normalize32(x32, m)
			s.Unnormalize32(x32, m)
		}); n != 0 {
			t.Errorf("%v: %v allocations per run", m, n)
		}
	}
}

func TestNormalizeShapePanics(t *testing.T) {
	s := testStats()
	defer func() {
		if recover() == nil {
			t.Error("Normalize of 4 values with 3 dimensions did not panic")
		}
	}()
	s.Normalize(make([]float64, 4), MeanStd)
}

func TestModeText(t *testing.T) {
	for _, m := range []Mode{MeanStd, Quantile} {
		b, err := m.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var got Mode
		if err := got.UnmarshalText(b); err != nil || got != m {
			t.Errorf("%v round trip: %v, %v", m, got, err)
		}
	}
	var m Mode
	if err := m.UnmarshalText([]byte("minmax")); err == nil {
		t.Error("unknown mode accepted")
	}
}

func TestSetJSON(t *testing.T) {
	set := &Set{State: testStats(), Action: testStats()}
	b, err := set.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := json.Marshal(got)
	set.Version = Version
	b1, _ := json.Marshal(set)
	if string(b1) != string(b2) {
		t.Errorf("round trip:\n%s\n%s", b1, b2)
	}
	if err := got.Check(3, 3); err != nil {
		t.Error(err)
	}
	if err := got.Check(3, 7); !errors.Is(err, ErrDim) {
		t.Errorf("Check(3, 7) = %v, want ErrDim", err)
	}
	if err := got.CheckNames([]string{"j1", "j2", "j3"}); err != nil {
		t.Error(err)
	}
	if err := got.CheckNames([]string{"j2", "j1", "j3"}); !errors.Is(err, ErrDim) {
		t.Errorf("CheckNames in another order = %v, want ErrDim", err)
	}
	got.State.Names, got.Action.Names = nil, nil
	if err := got.CheckNames([]string{"x"}); err != nil {
		t.Errorf("CheckNames without recorded names: %v", err)
	}
}

func TestDecodeStrict(t *testing.T) {
	good := `{"version":1,"state":{"count":2,"mean":[0],"std":[1],"q01":[-1],"q99":[1],"min":[-2],"max":[2]},` +
		`"action":{"count":2,"mean":[0],"std":[1],"q01":[-1],"q99":[1],"min":[-2],"max":[2]}}`
	if _, err := Decode([]byte(good)); err != nil {
		t.Fatalf("good JSON: %v", err)
	}
	tests := []struct {
		name, from, to string
		want           error
	}{
		{"unknown version", `"version":1`, `"version":2`, ErrVersion},
		{"missing version", `"version":1,`, ``, ErrVersion},
		{"dimension mismatch", `"std":[1],"q01"`, `"std":[1,2],"q01"`, ErrDim},
		{"names mismatch", `"count":2,"mean"`, `"count":2,"names":["a","b"],"mean"`, ErrDim},
		{"zero count", `"count":2`, `"count":0`, ErrInvalid},
		{"negative std", `"std":[1]`, `"std":[-1]`, ErrInvalid},
		{"quantiles out of order", `"q01":[-1]`, `"q01":[1.5]`, ErrInvalid},
		{"no dimensions", `"mean":[0],"std":[1],"q01":[-1],"q99":[1],"min":[-2],"max":[2]`, `"mean":[],"std":[],"q01":[],"q99":[],"min":[],"max":[]`, ErrDim},
		{"unknown field", `"count":2`, `"count":2,"median":[0]`, nil},
		{"NaN", `"mean":[0]`, `"mean":[NaN]`, nil},
		{"overflow", `"mean":[0]`, `"mean":[1e999]`, nil},
		{"trailing data", `}}`, `}}{}`, nil},
		{"wrong type", `"count":2`, `"count":"2"`, nil},
	}
	for _, tc := range tests {
		in := strings.Replace(good, tc.from, tc.to, 1)
		if in == good {
			t.Fatalf("%s: replacement did not apply", tc.name)
		}
		_, err := Decode([]byte(in))
		if err == nil {
			t.Errorf("%s: accepted %s", tc.name, in)
			continue
		}
		if tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
		if !strings.HasPrefix(err.Error(), "norm: ") && !strings.Contains(err.Error(), "norm: ") {
			t.Errorf("%s: error %q lacks the package prefix", tc.name, err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	set := &Set{State: testStats(), Action: testStats()}
	b, err := set.Encode()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`{"version":1}`))
	f.Add([]byte(`{"version":1,"state":{"count":1,"mean":[0],"std":[0],"q01":[0],"q99":[0],"min":[0],"max":[0]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Decode(data)
		if err != nil {
			return
		}
		// Whatever decodes is usable: it re-encodes, and normalization round-trips finite rows.
		if _, err := s.Encode(); err != nil {
			t.Fatalf("decoded set does not encode: %v", err)
		}
		x := slices.Clone(s.State.Mean)
		s.State.Normalize(x, Quantile)
		s.State.Unnormalize(x, Quantile)
	})
}

func BenchmarkNormalize(b *testing.B) {
	s := testStats()
	x := make([]float64, 50*3) // a 50 x 3 chunk
	b.ReportAllocs()
	b.SetBytes(int64(8 * len(x)))
	for b.Loop() {
		s.Normalize(x, MeanStd)
		s.Unnormalize(x, MeanStd)
	}
}

func BenchmarkNormalize32(b *testing.B) {
	s := testStats()
	x := make([]float32, 50*3)
	b.ReportAllocs()
	b.SetBytes(int64(4 * len(x)))
	for b.Loop() {
		s.Normalize32(x, Quantile)
		s.Unnormalize32(x, Quantile)
	}
}

func BenchmarkAccumulatorAdd(b *testing.B) {
	a := NewAccumulator(7, 0, nil)
	r := rand.New(rand.NewPCG(5, 6))
	row := make([]float64, 7)
	b.ReportAllocs()
	for b.Loop() {
		for j := range row {
			row[j] = r.NormFloat64()
		}
		if err := a.Add(row); err != nil {
			b.Fatal(err)
		}
	}
}

// TestOutside: the distance beyond [Min, Max] in standard deviations, the farthest dimension,
// zero within the range (and on its bounds), NaN infinitely far.
func TestOutside(t *testing.T) {
	s := &Stats{Mean: []float64{0, 10}, Std: []float64{1, 0.5}, Q01: []float64{-1, 9}, Q99: []float64{1, 11}, Min: []float64{-2, 8}, Max: []float64{2, 12}}
	for _, c := range []struct {
		x   []float64
		sd  float64
		dim int
	}{
		{[]float64{0, 10}, 0, -1},
		{[]float64{2, 8}, 0, -1},
		{[]float64{3, 10}, 1, 0},
		{[]float64{-2.5, 7}, 2, 1},
		{[]float64{-5, 12.5}, 3, 0},
		{[]float64{0, math.NaN()}, math.Inf(1), 1},
	} {
		sd, dim := s.Outside(c.x)
		if dim != c.dim || math.Abs(sd-c.sd) > 1e-5*max(1, c.sd) && !(math.IsInf(c.sd, 1) && math.IsInf(sd, 1)) {
			t.Errorf("Outside(%v) = %g, %d; want %g, %d", c.x, sd, dim, c.sd, c.dim)
		}
	}
	if a := testing.AllocsPerRun(100, func() { s.Outside([]float64{3, 10}) }); a != 0 {
		t.Errorf("%v allocations", a)
	}
}
