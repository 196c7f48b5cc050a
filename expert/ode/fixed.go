package ode

import (
	"context"
	"fmt"

	"github.com/flowact/flowact/expert"
	"github.com/flowact/flowact/expert/path"
)

// Fixed integrates a field with a fixed-step Runge-Kutta method on a time grid, from noise at the
// grid's first time (t = 0) to its last (t = 1). The zero value is 10 Euler steps on [0, 1], the
// sampler of openpi's pi0. A Fixed is not safe for concurrent use: it owns its workspace, sized
// on the first call and reused, so that Sample allocates nothing afterwards.
type Fixed struct {
	Method Method    // zero means Euler
	Steps  int       // uniform steps on [0, 1] when Grid is nil; zero means 10
	Grid   []float64 // explicit times, strictly monotone, first = start of x0; nil for uniform
	// Path is the scheduler the field was trained along; it turns the state and velocity into the
	// anytime estimate x1_hat (stopping early, Denoise). nil means CondOT.
	Path path.Scheduler
	// Denoise makes a grid that ends before t = 1 return x1_hat at its end instead of the state,
	// at the cost of one evaluation: Song et al.'s last denoising step, for paths (VP, VE) whose
	// field is not to be evaluated at t = 1.
	Denoise bool
	// Trace, if not nil, receives the state at every grid time: Trace[i] (length Dim) at time i.
	// It needs at least steps+1 rows. The caller owns and preallocates it.
	Trace [][]float32
	// Observe, if not nil, is called with the state at every grid time.
	Observe Observer

	w workspace
}

var _ expert.Sampler = (*Fixed)(nil)

func (s *Fixed) method() Method {
	if s.Method == 0 {
		return Euler
	}
	return s.Method
}

// Validate reports an unknown method, a bad grid or step count.
func (s *Fixed) Validate() error {
	if m := s.method(); m < Euler || m > RK4 {
		return fmt.Errorf("%w: method %d", ErrConfig, int(m))
	}
	_, err := makeGrid(s.Grid, s.Steps, 10)
	return err
}

// Sample implements expert.Sampler: it integrates f from x0 over the grid and writes the sample
// to dst (dst may alias x0).
func (s *Fixed) Sample(dst, x0 []float32, f expert.Field) error {
	_, err := s.Solve(context.Background(), dst, x0, f)
	return err
}

// Solve is Sample with a context and statistics. It checks ctx once per step, after the step's
// first evaluation; when ctx is done before the last step it writes the anytime estimate x1_hat
// at the time reached to dst and returns an error wrapping ErrStopped and ctx.Err(). A deadline
// context is the deadline mode.
func (s *Fixed) Solve(ctx context.Context, dst, x0 []float32, f expert.Field) (Stats, error) {
	n, err := checkIO(dst, x0, f)
	if err != nil {
		return Stats{}, err
	}
	if err := s.Validate(); err != nil {
		return Stats{}, err
	}
	g, _ := makeGrid(s.Grid, s.Steps, 10)
	if err := checkTrace(s.Trace, g.steps()+1, n); err != nil {
		return Stats{}, err
	}
	tab := s.method().tableau()
	w := &s.w
	w.ensure(n, tab.stages)
	w.load(x0)
	st := Stats{T: g.at(0)}
	s.record(0, st.T, x0)
	for i := range g.steps() {
		t, tn := g.at(i), g.at(i+1)
		toF32(w.xs, w.x)
		f.Velocity(w.k[0], w.xs, t)
		st.Evals++
		if err := ctx.Err(); err != nil {
			path.X1HatTo(dst, w.xs, w.k[0], scheduler(s.Path), t)
			return st, fmt.Errorf("%w at t = %.4g after %d of %d steps: %w", ErrStopped, t, i, g.steps(), err)
		}
		w.stages(&tab, f, t, tn-t)
		w.advance(&tab, tn-t)
		st.Evals += tab.stages - 1
		st.Steps++
		st.T = tn
		if s.Trace != nil || s.Observe != nil {
			toF32(w.xs, w.x)
			s.record(i+1, tn, w.xs)
		}
	}
	toF32(dst, w.x)
	if s.Denoise && st.T < 1 {
		f.Velocity(w.k[0], dst, st.T)
		st.Evals++
		path.X1HatTo(dst, dst, w.k[0], scheduler(s.Path), st.T)
	}
	return st, checkFinite(dst, st.T)
}

func (s *Fixed) record(i int, t float64, x []float32) {
	if s.Trace != nil {
		copy(s.Trace[i], x)
	}
	if s.Observe != nil {
		s.Observe(i, t, x)
	}
}
