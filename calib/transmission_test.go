package calib

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/flowact/flowact/robot"
)

// oneJoint is a model with one joint of the given type and travel.
func oneJoint(typ robot.JointType, lo, hi float64) *robot.Model {
	j := robot.Joint{Name: "j", Type: typ, Parent: "a", Child: "b", Origin: robot.Identity, Axis: [3]float64{0, 0, 1},
		Limits: robot.Limits{HasPosition: typ != robot.Continuous, Lower: lo, Upper: hi, Velocity: 1}}
	if typ == robot.Continuous {
		j.Limits.Lower, j.Limits.Upper = 0, 0
	}
	return &robot.Model{Name: "one", Root: "a", Joints: []robot.Joint{j}}
}

// TestRoundTrip checks joint -> motor -> joint to within half a tick over the whole travel, and
// motor -> joint -> motor exactly for every tick the travel reads, for flips, reductions,
// encoders with and without a wrap, and continuous motor units.
func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name   string
		lo, hi float64
		tr     Transmission
	}{
		{"servo 4096 single-turn", -2.6, 2.6, Transmission{Reduction: 1, Offset: -math.Pi, Resolution: 4096, Wrap: 4096}},
		{"servo flipped", -1.8849, 1.9897, Transmission{Reduction: -1, Offset: 3.0, Resolution: 4096, Wrap: 4096}},
		{"offset far, window k=3", -1, 1, Transmission{Reduction: 1, Offset: -20, Resolution: 4096, Wrap: 4096}},
		{"harmonic drive multi-turn", -6.2, 6.2, Transmission{Reduction: 101, Offset: 0.3, Resolution: 1 << 17}},
		{"harmonic drive flipped multi-turn", -6.2, 6.2, Transmission{Reduction: -101, Offset: -0.3, Resolution: 1 << 17}},
		{"geared servo, wrap 4 turns", -1, 1.2, Transmission{Reduction: -3.5, Offset: 2.0, Resolution: 1024, Wrap: 4096}},
		{"prismatic rack", 0.015, 0.037, Transmission{Reduction: 80, Offset: 0.015, Resolution: 4096, Wrap: 4096}},
		{"motor rad, no encoder", -3, 3, Transmission{Reduction: -7.25, Offset: 0.125}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			typ := robot.Revolute
			if strings.HasPrefix(tc.name, "prismatic") {
				typ = robot.Prismatic
			}
			m := oneJoint(typ, tc.lo, tc.hi)
			s, err := NewSet(m, map[string]Transmission{"j": tc.tr})
			if err != nil {
				t.Fatal(err)
			}
			half := 0.5 / math.Abs(tc.tr.Scale())
			if tc.tr.Resolution == 0 {
				half = 0
			}
			q, u, back := make([]float64, 1), make([]float64, 1), make([]float64, 1)
			const n = 20000
			worst := 0.0
			for k := 0; k <= n; k++ {
				q[0] = tc.lo + (tc.hi-tc.lo)*float64(k)/n
				s.PositionToMotor(u, q)
				if tc.tr.Resolution > 0 && u[0] != math.Round(u[0]) {
					t.Fatalf("q %v: motor %v is not a whole tick", q[0], u[0])
				}
				if tc.tr.Wrap > 0 && !(u[0] >= 0 && u[0] < float64(tc.tr.Wrap)) {
					t.Fatalf("q %v: tick %v outside [0, %d)", q[0], u[0], tc.tr.Wrap)
				}
				s.PositionToJoint(back, u)
				e := math.Abs(back[0] - q[0])
				worst = max(worst, e)
				if e > half+1e-12*max(1, math.Abs(q[0])) {
					t.Fatalf("q %v -> motor %v -> %v: error %g > half a tick %g", q[0], u[0], back[0], e, half)
				}
			}
			if tc.tr.Resolution == 0 {
				return
			}
			if worst < half/2 {
				t.Errorf("worst error %g, want near half a tick %g (is the encoder quantizing?)", worst, half)
			}
			// Every tick of the travel maps back to itself.
			q[0] = tc.lo
			s.PositionToMotor(u, q)
			a := u[0]
			q[0] = tc.hi
			s.PositionToMotor(u, q)
			b := u[0]
			first, last := a, b
			if w := float64(tc.tr.Wrap); w > 0 {
				// Walk in unwrapped ticks from the lower end, in the direction of the travel.
				first = 0
				last = math.Abs(tc.tr.Scale()) * (tc.hi - tc.lo)
			} else if first > last {
				first, last = last, first
			}
			steps := 0
			for x := first; x <= last && steps < 300000; x, steps = x+1, steps+1 {
				tick := x
				if w := float64(tc.tr.Wrap); w > 0 {
					tick = floorMod(a+float64(tc.tr.Direction())*x, w)
				}
				u[0] = tick
				s.PositionToJoint(back, u)
				s.PositionToMotor(q, back)
				if q[0] != tick {
					t.Fatalf("tick %v -> joint %v -> tick %v", tick, back[0], q[0])
				}
			}
			if steps < 10 {
				t.Fatalf("only %d ticks walked", steps)
			}
		})
	}
}

