package robottest_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowact/flowact/robot"
	"github.com/flowact/flowact/robot/robottest"
	"github.com/flowact/flowact/robot/urdf"
)

// spinner is a model with a continuous joint and a prismatic one without a velocity limit.
func spinner() *robot.Model {
	return &robot.Model{
		Name: "spinner", Root: "base",
		Joints: []robot.Joint{
			{Name: "spin", Type: robot.Continuous, Parent: "base", Child: "rotor", Origin: robot.Identity, Axis: [3]float64{0, 0, 1},
				Limits: robot.Limits{Velocity: 5}},
			{Name: "lift", Type: robot.Prismatic, Parent: "rotor", Child: "slider", Origin: robot.Identity, Axis: [3]float64{0, 0, 1},
				Limits: robot.Limits{HasPosition: true, Lower: 0, Upper: 0.5}},
		},
	}
}

func models(t *testing.T) []*robot.Model {
	ms := []*robot.Model{spinner()}
	for _, name := range []string{"ur5", "panda", "arm5"} {
		m, _, err := urdf.Shipped(name)
		if err != nil {
			t.Fatal(err)
		}
		ms = append(ms, m)
	}
	return ms
}

func fullOptions(step func(time.Duration)) robottest.Options {
	return robottest.Options{Step: step, Fresh: true, ClampsPosition: true, VelocityLimited: true}
}

func TestFakeConforms(t *testing.T) {
	for _, m := range models(t) {
		t.Run(m.Name, func(t *testing.T) {
			f := robottest.NewFake(m, nil)
			robottest.TestDriver(t, f, fullOptions(f.Step))
		})
	}
}

func TestFake(t *testing.T) {
	m := spinner()
	f := robottest.NewFake(m, []float64{1, 0.7}) // lift starts clamped to 0.5
	st := robot.NewState(2)
	if err := f.ReadState(&st); !errors.Is(err, robot.ErrNoState) {
		t.Fatalf("before Step: %v", err)
	}
	f.Step(0)
	if err := f.ReadState(&st); err != nil || st.Position[0] != 1 || st.Position[1] != 0.5 || !st.Stamp.Equal(time.Unix(0, 0)) {
		t.Fatalf("after Step(0): %v %+v", err, st)
	}
	// spin moves at its 5 rad/s limit; lift, with no velocity limit, jumps.
	if err := f.WriteCommand(&robot.Command{Position: []float64{2, 0.1}}); err != nil {
		t.Fatal(err)
	}
	f.Step(100 * time.Millisecond)
	_ = f.ReadState(&st)
	if math.Abs(st.Position[0]-1.5) > 1e-12 || st.Position[1] != 0.1 || math.Abs(st.Velocity[0]-5) > 1e-9 || math.Abs(st.Velocity[1]+4) > 1e-9 {
		t.Errorf("after 0.1 s: %+v", st)
	}
	f.Step(100 * time.Millisecond)
	_ = f.ReadState(&st)
	if st.Position[0] != 2 || !st.Stamp.Equal(time.Unix(0, 0).Add(200*time.Millisecond)) {
		t.Errorf("after 0.2 s: %+v", st)
	}
	// A trajectory: from the target (2, 0.1) to (3, 0.3) at 1 s, then (3, 0.4) at 2 s.
	tr := robot.Trajectory{TimeFromStart: []time.Duration{time.Second, 2 * time.Second}, Positions: []float64{3, 0.3, 3, 0.4}}
	if err := f.WriteTrajectory(&tr); err != nil {
		t.Fatal(err)
	}
	target := make([]float64, 2)
	for _, tc := range []struct {
		after time.Duration
		want  [2]float64
	}{{500 * time.Millisecond, [2]float64{2.5, 0.2}}, {500 * time.Millisecond, [2]float64{3, 0.3}}, {500 * time.Millisecond, [2]float64{3, 0.35}}, {2 * time.Second, [2]float64{3, 0.4}}} {
		f.Step(tc.after)
		f.TargetTo(target)
		if math.Abs(target[0]-tc.want[0]) > 1e-12 || math.Abs(target[1]-tc.want[1]) > 1e-12 {
			t.Errorf("target %v, want %v", target, tc.want)
		}
	}
	if c, tr := f.Commands(); c != 1 || tr != 1 {
		t.Errorf("Commands() = %d, %d", c, tr)
	}
	f.SetWriteError(robot.ErrClosed)
	if err := f.WriteCommand(&robot.Command{Position: []float64{0, 0}}); !errors.Is(err, robot.ErrClosed) {
		t.Errorf("with a write error: %v", err)
	}
	if a := testing.AllocsPerRun(100, func() { f.Step(time.Millisecond) }); a != 0 {
		t.Errorf("Step allocates %v", a)
	}
}

