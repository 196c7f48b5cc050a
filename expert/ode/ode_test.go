package ode_test

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/flowact/flowact/expert"
	"github.com/flowact/flowact/expert/experttest"
	"github.com/flowact/flowact/expert/ode"
	"github.com/flowact/flowact/expert/path"
)

// smooth is a 2-D two-mode mixture with wide modes: its exact field is smooth enough for the
// fixed-step methods to show their asymptotic order at a few dozen steps.
func smooth() experttest.Mixture {
	return experttest.Mixture{N: 2, Weights: []float64{0.6, 0.4}, Components: []experttest.Gaussian{
		{Mean: []float64{-1, 0.5}, Std: []float64{0.5, 0.6}},
		{Mean: []float64{1, -0.5}, Std: []float64{0.4, 0.5}},
	}}
}

// sharp has narrow modes (std 0.05-0.08, like normalized actions of a confident policy): the
// field is stiff near t = 1, where an adaptive step pays off.
func sharp() experttest.Mixture {
	return experttest.Mixture{N: 2, Weights: []float64{0.6, 0.4}, Components: []experttest.Gaussian{
		{Mean: []float64{-1, 0.5}, Std: []float64{0.05, 0.08}},
		{Mean: []float64{1, -0.5}, Std: []float64{0.06, 0.05}},
	}}
}

// three is the 2-D three-mode mixture of the distribution tests.
func three() experttest.Mixture {
	return experttest.Mixture{N: 2, Weights: []float64{0.5, 0.3, 0.2}, Components: []experttest.Gaussian{
		{Mean: []float64{-2, 0}, Std: []float64{0.3, 0.5}},
		{Mean: []float64{2, 1}, Std: []float64{0.4, 0.2}},
		{Mean: []float64{0, -2.5}, Std: []float64{0.25, 0.25}},
	}}
}

func field(t testing.TB, s path.Scheduler, m experttest.Mixture) *experttest.Field {
	t.Helper()
	f, err := experttest.NewField(s, experttest.Gaussian{}, m)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func maxErr(a, b []float32) float64 {
	e := 0.0
	for i := range a {
		e = math.Max(e, math.Abs(float64(a[i])-float64(b[i])))
	}
	return e
}

// slope is the least-squares slope of log err against log n, negated: the observed order.
func slope(ns []int, errs []float64) float64 {
	var sx, sy, sxx, sxy float64
	for i, n := range ns {
		x, y := math.Log(float64(n)), math.Log(errs[i])
		sx, sy, sxx, sxy = sx+x, sy+y, sxx+x*x, sxy+x*y
	}
	k := float64(len(ns))
	return -(k*sxy - sx*sy) / (k*sxx - sx*sx)
}

// TestConvergenceOrder measures each fixed-step method's global error at t = 1 against a
// reference (RK4, 4096 steps: error below float32 resolution) on the exact CondOT field of a
// Gaussian mixture, and fits the order. Step counts keep every error at least ~20x above the
// float32 floor (~6e-8 here); the test refuses to fit errors within 5x of it. Measured: Euler 1.03, midpoint 1.96, Heun 1.98, RK4 3.96.
func TestConvergenceOrder(t *testing.T) {
	f := field(t, path.CondOT{}, smooth())
	x0 := []float32{0.3, -0.2}
	ref := make([]float32, 2)
	if err := (&ode.Fixed{Method: ode.RK4, Steps: 4096}).Sample(ref, x0, f); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		m      ode.Method
		ns     []int
		lo, hi float64
	}{
		{ode.Euler, []int{16, 32, 64, 128}, 0.9, 1.15},
		{ode.Midpoint, []int{16, 32, 64, 128}, 1.8, 2.2},
		{ode.Heun, []int{16, 32, 64, 128}, 1.8, 2.2},
		{ode.RK4, []int{8, 16, 32}, 3.7, 4.4},
	}
	dst := make([]float32, 2)
	for _, tc := range tests {
		errs := make([]float64, len(tc.ns))
		for i, n := range tc.ns {
			if err := (&ode.Fixed{Method: tc.m, Steps: n}).Sample(dst, x0, f); err != nil {
				t.Fatal(err)
			}
			errs[i] = maxErr(dst, ref)
			if errs[i] < 3e-7 { // 5x the float32 floor: below that the slope would measure rounding
				t.Fatalf("%v n=%d: error %g too close to float32 round-off to measure an order", tc.m, n, errs[i])
			}
		}
		p := slope(tc.ns, errs)
		t.Logf("%-8v steps %v errors %.3g order %.2f", tc.m, tc.ns, errs, p)
		if p < tc.lo || p > tc.hi {
			t.Errorf("%v: observed order %.2f, want %d (in [%v, %v])", tc.m, p, tc.m.Order(), tc.lo, tc.hi)
		}
	}
}

