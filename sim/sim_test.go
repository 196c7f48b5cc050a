package sim

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/flowact/flowact/robot"
)

// arm returns a 3-joint arm built by hand: a base yaw joint and two pitch joints with 0.3 m
// links, then a fixed tool frame. lim sets the velocity and acceleration limits (0 for none).
func arm(vel, acc float64) *robot.Model {
	j := func(name, parent, child string, z float64, axis [3]float64) robot.Joint {
		return robot.Joint{
			Name: name, Type: robot.Revolute, Parent: parent, Child: child,
			Origin: robot.Pose{Pos: [3]float64{0, 0, z}, Rot: robot.Identity.Rot},
			Axis:   axis,
			Limits: robot.Limits{HasPosition: true, Lower: -2, Upper: 2, Velocity: vel, Acceleration: acc},
		}
	}
	return &robot.Model{
		Name: "arm3", Root: "base",
		Joints: []robot.Joint{
			j("yaw", "base", "l1", 0.1, [3]float64{0, 0, 1}),
			j("shoulder", "l1", "l2", 0.2, [3]float64{0, 1, 0}),
			j("elbow", "l2", "l3", 0.3, [3]float64{0, 1, 0}),
		},
		Fixed: []robot.Joint{{Name: "tool", Type: robot.Fixed, Parent: "l3", Child: "tool", Origin: robot.Pose{Pos: [3]float64{0, 0, 0.3}, Rot: robot.Identity.Rot}}},
	}
}