func TestVelocityEffortInverse(t *testing.T) {
	m := oneJoint(robot.Revolute, -1, 1)
	s, err := NewSet(m, map[string]Transmission{"j": {Reduction: -50, Resolution: 4096}})
	if err != nil {
		t.Fatal(err)
	}
	v, mv, back := []float64{0.37}, make([]float64, 1), make([]float64, 1)
	s.VelocityToMotor(mv, v)
	if want := -50 * 4096 / (2 * math.Pi) * 0.37; math.Abs(mv[0]-want) > 1e-9 {
		t.Errorf("velocity %v ticks/s, want %v", mv[0], want)
	}
	s.VelocityToJoint(back, mv)
	if math.Abs(back[0]-v[0]) > 1e-15 {
		t.Errorf("velocity round trip %v, want %v", back[0], v[0])
	}
	e := []float64{12}
	s.EffortToMotor(mv, e)
	if mv[0] != -12.0/50 {
		t.Errorf("motor effort %v, want %v", mv[0], -12.0/50)
	}
	s.EffortToJoint(back, mv)
	if math.Abs(back[0]-12) > 1e-12 {
		t.Errorf("effort round trip %v", back[0])
	}
}

// TestWrapRule checks where the counter may wrap.
func TestWrapRule(t *testing.T) {
	servo := func(off float64) Transmission {
		return Transmission{Reduction: 1, Offset: off, Resolution: 4096, Wrap: 4096}
	}
	tick := 2 * math.Pi / 4096
	for _, tc := range []struct {
		name   string
		typ    robot.JointType
		lo, hi float64
		tr     Transmission
		want   string // "" for accepted
	}{
		{"wrap below the travel", robot.Revolute, -1, 1, servo(-math.Pi), ""},
		{"wrap just below the lower end", robot.Revolute, -1, 1, servo(-1), ""},
		{"wrap a tick inside the lower end", robot.Revolute, -1, 1, servo(-1 + tick), `joint "j": offset: `},
		{"wrap in the middle", robot.Revolute, -1, 1, servo(0), "inside the travel [-1, 1]"},
		{"wrap at the upper end", robot.Revolute, -1, 1, servo(1), "inside the travel"},
		{"wrap just above the upper end", robot.Revolute, -1, 1, servo(1 + 1.5*tick), ""},
		{"travel longer than the counter", robot.Revolute, -3.2, 3.2, servo(-math.Pi), "more than the counter's 4096"},
		{"flipped, wrap outside", robot.Revolute, -1, 1, Transmission{Reduction: -1, Offset: 2, Resolution: 4096, Wrap: 4096}, ""},
		{"flipped, wrap inside", robot.Revolute, -1, 1, Transmission{Reduction: -1, Offset: 0.5, Resolution: 4096, Wrap: 4096}, "inside the travel"},
		{"continuous with a wrap", robot.Continuous, 0, 0, servo(0), "no bounded travel"},
		{"continuous multi-turn", robot.Continuous, 0, 0, Transmission{Reduction: 1, Resolution: 4096}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewSet(oneJoint(tc.typ, tc.lo, tc.hi), map[string]Transmission{"j": tc.tr})
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && err == nil:
				t.Fatalf("accepted, want an error with %q", tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Fatalf("error %q does not say %q", err, tc.want)
			case err != nil && !errors.Is(err, ErrTransmission):
				t.Fatalf("error %v does not wrap ErrTransmission", err)
			}
		})
	}
	// Near the top of the counter: the wrap 10 ticks above the upper end. The travel reads
	// ticks up to 4086, ticks just past it decode above the travel, and tick 0 (just past the
	// wrap) decodes a whole turn below: the window holds the travel, not the ticks around it.
	off := 1 + 10*tick - 2*math.Pi
	s, err := NewSet(oneJoint(robot.Revolute, -1, 1), map[string]Transmission{"j": servo(off)})
	if err != nil {
		t.Fatal(err)
	}
	u, back := make([]float64, 1), make([]float64, 1)
	s.PositionToMotor(u, []float64{1})
	if u[0] != 4086 {
		t.Errorf("upper end reads tick %v, want 4086", u[0])
	}
	for _, c := range []struct{ tick, q float64 }{{4095, 1 + 9*tick}, {0, off}} {
		s.PositionToJoint(back, []float64{c.tick})
		if math.Abs(back[0]-c.q) > 1e-9 {
			t.Errorf("tick %v decodes to %v, want %v", c.tick, back[0], c.q)
		}
	}
}

