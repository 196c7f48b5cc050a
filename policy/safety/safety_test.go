package safety

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/flowact/flowact/robot"
)

func testModel() *robot.Model {
	return &robot.Model{Name: "arm", Root: "base", Joints: []robot.Joint{
		{Name: "shoulder", Type: robot.Revolute, Limits: robot.Limits{HasPosition: true, Lower: -1, Upper: 1, Velocity: 2, Acceleration: 10, Jerk: 500}},
		{Name: "elbow", Type: robot.Revolute, Limits: robot.Limits{HasPosition: true, Lower: -2, Upper: 0.5, Velocity: 1, Acceleration: 5},
			Soft: &robot.SoftLimits{Lower: -1.9, Upper: 0.4}},
		{Name: "wrist", Type: robot.Continuous, Limits: robot.Limits{Velocity: 3, Acceleration: 20}},
	}}
}

func fp(v float64) *float64 { return &v }

func TestResolve(t *testing.T) {
	m := testModel()
	lim, err := Resolve(m, &Config{})
	if err != nil {
		t.Fatal(err)
	}
	if l := lim[1]; !l.HasPosition || l.Lower != -1.9 || l.Upper != 0.4 {
		t.Errorf("elbow band %+v, want the soft limits [-1.9, 0.4]", l)
	}
	if lim[2].HasPosition {
		t.Errorf("continuous wrist has a band: %+v", lim[2])
	}
	lim, err = Resolve(m, &Config{VelocityScale: 0.5, PositionMargin: 0.1,
		Joints: map[string]JointConfig{"shoulder": {Upper: fp(0.5), Acceleration: 4}}})
	if err != nil {
		t.Fatal(err)
	}
	if l := lim[0]; l.Upper != 0.4 || l.Lower != -0.9 || l.Velocity != 1 || l.Acceleration != 4 || l.Jerk != 500 {
		t.Errorf("shoulder tightened to %+v", l)
	}

	bad := []struct {
		name string
		cfg  Config
		m    func(*robot.Model)
		want string // a fragment of the error
	}{
		{"loosen velocity", Config{Joints: map[string]JointConfig{"elbow": {Velocity: 1.5}}}, nil, `joint "elbow": velocity`},
		{"loosen upper", Config{Joints: map[string]JointConfig{"shoulder": {Upper: fp(2)}}}, nil, `joint "shoulder": upper`},
		{"loosen lower", Config{Joints: map[string]JointConfig{"elbow": {Lower: fp(-2)}}}, nil, `joint "elbow": lower`},
		{"loosen jerk", Config{Joints: map[string]JointConfig{"shoulder": {Jerk: 600}}}, nil, `joint "shoulder": jerk`},
		{"unknown joint", Config{Joints: map[string]JointConfig{"knee": {Velocity: 1}}}, nil, "knee"},
		{"scale", Config{VelocityScale: 1.5}, nil, "velocity_scale"},
		{"negative", Config{Joints: map[string]JointConfig{"elbow": {Acceleration: -1}}}, nil, "joints.elbow.acceleration"},
		{"margin eats band", Config{PositionMargin: 2}, nil, "empty position band"},
		{"no acceleration", Config{}, func(m *robot.Model) { m.Joints[0].Limits.Acceleration = 0 }, `joint "shoulder": no acceleration`},
		{"no velocity", Config{}, func(m *robot.Model) { m.Joints[2].Limits.Velocity = 0 }, `joint "wrist": no velocity`},
		{"no position", Config{}, func(m *robot.Model) { m.Joints[0].Limits.HasPosition = false }, `joint "shoulder": no position`},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			m := testModel()
			if c.m != nil {
				c.m(m)
			}
			_, err := Resolve(m, &c.cfg)
			if err == nil || !errors.Is(err, ErrLimits) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an ErrLimits naming %q", err, c.want)
			}
		})
	}
	// Config may supply what the model lacks.
	m2 := testModel()
	m2.Joints[0].Limits.Acceleration = 0
	m2.Joints[0].Limits.HasPosition = false
	lim, err = Resolve(m2, &Config{Joints: map[string]JointConfig{"shoulder": {Acceleration: 3, Lower: fp(-0.5), Upper: fp(0.5)}}})
	if err != nil || lim[0].Acceleration != 3 || lim[0].Upper != 0.5 {
		t.Fatalf("supplied limits: %+v, %v", lim, err)
	}
}