func mustNew(t testing.TB, m *robot.Model, cfg Config) *Sim {
	t.Helper()
	s, err := New(m, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func command(t testing.TB, s *Sim, q ...float64) {
	t.Helper()
	if err := s.WriteCommand(&robot.Command{Position: q}); err != nil {
		t.Fatal(err)
	}
}

func TestFirstOrderStepResponse(t *testing.T) {
	for _, tau := range []time.Duration{20 * time.Millisecond, 50 * time.Millisecond, 200 * time.Millisecond} {
		s := mustNew(t, arm(0, 0), Config{Lag: Lag{TimeConstant: tau}})
		command(t, s, 1, -0.5, 0)
		var st robot.State
		for k := 1; k <= 100; k++ {
			s.Step(7 * time.Millisecond) // not a multiple of the 1 ms substep's
			s.TrueStateTo(&st)
			tt := float64(k) * 0.007
			want := 1 - math.Exp(-tt/tau.Seconds())
			// The exact discretization leaves only rounding error.
			if got := st.Position[0]; math.Abs(got-want) > 1e-12 {
				t.Fatalf("tau %v, t %.3f: q = %.15f, want 1 - exp(-t/tau) = %.15f", tau, tt, got, want)
			}
			if got := st.Position[1]; math.Abs(got+0.5*want) > 1e-12 {
				t.Fatalf("tau %v, t %.3f: q = %g, want %g", tau, tt, got, -0.5*want)
			}
		}
	}
}

func TestSecondOrderStepResponse(t *testing.T) {
	const wn = 20.0
	cases := []struct {
		zeta float64
		want func(t float64) float64
	}{
		{1, func(t float64) float64 { return 1 - (1+wn*t)*math.Exp(-wn*t) }},
		{0.5, func(t float64) float64 {
			wd := wn * math.Sqrt(1-0.25)
			return 1 - math.Exp(-0.5*wn*t)*(math.Cos(wd*t)+0.5*wn/wd*math.Sin(wd*t))
		}},
	}
	for _, c := range cases {
		s := mustNew(t, arm(0, 0), Config{Lag: Lag{Order: 2, Frequency: wn, Damping: c.zeta}, MaxStep: 100 * time.Microsecond})
		command(t, s, 1, 0, 0)
		var st robot.State
		worst := 0.0
		for k := 1; k <= 50; k++ {
			s.Step(10 * time.Millisecond)
			s.TrueStateTo(&st)
			worst = max(worst, math.Abs(st.Position[0]-c.want(float64(k)*0.01)))
		}
		// Semi-implicit Euler's global error is O(wn h) of the amplitude: wn h = 2e-3.
		if worst > 3e-3 {
			t.Errorf("zeta %g: worst deviation from the analytic step response %g > 3e-3", c.zeta, worst)
		}
	}
}

// TestLimitsNeverExceeded drives an underdamped second-order arm with random steps, some beyond
// the position limits, and checks every substep.
func TestLimitsNeverExceeded(t *testing.T) {
	const vmax, amax = 1.5, 6.0
	for _, lag := range []Lag{{Order: 1, TimeConstant: 10 * time.Millisecond}, {Order: 2, Frequency: 40, Damping: 0.2}} {
		s := mustNew(t, arm(vmax, amax), Config{Lag: lag})
		r := rand.New(rand.NewPCG(1, 2))
		var st robot.State
		prev := make([]float64, 3)
		const h = time.Millisecond
		for k := 0; k < 20000; k++ {
			if k%300 == 0 {
				command(t, s, 5*(r.Float64()-0.5), 5*(r.Float64()-0.5), 5*(r.Float64()-0.5))
			}
			s.Step(h)
			s.TrueStateTo(&st)
			for i := range 3 {
				q, v := st.Position[i], st.Velocity[i]
				if q < -2 || q > 2 {
					t.Fatalf("%+v step %d joint %d: position %g outside [-2, 2]", lag, k, i, q)
				}
				if math.Abs(v) > vmax*(1+1e-9) {
					t.Fatalf("%+v step %d joint %d: velocity %g beyond %g", lag, k, i, v, vmax)
				}
				if a := (v - prev[i]) / h.Seconds(); math.Abs(a) > amax*(1+1e-6) {
					t.Fatalf("%+v step %d joint %d: acceleration %g beyond %g", lag, k, i, a, amax)
				}
				prev[i] = v
			}
		}
	}
}

func TestTrajectoryInterpolatesLinearly(t *testing.T) {
	s := mustNew(t, arm(0, 0), Config{})
	start := s.Now().Add(100 * time.Millisecond)
	tr := &robot.Trajectory{
		Start:         start,
		TimeFromStart: []time.Duration{100 * time.Millisecond, 300 * time.Millisecond},
		Positions:     []float64{1, 0, 0, 1, 2, -1},
	}
	if err := s.WriteTrajectory(tr); err != nil {
		t.Fatal(err)
	}
	ref := make([]float64, 3)
	cases := []struct {
		at   time.Duration // since the sim's start
		want [3]float64
	}{
		{50 * time.Millisecond, [3]float64{0, 0, 0}},     // before Start: held reference
		{100 * time.Millisecond, [3]float64{0, 0, 0}},    // Start: the first segment begins at the old reference
		{150 * time.Millisecond, [3]float64{0.5, 0, 0}},  // halfway to the first point
		{200 * time.Millisecond, [3]float64{1, 0, 0}},    // the first point
		{300 * time.Millisecond, [3]float64{1, 1, -0.5}}, // halfway between the points
		{500 * time.Millisecond, [3]float64{1, 2, -1}},   // held after the last point
	}
	for _, c := range cases {
		s.StepTo(s.cfg.Start.Add(c.at))
		s.ReferenceTo(ref)
		for i := range 3 {
			if math.Abs(ref[i]-c.want[i]) > 1e-12 {
				t.Fatalf("at %v: reference %v, want %v", c.at, ref, c.want)
			}
		}
	}
}

// TestTrajectoryReplacement checks joint_trajectory_controller's rule: a new trajectory takes
// over at its start time, leading from the old plan's reference there; the old one runs until then.
func TestTrajectoryReplacement(t *testing.T) {
	s := mustNew(t, arm(0, 0), Config{})
	t0 := s.Now()
	old := &robot.Trajectory{Start: t0, TimeFromStart: []time.Duration{time.Second}, Positions: []float64{1, 1, 1}}
	if err := s.WriteTrajectory(old); err != nil {
		t.Fatal(err)
	}
	s.Step(200 * time.Millisecond)
	// Starts at 0.5 s, when the old plan is at 0.5; reaches 0 at 0.7 s.
	repl := &robot.Trajectory{Start: t0.Add(500 * time.Millisecond), TimeFromStart: []time.Duration{200 * time.Millisecond}, Positions: []float64{0, 0, 0}}
	if err := s.WriteTrajectory(repl); err != nil {
		t.Fatal(err)
	}
	ref := make([]float64, 3)
	for _, c := range []struct {
		at   time.Duration
		want float64
	}{{400 * time.Millisecond, 0.4}, {500 * time.Millisecond, 0.5}, {600 * time.Millisecond, 0.25}, {900 * time.Millisecond, 0}} {
		s.StepTo(t0.Add(c.at))
		s.ReferenceTo(ref)
		if math.Abs(ref[0]-c.want) > 1e-12 {
			t.Errorf("at %v: reference %g, want %g", c.at, ref[0], c.want)
		}
	}
	// A per-tick command cancels the trajectory.
	command(t, s, -1, -1, -1)
	s.ReferenceTo(ref)
	if ref[0] != -1 {
		t.Errorf("after WriteCommand the reference is %g, want -1", ref[0])
	}
}

func TestTrajectoryErrors(t *testing.T) {
	s := mustNew(t, arm(0, 0), Config{})
	s.Step(time.Second)
	now := s.Now()
	ms := time.Millisecond
	cases := []struct {
		name string
		tr   robot.Trajectory
		want error
	}{
		{"no points", robot.Trajectory{}, ErrCommand},
		{"short positions", robot.Trajectory{TimeFromStart: []time.Duration{ms}, Positions: []float64{1, 2}}, ErrCommand},
		{"not increasing", robot.Trajectory{TimeFromStart: []time.Duration{2 * ms, ms}, Positions: make([]float64, 6)}, ErrCommand},
		{"negative time", robot.Trajectory{TimeFromStart: []time.Duration{-ms}, Positions: make([]float64, 3)}, ErrCommand},
		{"NaN", robot.Trajectory{TimeFromStart: []time.Duration{ms}, Positions: []float64{0, math.NaN(), 0}}, ErrCommand},
		{"in the past", robot.Trajectory{Start: now.Add(-time.Second), TimeFromStart: []time.Duration{500 * ms}, Positions: make([]float64, 3)}, ErrPast},
		{"partly past", robot.Trajectory{Start: now.Add(-time.Second), TimeFromStart: []time.Duration{500 * ms, 1500 * ms}, Positions: make([]float64, 6)}, nil},
	}
	for _, c := range cases {
		err := s.WriteTrajectory(&c.tr)
		if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
			t.Errorf("%s: error %v, want %v", c.name, err, c.want)
		}
	}
	if err := s.WriteCommand(&robot.Command{Position: []float64{1}}); !errors.Is(err, ErrCommand) {
		t.Errorf("short command: error %v, want ErrCommand", err)
	}
	if err := s.WriteCommand(&robot.Command{Position: []float64{0, math.Inf(1), 0}}); !errors.Is(err, ErrCommand) {
		t.Errorf("infinite command: error %v, want ErrCommand", err)
	}
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"zero", Config{}, true},
		{"order 3", Config{Lag: Lag{Order: 3}}, false},
		{"negative tau", Config{Lag: Lag{TimeConstant: -time.Millisecond}}, false},
		{"stiff second order", Config{Lag: Lag{Order: 2, Frequency: 1000}}, false},
		{"second order", Config{Lag: Lag{Order: 2, Frequency: 100, Damping: 0.7}}, true},
		{"drop 1", Config{Faults: Faults{StateDrop: 1}}, false},
		{"NaN noise", Config{Faults: Faults{PositionNoise: math.NaN()}}, false},
		{"negative latency", Config{Faults: Faults{StateLatency: -1}}, false},
		{"stuck without joint", Config{Faults: Faults{Stuck: Window{Enabled: true}}}, false},
		{"NaN initial", Config{Initial: []float64{math.NaN(), 0, 0}}, false},
	}
	for _, c := range cases {
		if err := c.cfg.Validate(); (err == nil) != c.ok {
			t.Errorf("%s: Validate() = %v, want ok %v", c.name, err, c.ok)
		} else if err != nil && !errors.Is(err, ErrConfig) {
			t.Errorf("%s: %v does not wrap ErrConfig", c.name, err)
		}
	}
	if _, err := New(arm(0, 0), Config{Faults: Faults{StuckJoint: "wrist"}}); !errors.Is(err, ErrConfig) {
		t.Errorf("unknown stuck joint: %v", err)
	}
	if _, err := New(arm(0, 0), Config{Initial: []float64{1}}); !errors.Is(err, ErrConfig) {
		t.Errorf("short initial: %v", err)
	}
}

