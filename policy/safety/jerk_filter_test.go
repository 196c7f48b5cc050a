package safety

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/flowact/flowact/robot"
)

// oneJoint returns the limits of a single revolute joint with band [-3, 3].
func oneJoint(v, a, j float64) []Limit {
	m := &robot.Model{Name: "one", Joints: []robot.Joint{{Name: "j", Type: robot.Revolute,
		Limits: robot.Limits{HasPosition: true, Lower: -3, Upper: 3, Velocity: v, Acceleration: a, Jerk: j}}}}
	lim, err := Resolve(m, &Config{})
	if err != nil {
		panic(err)
	}
	return lim
}

// restToRest is the continuous-time time-optimal duration of a rest-to-rest move of distance d
// under velocity, acceleration and jerk limits (the symmetric 7-phase profile).
func restToRest(d, v, a, j float64) float64 {
	tacc := func(u float64) float64 { // time to reach velocity u from rest
		if u >= a*a/j {
			return u/a + a/j
		}
		return 2 * math.Sqrt(u/j)
	}
	lo, hi := 0.0, v
	if hi*tacc(hi) > d {
		for range 200 {
			m := (lo + hi) / 2
			if m*tacc(m) > d {
				hi = m
			} else {
				lo = m
			}
		}
	}
	return 2*tacc(hi) + (d-hi*tacc(hi))/hi
}

// TestJerkStaticTarget: from rest, a static target (tiny to beyond the band) is reached exactly,
// without overshoot, within the limits, and within a few ticks of the continuous time-optimal
// duration (the discrete law is time-optimal up to its ticks).
func TestJerkStaticTarget(t *testing.T) {
	for _, c := range []struct {
		name    string
		v, a, j float64
		dt      float64
	}{
		{"ur5 500 Hz", 2, 8, 80, 0.002},
		{"ur5 50 Hz", 2, 8, 80, 0.02},
		{"panda 1 kHz", 1.7, 15, 7500, 0.001},
		{"servo 1 kHz", 0.5, 0.5, 5, 0.001},
	} {
		lim := oneJoint(c.v, c.a, c.j)
		for _, d := range []float64{1e-7, 1e-3, 0.05, 0.7, 2.9, -1.5, 10} {
			f := NewFilter(lim, c.dt)
			m := NewMonitor(lim, c.dt)
			f.Reset([]float64{0})
			m.Reset([]float64{0})
			goal := math.Min(d, 3)
			want := restToRest(math.Abs(goal), c.v, c.a, c.j)
			cmd, over, arrive := make([]float64, 1), 0.0, -1
			n := int((want+2)/c.dt) + 10
			for k := range n {
				f.Step(cmd, []float64{d})
				m.Observe(cmd)
				over = math.Max(over, (cmd[0]-goal)*math.Copysign(1, goal))
				if arrive < 0 && math.Abs(cmd[0]-goal) <= 1e-9 && f.AtRest(1e-12) {
					arrive = k + 1
				}
			}
			if m.Violations() != 0 {
				t.Errorf("%s to %g: %v", c.name, d, m)
			}
			if over > 1e-9 {
				t.Errorf("%s to %g: overshoot %g", c.name, d, over)
			}
			if math.Abs(cmd[0]-goal) > 1e-9 || !f.AtRest(0) {
				t.Errorf("%s to %g: ended at %g (step %g), want %g at rest", c.name, d, cmd[0], f.s[0], goal)
			}
			if got := float64(arrive) * c.dt; arrive < 0 || got > want*1.01+5*c.dt {
				t.Errorf("%s to %g: arrived after %g s, time-optimal %g s", c.name, d, got, want)
			}
		}
	}
}