// TestUserGrid checks that an explicit grid equals the uniform one it spells out, and that a
// non-uniform grid (denser near the data) also converges.
func TestUserGrid(t *testing.T) {
	f := field(t, path.CondOT{}, smooth())
	x0 := []float32{0.3, -0.2}
	a, b, ref := make([]float32, 2), make([]float32, 2), make([]float32, 2)
	(&ode.Fixed{Method: ode.Heun, Steps: 7}).Sample(a, x0, f)
	(&ode.Fixed{Method: ode.Heun, Grid: ode.Uniform(7, 0, 1)}).Sample(b, x0, f)
	if maxErr(a, b) > 1e-7 {
		t.Errorf("explicit uniform grid %v, Steps %v", b, a)
	}
	(&ode.Fixed{Method: ode.RK4, Steps: 4096}).Sample(ref, x0, f)
	g := make([]float64, 33)
	for i := range g {
		u := float64(i) / 32
		g[i] = 1 - (1-u)*(1-u) // quadratic: steps shrink toward t = 1
	}
	(&ode.Fixed{Method: ode.RK4, Grid: g}).Sample(a, x0, f)
	if e := maxErr(a, ref); e > 1e-5 {
		t.Errorf("RK4 on a 32-step quadratic grid: error %g", e)
	}
}

// TestDormandPrince checks that the adaptive solver meets its tolerance (global error within 10
// tolerances; the control is local) and needs fewer evaluations than RK4 for the same error, on
// the stiff-near-data field of narrow modes.
func TestDormandPrince(t *testing.T) {
	f := field(t, path.CondOT{}, sharp())
	dst, ref := make([]float32, 2), make([]float32, 2)
	for _, x0 := range [][]float32{{0.3, -0.2}, {1.2, 0.7}} {
		if err := (&ode.Fixed{Method: ode.RK4, Steps: 8192}).Sample(ref, x0, f); err != nil {
			t.Fatal(err)
		}
		for _, tol := range []float64{1e-4, 1e-6} {
			dp := &ode.DormandPrince{RTol: tol, ATol: tol}
			st, err := dp.Solve(context.Background(), dst, x0, f)
			if err != nil {
				t.Fatal(err)
			}
			e := maxErr(dst, ref)
			if e > 10*tol {
				t.Errorf("x0 %v tol %g: error %g", x0, tol, e)
			}
			n := 4
			for ; n <= 1024; n += 4 {
				(&ode.Fixed{Method: ode.RK4, Steps: n}).Sample(dst, x0, f)
				if maxErr(dst, ref) <= e {
					break
				}
			}
			t.Logf("x0 %v tol %g: DP error %.3g with %d evaluations (%d steps, %d rejected); RK4 needs %d steps = %d evaluations",
				x0, tol, e, st.Evals, st.Steps, st.Rejected, n, 4*n)
			if st.Evals >= 4*n {
				t.Errorf("x0 %v tol %g: DP %d evaluations, RK4 %d at equal error", x0, tol, st.Evals, 4*n)
			}
		}
	}
}