// TestStepLimit checks the braking curve against a direct simulation of braking.
func TestStepLimit(t *testing.T) {
	travel := func(s, dec float64) float64 {
		d := 0.0
		for ; s > 0; s -= dec {
			d += s
		}
		return d
	}
	for _, c := range []struct{ dist, dec float64 }{{1, 0.01}, {0.5, 0.3}, {1e-6, 1e-3}, {10, 1e-5}, {0.03, 0.01}, {0.06, 0.02}} {
		s := stepLimit(c.dist, c.dec)
		if got := travel(s, c.dec); got > c.dist*(1+1e-9) {
			t.Errorf("stepLimit(%g, %g) = %g travels %g > dist", c.dist, c.dec, s, got)
		}
		if got := travel(s*(1+1e-6)+1e-12, c.dec); got <= c.dist {
			t.Errorf("stepLimit(%g, %g) = %g is not the largest: a larger step travels %g", c.dist, c.dec, s, got)
		}
	}
	if stepLimit(0, 1) != 0 || stepLimit(-1, 1) != 0 {
		t.Error("non-positive distance must give 0")
	}
}

// checker verifies a command stream against limits.
type checker struct {
	t      *testing.T
	lim    []Limit
	dt     float64
	p, s   []float64
	maxJrk []float64
}

func newChecker(t *testing.T, lim []Limit, dt float64, start []float64) *checker {
	n := len(lim)
	c := &checker{t: t, lim: lim, dt: dt, p: append([]float64(nil), start...), s: make([]float64, n), maxJrk: make([]float64, n)}
	return c
}

func (c *checker) check(k int, cmd []float64) {
	c.t.Helper()
	const tol = 1e-9
	for j, l := range c.lim {
		x := cmd[j]
		if math.IsNaN(x) || math.IsInf(x, 0) {
			c.t.Fatalf("tick %d joint %s: command %v", k, l.Name, x)
		}
		if l.HasPosition && (x < l.Lower-tol || x > l.Upper+tol) {
			c.t.Fatalf("tick %d joint %s: position %g outside [%g, %g]", k, l.Name, x, l.Lower, l.Upper)
		}
		s := x - c.p[j]
		if v := math.Abs(s) / c.dt; v > l.Velocity*(1+tol)+tol {
			c.t.Fatalf("tick %d joint %s: velocity %g > %g", k, l.Name, v, l.Velocity)
		}
		if a := math.Abs(s-c.s[j]) / (c.dt * c.dt); a > l.Acceleration*(1+1e-6)+1e-6 {
			c.t.Fatalf("tick %d joint %s: acceleration %g > %g", k, l.Name, a, l.Acceleration)
		}
		c.p[j], c.s[j] = x, s
	}
}

// TestFilterAdversarial drives the filter with random jumps, NaNs, far-out targets and holds and
// checks every command against the limits relative to the previous one.
func TestFilterAdversarial(t *testing.T) {
	lim, err := Resolve(testModel(), &Config{})
	if err != nil {
		t.Fatal(err)
	}
	var counts [NumKinds]uint64
	for _, dt := range []float64{1.0 / 50, 1.0 / 1000} {
		f := NewFilter(lim, dt)
		start := []float64{0.9, -1.8, 3}
		if err := f.Reset(start); err != nil {
			t.Fatal(err)
		}
		c := newChecker(t, lim, dt, start)
		r := rand.New(rand.NewPCG(1, 2))
		target := make([]float64, 3)
		cmd := make([]float64, 3)
		for k := range 20000 {
			switch mode := r.IntN(40); {
			case mode < 1: // a random jump, often far outside the limits
				for j := range target {
					target[j] = (r.Float64()*2 - 1) * 5
				}
			case mode == 3:
				target[r.IntN(3)] = math.NaN()
			case mode == 4:
				target[r.IntN(3)] = math.Inf(1 - 2*r.IntN(2))
			}
			if r.IntN(50) == 0 {
				for range 100 {
					f.Hold(cmd)
					c.check(k, cmd)
				}
				continue
			}
			f.Step(cmd, target)
			c.check(k, cmd)
		}
		for k := range NumKinds {
			counts[k] += f.Count(-1, k)
		}
	}
	for _, k := range []Kind{Position, Velocity, Acceleration, Jerk, NotFinite} {
		if counts[k] == 0 {
			t.Errorf("no %v clamp counted under adversarial targets", k)
		}
	}
}

