package path_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/flowact/flowact/expert"
	"github.com/flowact/flowact/expert/experttest"
	"github.com/flowact/flowact/expert/path"
)

// The central identity of flow matching (Lipman et al., "Flow Matching for Generative
// Modeling", ICLR 2023, Theorem 2; Lipman et al. 2024, Theorem 4): for any model v_theta,
//
//	L_CFM(theta) = E_{t, x0, x1} |v_theta(x_t, t) - u_t(x_t | x1, x0)|^2   (what training uses)
//	L_FM(theta)  = E_{t, x_t}    |v_theta(x_t, t) - u_t(x_t)|^2           (what it means)
//
// differ by a constant in theta, E|u_t(x_t|x1, x0)|^2 - E|u_t(x_t)|^2 (the expected conditional
// variance of the target given x_t), so they have the same gradient and the same minimizer. Per
// sample, grad L_CFM - grad L_FM = 2 J_theta(x_t, t)^T (u_t(x_t) - u_t(x_t | x1, x0)), whose mean
// is zero because u_t(x) = E[u_t(x | x1, x0) | x_t = x] and J depends on x_t and t only.
//
// cfmFeatures is the size of the feature vector phi(x, t) of the linear test model
// v_theta(x, t) = W phi(x, t), W a 2 x cfmFeatures matrix (theta): 1, t, t^2, x_1, x_2, t x_1,
// t x_2, x_1 x_2, so its Jacobian is phi itself and the FM minimizer a least-squares solve.
const cfmFeatures = 8

func cfmPhi(x []float32, t float64) [cfmFeatures]float64 {
	a, b := float64(x[0]), float64(x[1])
	return [cfmFeatures]float64{1, t, t * t, a, b, t * a, t * b, a * b}
}

// cfmSample is one training draw: the features of (x_t, t), the conditional target and the
// marginal fields' values at (x_t, t).
type cfmSample struct {
	phi [cfmFeatures]float64
	uc  [2]float64   // u_t(x_t | x1, x0), from path.Affine.Sample
	um  [][2]float64 // u_t(x_t) of each candidate marginal field
}

// cfmDraw draws n samples (t ~ Uniform, x0 ~ N(0, I), x1 ~ data) along s and evaluates the
// candidate marginal fields at each x_t.
func cfmDraw(s path.Scheduler, data experttest.Mixture, fields []expert.Field, n int, seed uint64) []cfmSample {
	r := rand.New(rand.NewPCG(seed, 1))
	x0, x1, xt, uc, u := make([]float32, 2), make([]float32, 2), make([]float32, 2), make([]float32, 2), make([]float32, 2)
	out := make([]cfmSample, n)
	for i := range out {
		t := path.Uniform{}.Sample(r)
		x0[0], x0[1] = float32(r.NormFloat64()), float32(r.NormFloat64())
		data.Sample(x1, r)
		path.Affine{Scheduler: s}.Sample(xt, uc, x0, x1, t)
		o := &out[i]
		o.phi = cfmPhi(xt, t)
		o.uc = [2]float64{float64(uc[0]), float64(uc[1])}
		for _, f := range fields {
			f.Velocity(u, xt, t)
			o.um = append(o.um, [2]float64{float64(u[0]), float64(u[1])})
		}
	}
	return out
}

// acc accumulates a sample mean and its standard error (samples are independent).
type acc struct {
	n, s, s2 float64
}

func (a *acc) add(x float64) { a.n++; a.s += x; a.s2 += x * x }

func (a *acc) mean() float64 { return a.s / a.n }

// z returns the mean's z-score, mean / standard error.
func (a *acc) z() float64 {
	m := a.mean()
	return m / math.Sqrt((a.s2-a.n*m*m)/(a.n-1)/a.n)
}

type cfmTheta [2][cfmFeatures]float64

func (w *cfmTheta) v(phi *[cfmFeatures]float64) (v [2]float64) {
	for o := range 2 {
		for j, p := range phi {
			v[o] += w[o][j] * p
		}
	}
	return v
}

// fmMinimizer returns the least-squares W of the FM loss against field k on the samples.
func fmMinimizer(smp []cfmSample, k int) cfmTheta {
	phi := mat.NewDense(len(smp), cfmFeatures, nil)
	u := mat.NewDense(len(smp), 2, nil)
	for i, s := range smp {
		phi.SetRow(i, s.phi[:])
		u.SetRow(i, s.um[k][:])
	}
	var w mat.Dense
	if err := w.Solve(phi, u); err != nil {
		panic(err)
	}
	var th cfmTheta
	for o := range 2 {
		for j := range cfmFeatures {
			th[o][j] = w.At(j, o)
		}
	}
	return th
}

