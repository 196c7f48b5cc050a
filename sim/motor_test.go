package sim_test

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/flowact/flowact/robot"
	"github.com/flowact/flowact/robot/urdf"
	"github.com/flowact/flowact/sim"
)

// TestMotorFace checks that a simulator with Motors reads and takes encoder ticks: a tick read
// is round(direction·gear·res/2π·(q - offset)) mod wrap of the true position, and a commanded
// tick moves the true joint to the joint value it stands for.
func TestMotorFace(t *testing.T) {
	m, rc, err := urdf.Shipped("arm5")
	if err != nil {
		t.Fatal(err)
	}
	motors := map[string]robot.Motor{}
	for name, mo := range rc.Motors {
		mo.Resolution, mo.Wrap = 4096, 4096
		if name == "wrist_roll" || name == "waist" {
			mo.Wrap = 0
		}
		mo.Offset = -2.9
		if mo.Direction < 0 {
			mo.Offset = 2.9
		}
		if name == "finger" {
			mo.Offset = 0.01
		}
		motors[name] = mo
	}
	home := rc.HomePosition(m)
	s, err := sim.New(m, sim.Config{Initial: home, Motors: motors})
	if err != nil {
		t.Fatal(err)
	}
	scale := func(i int) float64 {
		mo := motors[m.Joints[i].Name]
		g := mo.GearRatio
		if mo.Direction < 0 {
			g = -g
		}
		return g * 4096 / (2 * math.Pi)
	}
	s.Step(10 * time.Millisecond)
	st, tr := robot.NewState(m.DoF()), robot.NewState(m.DoF())
	if err := s.ReadState(&st); err != nil {
		t.Fatal(err)
	}
	s.TrueStateTo(&tr)
	for i, j := range m.Joints {
		mo := motors[j.Name]
		want := math.Round(scale(i) * (tr.Position[i] - mo.Offset))
		if mo.Wrap > 0 {
			want = math.Mod(want, 4096)
			if want < 0 {
				want += 4096
			}
		}
		if st.Position[i] != want {
			t.Errorf("%s: reads %v ticks at %v rad, want %v", j.Name, st.Position[i], tr.Position[i], want)
		}
	}
	// Command 100 ticks up on every joint: the shoulder (direction -1) moves down.
	cmd := append([]float64(nil), st.Position...)
	for i := range cmd {
		cmd[i] += 100
	}
	if err := s.WriteCommand(&robot.Command{Position: cmd}); err != nil {
		t.Fatal(err)
	}
	for range 200 {
		s.Step(10 * time.Millisecond)
	}
	s.TrueStateTo(&tr)
	for i, j := range m.Joints {
		want := min(max(home[i]+100/scale(i), j.Limits.Lower), j.Limits.Upper)
		if math.Abs(tr.Position[i]-want) > 0.6/math.Abs(scale(i)) {
			t.Errorf("%s: at %v after +100 ticks, want %v", j.Name, tr.Position[i], want)
		}
	}
	// WriteJointCommand stays in joint units.
	if err := s.WriteJointCommand(&robot.Command{Position: home}); err != nil {
		t.Fatal(err)
	}
	for range 200 {
		s.Step(10 * time.Millisecond)
	}
	s.TrueStateTo(&tr)
	for i := range home {
		if math.Abs(tr.Position[i]-home[i]) > 1e-6 {
			t.Errorf("joint %d: at %v after a joint command to %v", i, tr.Position[i], home[i])
		}
	}

	for _, tc := range []struct {
		edit func(map[string]robot.Motor)
		want string
	}{
		{func(mm map[string]robot.Motor) { delete(mm, "elbow") }, `joint "elbow" has no motor`},
		{func(mm map[string]robot.Motor) { mm["thumb"] = robot.Motor{} }, "motors.thumb is not a joint"},
		{func(mm map[string]robot.Motor) { mm["elbow"] = robot.Motor{Wrap: 5} }, "motors.elbow"},
		{func(mm map[string]robot.Motor) { mm["elbow"] = robot.Motor{Offset: math.NaN()} }, "motors.elbow.offset"},
	} {
		mm := map[string]robot.Motor{}
		for k, v := range motors {
			mm[k] = v
		}
		tc.edit(mm)
		if _, err := sim.New(m, sim.Config{Motors: mm}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %v, want %q", err, tc.want)
		}
	}
}

// TestCommandJitter checks that jittered command delays lie in [delay, delay+jitter), keep the
// commands in order, vary, and repeat for the same seed.
func TestCommandJitter(t *testing.T) {
	m, rc, err := urdf.Shipped("ur5")
	if err != nil {
		t.Fatal(err)
	}
	const delay, jitter, dt = 20 * time.Millisecond, 15 * time.Millisecond, time.Millisecond
	run := func(seed uint64) []time.Duration {
		s, err := sim.New(m, sim.Config{Initial: rc.HomePosition(m), Lag: sim.Lag{TimeConstant: time.Microsecond},
			Faults: sim.Faults{CommandDelay: delay, CommandJitter: jitter, Seed: seed}})
		if err != nil {
			t.Fatal(err)
		}
		var arrivals []time.Duration
		q := rc.HomePosition(m)
		ref := make([]float64, m.DoF())
		var sent []time.Duration
		last := q[0]
		for k := range 2000 {
			if k%10 == 0 && k < 1800 {
				q[0] = 0.001 * float64(k/10+1) // a new value every 10 ms
				if err := s.WriteCommand(&robot.Command{Position: q}); err != nil {
					t.Fatal(err)
				}
				sent = append(sent, s.Elapsed())
			}
			s.Step(dt)
			s.ReferenceTo(ref)
			if ref[0] != last {
				n := int(math.Round(ref[0]/0.001)) - 1
				if n < len(arrivals) {
					t.Fatalf("command %d arrived after command %d (out of order)", n, len(arrivals)-1)
				}
				for len(arrivals) <= n { // commands overtaken in the same step arrived with it
					arrivals = append(arrivals, s.Elapsed()-sent[len(arrivals)])
				}
				last = ref[0]
			}
		}
		return arrivals
	}
	a, b, c := run(7), run(7), run(8)
	if len(a) < 150 {
		t.Fatalf("%d arrivals", len(a))
	}
	lo, hi := a[0], a[0]
	for i, d := range a {
		if d < delay || d >= delay+jitter+dt {
			t.Errorf("command %d delayed %v, want [%v, %v)", i, d, delay, delay+jitter+dt)
		}
		lo, hi = min(lo, d), max(hi, d)
		if b[i] != d {
			t.Fatalf("same seed, command %d: %v then %v", i, d, b[i])
		}
	}
	if hi-lo < jitter/2 {
		t.Errorf("delays span only [%v, %v]", lo, hi)
	}
	same := 0
	for i := range min(len(a), len(c)) {
		if a[i] == c[i] {
			same++
		}
	}
	if same == min(len(a), len(c)) {
		t.Error("seeds 7 and 8 give the same delays")
	}
}