// sampleMany draws n samples with s from noise of the given seed.
func sampleMany(t *testing.T, s expert.Sampler, f expert.Field, n int, seed uint64, scale float32) [][]float32 {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 1))
	out := make([][]float32, n)
	x0 := make([]float32, f.Dim())
	for i := range out {
		expert.Noise(x0, r)
		for j := range x0 {
			x0[j] *= scale
		}
		out[i] = make([]float32, f.Dim())
		if err := s.Sample(out[i], x0, f); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// checkDistribution compares samples with the mixture: the share of samples in each mode within
// 5 standard errors of its weight (binomial), and each mode's sample mean and standard deviation
// within 5 standard errors (plus bias, for samplers with a discretization bias) of the
// component's. Five standard errors: a false alarm has probability ~1e-6 per check.
func checkDistribution(t *testing.T, name string, xs [][]float32, m experttest.Mixture, bias float64) {
	t.Helper()
	n := len(xs)
	k := len(m.Components)
	post := make([]float64, k)
	cnt := make([]int, k)
	sum := make([][]float64, k)
	sq := make([][]float64, k)
	for j := range k {
		sum[j], sq[j] = make([]float64, m.N), make([]float64, m.N)
	}
	for _, x := range xs {
		j := m.Posterior(post, x)
		cnt[j]++
		for d, v := range x {
			sum[j][d] += float64(v)
			sq[j][d] += float64(v) * float64(v)
		}
	}
	for j, c := range m.Components {
		w := m.Weight(j)
		got := float64(cnt[j]) / float64(n)
		if se := math.Sqrt(w * (1 - w) / float64(n)); math.Abs(got-w) > 5*se+bias {
			t.Errorf("%s: mode %d holds %.4f of the samples, want %.4f +- %.4f", name, j, got, w, 5*se+bias)
		}
		nj := float64(cnt[j])
		for d := range m.N {
			mean := sum[j][d] / nj
			sd := math.Sqrt(sq[j][d]/nj - mean*mean)
			if se := c.Std[d] / math.Sqrt(nj); math.Abs(mean-c.Mean[d]) > 5*se+bias {
				t.Errorf("%s: mode %d dim %d mean %.4f, want %.4f +- %.4f", name, j, d, mean, c.Mean[d], 5*se+bias)
			}
			if se := c.Std[d] / math.Sqrt(2*nj); math.Abs(sd-c.Std[d]) > 5*se+bias {
				t.Errorf("%s: mode %d dim %d std %.4f, want %.4f +- %.4f", name, j, d, sd, c.Std[d], 5*se+bias)
			}
		}
	}
}

// TestMixtureSampling integrates the exact field of a 2-D three-mode mixture from 4000 noise
// draws and checks the end distribution: CondOT with RK4, VP with Dormand-Prince, and VE (which
// starts from SigmaMax-scaled noise and ends blurred by SigmaMin = 0.01, inside the tolerance).
func TestMixtureSampling(t *testing.T) {
	const n = 4000
	m := three()
	tests := []struct {
		name  string
		s     path.Scheduler
		smp   expert.Sampler
		scale float32
	}{
		{"CondOT/RK4", path.CondOT{}, &ode.Fixed{Method: ode.RK4, Steps: 32}, 1},
		{"VP/DormandPrince", path.VP{}, &ode.DormandPrince{RTol: 1e-4, ATol: 1e-4, Path: path.VP{}}, 1},
		{"VE/DormandPrince", path.VE{SigmaMax: 10}, &ode.DormandPrince{RTol: 1e-4, ATol: 1e-4, Path: path.VE{SigmaMax: 10}}, 10},
	}
	for _, tc := range tests {
		xs := sampleMany(t, tc.smp, field(t, tc.s, m), n, 42, tc.scale)
		checkDistribution(t, tc.name, xs, m, 0.005)
	}
}

// TestRescheduledSampling: sampling a CondOT-trained field along the cosine path carries the same
// noise to the same sample (both paths start at pure noise and end at data), and matches the
// exact cosine field's sample.
func TestRescheduledSampling(t *testing.T) {
	m := three()
	trained := field(t, path.CondOT{}, m)
	rf := path.Reschedule(trained, path.CondOT{}, path.Cosine{})
	cos := field(t, path.Cosine{}, m)
	r := rand.New(rand.NewPCG(5, 5))
	x0, a, b, c := make([]float32, 2), make([]float32, 2), make([]float32, 2), make([]float32, 2)
	dp := &ode.DormandPrince{RTol: 1e-6, ATol: 1e-6}
	for range 50 {
		expert.Noise(x0, r)
		for _, x := range []struct {
			dst []float32
			f   expert.Field
		}{{a, trained}, {b, rf}, {c, cos}} {
			if err := dp.Sample(x.dst, x0, x.f); err != nil {
				t.Fatal(err)
			}
		}
		if maxErr(a, b) > 1e-4 || maxErr(b, c) > 1e-4 {
			t.Fatalf("noise %v: CondOT %v, rescheduled to cosine %v, exact cosine %v", x0, a, b, c)
		}
	}
}

// TestSDE: Song et al.'s reverse SDE (noise 1) and a half-strength one reach the same end
// distribution as the ODE. 100 Euler-Maruyama steps: the discretization bias is O(h) = O(0.01),
// which the bias allowance covers.
func TestSDE(t *testing.T) {
	const n = 2000
	m := three()
	for _, tc := range []struct {
		name  string
		s     path.Scheduler
		noise float64
	}{
		{"CondOT/noise1", path.CondOT{}, 1},
		{"CondOT/noise0.5", path.CondOT{}, 0.5},
		{"VP/noise1", path.VP{}, 1},
	} {
		sde := &ode.SDE{Steps: 100, Path: tc.s, Noise: tc.noise, Rand: rand.New(rand.NewPCG(9, 9))}
		xs := sampleMany(t, sde, field(t, tc.s, m), n, 43, 1)
		checkDistribution(t, tc.name, xs, m, 0.01)
	}
}

// TestSDENoiseZeroIsEuler: with Noise = 0 the SDE sampler is the Euler ODE sampler, bit for bit.
func TestSDENoiseZeroIsEuler(t *testing.T) {
	f := field(t, path.VP{}, three())
	x0 := []float32{0.4, -1.2}
	a, b := make([]float32, 2), make([]float32, 2)
	(&ode.SDE{Steps: 25, Path: path.VP{}}).Sample(a, x0, f)
	(&ode.Fixed{Method: ode.Euler, Steps: 25}).Sample(b, x0, f)
	if math.Float32bits(a[0]) != math.Float32bits(b[0]) || math.Float32bits(a[1]) != math.Float32bits(b[1]) {
		t.Errorf("SDE with noise 0 %v, Euler %v", a, b)
	}
}

// TestDeterministic: the same seed gives the same chunk bit for bit, for every sampler.
func TestDeterministic(t *testing.T) {
	m := three()
	f := field(t, path.CondOT{}, m)
	for _, mk := range []func() expert.Sampler{
		func() expert.Sampler { return &ode.Fixed{Method: ode.Heun, Steps: 12} },
		func() expert.Sampler { return &ode.DormandPrince{} },
		func() expert.Sampler { return &ode.SDE{Steps: 30, Noise: 1, Rand: rand.New(rand.NewPCG(3, 3))} },
	} {
		a := sampleMany(t, mk(), f, 20, 77, 1)
		b := sampleMany(t, mk(), f, 20, 77, 1)
		for i := range a {
			for j := range a[i] {
				if math.Float32bits(a[i][j]) != math.Float32bits(b[i][j]) {
					t.Fatalf("%T sample %d: %v then %v", mk(), i, a[i], b[i])
				}
			}
		}
	}
}

// TestAnytime: a solve whose context is already done returns the anytime estimate at t = 0,
// which for the exact CondOT field is x + u_0(x) = E[x1], the mixture's mean; a solve cancelled
// halfway returns x1_hat there and says so.
func TestAnytime(t *testing.T) {
	m := three()
	f := field(t, path.CondOT{}, m)
	mean, _ := m.Moments()
	x0 := []float32{0.7, -0.3}
	dst := make([]float32, 2)
	done, cancel := context.WithCancel(context.Background())
	cancel()
	for _, s := range []interface {
		Solve(context.Context, []float32, []float32, expert.Field) (ode.Stats, error)
	}{&ode.Fixed{Method: ode.RK4}, &ode.DormandPrince{}, &ode.SDE{}} {
		st, err := s.Solve(done, dst, x0, f)
		if !errors.Is(err, ode.ErrStopped) || !errors.Is(err, context.Canceled) {
			t.Errorf("%T: error %v, want ErrStopped and context.Canceled", s, err)
		}
		if st.T != 0 || maxErr(dst, []float32{float32(mean[0]), float32(mean[1])}) > 1e-5 {
			t.Errorf("%T: stopped at t=%v with %v, want E[x1] = %v", s, st.T, dst, mean)
		}
	}
	// Cancel from the observer after step 5 of 10: the next step's first evaluation sees it.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := &ode.Fixed{Method: ode.Heun, Steps: 10, Observe: func(i int, _ float64, _ []float32) {
		if i == 5 {
			cancel()
		}
	}}
	st, err := s.Solve(ctx, dst, x0, f)
	if !errors.Is(err, ode.ErrStopped) || st.T != 0.5 || st.Steps != 5 {
		t.Fatalf("stopped with %v at t=%v after %d steps", err, st.T, st.Steps)
	}
	// The estimate is x1_hat from the state at t = 0.5: compare with a 5-step solve on [0, 0.5].
	half, v, want := make([]float32, 2), make([]float32, 2), make([]float32, 2)
	(&ode.Fixed{Method: ode.Heun, Grid: ode.Uniform(5, 0, 0.5)}).Sample(half, x0, f)
	f.Velocity(v, half, 0.5)
	path.X1HatTo(want, half, v, path.CondOT{}, 0.5)
	if maxErr(dst, want) > 1e-6 {
		t.Errorf("anytime estimate %v, want %v", dst, want)
	}
}

