package ode

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/flowact/flowact/expert"
)

// Likelihood computes the log density of a sample under the distribution a field generates from
// standard normal noise, by the instantaneous change of variables (Chen et al., "Neural Ordinary
// Differential Equations", 2018; Grathwohl et al., "FFJORD", ICLR 2019):
//
//	d/dt log p_t(x_t) = -div u_t(x_t),   so   log p_1(x1) = log p_0(x_0) - integral_0^1 div u_t(x_t) dt,
//
// integrating x and the divergence integral backward, from the sample at t = 1 to the noise at
// t = 0, with a fixed-step method on a decreasing grid. The divergence is:
//   - exact (Probes = 0): sum_i du_i/dx_i by central differences along each unit vector, 2 D
//     evaluations. The field is float32, so each difference carries a rounding error of about
//     eps32 |u| / h besides the truncation error h^2 |u”'| / 6; the default step
//     h = eps32^(1/3) max(1, |x_i|) (~4e-3) balances them at ~1e-5 relative per diagonal entry.
//     (One-sided differences, D+1 evaluations, would balance at sqrt(eps32) ~ 2e-4.)
//   - Hutchinson's estimator (Probes = K > 0): (1/K) sum_k z_k^T J z_k with Rademacher probes z_k
//     drawn once per LogProb call from Rand (as FFJORD does, so the augmented ODE is smooth) and
//     J z_k by a central difference along z_k: 2 K evaluations whatever D is. Unbiased, with
//     variance 2 sum_{i != j} J_ij^2 (symmetric part) / K: exact when J is diagonal.
//
// The backward solve evaluates the field at the sample's time first: for VP and LinearVP, whose
// sigma' is infinite at t = 1, start an explicit Grid at 1 - eps when the field cannot be
// evaluated at 1 (the exact fields of expert/experttest can).
//
// The cost per divergence is therefore 1 + 2D (exact) or 1 + 2K (Hutchinson) evaluations per
// stage. Not safe for concurrent use; LogProb allocates nothing after the first call with a given
// dimension and probe count.
type Likelihood struct {
	Method Method    // zero means RK4
	Steps  int       // uniform steps from 1 to 0 when Grid is nil; zero means 32
	Grid   []float64 // explicit decreasing grid from the sample's time to the noise's; nil: uniform
	Probes int       // Hutchinson probes; zero means the exact divergence
	Rand   *rand.Rand
	// PriorStd is the standard deviation of the isotropic Gaussian noise at the grid's end
	// (t = 0); zero means 1. Use SigmaMax for VE paths.
	PriorStd float64
	// Prior, if not nil, replaces that Gaussian: it returns log p_0(x) of the state reached at the
	// grid's end (x is solver memory, valid during the call). VP and VE paths do not start at
	// pure noise; with Prior set to their exact p_0 the likelihood is exact for them too.
	Prior func(x []float32) float64
	// Step is the relative finite-difference step; zero means eps32^(1/3) = 2^-8.
	Step float64

	w   workspace
	div divField
}

// Validate reports a bad method, grid, probe count, missing random source or step.
func (l *Likelihood) Validate() error {
	if m := l.method(); m < Euler || m > RK4 {
		return fmt.Errorf("%w: method %d", ErrConfig, int(m))
	}
	if _, err := l.grid(); err != nil {
		return err
	}
	if l.Probes < 0 || l.Probes > 0 && l.Rand == nil {
		return fmt.Errorf("%w: %d Hutchinson probes with random source %v", ErrConfig, l.Probes, l.Rand != nil)
	}
	if !(l.PriorStd >= 0) || math.IsInf(l.PriorStd, 0) || !(l.Step >= 0 && l.Step < 1) {
		return fmt.Errorf("%w: prior std %v finite-difference step %v", ErrConfig, l.PriorStd, l.Step)
	}
	return nil
}

func (l *Likelihood) method() Method {
	if l.Method == 0 {
		return RK4
	}
	return l.Method
}

// grid returns the backward grid: explicit and decreasing, or uniform from 1 to 0 (see at).
func (l *Likelihood) grid() (grid, error) {
	g, err := makeGrid(l.Grid, l.Steps, 32)
	if err == nil && l.Grid != nil && l.Grid[0] < l.Grid[len(l.Grid)-1] {
		return g, fmt.Errorf("%w: likelihood grid must decrease (from the sample to the noise)", ErrConfig)
	}
	return g, err
}

func (l *Likelihood) at(g grid, i int) float64 {
	if g.times != nil {
		return g.times[i]
	}
	return 1 - g.at(i) // uniform from 1 down to 0, ending exactly at 0
}