func TestCheckRefuses(t *testing.T) {
	for _, tc := range []struct {
		tr    Transmission
		field string
	}{
		{Transmission{}, "reduction"},
		{Transmission{Reduction: math.NaN()}, "reduction"},
		{Transmission{Reduction: math.Inf(1)}, "reduction"},
		{Transmission{Reduction: 1e9}, "reduction"},
		{Transmission{Reduction: 1, Offset: math.NaN()}, "offset"},
		{Transmission{Reduction: 1, Resolution: -1}, "resolution"},
		{Transmission{Reduction: 1, Resolution: 1 << 41}, "resolution"},
		{Transmission{Reduction: 1, Wrap: 4096}, "wrap"},
		{Transmission{Reduction: 1, Resolution: 4096, Wrap: -1}, "wrap"},
		{Transmission{ID: -2, Reduction: 1}, "id"},
	} {
		err := tc.tr.Check("elbow")
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Joint != "elbow" || fe.Field != tc.field {
			t.Errorf("%+v: error %v, want one about elbow's %s", tc.tr, err, tc.field)
		}
	}
}

func TestNewSetRefuses(t *testing.T) {
	m := &robot.Model{Name: "two", Root: "a", Joints: []robot.Joint{
		{Name: "j1", Type: robot.Revolute, Parent: "a", Child: "b", Origin: robot.Identity, Axis: [3]float64{0, 0, 1}, Limits: robot.Limits{HasPosition: true, Lower: -1, Upper: 1, Velocity: 1}},
		{Name: "j2", Type: robot.Revolute, Parent: "b", Child: "c", Origin: robot.Identity, Axis: [3]float64{0, 0, 1}, Limits: robot.Limits{HasPosition: true, Lower: -1, Upper: 1, Velocity: 1}},
	}}
	ok := Transmission{Reduction: 1}
	for _, tc := range []struct {
		tr   map[string]Transmission
		want string
	}{
		{map[string]Transmission{"j1": ok}, `joint "j2": has no transmission`},
		{map[string]Transmission{"j1": ok, "j2": ok, "j3": ok}, `joint "j3": not an actuated joint`},
		{map[string]Transmission{"j1": ok, "j2": {ID: 0, Reduction: 2}}, `joint "j2": id: 0: also the id of joint "j1"`},
	} {
		if _, err := NewSet(m, tc.tr); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %v, want %q", err, tc.want)
		}
	}
}

func TestSetAllocatesNothing(t *testing.T) {
	s, err := NewSet(oneJoint(robot.Revolute, -1, 1), map[string]Transmission{"j": {Reduction: -3, Offset: 1.04, Resolution: 4096, Wrap: 4096}})
	if err != nil {
		t.Fatal(err)
	}
	a, b := []float64{0.3}, make([]float64, 1)
	if n := testing.AllocsPerRun(100, func() {
		s.PositionToMotor(b, a)
		s.PositionToJoint(a, b)
		s.VelocityToMotor(b, a)
		s.VelocityToJoint(a, b)
		s.EffortToMotor(b, a)
		s.EffortToJoint(a, b)
	}); n != 0 {
		t.Errorf("%v allocations per conversion round", n)
	}
}