// TestDormandPrinceStopTime: every early stop of the adaptive solver (cancel, evaluation budget,
// step-size underflow) reports as Stats.T the time of the last accepted step, the time the
// observer last saw and the time of the anytime estimate it returns.
func TestDormandPrinceStopTime(t *testing.T) {
	m := three()
	x0 := []float32{0.7, -0.3}
	tests := []struct {
		name string
		s    *ode.DormandPrince
		f    expert.Field
		want error
	}{
		{"cancel", &ode.DormandPrince{RTol: 1e-6, ATol: 1e-6}, field(t, path.CondOT{}, m), ode.ErrStopped},
		// 1 evaluation at t = 0, then 6 per attempted step: 4 attempts fit into 25.
		{"budget", &ode.DormandPrince{RTol: 1e-6, ATol: 1e-6, H0: 0.01, MaxEvals: 25}, field(t, path.CondOT{}, m), ode.ErrMaxEvals},
		// The field is NaN beyond t = 0.5: every step across it is rejected until h < 1e-12.
		{"underflow", &ode.DormandPrince{}, nanAfter{field(t, path.CondOT{}, m), 0.5}, expert.ErrNotFinite},
	}
	for _, tc := range tests {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var lastT float64
		last := make([]float32, 2)
		tc.s.Observe = func(i int, tt float64, x []float32) {
			lastT = tt
			copy(last, x)
			if tc.name == "cancel" && i == 3 {
				cancel()
			}
		}
		dst := make([]float32, 2)
		st, err := tc.s.Solve(ctx, dst, x0, tc.f)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: error %v, want %v", tc.name, err, tc.want)
			continue
		}
		if st.T != lastT || !(st.T > 0 && st.T < 1) {
			t.Errorf("%s: Stats.T = %v, want the last accepted time %v in (0, 1)", tc.name, st.T, lastT)
		}
		if tc.name == "underflow" && !(st.T > 0.49 && st.T <= 0.5) {
			t.Errorf("underflow: stopped at t = %v, want just below 0.5", st.T)
		}
		// The anytime estimate is x1_hat at that time, from the state the observer saw.
		v, want := make([]float32, 2), make([]float32, 2)
		tc.f.Velocity(v, last, lastT)
		path.X1HatTo(want, last, v, path.CondOT{}, lastT)
		if maxErr(dst, want) > 1e-6 {
			t.Errorf("%s: estimate %v, want x1_hat %v at t = %v", tc.name, dst, want, lastT)
		}
	}
}

