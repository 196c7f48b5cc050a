package ode

import (
	"context"
	"fmt"
	"math"

	"github.com/flowact/flowact/expert"
	"github.com/flowact/flowact/expert/path"
)

// DormandPrince is the adaptive explicit Runge-Kutta 5(4) pair of Dormand and Prince (1980), with
// the step-size control of Hairer, Nørsett and Wanner, "Solving Ordinary Differential Equations I"
// (sec. II.4, and their DOPRI5 code): a step is accepted when the RMS over components of
// err_i / (ATol + RTol |x_i|) is at most 1; the next step comes from a PI controller (beta = 0.04)
// within 0.2 and 10 times the last. It is FSAL (the last stage of an
// accepted step is the first of the next): 6 evaluations per step, plus 2 to pick the first step.
//
// The state lives in float64 between steps, but the field takes and returns float32, so
// tolerances below about 1e-6 ask for more than the field can resolve. The zero value integrates
// from 0 to 1 with RTol = ATol = 1e-4. Not safe for concurrent use; Sample allocates nothing after
// the first call with a given dimension.
type DormandPrince struct {
	RTol, ATol float64        // tolerances, >= 0, not both 0; both zero means 1e-4 each
	H0         float64        // first step; zero picks it (Hairer's algorithm, 1 extra evaluation)
	MaxEvals   int            // evaluation budget; zero means 10000
	Path       path.Scheduler // for the anytime estimate when stopped early; nil means CondOT
	Observe    Observer       // called at the start and after every accepted step

	w workspace
}

var _ expert.Sampler = (*DormandPrince)(nil)

// dopri5 is the Dormand-Prince tableau; b is the 5th-order solution (= row 7 of a), e = b - b*
// the difference to the embedded 4th-order one.
func dopri5() (tab tableau, e [7]float64) {
	tab = tableau{stages: 7,
		c: [7]float64{0, 1.0 / 5, 3.0 / 10, 4.0 / 5, 8.0 / 9, 1, 1},
		a: [7][7]float64{
			1: {1.0 / 5},
			2: {3.0 / 40, 9.0 / 40},
			3: {44.0 / 45, -56.0 / 15, 32.0 / 9},
			4: {19372.0 / 6561, -25360.0 / 2187, 64448.0 / 6561, -212.0 / 729},
			5: {9017.0 / 3168, -355.0 / 33, 46732.0 / 5247, 49.0 / 176, -5103.0 / 18656},
			6: {35.0 / 384, 0, 500.0 / 1113, 125.0 / 192, -2187.0 / 6784, 11.0 / 84},
		},
		b: [7]float64{35.0 / 384, 0, 500.0 / 1113, 125.0 / 192, -2187.0 / 6784, 11.0 / 84, 0},
	}
	e = [7]float64{71.0 / 57600, 0, -71.0 / 16695, 71.0 / 1920, -17253.0 / 339200, 22.0 / 525, -1.0 / 40}
	return tab, e
}

func (s *DormandPrince) tols() (rtol, atol float64) {
	if s.RTol == 0 && s.ATol == 0 {
		return 1e-4, 1e-4
	}
	return s.RTol, s.ATol
}

// Validate reports negative or non-finite tolerances, a negative first step or budget.
func (s *DormandPrince) Validate() error {
	r, a := s.tols()
	if !(r >= 0) || !(a >= 0) || math.IsInf(r, 0) || math.IsInf(a, 0) || (r == 0 && a == 0) {
		return fmt.Errorf("%w: rtol %v atol %v", ErrConfig, s.RTol, s.ATol)
	}
	if !(s.H0 >= 0) || s.H0 > 1 || s.MaxEvals < 0 {
		return fmt.Errorf("%w: h0 %v max evals %d", ErrConfig, s.H0, s.MaxEvals)
	}
	return nil
}

// Sample implements expert.Sampler.
func (s *DormandPrince) Sample(dst, x0 []float32, f expert.Field) error {
	_, err := s.Solve(context.Background(), dst, x0, f)
	return err
}

// scale is the error scale of one component whose value goes from x to y.
func (s *DormandPrince) scale(x, y float64) float64 {
	rtol, atol := s.tols()
	return atol + rtol*math.Max(math.Abs(x), math.Abs(y))
}

