package safety

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/flowact/flowact/robot"
)

// jerkModel is a robot with jerk limits like the shipped configs (ur5: 2 rad/s, 8 rad/s^2,
// 80 rad/s^3; panda: 15 rad/s^2 with 7500 rad/s^3, a ramp shorter than a tick at 500 Hz), a
// jerk-limited continuous joint, a joint without a jerk limit and a narrow band.
func jerkModel() *robot.Model {
	return &robot.Model{Name: "jerky", Root: "base", Joints: []robot.Joint{
		{Name: "ur5", Type: robot.Revolute, Limits: robot.Limits{HasPosition: true, Lower: -3.14, Upper: 3.14, Velocity: 2, Acceleration: 8, Jerk: 80}},
		{Name: "panda", Type: robot.Revolute, Limits: robot.Limits{HasPosition: true, Lower: -2.9, Upper: 2.9, Velocity: 1.7, Acceleration: 15, Jerk: 7500}},
		{Name: "cont", Type: robot.Continuous, Limits: robot.Limits{Velocity: 3, Acceleration: 12, Jerk: 120}},
		{Name: "nojerk", Type: robot.Revolute, Limits: robot.Limits{HasPosition: true, Lower: -1, Upper: 1, Velocity: 1, Acceleration: 5}},
		{Name: "narrow", Type: robot.Revolute, Limits: robot.Limits{HasPosition: true, Lower: 0.2, Upper: 0.25, Velocity: 0.5, Acceleration: 10, Jerk: 100}},
		{Name: "servo", Type: robot.Prismatic, Limits: robot.Limits{HasPosition: true, Lower: 0, Upper: 0.04, Velocity: 0.05, Acceleration: 0.5, Jerk: 5}},
	}}
}

// A scenario writes the targets of tick k into tg and reports whether the tick holds instead.
type scenario func(r *rand.Rand, k int, lim []Limit, tg []float64) (hold bool)

// span returns a joint's band, or [-4, 4] for a joint without one.
func span(l Limit) (lo, hi float64) {
	if l.HasPosition {
		return l.Lower, l.Upper
	}
	return -4, 4
}

// scenarios are adversarial target streams; each starts at rest in the band's middle.
var scenarios = []struct {
	name string
	gen  scenario
}{
	{"jumps", func(r *rand.Rand, k int, lim []Limit, tg []float64) bool {
		if k%37 == 0 || r.IntN(60) == 0 {
			for j, l := range lim {
				lo, hi := span(l)
				tg[j] = lo + (hi-lo)*(r.Float64()*1.6-0.3) // often beyond a limit
			}
		}
		return false
	}},
	{"steps across the range", func(r *rand.Rand, k int, lim []Limit, tg []float64) bool {
		for j, l := range lim {
			lo, hi := span(l)
			if (k/(150+40*j))%2 == 0 {
				tg[j] = hi + 0.5
			} else {
				tg[j] = lo - 0.5
			}
		}
		return false
	}},
	{"reversals at the limits", func(r *rand.Rand, k int, lim []Limit, tg []float64) bool {
		for j, l := range lim {
			lo, hi := span(l)
			// Just long enough to reach a limit at speed, then reverse.
			n := 20 + 7*j + r.IntN(30)
			if (k/n)%2 == 0 {
				tg[j] = hi + 10
			} else {
				tg[j] = lo - 10
			}
		}
		return false
	}},
	{"oscillating", func(r *rand.Rand, k int, lim []Limit, tg []float64) bool {
		for j, l := range lim {
			lo, hi := span(l)
			mid, amp := (lo+hi)/2, (hi-lo)*0.7
			tg[j] = mid + amp*math.Sin(float64(k)*(0.05+0.4*float64(j%3)))
		}
		return false
	}},
	{"noise", func(r *rand.Rand, k int, lim []Limit, tg []float64) bool {
		for j, l := range lim {
			lo, hi := span(l)
			tg[j] = (lo+hi)/2 + (hi-lo)*0.02*r.NormFloat64()
		}
		return false
	}},
	{"nan interleaved", func(r *rand.Rand, k int, lim []Limit, tg []float64) bool {
		for j, l := range lim {
			lo, hi := span(l)
			switch r.IntN(8) {
			case 0:
				tg[j] = math.NaN()
			case 1:
				tg[j] = math.Inf(1 - 2*r.IntN(2))
			case 2, 3:
				tg[j] = lo + (hi-lo)*r.Float64()
			default:
				if math.IsNaN(tg[j]) || math.IsInf(tg[j], 0) {
					tg[j] = hi
				}
			}
		}
		return false
	}},
	{"holds mid-motion", func(r *rand.Rand, k int, lim []Limit, tg []float64) bool {
		for j, l := range lim {
			lo, hi := span(l)
			if k%200 == 0 {
				tg[j] = lo + (hi-lo)*r.Float64()
			}
		}
		return k%200 > 60+r.IntN(40) && k%200 < 150
	}},
	{"moving target", func(r *rand.Rand, k int, lim []Limit, tg []float64) bool {
		for j, l := range lim {
			lo, hi := span(l)
			// A ramp at 1.5x the velocity limit, bouncing between the limits.
			w := 1.5 * l.Velocity * 0.01
			ph := math.Mod(float64(k)*w, 2*(hi-lo))
			if ph > hi-lo {
				ph = 2*(hi-lo) - ph
			}
			tg[j] = lo + ph
		}
		return false
	}},
}

// streamRates are the control periods the streams run at: the eval's 50 Hz, 500 Hz and 1 kHz.
var streamRates = []float64{1.0 / 50, 1.0 / 500, 1.0 / 1000}

// runStream feeds a scenario through a fresh filter for n ticks and returns the monitor of the
// commands.
func runStream(lim []Limit, dt float64, gen scenario, seed uint64, n int) (*Filter, *Monitor) {
	f := NewFilter(lim, dt)
	m := NewMonitor(lim, dt)
	start := make([]float64, len(lim))
	for j, l := range lim {
		lo, hi := span(l)
		start[j] = (lo + hi) / 2
	}
	if err := f.Reset(start); err != nil {
		panic(err)
	}
	m.Reset(start)
	r := rand.New(rand.NewPCG(seed, 7))
	tg := append([]float64(nil), start...)
	cmd := make([]float64, len(lim))
	for k := range n {
		if gen(r, k, lim, tg) {
			f.Hold(cmd)
		} else {
			f.Step(cmd, tg)
		}
		m.Observe(cmd)
	}
	return f, m
}

// TestStreamsNoViolation feeds every adversarial scenario through the filter at every rate and
// checks the command stream with a Monitor: no violation of any kind.
func TestStreamsNoViolation(t *testing.T) {
	lim, err := Resolve(jerkModel(), &Config{})
	if err != nil {
		t.Fatal(err)
	}
	n, seeds := 4000, uint64(3)
	if testing.Short() || raceEnabled {
		n, seeds = 1500, 1
	}
	for _, sc := range scenarios {
		for _, dt := range streamRates {
			for seed := range seeds {
				f, m := runStream(lim, dt, sc.gen, seed, n)
				if m.Violations() != 0 {
					t.Errorf("%s at %g Hz seed %d: %v", sc.name, 1/dt, seed, m)
				}
				// The braking law's step was always admissible (the invariant's induction step,
				// up to rounding): the filter never had to fall back on it.
				if c := f.Count(-1, JerkInfeasible); c != 0 {
					t.Errorf("%s at %g Hz seed %d: %d fallbacks to an inadmissible braking step", sc.name, 1/dt, seed, c)
				}
			}
		}
	}
}