// nanAfter is a field that is NaN after time T.
type nanAfter struct {
	expert.Field
	T float64
}

func (f nanAfter) Velocity(dst, x []float32, t float64) {
	f.Field.Velocity(dst, x, t)
	if t > f.T {
		for i := range dst {
			dst[i] = float32(math.NaN())
		}
	}
}

// TestDenoise: a VP grid that stops at 1 - 1e-3 and denoises lands on the same sample as the full
// solve (the field at t = 1 is exact here; a network's need not be).
func TestDenoise(t *testing.T) {
	f := field(t, path.VP{}, three())
	x0 := []float32{0.2, 0.9}
	full, den := make([]float32, 2), make([]float32, 2)
	(&ode.Fixed{Method: ode.RK4, Steps: 200}).Sample(full, x0, f)
	(&ode.Fixed{Method: ode.RK4, Grid: ode.Uniform(200, 0, 1-1e-3), Path: path.VP{}, Denoise: true}).Sample(den, x0, f)
	if e := maxErr(full, den); e > 2e-3 {
		t.Errorf("denoised %v, full %v (diff %g)", den, full, e)
	}
}

func TestTrace(t *testing.T) {
	f := field(t, path.CondOT{}, three())
	x0 := []float32{0.2, 0.9}
	rows := make([][]float32, 9)
	for i := range rows {
		rows[i] = make([]float32, 2)
	}
	var seen []float64
	s := &ode.Fixed{Method: ode.Midpoint, Steps: 8, Trace: rows, Observe: func(_ int, t float64, _ []float32) { seen = append(seen, t) }}
	dst := make([]float32, 2)
	if err := s.Sample(dst, x0, f); err != nil {
		t.Fatal(err)
	}
	if maxErr(rows[0], x0) != 0 || maxErr(rows[8], dst) != 0 || len(seen) != 9 || seen[8] != 1 {
		t.Errorf("trace first %v last %v (x0 %v dst %v), observed times %v", rows[0], rows[8], x0, dst, seen)
	}
	mid := make([]float32, 2)
	(&ode.Fixed{Method: ode.Midpoint, Grid: ode.Uniform(3, 0, 3.0/8)}).Sample(mid, x0, f)
	if maxErr(mid, rows[3]) > 1e-7 {
		t.Errorf("trace row 3 %v, solve to t = 3/8 %v", rows[3], mid)
	}
}