// TestJerkMovingTarget: a feasible moving target is tracked exactly once caught (a ramp, and a
// smooth oscillation), also when the joint starts away from it.
func TestJerkMovingTarget(t *testing.T) {
	const dt = 0.002
	lim := oneJoint(2, 8, 80)
	for _, c := range []struct {
		name  string
		start float64
		tg    func(x float64) float64
		catch float64 // s after which the joint must be on the target
	}{
		{"ramp from on it", 0, func(x float64) float64 { return 0.3 * (x - math.Sin(x)) }, 0}, // jerk 0.3 cos x
		{"ramp from behind", -0.3, func(x float64) float64 { return -1 + 0.8*x }, 2},
		{"oscillation from behind", 0.2, func(x float64) float64 { return 0.4 * math.Sin(2*x) }, 3},
	} {
		f := NewFilter(lim, dt)
		m := NewMonitor(lim, dt)
		f.Reset([]float64{c.start})
		m.Reset([]float64{c.start})
		cmd := make([]float64, 1)
		worst := 0.0
		for k := range int(4 / dt) {
			x := float64(k+1) * dt
			tg := c.tg(x)
			f.Step(cmd, []float64{tg})
			m.Observe(cmd)
			if x > c.catch {
				worst = math.Max(worst, math.Abs(cmd[0]-tg))
			}
		}
		if m.Violations() != 0 {
			t.Errorf("%s: %v", c.name, m)
		}
		if worst > 1e-9 {
			t.Errorf("%s: off the target by %g after %g s", c.name, worst, c.catch)
		}
	}
}

// TestResetMoving: a start from a measured velocity continues the motion within every limit as
// the robot sees it (a Reset at rest would not), and a velocity beyond the limit is braked at
// the acceleration and jerk limits.
func TestResetMoving(t *testing.T) {
	lim, err := Resolve(jerkModel(), &Config{})
	if err != nil {
		t.Fatal(err)
	}
	const dt = 0.002
	n := len(lim)
	pos := []float64{0, 0.5, 1, 0, 0.22, 0.02}
	run := func(vel []float64, moving bool, target []float64, ticks int) (*Filter, *Monitor, []float64) {
		f, m := NewFilter(lim, dt), NewMonitor(lim, dt)
		if moving {
			if err := f.ResetMoving(pos, vel); err != nil {
				t.Fatal(err)
			}
		} else {
			f.Reset(pos)
		}
		m.ResetMoving(pos, vel, nil)
		cmd := make([]float64, n)
		for range ticks {
			f.Step(cmd, target)
			m.Observe(cmd)
		}
		return f, m, cmd
	}
	vel := []float64{1.5, -1.2, 2.5, 0.8, 0.3, 0.04} // within the limits
	far := []float64{-2, 2, -3, -0.9, 0.2, 0.01}     // reversing every joint
	if _, m, _ := run(vel, true, far, 3000); m.Violations() != 0 {
		t.Errorf("moving start: %v", m)
	}
	if _, m, _ := run(vel, false, far, 3000); m.Count(Acceleration) == 0 || m.Count(Jerk) == 0 {
		t.Errorf("a start at rest from a moving robot should violate the limits at the robot: %v", m)
	}

	// Beyond the velocity limit: only the velocity is violated, for the ticks braking needs,
	// and each tick slower than the last until within the limit.
	fast := []float64{3, -2.5, 4, 1.5, 0, 0}
	f, m, _ := run(fast, true, far, 3000)
	if m.Count(Position)+m.Count(Acceleration)+m.Count(Jerk) != 0 || m.Count(Velocity) == 0 {
		t.Errorf("fast start: %v", m)
	}
	if got := f.Count(-1, StartBeyond); got != 4 {
		t.Errorf("%d joints counted StartBeyond, want 4", got)
	}
	f2, m2 := NewFilter(lim, dt), NewMonitor(lim, dt)
	f2.ResetMoving(pos, fast)
	m2.ResetMoving(pos, fast, nil)
	cmd, v := make([]float64, n), make([]float64, n)
	prev := append([]float64(nil), fast...)
	for k := range 400 {
		f2.Step(cmd, far)
		m2.Observe(cmd)
		f2.Velocity(v)
		for j := range v {
			if math.Abs(fast[j]) > lim[j].Velocity && math.Abs(prev[j]) > lim[j].Velocity && math.Abs(v[j]) > math.Abs(prev[j])+1e-12 {
				t.Fatalf("tick %d joint %s: speed rose from %g to %g above the limit", k, lim[j].Name, prev[j], v[j])
			}
		}
		copy(prev, v)
	}
	for j, l := range lim {
		if math.Abs(v[j]) > l.Velocity*(1+1e-9) {
			t.Errorf("joint %s still at %g rad/s after 0.8 s", l.Name, v[j])
		}
	}

	// Toward a limit it cannot stop before: the band is left by at most the braking distance,
	// and the joint comes back in.
	lim1 := oneJoint(2, 8, 80)
	f3, m3 := NewFilter(lim1, dt), NewMonitor(lim1, dt)
	if err := f3.ResetMoving([]float64{2.95}, []float64{1.5}); err != nil {
		t.Fatal(err)
	}
	m3.ResetMoving([]float64{2.95}, []float64{1.5}, nil)
	top := 0.0
	for range 2000 {
		f3.Step(cmd[:1], []float64{0})
		m3.Observe(cmd[:1])
		top = math.Max(top, cmd[0])
	}
	if m3.Count(Velocity)+m3.Count(Acceleration)+m3.Count(Jerk) != 0 || f3.Count(0, StartBeyond) != 1 {
		t.Errorf("start toward the limit: %v", m3)
	}
	// 1.5 rad/s: 1.5^2/(2*8) + 1.5*8/(2*80) = 0.216 rad at most.
	if top <= 3 || top > 2.95+0.216 || math.Abs(cmd[0]) > 1e-9 {
		t.Errorf("start toward the limit: top %g, end %g", top, cmd[0])
	}
}