func TestClock(t *testing.T) {
	s := mustNew(t, arm(0, 0), Config{})
	c := s.Clock()
	t0 := c.Now()
	if err := c.SleepUntil(context.Background(), t0.Add(250*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if got := c.Now().Sub(t0); got != 250*time.Millisecond {
		t.Errorf("after SleepUntil the clock advanced %v, want 250ms", got)
	}
	if err := c.SleepUntil(context.Background(), t0); err != nil || c.Now().Sub(t0) != 250*time.Millisecond {
		t.Errorf("SleepUntil a past time: %v, clock at %v", err, c.Now().Sub(t0))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.SleepUntil(ctx, t0.Add(time.Second)); !errors.Is(err, context.Canceled) || c.Now().Sub(t0) != 250*time.Millisecond {
		t.Errorf("SleepUntil with a cancelled context: %v", err)
	}
}

func TestSceneFrames(t *testing.T) {
	s := mustNew(t, arm(0, 0), Config{Initial: []float64{math.Pi / 2, 0, 0}})
	s.SetObjects([]Target{{Name: "red", Pos: [3]float64{1, 2, 3}}}, []Obstacle{{Name: "wall", Radius: 0.1}})
	var sc Scene
	s.SceneTo(&sc)
	if len(sc.Frames) != 4 || len(sc.Targets) != 1 || len(sc.Obstacles) != 1 {
		t.Fatalf("scene has %d frames, %d targets, %d obstacles", len(sc.Frames), len(sc.Targets), len(sc.Obstacles))
	}
	f := sc.Frames[0]
	// yaw by pi/2 about z maps x to y.
	if f.Parent != "base" || f.Child != "l1" || math.Abs(f.Pose.Rot[3]-1) > 1e-12 || f.Pose.Pos[2] != 0.1 {
		t.Errorf("frame 0 = %+v", f)
	}
	if sc.Frames[3].Child != "tool" {
		t.Errorf("last frame %+v, want the fixed tool frame", sc.Frames[3])
	}
	if allocs := testing.AllocsPerRun(100, func() { s.SceneTo(&sc) }); allocs != 0 {
		t.Errorf("SceneTo allocates %v times", allocs)
	}
}

func TestObstacleDist(t *testing.T) {
	o := Obstacle{A: [3]float64{0, 0, 0}, B: [3]float64{1, 0, 0}, Radius: 0.1}
	for _, c := range []struct {
		p    [3]float64
		want float64
	}{{[3]float64{0.5, 1, 0}, 0.9}, {[3]float64{-1, 0, 0}, 0.9}, {[3]float64{2, 0, 0}, 0.9}, {[3]float64{0.5, 0, 0}, -0.1}} {
		if got := o.Dist(c.p); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("Dist(%v) = %g, want %g", c.p, got, c.want)
		}
	}
}

func TestZeroAllocs(t *testing.T) {
	s := mustNew(t, arm(2, 10), Config{SensorPeriod: 2 * time.Millisecond, Faults: Faults{
		StateLatency: 30 * time.Millisecond, PositionNoise: 0.01, StateDrop: 0.1, CommandDelay: 45 * time.Millisecond, Seed: 3,
		Freeze: Window{Enabled: true, At: time.Second}, StuckJoint: "elbow", Stuck: Window{Enabled: true}}})
	st := robot.NewState(3)
	cmd := &robot.Command{Position: []float64{0.5, 0.5, 0.5}}
	tick := func() {
		_ = s.WriteCommand(cmd)
		s.Step(20 * time.Millisecond)
		_ = s.ReadState(&st)
	}
	for range 10 { // grow the latency buffer
		tick()
	}
	if allocs := testing.AllocsPerRun(200, tick); allocs != 0 {
		t.Errorf("a tick (WriteCommand, Step, ReadState) allocates %v times", allocs)
	}
	tr := &robot.Trajectory{TimeFromStart: []time.Duration{10 * time.Millisecond, 20 * time.Millisecond}, Positions: make([]float64, 6)}
	chunk := func() {
		_ = s.WriteTrajectory(tr)
		s.Step(20 * time.Millisecond)
	}
	for range 10 {
		chunk()
	}
	if allocs := testing.AllocsPerRun(200, chunk); allocs != 0 {
		t.Errorf("WriteTrajectory and Step allocate %v times", allocs)
	}
}

func BenchmarkStep(b *testing.B) {
	s := mustNew(b, arm(2, 10), Config{})
	cmd := &robot.Command{Position: []float64{0.5, 0.5, 0.5}}
	st := robot.NewState(3)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		cmd.Position[0] = float64(i%2) - 0.5
		_ = s.WriteCommand(cmd)
		s.Step(20 * time.Millisecond) // one 50 Hz tick: 20 substeps of 1 ms
		_ = s.ReadState(&st)
	}
}

// stepClock is a robot.Clock whose time advances only when SleepUntil is called, like sim time.
type stepClock struct{ now time.Time }

func (c *stepClock) Now() time.Time { return c.now }
func (c *stepClock) SleepUntil(ctx context.Context, t time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if t.After(c.now) {
		c.now = t
	}
	return nil
}

// cancelAt cancels a context once the clock reaches a time.
type cancelAt struct {
	stepClock
	at     time.Time
	cancel context.CancelFunc
}

func (c *cancelAt) SleepUntil(ctx context.Context, t time.Time) error {
	err := c.stepClock.SleepUntil(ctx, t)
	if !c.now.Before(c.at) {
		c.cancel()
	}
	return err
}

func TestRun(t *testing.T) {
	s := mustNew(t, arm(0, 0), Config{})
	ctx, cancel := context.WithCancel(context.Background())
	t0 := time.Unix(100, 0)
	clk := &cancelAt{stepClock: stepClock{now: t0}, at: t0.Add(time.Second), cancel: cancel}
	if err := s.Run(ctx, clk, 10*time.Millisecond); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v", err)
	}
	// 99 steps ran before the clock reached 1 s and cancelled the 100th.
	if got := s.Elapsed(); got != 990*time.Millisecond {
		t.Errorf("Run stepped %v, want 990ms", got)
	}
	if s.Late() != 0 {
		t.Errorf("%d late steps on a clock that waits", s.Late())
	}
}