// TestLikelihood compares the change-of-variables log density with the closed form: a 3-D
// Gaussian (exact divergence), the 2-D mixture (exact divergence), and an 8-D mixture with
// Hutchinson probes (unbiased: mean error over samples within 4 standard errors of 0).
func TestLikelihood(t *testing.T) {
	gauss := experttest.Mixture{N: 3, Components: []experttest.Gaussian{{Mean: []float64{1, -0.5, 0.2}, Std: []float64{0.5, 1.5, 0.8}}}}
	for _, tc := range []struct {
		name string
		s    path.Scheduler
		m    experttest.Mixture
		tol  float64
	}{
		{"gaussian/CondOT", path.CondOT{}, gauss, 1e-3},
		{"gaussian/Cosine", path.Cosine{}, gauss, 1e-3},
		{"mixture/CondOT", path.CondOT{}, three(), 5e-3},
		{"gaussian/VP", path.VP{}, gauss, 1e-3},
		{"gaussian/VE", path.VE{SigmaMin: 1e-3, SigmaMax: 20}, gauss, 1e-3},
	} {
		f := field(t, tc.s, tc.m)
		// VP and VE do not start at pure noise: use their exact p_0 as the prior (with the
		// default N(0, 1) VP is off by ~alpha_0 mu x0 = 0.02 here, VE by more).
		p0, _ := experttest.NewField(tc.s, experttest.Gaussian{}, tc.m)
		l := &ode.Likelihood{Steps: 64, Prior: func(x []float32) float64 { return p0.LogProb(x, 0) }}
		r := rand.New(rand.NewPCG(11, 12))
		x := make([]float32, tc.m.N)
		for range 5 {
			tc.m.Sample(x, r)
			got, st, err := l.LogProb(x, f)
			if err != nil {
				t.Fatal(err)
			}
			want := tc.m.LogProb(x)
			if math.Abs(got-want) > tc.tol {
				t.Errorf("%s: x %v: log p %v, exact %v (%d evaluations)", tc.name, x, got, want, st.Evals)
			}
		}
	}
	// Hutchinson on 8 dimensions: two modes apart along every axis, so the Jacobian mixes axes.
	const d = 8
	mean, std := make([]float64, d), make([]float64, d)
	for i := range d {
		mean[i], std[i] = 1+0.1*float64(i), 0.6
	}
	neg := make([]float64, d)
	for i := range d {
		neg[i] = -mean[i]
	}
	m8 := experttest.Mixture{N: d, Components: []experttest.Gaussian{{Mean: mean, Std: std}, {Mean: neg, Std: std}}}
	f := field(t, path.CondOT{}, m8)
	r := rand.New(rand.NewPCG(17, 18))
	x := make([]float32, d)
	// The estimator's variance falls as 1/Probes: compare the RMS error with 1 and 8 probes on
	// the same 40 samples, and check the mean error with 2 probes.
	rms := map[int]float64{}
	for _, probes := range []int{1, 2, 8} {
		l := &ode.Likelihood{Steps: 24, Probes: probes, Rand: rand.New(rand.NewPCG(15, 16))}
		r := rand.New(rand.NewPCG(13, 14))
		var sum, sq float64
		const n = 40
		for range n {
			m8.Sample(x, r)
			got, _, err := l.LogProb(x, f)
			if err != nil {
				t.Fatal(err)
			}
			e := got - m8.LogProb(x)
			sum, sq = sum+e, sq+e*e
		}
		mu := sum / n
		se := math.Sqrt((sq/n - mu*mu) / n)
		rms[probes] = math.Sqrt(sq / n)
		t.Logf("Hutchinson (%d probes, D=8): mean error %.4f, standard error %.4f, rms %.4f", probes, mu, se, rms[probes])
		if math.Abs(mu) > 4*se+1e-3 {
			t.Errorf("Hutchinson with %d probes: mean error %v, standard error %v", probes, mu, se)
		}
	}
	// 1/sqrt(8) = 0.35 in expectation; 0.6 leaves room for the sampling noise of 40 errors.
	if rms[8] > 0.6*rms[1] {
		t.Errorf("RMS error with 8 probes %v, with 1 probe %v: want about 1/sqrt(8) as much", rms[8], rms[1])
	}
	// The exact divergence on the same field is accurate to finite-difference error.
	m8.Sample(x, r)
	got, st, err := (&ode.Likelihood{Steps: 24}).LogProb(x, f)
	if err != nil || math.Abs(got-m8.LogProb(x)) > 2e-3 {
		t.Errorf("exact divergence, D=8: log p %v, exact %v, %v", got, m8.LogProb(x), err)
	}
	t.Logf("exact divergence, D=8: error %.2g with %d evaluations", got-m8.LogProb(x), st.Evals)
}