// TestStopTicks: Hold reaches rest in the ticks StopTicks predicts.
func TestStopTicks(t *testing.T) {
	lim, _ := Resolve(jerkModel(), &Config{})
	const dt = 0.002
	f, _ := runStream(lim, dt, scenarios[1].gen, 1, 120) // mid-way across the range
	want := f.StopTicks()
	cmd := make([]float64, len(lim))
	k := 0
	for ; k < 10000 && f.StopTicks() > 0; k++ {
		f.Hold(cmd)
	}
	if want < 10 || k > want+2 || k < want-3 {
		t.Errorf("stopped in %d ticks, StopTicks said %d", k, want)
	}
	if !f.AtRest(0) {
		t.Error("not at rest")
	}
}

// TestJerkStartBeyondSoftLimit: a jerk-limited joint parked beyond its band (inside the hard
// limit) is never moved further out, and comes in within the limits when asked.
func TestJerkStartBeyondSoftLimit(t *testing.T) {
	m := &robot.Model{Name: "one", Joints: []robot.Joint{{Name: "j", Type: robot.Revolute,
		Limits: robot.Limits{HasPosition: true, Lower: -1, Upper: 1, Velocity: 2, Acceleration: 8, Jerk: 80},
		Soft:   &robot.SoftLimits{Lower: -0.9, Upper: 0.9}}}}
	lim, err := Resolve(m, &Config{})
	if err != nil {
		t.Fatal(err)
	}
	const dt = 0.002
	f := NewFilter(lim, dt)
	if err := f.Reset([]float64{0.95}); err != nil {
		t.Fatal(err)
	}
	hard := append([]Limit(nil), lim...)
	hard[0].Upper = 1
	mo := NewMonitor(hard, dt)
	mo.Reset([]float64{0.95})
	cmd := make([]float64, 1)
	for k := range 200 {
		f.Step(cmd, []float64{0.99})
		mo.Observe(cmd)
		if cmd[0] != 0.95 {
			t.Fatalf("tick %d: moved to %.17g, outward from 0.95", k, cmd[0])
		}
	}
	for range 1000 {
		f.Step(cmd, []float64{0})
		mo.Observe(cmd)
	}
	if math.Abs(cmd[0]) > 1e-9 || mo.Violations() != 0 {
		t.Errorf("at %g, want 0: %v", cmd[0], mo)
	}
	// Once in, the band holds.
	for range 1000 {
		f.Step(cmd, []float64{5})
		if cmd[0] > 0.9+1e-12 {
			t.Fatalf("back out to %g", cmd[0])
		}
	}
}

