package safety

import (
	"math"
	"math/rand/v2"
	"testing"
)

// simulate runs the braking law tick by tick from (s, c) and returns what stop computes in
// closed form.
func simulate(g *jlim, s, c float64) (r ext) {
	r.vpk = math.Abs(s)
	P := 0.0
	for k := 0; k < 1e6; k++ {
		if s == 0 && c == 0 {
			r.end, r.ok = P, true
			return r
		}
		// Rounding can leave a step of 1e-19 that the law zeroes on the next tick.
		c = g.law(s, c)
		s += c
		if math.Abs(s) < 1e-15*g.emax {
			s = 0
		}
		if math.Abs(c) < 1e-15*g.emax && s == 0 {
			c = 0
		}
		P += s
		r.hi, r.lo = math.Max(r.hi, P), math.Min(r.lo, P)
		r.vpk = math.Max(r.vpk, math.Abs(s))
		r.ticks++
	}
	return r
}

// jerkCases are per-tick limits: ur5 at 50 Hz and 500 Hz, panda at 500 Hz (jerk ramp shorter
// than a tick), a long ramp (arm5's finger at 1 kHz).
var jerkCases = []Limit{
	{Velocity: 2, Acceleration: 8, Jerk: 80},
	{Velocity: 1.7, Acceleration: 15, Jerk: 7500},
	{Velocity: 0.5, Acceleration: 0.5, Jerk: 5},
}

// TestStopClosedForm checks stop's closed-form phases against the law stepped tick by tick, on a
// grid of states (step and step change across their limits, overshoot states included) and on
// random ones.
func TestStopClosedForm(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, l := range jerkCases {
		for _, dt := range []float64{1.0 / 50, 1.0 / 500, 1.0 / 1000} {
			g := newJlim(&l, dt)
			check := func(s, c float64) {
				t.Helper()
				want := simulate(&g, s, c)
				got := g.stop(s, c)
				scale := math.Max(g.smax, math.Abs(want.end)) * 1e-9
				if !got.ok || !want.ok || math.Abs(got.end-want.end) > scale || math.Abs(got.hi-want.hi) > scale ||
					math.Abs(got.lo-want.lo) > scale || math.Abs(got.vpk-want.vpk) > 1e-9*g.smax || abs(got.ticks-want.ticks) > 3 { // rounding leaves residues of 1e-18 that take a tick or two
					t.Fatalf("%+v dt %g: stop(%g, %g) = %+v, stepped %+v", l, dt, s, c, got, want)
				}
			}
			const n = 24
			for i := -n; i <= n; i++ {
				for k := -n; k <= n; k++ {
					check(g.smax*float64(i)/n, g.cmax*float64(k)/n)
				}
			}
			for range 300 {
				check(g.smax*(2*r.Float64()-1), g.cmax*(2*r.Float64()-1))
				check(g.emax*(2*r.Float64()-1)*5, g.cmax*(2*r.Float64()-1)) // small steps: overshoot states
			}
		}
	}
}

func abs(x int) int { return max(x, -x) }

// TestBrakingInvariant: from any state within the limits whose braking stays in the velocity
// limit, the law's next state is within every limit, its braking trajectory is the tail of the
// state's (so the envelope it needs never grows), and braking ends at rest within every limit.
// This is the induction step of the Guarantee, checked on a grid.
func TestBrakingInvariant(t *testing.T) {
	for _, l := range jerkCases {
		for _, dt := range []float64{1.0 / 50, 1.0 / 500} {
			g := newJlim(&l, dt)
			n := 30
			if raceEnabled {
				n = 12
			}
			for i := -n; i <= n; i++ {
				for k := -n; k <= n; k++ {
					s, c := g.smax*float64(i)/float64(n), g.cmax*float64(k)/float64(n)
					e := g.stop(s, c)
					if !e.ok || e.vpk > g.smax*(1+1e-12) {
						continue // not admissible: the filter never makes it
					}
					// Step the law to rest, checking every limit and the shrinking envelope.
					p, hi, lo := 0.0, e.hi, e.lo
					for tick := 0; tick <= e.ticks+1; tick++ {
						c2 := g.law(s, c)
						if math.Abs(c2-c) > g.emax*(1+1e-12) || math.Abs(c2) > g.cmax*(1+1e-12) {
							t.Fatalf("%+v dt %g: law(%g, %g) = %g beyond the jerk or acceleration limit", l, dt, s, c, c2)
						}
						s, c = s+c2, c2
						p += s
						if math.Abs(s) > g.smax*(1+1e-12) {
							t.Fatalf("%+v dt %g: step %g beyond the velocity limit", l, dt, s)
						}
						e2 := g.stop(s, c)
						tol := 1e-9 * g.smax
						if p+e2.hi > hi+tol || p+e2.lo < lo-tol || p > hi+tol || p < lo-tol {
							t.Fatalf("%+v dt %g: envelope grew: [%g, %g] -> [%g, %g] at %g", l, dt, lo, hi, p+e2.lo, p+e2.hi, p)
						}
						hi, lo = p+e2.hi, p+e2.lo
					}
					if math.Abs(s) > 1e-12*g.smax || math.Abs(c) > 1e-12*g.cmax {
						t.Fatalf("%+v dt %g: not at rest after %d ticks: (%g, %g)", l, dt, e.ticks, s, c)
					}
				}
			}
		}
	}
}

// TestStopBound: the cheap bounds the filter uses far from the limits hold for the exact
// trajectory, on a grid of states.
func TestStopBound(t *testing.T) {
	for _, l := range jerkCases {
		for _, dt := range []float64{1.0 / 50, 1.0 / 500, 1.0 / 1000} {
			g := newJlim(&l, dt)
			const n = 40
			for i := -n; i <= n; i++ {
				for k := -n; k <= n; k++ {
					s, c := 1.2*g.smax*float64(i)/n, g.cmax*float64(k)/n
					e := g.stop(s, c)
					v, d := g.bound(s, c)
					if !e.ok || e.vpk > v || e.hi > d || -e.lo > d {
						t.Fatalf("%+v dt %g: (%g, %g): bound v %g d %g, exact %+v", l, dt, s, c, v, d, e)
					}
				}
			}
		}
	}
}