// TestFirstOrderNoOvershoot: an acceleration-limited joint with a first-order lag, starting at
// rest, stops at a step's target without passing it.
func TestFirstOrderNoOvershoot(t *testing.T) {
	s := mustNew(t, arm(1.5, 6), Config{})
	r := rand.New(rand.NewPCG(3, 4))
	var st robot.State
	for range 10 {
		s.TrueStateTo(&st)
		q0 := append([]float64(nil), st.Position...)
		target := []float64{4 * (r.Float64() - 0.5), 4 * (r.Float64() - 0.5), 4 * (r.Float64() - 0.5)}
		command(t, s, target...)
		for range 4000 { // 4 s: 4 rad at 1.5 rad/s and settling
			s.Step(time.Millisecond)
			s.TrueStateTo(&st)
			for i := range 3 {
				if dir := math.Copysign(1, target[i]-q0[i]); dir*(st.Position[i]-target[i]) > 1e-9 {
					t.Fatalf("joint %d passed its target %g (from %g): at %g", i, target[i], q0[i], st.Position[i])
				}
			}
		}
		for i := range 3 {
			if math.Abs(st.Position[i]-target[i]) > 1e-6 || st.Velocity[i] != 0 && math.Abs(st.Velocity[i]) > 1e-6 {
				t.Fatalf("joint %d did not settle at %g: at %g moving %g", i, target[i], st.Position[i], st.Velocity[i])
			}
		}
	}
}

func TestLongStep(t *testing.T) {
	s := mustNew(t, arm(0, 0), Config{MaxStep: 100 * time.Millisecond})
	command(t, s, 1, 1, 1)
	s.Step(10*time.Hour + 7) // 360000 substeps: dt*i would overflow int64
	var st robot.State
	s.TrueStateTo(&st)
	if s.Elapsed() != 10*time.Hour+7 || math.Abs(st.Position[0]-1) > 1e-12 {
		t.Errorf("after 10 h: elapsed %v, joint at %g", s.Elapsed(), st.Position[0])
	}
}