func TestFakeClock(t *testing.T) {
	f := robottest.NewFake(spinner(), nil)
	c := f.Clock()
	t0 := c.Now()
	if !t0.Equal(time.Unix(0, 0)) {
		t.Fatalf("Now() = %v, want the Unix epoch", t0)
	}
	if err := f.WriteCommand(&robot.Command{Position: []float64{1, 0}}); err != nil {
		t.Fatal(err)
	}
	if err := c.SleepUntil(context.Background(), t0.Add(100*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	st := robot.NewState(2)
	if err := f.ReadState(&st); err != nil || math.Abs(st.Position[0]-0.5) > 1e-12 || !c.Now().Equal(t0.Add(100*time.Millisecond)) {
		t.Errorf("after sleeping 0.1 s: %v, %+v, now %v", err, st, c.Now())
	}
	// The past: no step.
	if err := c.SleepUntil(context.Background(), t0); err != nil || !c.Now().Equal(t0.Add(100*time.Millisecond)) {
		t.Errorf("sleeping into the past: %v, now %v", err, c.Now())
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.SleepUntil(ctx, t0.Add(time.Second)); !errors.Is(err, context.Canceled) || !c.Now().Equal(t0.Add(100*time.Millisecond)) {
		t.Errorf("cancelled: %v, now %v", err, c.Now())
	}
}

// The suite must fail drivers that break the contract. Each broken driver wraps a Fake.

type wrapped struct {
	*robottest.Fake
	model     *robot.Model // what Model reports, when not the Fake's
	acceptNaN bool
	retain    bool // keep the caller's command slice and apply it at every step
	mu        sync.Mutex
	kept      []float64
	stuck     bool
	alloc     bool
	trajLax   bool
	sink      []float64
}

func (w *wrapped) Model() *robot.Model {
	if w.model != nil {
		return w.model
	}
	return w.Fake.Model()
}

func (w *wrapped) WriteCommand(c *robot.Command) error {
	if w.acceptNaN {
		for _, v := range c.Position {
			if math.IsNaN(v) {
				return nil
			}
		}
	}
	if w.retain && len(c.Position) == w.Model().DoF() {
		w.mu.Lock()
		w.kept = c.Position
		w.mu.Unlock()
	}
	return w.Fake.WriteCommand(c)
}

func (w *wrapped) ReadState(dst *robot.State) error {
	if w.alloc {
		w.sink = make([]float64, len(dst.Position)+1)
	}
	return w.Fake.ReadState(dst)
}

func (w *wrapped) WriteTrajectory(tr *robot.Trajectory) error {
	if w.trajLax {
		return nil
	}
	return w.Fake.WriteTrajectory(tr)
}

func (w *wrapped) step(dt time.Duration) {
	w.mu.Lock()
	if w.retain && w.kept != nil {
		_ = w.Fake.WriteCommand(&robot.Command{Position: w.kept})
	}
	w.mu.Unlock()
	if w.stuck {
		dt = 0
	}
	w.Fake.Step(dt)
}

func loosened(m *robot.Model, edit func(l *robot.Limits)) *robot.Model {
	c := *m
	c.Joints = append([]robot.Joint(nil), m.Joints...)
	for i := range c.Joints {
		edit(&c.Joints[i].Limits)
	}
	return &c
}

func TestSuiteCatches(t *testing.T) {
	ur5, _, err := urdf.Shipped("ur5")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		w    func() *wrapped
		want string
	}{
		{"NaN accepted", func() *wrapped { return &wrapped{Fake: robottest.NewFake(ur5, nil), acceptNaN: true} }, "Rejects: WriteCommand with a NaN position: no error"},
		{"command retained", func() *wrapped { return &wrapped{Fake: robottest.NewFake(ur5, nil), retain: true} }, "Track: target"},
		{"robot stuck", func() *wrapped { return &wrapped{Fake: robottest.NewFake(ur5, nil), stuck: true} }, "State: stamp stayed"},
		{"too fast", func() *wrapped {
			fast := loosened(ur5, func(l *robot.Limits) { l.Velocity *= 3 })
			return &wrapped{Fake: robottest.NewFake(fast, nil), model: ur5}
		}, "faster than its velocity limit"},
		{"no clamping", func() *wrapped {
			free := loosened(ur5, func(l *robot.Limits) { l.HasPosition = false })
			return &wrapped{Fake: robottest.NewFake(free, nil), model: ur5}
		}, "Clamp: commanded beyond its upper limit"},
		{"allocating ReadState", func() *wrapped { return &wrapped{Fake: robottest.NewFake(ur5, nil), alloc: true} }, "NoAlloc: ReadState allocates"},
		{"lax trajectories", func() *wrapped { return &wrapped{Fake: robottest.NewFake(ur5, nil), trajLax: true} }, "Trajectory: WriteTrajectory with times not increasing: no error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := tc.w()
			err := robottest.Check(w, fullOptions(w.step))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Check: %v\nwant an error containing %q", err, tc.want)
			}
		})
	}
	// A driver that has a state before its first step fails the Fresh check.
	f := robottest.NewFake(ur5, nil)
	f.Step(0)
	if err := robottest.Check(f, fullOptions(f.Step)); err == nil || !strings.Contains(err.Error(), "State: before the first step") {
		t.Errorf("Check: %v", err)
	}
}

func ExampleNewFake() {
	m, _, err := urdf.Shipped("arm5")
	if err != nil {
		fmt.Println(err)
		return
	}
	f := robottest.NewFake(m, nil)
	f.Step(0) // the first state
	target := make([]float64, m.DoF())
	target[0] = 0.5 // waist: 0.5 rad at its 3.14 rad/s limit
	if err := f.WriteCommand(&robot.Command{Position: target}); err != nil {
		fmt.Println(err)
		return
	}
	st := robot.NewState(m.DoF())
	for range 3 {
		f.Step(100 * time.Millisecond)
		_ = f.ReadState(&st)
		fmt.Printf("t=%v waist %.3f rad\n", st.Stamp.Sub(time.Unix(0, 0)), st.Position[0])
	}
	// Output:
	// t=100ms waist 0.314 rad
	// t=200ms waist 0.500 rad
	// t=300ms waist 0.500 rad
}