// TestScratchPredicts: a scratch filter that copies the state predicts the filter's commands
// exactly (trajectory output), and Follow of them leaves the filter where Step would.
func TestScratchPredicts(t *testing.T) {
	lim, _ := Resolve(jerkModel(), &Config{})
	const dt = 0.002
	f, _ := runStream(lim, dt, scenarios[0].gen, 5, 300)
	sc := NewFilter(lim, dt)
	sc.CopyState(f)
	n := len(lim)
	a, b, tg := make([]float64, n), make([]float64, n), make([]float64, n)
	for k := range 200 {
		for j, l := range lim {
			lo, hi := span(l)
			tg[j] = lo + (hi-lo)*(0.5+0.4*math.Sin(float64(k)*0.03+float64(j)))
		}
		f.Step(a, tg)
		sc.Step(b, tg)
		for j := range a {
			if a[j] != b[j] {
				t.Fatalf("tick %d joint %d: scratch %g, filter %g", k, j, b[j], a[j])
			}
		}
	}
}

// BenchmarkFilterStepJerk: one tick of six jerk-limited joints (one without) at 500 Hz on the
// adversarial "reversals at the limits" stream, where the admissibility search runs most.
func BenchmarkFilterStepJerk(b *testing.B) {
	lim, _ := Resolve(jerkModel(), &Config{})
	const dt = 0.002
	const n = 4096
	tgs := make([][]float64, n)
	for k := range tgs {
		tgs[k] = make([]float64, len(lim))
		for j, l := range lim {
			lo, hi := span(l)
			if (k/(40+9*j))%2 == 0 {
				tgs[k][j] = hi + 1
			} else {
				tgs[k][j] = lo - 1
			}
		}
	}
	f := NewFilter(lim, dt)
	start := make([]float64, len(lim))
	for j, l := range lim {
		lo, hi := span(l)
		start[j] = (lo + hi) / 2
	}
	f.Reset(start)
	cmd := make([]float64, len(lim))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		f.Step(cmd, tgs[i%n])
	}
}

func TestFilterJerkAllocs(t *testing.T) {
	lim, _ := Resolve(jerkModel(), &Config{})
	f, _ := runStream(lim, 0.002, scenarios[2].gen, 1, 100)
	cmd, tg := make([]float64, len(lim)), []float64{5, -5, 1, 0.5, 0.3, 0}
	if n := testing.AllocsPerRun(200, func() {
		f.Step(cmd, tg)
		f.Hold(cmd)
		f.StopTicks()
		f.Follow(cmd)
	}); n != 0 {
		t.Errorf("%v allocations per tick", n)
	}
}

// TestFollowForeign: Follow of commands the filter did not make (a jump, an out-of-limit
// velocity) is outside the guarantee, but the filter recovers: it brakes back within the limits
// without diverging, and is within every limit again once its own history is (the Monitor
// restarted from the filter's state a few ticks later sees no violation).
func TestFollowForeign(t *testing.T) {
	lim, _ := Resolve(jerkModel(), &Config{})
	const dt = 0.002
	n := len(lim)
	r := newRand(11)
	trials := 50
	if raceEnabled {
		trials = 10
	}
	for trial := range trials {
		f, _ := runStream(lim, dt, scenarios[0].gen, uint64(trial), 200)
		cmd, tg, p, v, a := make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n)
		f.Last(p)
		for j, l := range lim {
			lo, hi := span(l)
			p[j] += (r.Float64()*2 - 1) * l.Velocity * dt * 3 // up to 3x the velocity limit
			p[j] = math.Min(math.Max(p[j], lo), hi)
			tg[j] = lo + (hi-lo)*r.Float64()
		}
		f.Follow(p)
		for range 2000 {
			f.Step(cmd, tg)
			for j := range cmd {
				if math.IsNaN(cmd[j]) || math.Abs(cmd[j]) > 10 {
					t.Fatalf("trial %d: diverged: %v", trial, cmd)
				}
			}
		}
		f.Last(p)
		f.Velocity(v)
		f.Acceleration(a)
		m := NewMonitor(lim, dt)
		m.ResetMoving(p, v, a)
		for range 2000 {
			f.Step(cmd, tg)
			m.Observe(cmd)
		}
		if m.Violations() != 0 {
			t.Fatalf("trial %d: after recovery: %v", trial, m)
		}
	}
}

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 99)) }
