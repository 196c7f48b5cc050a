package experttest_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/flowact/flowact/expert/experttest"
	"github.com/flowact/flowact/expert/path"
)

func mixture2() experttest.Mixture {
	return experttest.Mixture{N: 2, Weights: []float64{0.5, 0.3, 0.2}, Components: []experttest.Gaussian{
		{Mean: []float64{-2, 0}, Std: []float64{0.3, 0.5}},
		{Mean: []float64{2, 1}, Std: []float64{0.4, 0.2}},
		{Mean: []float64{0, -2.5}, Std: []float64{0.25, 0.25}},
	}}
}

var scheds = []path.Scheduler{path.CondOT{}, path.Cosine{}, path.VP{}, path.LinearVP{}, path.VE{SigmaMax: 5}, path.Polynomial{N: 2}}

// TestContinuity checks that the exact field transports the exact marginal: the continuity
// equation d/dt log p_t + div u + u . grad log p_t = 0, with every derivative taken by central
// differences of the closed-form density. The points go through float32, so a step h = 1e-3 in x
// carries a relative rounding error of ~6e-8/1e-3 and the truncation error is ~h^2 times third
// derivatives of order 10: residuals of a few 1e-4; tol is 5e-3, while a wrong field (e.g. the
// sigma sigma' term dropped) gives residuals of order 1.
func TestContinuity(t *testing.T) {
	src := experttest.Gaussian{Mean: []float64{0.3, -0.2}, Std: []float64{1, 1.5}}
	for _, s := range scheds {
		f, err := experttest.NewField(s, src, mixture2())
		if err != nil {
			t.Fatal(err)
		}
		const h, tol = 1e-3, 5e-3
		for _, tm := range []float64{0.1, 0.5, 0.85} {
			for _, x := range [][]float64{{0.4, -0.3}, {1.5, 0.8}, {-1, -1}} {
				lp := func(x []float64, tm float64) float64 {
					return f.LogProb([]float32{float32(x[0]), float32(x[1])}, tm)
				}
				vel := func(x []float64) []float64 {
					v := make([]float32, 2)
					f.Velocity(v, []float32{float32(x[0]), float32(x[1])}, tm)
					return []float64{float64(v[0]), float64(v[1])}
				}
				dt := (lp(x, tm+1e-5) - lp(x, tm-1e-5)) / 2e-5
				u := vel(x)
				div, dot := 0.0, 0.0
				for i := range 2 {
					xp, xm := append([]float64(nil), x...), append([]float64(nil), x...)
					xp[i] += h
					xm[i] -= h
					div += (vel(xp)[i] - vel(xm)[i]) / (2 * h)
					dot += u[i] * (lp(xp, tm) - lp(xm, tm)) / (2 * h)
				}
				if res := dt + div + dot; math.Abs(res) > tol*(1+math.Abs(dt)) {
					t.Errorf("%T t=%v x=%v: continuity residual %v (dt %v div %v dot %v)", s, tm, x, res, dt, div, dot)
				}
			}
		}
	}
}

func TestScoreIsGradLogProb(t *testing.T) {
	f, _ := experttest.NewField(path.VP{}, experttest.Gaussian{}, mixture2())
	x, sc := []float32{0.5, 0.25}, make([]float32, 2)
	for _, tm := range []float64{0.2, 0.9} {
		f.ScoreTo(sc, x, tm)
		const h = 1.0 / 256 // exact in float32
		for i := range 2 {
			xp, xm := []float32{x[0], x[1]}, []float32{x[0], x[1]}
			xp[i] += h
			xm[i] -= h
			fd := (f.LogProb(xp, tm) - f.LogProb(xm, tm)) / (2 * h)
			if math.Abs(fd-float64(sc[i])) > 1e-3*(1+math.Abs(fd)) {
				t.Errorf("t=%v dim %d: score %v, finite difference %v", tm, i, sc[i], fd)
			}
		}
	}
}