// LogProb returns log p(x1) under the field f (natural log, the density of the flattened chunk)
// and the statistics of the backward solve. It does not modify x1.
func (l *Likelihood) LogProb(x1 []float32, f expert.Field) (float64, Stats, error) {
	if f == nil {
		return 0, Stats{}, fmt.Errorf("%w: nil field", ErrConfig)
	}
	n := f.Dim()
	if len(x1) != n {
		return 0, Stats{}, fmt.Errorf("ode: sample of %d values for a field of dimension %d: %w", len(x1), n, expert.ErrShape)
	}
	if err := l.Validate(); err != nil {
		return 0, Stats{}, err
	}
	g, _ := l.grid()
	d := &l.div
	d.bind(f, n, l.Probes, l.Step)
	for k := range d.z {
		if l.Rand.Uint64()&1 == 0 {
			d.z[k] = 1
		} else {
			d.z[k] = -1
		}
	}
	tab := l.method().tableau()
	w := &l.w
	w.ensure(n+1, tab.stages)
	w.load(x1)
	w.x[n] = 0 // the divergence integral from the sample's time to t
	var st Stats
	for i := range g.steps() {
		t, tn := l.at(g, i), l.at(g, i+1)
		toF32(w.xs, w.x)
		d.Velocity(w.k[0], w.xs, t)
		w.stages(&tab, d, t, tn-t)
		w.advance(&tab, tn-t)
		st.Steps++
		st.T = tn
	}
	st.Evals = d.evals
	// w.x[n] = integral_1^0 div dt = -integral_0^1 div dt; log p_0 of the noise reached.
	for _, v := range w.x {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return math.NaN(), st, fmt.Errorf("ode: likelihood: state %v at t = %v: %w", v, st.T, expert.ErrNotFinite)
		}
	}
	if l.Prior != nil {
		toF32(w.xs, w.x)
		return l.Prior(w.xs[:n]) + w.x[n], st, nil
	}
	sd := l.PriorStd
	if sd == 0 {
		sd = 1
	}
	lp0 := 0.0
	for _, v := range w.x[:n] {
		z := v / sd
		lp0 -= 0.5*z*z + math.Log(sd) + 0.5*math.Log(2*math.Pi)
	}
	return lp0 + w.x[n], st, nil
}

// divField is the augmented field (u(x, t), div u(x, t)) of dimension n + 1.
type divField struct {
	f          expert.Field
	n, probes  int
	rel        float64
	z          []float32 // probes x n Rademacher vectors
	xp, vp, vm []float32
	evals      int
}

func (d *divField) bind(f expert.Field, n, probes int, rel float64) {
	if rel == 0 {
		rel = 0x1p-8 // eps32^(1/3) = (2^-24)^(1/3)
	}
	if len(d.xp) != n {
		d.xp, d.vp, d.vm = make([]float32, n), make([]float32, n), make([]float32, n)
	}
	if len(d.z) != probes*n {
		d.z = make([]float32, probes*n)
	}
	d.f, d.n, d.probes, d.rel, d.evals = f, n, probes, rel, 0
}

func (d *divField) Dim() int { return d.n + 1 }

func (d *divField) Velocity(dst, x []float32, t float64) {
	n := d.n
	xx := x[:n]
	d.f.Velocity(dst[:n], xx, t)
	d.evals++
	dst[n] = float32(d.divergence(xx, t))
}

func (d *divField) divergence(x []float32, t float64) float64 {
	copy(d.xp, x)
	div := 0.0
	if d.probes == 0 {
		for i, xi := range x {
			h := d.rel * math.Max(1, math.Abs(float64(xi)))
			hi, lo := float32(float64(xi)+h), float32(float64(xi)-h)
			d.xp[i] = hi
			d.f.Velocity(d.vp, d.xp, t)
			d.xp[i] = lo
			d.f.Velocity(d.vm, d.xp, t)
			d.xp[i] = xi
			div += (float64(d.vp[i]) - float64(d.vm[i])) / (float64(hi) - float64(lo)) // the step actually taken
		}
		d.evals += 2 * len(x)
		return div
	}
	scale := 1.0
	for _, xi := range x {
		scale = math.Max(scale, math.Abs(float64(xi)))
	}
	h := d.rel * scale
	for k := range d.probes {
		z := d.z[k*d.n : (k+1)*d.n]
		for i, xi := range x {
			d.xp[i] = float32(float64(xi) + h*float64(z[i]))
		}
		d.f.Velocity(d.vp, d.xp, t)
		for i, xi := range x {
			d.xp[i] = float32(float64(xi) - h*float64(z[i]))
		}
		d.f.Velocity(d.vm, d.xp, t)
		s := 0.0
		for i := range x {
			s += float64(z[i]) * (float64(d.vp[i]) - float64(d.vm[i]))
		}
		div += s / (2 * h)
	}
	d.evals += 2 * d.probes
	return div / float64(d.probes)
}
