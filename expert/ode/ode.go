package ode

import (
	"errors"
	"fmt"
	"math"

	"github.com/flowact/flowact/expert"
	"github.com/flowact/flowact/expert/path"
)

// Method is an explicit Runge-Kutta method for a fixed time grid. The zero value means the default
// of the type using it (Euler for Fixed, RK4 for Likelihood).
type Method int

const (
	Euler    Method = iota + 1 // order 1, 1 evaluation per step
	Midpoint                   // explicit midpoint, order 2, 2 evaluations
	Heun                       // Heun's trapezoid (RK2 with c2 = 1), order 2, 2 evaluations
	RK4                        // classical Runge-Kutta, order 4, 4 evaluations
)

func (m Method) String() string {
	switch m {
	case Euler:
		return "euler"
	case Midpoint:
		return "midpoint"
	case Heun:
		return "heun"
	case RK4:
		return "rk4"
	}
	return fmt.Sprintf("Method(%d)", int(m))
}

// Order returns the method's order of global convergence.
func (m Method) Order() int {
	switch m {
	case Euler:
		return 1
	case Midpoint, Heun:
		return 2
	case RK4:
		return 4
	}
	return 0
}

// tableau is a Butcher tableau of at most 7 stages (Dormand-Prince has 7, with FSAL).
type tableau struct {
	stages int
	c      [7]float64
	a      [7][7]float64
	b      [7]float64
}

func (m Method) tableau() tableau {
	switch m {
	case Euler:
		return tableau{stages: 1, b: [7]float64{1}}
	case Midpoint:
		return tableau{stages: 2, c: [7]float64{0, 0.5}, a: [7][7]float64{1: {0.5}}, b: [7]float64{0, 1}}
	case Heun:
		return tableau{stages: 2, c: [7]float64{0, 1}, a: [7][7]float64{1: {1}}, b: [7]float64{0.5, 0.5}}
	case RK4:
		return tableau{stages: 4, c: [7]float64{0, 0.5, 0.5, 1},
			a: [7][7]float64{1: {0.5}, 2: {0, 0.5}, 3: {0, 0, 1}},
			b: [7]float64{1.0 / 6, 1.0 / 3, 1.0 / 3, 1.0 / 6}}
	}
	panic(fmt.Sprintf("ode: unknown method %d", int(m)))
}

// Stats describe one solve.
type Stats struct {
	Steps    int     // accepted steps
	Rejected int     // rejected steps (adaptive solvers)
	Evals    int     // field evaluations, all included
	T        float64 // the time the state reached
}

// ErrStopped is wrapped, together with the context's error, by the error of a solve whose context
// ended before the last time; dst then holds the anytime estimate x1_hat at the time reached.
var ErrStopped = errors.New("ode: stopped early")

// Errors of bad configurations and budgets.
var (
	ErrConfig   = errors.New("ode: bad configuration")
	ErrMaxEvals = errors.New("ode: evaluation budget exhausted")
)

// workspace holds a solver's state: x in float64 between steps (so rounding does not build up
// over many steps), the float32 stage input xs, and the stage velocities k.
type workspace struct {
	x, y []float64
	xs   []float32
	k    [7][]float32
}

// ensure sizes the workspace for dimension n and the given number of stages; it allocates only
// when n changes or more stages are needed.
func (w *workspace) ensure(n, stages int) {
	if len(w.x) != n {
		*w = workspace{x: make([]float64, n), y: make([]float64, n), xs: make([]float32, n)}
	}
	for j := range stages {
		if len(w.k[j]) != n {
			w.k[j] = make([]float32, n)
		}
	}
}

func (w *workspace) load(x0 []float32) {
	for i, v := range x0 {
		w.x[i] = float64(v)
	}
}

func toF32(dst []float32, x []float64) {
	dst = dst[:len(x)]
	for i, v := range x {
		dst[i] = float32(v)
	}
}

// stages computes k[1:] of an explicit Runge-Kutta step of size h from (w.x, t), k[0] given. It
// uses w.y as scratch. Loops run over whole vectors, one stage at a time, so they stay simple
// for the compiler (no bounds checks inside, no branches).
func (w *workspace) stages(tab *tableau, f expert.Field, t, h float64) {
	n := len(w.x)
	y := w.y[:n]
	for j := 1; j < tab.stages; j++ {
		copy(y, w.x)
		for l := range j {
			if a := tab.a[j][l]; a != 0 {
				axpy(y, h*a, w.k[l][:n])
			}
		}
		toF32(w.xs, y)
		f.Velocity(w.k[j], w.xs, t+tab.c[j]*h)
	}
}