// TestFilterTracks: a feasible smooth trajectory passes unchanged (no clamps), and a static
// target is reached without overshoot.
func TestFilterTracks(t *testing.T) {
	lim, _ := Resolve(testModel(), &Config{})
	dt := 0.01
	f := NewFilter(lim, dt)
	if err := f.Reset([]float64{0, 0, 0}); err != nil {
		t.Fatal(err)
	}
	cmd, tg := make([]float64, 3), make([]float64, 3)
	for k := range 1000 {
		x := float64(k) * dt
		// amplitude and frequency keep v, a, j under every joint's limits (0.1*w^3 < 500 for w=2pi/2)
		s := 0.1 * (1 - math.Cos(math.Pi*x))
		tg[0], tg[1], tg[2] = s, -s, s
		f.Step(cmd, tg)
		for j := range cmd {
			if math.Abs(cmd[j]-tg[j]) > 1e-12 {
				t.Fatalf("tick %d joint %d: %g, want %g", k, j, cmd[j], tg[j])
			}
		}
	}
	for k := range NumKinds {
		if n := f.Count(-1, k); n != 0 {
			t.Errorf("%d %v clamps on a feasible trajectory", n, k)
		}
	}
	// A static far target: approached at the limits, reached without overshoot.
	tg[0], tg[1], tg[2] = 0.9, -1.5, 10
	maxOver := 0.0
	for range 3000 {
		f.Step(cmd, tg)
		for j := range cmd {
			over := (cmd[j] - tg[j]) * math.Copysign(1, tg[j])
			maxOver = math.Max(maxOver, over)
		}
	}
	for j := range cmd {
		if math.Abs(cmd[j]-tg[j]) > 1e-9 {
			t.Errorf("joint %d did not reach %g: %g", j, tg[j], cmd[j])
		}
	}
	if maxOver > 1e-3 {
		t.Errorf("overshoot %g rad", maxOver)
	}
}

// TestFilterHold: from full speed, Hold stops within the acceleration limit's braking distance
// and jerk stays bounded (no limit cycle).
func TestFilterHold(t *testing.T) {
	lim, _ := Resolve(testModel(), &Config{})
	dt := 0.002
	f := NewFilter(lim, dt)
	f.Reset([]float64{-0.9, 0, 0})
	c := newChecker(t, lim, dt, []float64{-0.9, 0, 0})
	cmd, tg := make([]float64, 3), []float64{0.9, 0, 0}
	for k := range 200 {
		f.Step(cmd, tg)
		c.check(k, cmd)
	}
	v0 := (cmd[0] - c.p[0]) / dt
	f.Velocity(cmd)
	v0 = cmd[0]
	start := c.p[0]
	k := 0
	for ; k < 2000 && !f.AtRest(1e-15); k++ {
		f.Hold(cmd)
		c.check(k, cmd)
	}
	if k == 2000 {
		t.Fatal("hold did not come to rest")
	}
	// Braking distance with a jerk limit is at most v^2/(2a) + v*a/j (the time to ramp the
	// deceleration) plus a tick of slack.
	l := lim[0]
	bound := v0*v0/(2*l.Acceleration) + v0*l.Acceleration/l.Jerk + 2*v0*dt
	if d := c.p[0] - start; d > bound || d < 0 {
		t.Errorf("stopped after %g rad from %g rad/s, bound %g", d, v0, bound)
	}
	// stays put
	for range 100 {
		f.Hold(cmd)
		c.check(k, cmd)
	}
	if !f.AtRest(0) {
		t.Error("moves while holding at rest")
	}
}