// TestEnds checks the field at the ends of time: finite at t = 1 even for VP (sigma' = -Inf), and
// at t = 0 for CondOT equal to the mean data velocity E[x1] - x plus nothing else... precisely
// u_0(x) = E[x1] - x for a standard source, since x_0 = x0 carries no information about x1.
func TestEnds(t *testing.T) {
	m := mixture2()
	mean, _ := m.Moments()
	f, _ := experttest.NewField(path.CondOT{}, experttest.Gaussian{}, m)
	x, v := []float32{0.5, -0.7}, make([]float32, 2)
	f.Velocity(v, x, 0)
	for i := range 2 {
		if want := mean[i] - float64(x[i]); math.Abs(float64(v[i])-want) > 1e-6 {
			t.Errorf("CondOT u_0[%d] = %v, want %v", i, v[i], want)
		}
	}
	for _, s := range scheds {
		f, _ := experttest.NewField(s, experttest.Gaussian{}, m)
		for _, tm := range []float64{0, 1} {
			f.Velocity(v, x, tm)
			for _, vi := range v {
				if math.IsNaN(float64(vi)) || math.IsInf(float64(vi), 0) {
					t.Errorf("%T at t=%v: velocity %v", s, tm, v)
				}
			}
		}
	}
}

func TestMixtureSampleMoments(t *testing.T) {
	m := mixture2()
	r := rand.New(rand.NewPCG(1, 2))
	const n = 20000
	counts := make([]int, 3)
	sum := make([]float64, 2)
	x := make([]float32, 2)
	post := make([]float64, 3)
	agree := 0
	for range n {
		k := m.Sample(x, r)
		counts[k]++
		if m.Posterior(post, x) == k {
			agree++
		}
		sum[0] += float64(x[0])
		sum[1] += float64(x[1])
	}
	mean, cov := m.Moments()
	for i := range 2 {
		if se := math.Sqrt(cov[i*2+i] / n); math.Abs(sum[i]/n-mean[i]) > 5*se {
			t.Errorf("dim %d mean %v, want %v", i, sum[i]/n, mean[i])
		}
	}
	for k, c := range counts {
		w := m.Weight(k)
		if se := math.Sqrt(w * (1 - w) / n); math.Abs(float64(c)/n-w) > 5*se {
			t.Errorf("component %d frequency %v, want %v", k, float64(c)/n, w)
		}
	}
	if agree < n*99/100 { // the modes are > 6 standard deviations apart
		t.Errorf("posterior picks the true component for %d of %d samples", agree, n)
	}
}

func TestValidate(t *testing.T) {
	bad := []experttest.Mixture{
		{},
		{N: 2, Components: []experttest.Gaussian{{Mean: []float64{1}}}},
		{N: 1, Components: []experttest.Gaussian{{Std: []float64{0}}}},
		{N: 1, Weights: []float64{1, 2}, Components: []experttest.Gaussian{{}}},
		{N: 1, Weights: []float64{-1}, Components: []experttest.Gaussian{{}}},
	}
	for _, m := range bad {
		if err := m.Validate(); err == nil {
			t.Errorf("%+v: Validate() = nil", m)
		}
		if _, err := experttest.NewField(path.CondOT{}, experttest.Gaussian{}, m); err == nil {
			t.Errorf("%+v: NewField accepted it", m)
		}
	}
	if _, err := experttest.NewField(path.CondOT{}, experttest.Gaussian{Std: []float64{1}}, mixture2()); err == nil {
		t.Error("NewField accepted a 1-D source for a 2-D target")
	}
}

func TestVelocityAllocs(t *testing.T) {
	f, _ := experttest.NewField(path.VP{}, experttest.Gaussian{}, mixture2())
	x, v := []float32{1, 2}, make([]float32, 2)
	if a := testing.AllocsPerRun(20, func() { f.Velocity(v, x, 0.3) }); a != 0 {
		t.Errorf("Velocity allocates %v", a)
	}
}

func BenchmarkVelocity(b *testing.B) {
	f, _ := experttest.NewField(path.CondOT{}, experttest.Gaussian{}, mixture2())
	x, v := []float32{1, 2}, make([]float32, 2)
	b.ReportAllocs()
	for b.Loop() {
		f.Velocity(v, x, 0.3)
	}
}