// advance adds h sum_j b_j k_j to w.x.
func (w *workspace) advance(tab *tableau, h float64) {
	n := len(w.x)
	for j := range tab.stages {
		if b := tab.b[j]; b != 0 {
			axpy(w.x, h*b, w.k[j][:n])
		}
	}
}

// axpy adds a k to y (len(k) >= len(y)).
func axpy(y []float64, a float64, k []float32) {
	k = k[:len(y)]
	for i, v := range k {
		y[i] += a * float64(v)
	}
}

// checkIO validates the slices of a Sample call against the field.
func checkIO(dst, x0 []float32, f expert.Field) (int, error) {
	if f == nil {
		return 0, fmt.Errorf("%w: nil field", ErrConfig)
	}
	n := f.Dim()
	if len(dst) != n || len(x0) != n {
		return 0, fmt.Errorf("ode: dst %d and x0 %d values for a field of dimension %d: %w", len(dst), len(x0), n, expert.ErrShape)
	}
	return n, nil
}

// checkTrace validates caller-provided trace rows: nil, or at least rows rows of n values.
func checkTrace(trace [][]float32, rows, n int) error {
	if trace == nil {
		return nil
	}
	if len(trace) < rows {
		return fmt.Errorf("%w: trace of %d rows for %d grid times", ErrConfig, len(trace), rows)
	}
	for i := range rows {
		if len(trace[i]) != n {
			return fmt.Errorf("ode: trace row %d has %d values, want %d: %w", i, len(trace[i]), n, expert.ErrShape)
		}
	}
	return nil
}

// checkFinite reports the first non-finite value of x.
func checkFinite(x []float32, t float64) error {
	for i, v := range x {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("ode: state[%d] = %v at t = %v: %w", i, v, t, expert.ErrNotFinite)
		}
	}
	return nil
}

// grid is a time grid: explicit times or n uniform steps from 0 to 1.
type grid struct {
	times []float64
	n     int
}

func (g grid) steps() int {
	if g.times != nil {
		return len(g.times) - 1
	}
	return g.n
}

func (g grid) at(i int) float64 {
	if g.times != nil {
		return g.times[i]
	}
	if i == g.n {
		return 1 // exact end, whatever the rounding of i/n
	}
	return float64(i) / float64(g.n)
}

// makeGrid validates an explicit grid or builds a uniform one of steps steps (zero: def).
func makeGrid(times []float64, steps, def int) (grid, error) {
	if times == nil {
		if steps < 0 {
			return grid{}, fmt.Errorf("%w: %d steps", ErrConfig, steps)
		}
		if steps == 0 {
			steps = def
		}
		return grid{n: steps}, nil
	}
	if len(times) < 2 {
		return grid{}, fmt.Errorf("%w: time grid of %d points, want at least 2", ErrConfig, len(times))
	}
	dir := times[1] - times[0]
	for i, t := range times {
		if math.IsNaN(t) || math.IsInf(t, 0) {
			return grid{}, fmt.Errorf("%w: time grid[%d] = %v", ErrConfig, i, t)
		}
		if i > 0 && (times[i]-times[i-1])*dir <= 0 {
			return grid{}, fmt.Errorf("%w: time grid not strictly monotone at %d (%v after %v)", ErrConfig, i, t, times[i-1])
		}
	}
	return grid{times: times}, nil
}

// Uniform returns the grid of n equal steps from t0 to t1 (n+1 times, ending exactly at t1).
func Uniform(n int, t0, t1 float64) []float64 {
	if n <= 0 {
		panic(fmt.Sprintf("ode: Uniform grid of %d steps", n))
	}
	g := make([]float64, n+1)
	for i := range g {
		g[i] = t0 + (t1-t0)*float64(i)/float64(n)
	}
	g[n] = t1
	return g
}

func scheduler(s path.Scheduler) path.Scheduler {
	if s == nil {
		return path.CondOT{}
	}
	return s
}

// Observer receives the state x at time t after step i (i = 0 is the start). x aliases solver
// memory and is valid only during the call; an Observer must not retain it. A func literal
// created once outside the sampling loop costs no allocation per call.
type Observer func(i int, t float64, x []float32)