func TestBadInput(t *testing.T) {
	f := field(t, path.CondOT{}, three())
	x2, x3 := make([]float32, 2), make([]float32, 3)
	tests := []struct {
		name string
		s    expert.Sampler
		dst  []float32
		want error
	}{
		{"shape", &ode.Fixed{}, x3, expert.ErrShape},
		{"method", &ode.Fixed{Method: 9}, x2, ode.ErrConfig},
		{"steps", &ode.Fixed{Steps: -1}, x2, ode.ErrConfig},
		{"short grid", &ode.Fixed{Grid: []float64{0}}, x2, ode.ErrConfig},
		{"grid order", &ode.Fixed{Grid: []float64{0, 0.5, 0.4, 1}}, x2, ode.ErrConfig},
		{"grid NaN", &ode.Fixed{Grid: []float64{0, math.NaN(), 1}}, x2, ode.ErrConfig},
		{"trace", &ode.Fixed{Steps: 4, Trace: [][]float32{{0, 0}}}, x2, ode.ErrConfig},
		{"tol", &ode.DormandPrince{RTol: -1}, x2, ode.ErrConfig},
		{"budget", &ode.DormandPrince{RTol: 1e-9, ATol: 1e-9, MaxEvals: 30}, x2, ode.ErrMaxEvals},
		{"sde rand", &ode.SDE{Noise: 1}, x2, ode.ErrConfig},
		{"sde noise", &ode.SDE{Noise: -1}, x2, ode.ErrConfig},
	}
	for _, tc := range tests {
		if err := tc.s.Sample(tc.dst, x2, f); !errors.Is(err, tc.want) {
			t.Errorf("%s: error %v, want %v", tc.name, err, tc.want)
		}
	}
	if err := (&ode.Fixed{}).Sample(x2, x2, nil); !errors.Is(err, ode.ErrConfig) {
		t.Errorf("nil field: %v", err)
	}
	for _, l := range []*ode.Likelihood{{Probes: 1}, {Grid: []float64{0, 1}}, {Method: 7}, {PriorStd: -1}} {
		if _, _, err := l.LogProb(x2, f); !errors.Is(err, ode.ErrConfig) {
			t.Errorf("%+v: %v", l, err)
		}
	}
	if _, _, err := (&ode.Likelihood{}).LogProb(x3, f); !errors.Is(err, expert.ErrShape) {
		t.Errorf("likelihood shape: %v", err)
	}
	// A field that blows up is reported, not returned as a chunk.
	if err := (&ode.Fixed{}).Sample(x2, x2, nanField{}); !errors.Is(err, expert.ErrNotFinite) {
		t.Errorf("NaN field: %v", err)
	}
}

type nanField struct{}