func TestResetOutOfLimits(t *testing.T) {
	lim, _ := Resolve(testModel(), &Config{})
	f := NewFilter(lim, 0.01)
	err := f.Reset([]float64{0, 0.55, 0}) // elbow beyond its hard limit 0.5
	if !errors.Is(err, ErrOutOfLimits) || !strings.Contains(err.Error(), "elbow") || f.Active() {
		t.Fatalf("got %v", err)
	}
}

// TestStartBeyondSoftLimit: a joint parked between its soft (0.4) and hard (0.5) limit starts,
// is never moved further out, and comes in when asked, within the limits.
func TestStartBeyondSoftLimit(t *testing.T) {
	lim, _ := Resolve(testModel(), &Config{})
	const dt = 0.01
	f := NewFilter(lim, dt)
	start := []float64{0, 0.45, 0}
	if err := f.Reset(start); err != nil {
		t.Fatal(err)
	}
	c := newChecker(t, lim, dt, start)
	c.lim[1].Upper = 0.5 // check this joint against its hard limit
	cmd := make([]float64, 3)
	for k := range 100 {
		f.Step(cmd, []float64{0, 0.49, 0}) // further out: refused
		c.check(k, cmd)
		if cmd[1] != 0.45 {
			t.Fatalf("tick %d: elbow moved to %g, outward from 0.45", k, cmd[1])
		}
	}
	for k := range 300 {
		f.Step(cmd, []float64{0, 0, 0})
		c.check(k, cmd)
	}
	if math.Abs(cmd[1]) > 1e-9 {
		t.Errorf("elbow at %g, want 0", cmd[1])
	}
}

func TestMachine(t *testing.T) {
	var m Machine
	steps := []struct {
		op   func() error
		want State
		err  error
	}{
		{m.Hold, Idle, ErrNotRunning},
		{m.Start, Running, nil},
		{m.Hold, Holding, nil},
		{m.Start, Running, nil},
		{m.Stop, Stopping, nil},
		{func() error { m.Settle(); return nil }, Idle, nil},
		{m.Reset, Idle, ErrNotFaulted},
		{m.Start, Running, nil},
		{func() error { m.Trip("test"); return nil }, Fault, nil},
		{m.Start, Fault, ErrFaulted},
		{m.Hold, Fault, ErrFaulted},
		{m.Stop, Fault, ErrFaulted},
		{m.Reset, Stopping, nil},
		{m.Start, Running, nil},
	}
	for i, s := range steps {
		err := s.op()
		if !errors.Is(err, s.err) || m.State() != s.want {
			t.Fatalf("step %d: state %v err %v, want %v %v", i, m.State(), err, s.want, s.err)
		}
	}
	if m.Generation() != 4 {
		t.Errorf("generation %d, want 4", m.Generation())
	}
}

func TestCheckChunk(t *testing.T) {
	ok := []float64{1, 2, 3, 4}
	if err := CheckChunk(2, 2, ok, 2, 2); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		h, d int
		data []float64
		want error
	}{
		{2, 2, []float64{1, math.NaN(), 3, 4}, ErrNotFinite},
		{2, 2, []float64{1, 2, math.Inf(-1), 4}, ErrNotFinite},
		{1, 4, ok, ErrShape},
		{2, 2, ok[:3], ErrShape},
	} {
		if err := CheckChunk(c.h, c.d, c.data, 2, 2); !errors.Is(err, c.want) {
			t.Errorf("%v: got %v, want %v", c.data, err, c.want)
		}
	}
}

func TestFilterAllocs(t *testing.T) {
	lim, _ := Resolve(testModel(), &Config{})
	f := NewFilter(lim, 0.01)
	f.Reset([]float64{0, 0, 0})
	cmd, tg := make([]float64, 3), []float64{0.5, -0.5, 1}
	if n := testing.AllocsPerRun(100, func() { f.Step(cmd, tg); f.Hold(cmd) }); n != 0 {
		t.Errorf("%v allocations per step", n)
	}
}

func BenchmarkFilterStep(b *testing.B) {
	lim, _ := Resolve(testModel(), &Config{})
	f := NewFilter(lim, 0.001)
	f.Reset([]float64{0, 0, 0})
	cmd, tg := make([]float64, 3), []float64{0.5, -0.5, 1}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		tg[0] = 0.5 * math.Sin(float64(i)*1e-3)
		f.Step(cmd, tg)
	}
}