// cfmCheck estimates, on the same samples, the gradients of L_CFM and L_FM (against field k) at
// each theta, and the loss gap L_CFM - L_FM at each theta. It returns the largest |z| of a
// gradient difference (grad L_CFM - grad L_FM, per parameter and theta), the largest |z| of a
// change of the gap between thetas (gap(theta) - gap(thetas[0])), over thetas[:nonzero] the
// smallest of the largest |z| of a component of the FM gradient itself (that the gradients
// compared are not both zero), and the mean gap at thetas[0].
func cfmCheck(smp []cfmSample, k int, thetas []cfmTheta, nonzero int) (gradZ, gapZ, gradSize, gap float64) {
	gap0 := make([]float64, len(smp))
	gradSize = math.Inf(1)
	for ti := range thetas {
		th := &thetas[ti]
		var dg, g [2][cfmFeatures]acc // grad L_CFM - grad L_FM and grad L_FM, per parameter
		var gaps acc                  // L_CFM - L_FM at th, minus the same at thetas[0]
		for i := range smp {
			s := &smp[i]
			v := th.v(&s.phi)
			var lc, lm float64
			for o := range 2 {
				rc, rm := v[o]-s.uc[o], v[o]-s.um[k][o]
				lc += rc * rc
				lm += rm * rm
				for j, p := range s.phi {
					// d/dW[o][j] |v - u|^2 = 2 (v_o - u_o) phi_j, for each loss.
					gc, gm := 2*rc*p, 2*rm*p
					dg[o][j].add(gc - gm)
					g[o][j].add(gm)
				}
			}
			if ti == 0 {
				gap0[i] = lc - lm
			}
			gaps.add(lc - lm - gap0[i])
		}
		size := 0.0 // the largest |z| of a component of grad L_FM at th
		for o := range 2 {
			for j := range cfmFeatures {
				gradZ = math.Max(gradZ, math.Abs(dg[o][j].z()))
				size = math.Max(size, math.Abs(g[o][j].z()))
			}
		}
		if ti < nonzero {
			gradSize = math.Min(gradSize, size)
		}
		if ti == 0 {
			var a acc
			for _, x := range gap0 {
				a.add(x)
			}
			gap = a.mean()
			continue
		}
		gapZ = math.Max(gapZ, math.Abs(gaps.z()))
	}
	return gradZ, gapZ, gradSize, gap
}

// TestCFMGradientIsFMGradient checks the identity above with the package's own pieces: data from a
// three-mode Gaussian mixture, conditional targets from Affine.Sample, the exact marginal field
// u_t(x) = E[u_t(x | x1, x0) | x_t = x] in closed form (experttest.Field), along CondOT and the
// cosine path, and the linear model above at three parameter values: zero, a random draw and the
// minimizer of L_FM on the samples (where grad L_FM is exactly 0, so grad L_CFM must vanish too).
// For a model linear in theta the per-sample gradient difference does not depend on theta; the
// three values show that the gradients compared are large (theta = 0, random) and that they
// vanish together (the minimizer), and the gap is compared across them.
// On 40000 samples per path, every one of the 48 gradient differences and 4 gap changes must lie
// within zLimit standard errors of 0.
//
// The check can fail: the same statistics against a wrong marginal field, the exact field of the
// mixture with its weights permuted or of the other path, are beyond zPower standard errors.
func TestCFMGradientIsFMGradient(t *testing.T) {
	// zLimit: with 52 z-scores per path, a false alarm at 4.5 has probability < 52 * 6.8e-6 = 4e-4
	// (the test is deterministic from its seed in any case). zPower: the smallest |z| a wrong field
	// must reach; the measured figures are far beyond it (logged).
	const (
		n      = 40000
		zLimit = 4.5
		zPower = 20
	)
	data := experttest.Mixture{N: 2, Weights: []float64{0.5, 0.3, 0.2}, Components: []experttest.Gaussian{
		{Mean: []float64{-2, 0}, Std: []float64{0.3, 0.5}},
		{Mean: []float64{2, 1}, Std: []float64{0.4, 0.2}},
		{Mean: []float64{0, -2.5}, Std: []float64{0.25, 0.25}},
	}}
	permuted := data
	permuted.Weights = []float64{0.2, 0.3, 0.5}
	paths := []struct {
		name         string
		s, otherPath path.Scheduler
	}{{"CondOT", path.CondOT{}, path.Cosine{}}, {"Cosine", path.Cosine{}, path.CondOT{}}}
	for pi, p := range paths {
		var fields []expert.Field
		for _, fc := range []struct {
			s path.Scheduler
			m experttest.Mixture
		}{{p.s, data}, {p.s, permuted}, {p.otherPath, data}} {
			f, err := experttest.NewField(fc.s, experttest.Gaussian{}, fc.m)
			if err != nil {
				t.Fatal(err)
			}
			fields = append(fields, f)
		}
		smp := cfmDraw(p.s, data, fields, n, uint64(10+pi))
		r := rand.New(rand.NewPCG(20, uint64(pi)))
		var random cfmTheta
		for o := range 2 {
			for j := range cfmFeatures {
				random[o][j] = r.NormFloat64()
			}
		}
		thetas := []cfmTheta{{}, random, fmMinimizer(smp, 0)}

		gradZ, gapZ, gradSize, gap := cfmCheck(smp, 0, thetas, 2)
		t.Logf("%s, exact marginal field: max |z| of grad L_CFM - grad L_FM %.2f, of the gap's change %.2f; grad L_FM at theta = 0 and random: a component at |z| >= %.1f; gap %.4f",
			p.name, gradZ, gapZ, gradSize, gap)
		if gradZ > zLimit || gapZ > zLimit {
			t.Errorf("%s: gradients differ by %.2f standard errors, the gap changes by %.2f: want both <= %v", p.name, gradZ, gapZ, zLimit)
		}
		if gradSize < zPower || !(gap > 0) {
			t.Errorf("%s: the compared gradients are only %.1f standard errors from 0, or the gap %v is not positive", p.name, gradSize, gap)
		}
		for k, wrong := range []string{"permuted weights", fmt.Sprintf("%T's field", p.otherPath)} {
			gz, pz, _, _ := cfmCheck(smp, k+1, thetas, 0)
			t.Logf("%s, %s: max |z| of the gradient difference %.1f, of the gap's change %.1f", p.name, wrong, gz, pz)
			if gz < zPower || pz < zPower {
				t.Errorf("%s: a marginal field with %s passes as the exact one (|z| %.1f, %.1f < %v)", p.name, wrong, gz, pz, zPower)
			}
		}
	}
}