func (nanField) Dim() int { return 2 }
func (nanField) Velocity(dst, x []float32, t float64) {
	for i := range dst {
		dst[i] = float32(math.NaN())
	}
}

// chunkField is a cheap linear field on a 50 x 14 chunk (the pi0 shape, H x D row-major): the
// exact CondOT field of N(0, c^2 I) data, for measuring solver overhead.
func chunkField(t testing.TB) expert.Field {
	const n = 50 * 14
	mean, std := make([]float64, n), make([]float64, n)
	for i := range std {
		std[i] = 0.5
	}
	return field(t, path.CondOT{}, experttest.Mixture{N: n, Components: []experttest.Gaussian{{Mean: mean, Std: std}}})
}

// TestZeroAllocs proves that a warm solver allocates nothing in a whole solve, hence in a step.
func TestZeroAllocs(t *testing.T) {
	f := chunkField(t)
	x0, dst := make([]float32, f.Dim()), make([]float32, f.Dim())
	expert.Noise(x0, rand.New(rand.NewPCG(1, 1)))
	obs := func(int, float64, []float32) {}
	samplers := map[string]expert.Sampler{
		"euler":    &ode.Fixed{},
		"midpoint": &ode.Fixed{Method: ode.Midpoint, Observe: obs},
		"heun":     &ode.Fixed{Method: ode.Heun, Grid: ode.Uniform(6, 0, 1)},
		"rk4":      &ode.Fixed{Method: ode.RK4},
		"dopri":    &ode.DormandPrince{Observe: obs},
		"sde":      &ode.SDE{Steps: 10, Noise: 1, Rand: rand.New(rand.NewPCG(1, 2))},
	}
	for name, s := range samplers {
		if err := s.Sample(dst, x0, f); err != nil { // warm up: size the workspace
			t.Fatal(err)
		}
		if a := testing.AllocsPerRun(5, func() { s.Sample(dst, x0, f) }); a != 0 {
			t.Errorf("%s: %v allocations per solve", name, a)
		}
	}
	small := field(t, path.CondOT{}, three())
	x := []float32{0.1, 0.2}
	for _, l := range []*ode.Likelihood{{Steps: 4}, {Steps: 4, Probes: 2, Rand: rand.New(rand.NewPCG(1, 3))}} {
		l.LogProb(x, small)
		if a := testing.AllocsPerRun(5, func() { l.LogProb(x, small) }); a != 0 {
			t.Errorf("likelihood (%d probes): %v allocations", l.Probes, a)
		}
	}
}

func BenchmarkSample(b *testing.B) {
	f := chunkField(b)
	x0, dst := make([]float32, f.Dim()), make([]float32, f.Dim())
	expert.Noise(x0, rand.New(rand.NewPCG(1, 1)))
	for _, bc := range []struct {
		name string
		s    expert.Sampler
	}{
		{"euler10", &ode.Fixed{}},
		{"heun10", &ode.Fixed{Method: ode.Heun}},
		{"rk4x10", &ode.Fixed{Method: ode.RK4}},
		{"dopri1e-4", &ode.DormandPrince{}},
		{"sde10", &ode.SDE{Steps: 10, Noise: 1, Rand: rand.New(rand.NewPCG(1, 2))}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := bc.s.Sample(dst, x0, f); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkStepOverhead is the solver's own cost per Euler step on a 50 x 14 chunk with a field
// that does nothing: what the sampler adds to a network's evaluation.
func BenchmarkStepOverhead(b *testing.B) {
	f := zeroField(50 * 14)
	x0, dst := make([]float32, f.Dim()), make([]float32, f.Dim())
	s := &ode.Fixed{Steps: 100}
	b.ReportAllocs()
	for b.Loop() {
		s.Sample(dst, x0, f)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/100, "ns/step")
}

type zeroField int

func (z zeroField) Dim() int                           { return int(z) }
func (zeroField) Velocity(dst, _ []float32, _ float64) { clear(dst) }

func BenchmarkLikelihood(b *testing.B) {
	f := field(b, path.CondOT{}, three())
	x := []float32{0.1, 0.2}
	for _, bc := range []struct {
		name string
		l    *ode.Likelihood
	}{
		{"exact", &ode.Likelihood{}},
		{"hutchinson1", &ode.Likelihood{Probes: 1, Rand: rand.New(rand.NewPCG(1, 1))}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				bc.l.LogProb(x, f)
			}
		})
	}
}
