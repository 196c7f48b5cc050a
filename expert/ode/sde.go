package ode

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/flowact/flowact/expert"
	"github.com/flowact/flowact/expert/path"
)

// SDE samples from the same marginals as the ODE of a field along an affine path, stochastically:
// the reverse-time SDE of Song et al. (ICLR 2021), written in flow time with the score obtained
// from the velocity (path.Convert). For any g_t >= 0,
//
//	dx = [u_t(x) + g_t^2/2 grad log p_t(x)] dt + g_t dW
//
// has marginals p_t (Fokker-Planck: the g^2/2 terms cancel). Song et al.'s choice, the diffusion of
// the forward SDE that has this path's marginals, is g_t^2 = 2 sigma_t^2 lambda_t' with
// lambda = log(alpha/sigma) the log-SNR; Noise scales it: g_t^2 = 2 Noise sigma^2 lambda'. Noise = 0 is
// the probability-flow ODE (exactly the Euler sampler), 1 is Song et al.'s reverse SDE.
//
// With the score written as -x0_hat/sigma, the extra drift is -Noise lambda' sigma x0_hat: an
// Ornstein-Uhlenbeck pull of the noise component x0_hat at rate theta = Noise lambda'. The
// Euler-Maruyama step here integrates that linear part exactly over the step (exponential
// Euler-Maruyama),
//
//	x += h u - sigma (1 - e^(-theta h)) x0_hat + sigma sqrt(1 - e^(-2 theta h)) z,
//
// which is the plain Euler-Maruyama step h u - sigma theta h x0_hat + sigma sqrt(2 theta h) z to first
// order in theta h but stays stable where theta is large: at t = 0 of a path that starts at pure
// noise lambda' is infinite, and the step then simply redraws the noise component. Steps evaluate at
// their left end, so the field is never evaluated at t = 1. Not safe for concurrent use; Sample
// allocates nothing after the first call with a given dimension.
type SDE struct {
	Steps int            // uniform steps on [0, 1] when Grid is nil; zero means 100
	Grid  []float64      // explicit increasing times; nil for uniform
	Path  path.Scheduler // the path the field was trained along; nil means CondOT
	Noise float64        // diffusion scale, >= 0; 0 is the ODE, 1 Song et al.'s SDE
	Rand  *rand.Rand     // the Brownian increments; required when Noise > 0
	// Trace and Observe are as for Fixed.
	Trace   [][]float32
	Observe Observer

	w workspace
}

var _ expert.Sampler = (*SDE)(nil)

// Validate reports a bad grid, a negative noise scale or a missing random source.
func (s *SDE) Validate() error {
	if !(s.Noise >= 0) || math.IsInf(s.Noise, 0) {
		return fmt.Errorf("%w: SDE noise scale %v", ErrConfig, s.Noise)
	}
	if s.Noise > 0 && s.Rand == nil {
		return fmt.Errorf("%w: SDE with noise %v and no random source", ErrConfig, s.Noise)
	}
	g, err := makeGrid(s.Grid, s.Steps, 100)
	if err == nil && s.Grid != nil && g.at(0) > g.at(g.steps()) {
		return fmt.Errorf("%w: SDE grid must increase", ErrConfig)
	}
	return err
}

// Sample implements expert.Sampler.
func (s *SDE) Sample(dst, x0 []float32, f expert.Field) error {
	_, err := s.Solve(context.Background(), dst, x0, f)
	return err
}

// Solve is Sample with a context (deadline and anytime estimate as for Fixed) and statistics.
func (s *SDE) Solve(ctx context.Context, dst, x0 []float32, f expert.Field) (Stats, error) {
	n, err := checkIO(dst, x0, f)
	if err != nil {
		return Stats{}, err
	}
	if err := s.Validate(); err != nil {
		return Stats{}, err
	}
	g, _ := makeGrid(s.Grid, s.Steps, 100)
	if err := checkTrace(s.Trace, g.steps()+1, n); err != nil {
		return Stats{}, err
	}
	sched := scheduler(s.Path)
	w := &s.w
	w.ensure(n, 1)
	w.load(x0)
	st := Stats{T: g.at(0)}
	if s.Trace != nil {
		copy(s.Trace[0], x0)
	}
	if s.Observe != nil {
		s.Observe(0, st.T, x0)
	}
	v := w.k[0]
	for i := range g.steps() {
		t, tn := g.at(i), g.at(i+1)
		h := tn - t
		toF32(w.xs, w.x)
		f.Velocity(v, w.xs, t)
		st.Evals++
		if err := ctx.Err(); err != nil {
			path.X1HatTo(dst, w.xs, v, sched, t)
			return st, fmt.Errorf("%w at t = %.4g after %d of %d steps: %w", ErrStopped, t, i, g.steps(), err)
		}
		c := sched.At(t)
		decay, spread := 0.0, 0.0 // 1 - e^(-theta h) and sqrt(1 - e^(-2 theta h))
		if s.Noise > 0 {
			// lambda' = alpha'/alpha - sigma'/sigma, +Inf at alpha = 0 (then e^(-theta h) = 0).
			lp := c.DAlpha/c.Alpha - c.DSigma/c.Sigma
			th := s.Noise * lp * h
			decay, spread = -math.Expm1(-th), math.Sqrt(-math.Expm1(-2*th))
		}
		pe, qe := path.Convert(c, path.Velocity, path.Noise) // x0_hat = pe x + qe v
		for j, xj := range w.x {
			vj := float64(v[j])
			nx := xj + h*vj
			if s.Noise > 0 {
				x0hat := pe*float64(w.xs[j]) + qe*vj
				nx += c.Sigma * (spread*s.Rand.NormFloat64() - decay*x0hat)
			}
			w.x[j] = nx
		}
		st.Steps++
		st.T = tn
		if s.Trace != nil || s.Observe != nil {
			toF32(w.xs, w.x)
			if s.Trace != nil {
				copy(s.Trace[i+1], w.xs)
			}
			if s.Observe != nil {
				s.Observe(i+1, tn, w.xs)
			}
		}
	}
	toF32(dst, w.x)
	return st, checkFinite(dst, st.T)
}