// Solve is Sample with a context and statistics (Stats.Evals counts every evaluation, Stats.T is
// the time of the last accepted step, 1 after a full solve). When ctx is done before t = 1 it
// writes the anytime estimate x1_hat at Stats.T to dst and returns an error wrapping ErrStopped
// and ctx.Err(); when the budget runs out it does the same with ErrMaxEvals, and when the step
// size underflows (1e-12, a field that is not finite or not smooth there) with
// expert.ErrNotFinite.
func (s *DormandPrince) Solve(ctx context.Context, dst, x0 []float32, f expert.Field) (Stats, error) {
	n, err := checkIO(dst, x0, f)
	if err != nil {
		return Stats{}, err
	}
	if err := s.Validate(); err != nil {
		return Stats{}, err
	}
	maxEvals := s.MaxEvals
	if maxEvals == 0 {
		maxEvals = 10000
	}
	tab, e := dopri5()
	w := &s.w
	w.ensure(n, 7)
	w.load(x0)
	copy(w.xs, x0)
	t, st := 0.0, Stats{}
	if s.Observe != nil {
		s.Observe(0, 0, x0)
	}
	f.Velocity(w.k[0], w.xs, t)
	st.Evals++
	h := s.H0
	if h == 0 {
		h = s.firstStep(f, n)
		st.Evals++
	}
	// Step-size control as in Hairer's DOPRI5: a PI controller with beta = 0.04, new steps within
	// [0.2, 10] times the last, safety factor 0.9, no growth right after a rejection.
	const beta, safe = 0.04, 0.9
	errOld, rejected := 1e-4, false
	for t < 1 {
		if err := ctx.Err(); err != nil {
			st.T = t
			return st, s.stop(dst, t, err, ErrStopped)
		}
		if st.Evals+6 > maxEvals {
			st.T = t
			return st, s.stop(dst, t, nil, ErrMaxEvals)
		}
		last := false
		if t+h >= 1-1e-12 { // land exactly on 1 rather than leave a sliver
			h, last = 1-t, true
		}
		w.stages(&tab, f, t, h) // k[1..6]; k[6] is at the 5th-order solution (row 7 = b)
		st.Evals += 6
		errNorm := 0.0
		for i, xi := range w.x {
			d := 0.0
			y := xi
			for j := range 7 {
				d += e[j] * float64(w.k[j][i])
				y += h * tab.b[j] * float64(w.k[j][i])
			}
			w.y[i] = y
			r := h * d / s.scale(xi, y)
			errNorm += r * r
		}
		errNorm = math.Sqrt(errNorm / float64(n))
		if math.IsNaN(errNorm) {
			errNorm = math.Inf(1) // a non-finite stage: shrink the step as far as allowed
		}
		fac11 := math.Pow(errNorm, 0.2-0.75*beta)
		if errNorm <= 1 {
			copy(w.x, w.y)
			w.k[0], w.k[6] = w.k[6], w.k[0] // FSAL
			st.Steps++
			if last {
				t = 1
			} else {
				t += h
			}
			if s.Observe != nil {
				toF32(w.xs, w.x)
				s.Observe(st.Steps, t, w.xs)
			}
			fac := math.Max(0.1, math.Min(5, fac11/math.Pow(errOld, beta)/safe))
			errOld = math.Max(errNorm, 1e-4)
			hn := h / fac
			if rejected {
				hn = math.Min(hn, h)
			}
			h, rejected = hn, false
		} else {
			st.Rejected++
			h /= math.Min(5, fac11/safe)
			rejected = true
		}
		if h < 1e-12 {
			st.T = t
			return st, s.stop(dst, t, nil, fmt.Errorf("ode: step size underflow at t = %v: %w", t, expert.ErrNotFinite))
		}
	}
	st.T = 1
	toF32(dst, w.x)
	return st, checkFinite(dst, 1)
}

// stop writes the anytime estimate at t (from the state and its velocity k[0]) and builds the error.
func (s *DormandPrince) stop(dst []float32, t float64, cause, kind error) error {
	toF32(s.w.xs, s.w.x)
	path.X1HatTo(dst, s.w.xs, s.w.k[0], scheduler(s.Path), t)
	if cause != nil {
		return fmt.Errorf("%w at t = %.4g: %w", kind, t, cause)
	}
	return fmt.Errorf("%w at t = %.4g", kind, t)
}

// firstStep is Hairer's initial step heuristic (HNW I, sec. II.4), using k[0] = f(x, 0) and one
// more evaluation stored in k[1].
func (s *DormandPrince) firstStep(f expert.Field, n int) float64 {
	w := &s.w
	var d0, d1 float64
	for i, xi := range w.x {
		sc := s.scale(xi, xi)
		d0 += (xi / sc) * (xi / sc)
		d1 += (float64(w.k[0][i]) / sc) * (float64(w.k[0][i]) / sc)
	}
	d0, d1 = math.Sqrt(d0/float64(n)), math.Sqrt(d1/float64(n))
	h0 := 1e-6
	if d0 >= 1e-5 && d1 >= 1e-5 {
		h0 = 0.01 * d0 / d1
	}
	h0 = math.Min(h0, 1)
	for i, xi := range w.x {
		w.xs[i] = float32(xi + h0*float64(w.k[0][i]))
	}
	f.Velocity(w.k[1], w.xs, h0)
	d2 := 0.0
	for i, xi := range w.x {
		r := float64(w.k[1][i]-w.k[0][i]) / s.scale(xi, xi)
		d2 += r * r
	}
	d2 = math.Sqrt(d2/float64(n)) / h0
	var h1 float64
	if m := math.Max(d1, d2); m <= 1e-15 {
		h1 = math.Max(1e-6, h0*1e-3)
	} else {
		h1 = math.Pow(0.01/m, 0.2)
	}
	return math.Min(math.Min(100*h0, h1), 1)
}
