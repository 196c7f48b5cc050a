package calib_test

import (
	"math"
	"testing"
	"time"

	"github.com/flowact/flowact/calib"
	"github.com/flowact/flowact/robot"
	"github.com/flowact/flowact/robot/robottest"
	"github.com/flowact/flowact/robot/urdf"
	"github.com/flowact/flowact/sim"
)

// truth returns per-joint motors for a simulated robot: the nominal directions and gear ratios
// of robot.yaml, an encoder of res ticks per turn wrapping at wrap (0: none), and offsets that
// put motor zero half a counter turn from the middle of the travel (so that the wrap falls
// outside it) plus shift[i] joint units.
func truth(m *robot.Model, rc robot.Config, res, wrap int64, shift []float64) map[string]robot.Motor {
	out := make(map[string]robot.Motor, m.DoF())
	for i, j := range m.Joints {
		mo := rc.Motors[j.Name]
		mo.Resolution, mo.Wrap = res, wrap
		g := mo.GearRatio
		if g == 0 {
			g = 1
		}
		mid := (j.Limits.Lower + j.Limits.Upper) / 2
		if wrap > 0 && (j.Limits.Upper-j.Limits.Lower)*g*float64(res)/(2*math.Pi) > float64(wrap)-4 {
			mo.Wrap = 0 // the travel does not fit one counter turn: a multi-turn counter
		}
		half := 0.0
		if mo.Wrap > 0 {
			half = float64(wrap) / float64(res) * math.Pi / g // half the counter, in joint units
		}
		if mo.Direction < 0 {
			mo.Offset = mid + half
		} else {
			mo.Offset = mid - half
		}
		if shift != nil {
			mo.Offset += shift[i]
		}
		out[j.Name] = mo
	}
	return out
}

// toSet turns simulated motors into the transmissions that describe them exactly.
func toSet(t *testing.T, m *robot.Model, motors map[string]robot.Motor) *calib.Set {
	t.Helper()
	tr, err := calib.Nominal(m, motors, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := calib.NewSet(m, tr)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestWrappedSimConforms runs the driver conformance suite on the simulator speaking encoder
// ticks, wrapped by its exact calibration.
func TestWrappedSimConforms(t *testing.T) {
	for _, name := range []string{"arm5", "ur5"} {
		m, rc, err := urdf.Shipped(name)
		if err != nil {
			t.Fatal(err)
		}
		var wrap int64 = 1 << 14
		if name == "ur5" {
			wrap = 0 // a 1:101 drive turns its motor many times over the travel: a multi-turn counter
		}
		motors := truth(m, rc, 1<<14, wrap, nil)
		s, err := sim.New(m, sim.Config{Initial: rc.HomePosition(m), Motors: motors})
		if err != nil {
			t.Fatal(err)
		}
		d, err := calib.Wrap(s, toSet(t, m, motors))
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := d.(robot.TrajectoryWriter); !ok {
			t.Fatal("the wrapped simulator does not take trajectories")
		}
		t.Run(name, func(t *testing.T) {
			robottest.TestDriver(t, d, robottest.Options{Step: s.Step, ClampsPosition: true, VelocityLimited: true})
		})
	}
}

// TestWrappedReadsJointUnits checks that the wrapper's state is the simulator's true state to
// within half a tick, and that its commands move the true joints to the commanded joint values.
func TestWrappedReadsJointUnits(t *testing.T) {
	m, rc, err := urdf.Shipped("arm5")
	if err != nil {
		t.Fatal(err)
	}
	motors := truth(m, rc, 4096, 4096, []float64{0.1, -0.2, 0.05, 0, 0.3, 0.001})
	s, err := sim.New(m, sim.Config{Initial: rc.HomePosition(m), Motors: motors})
	if err != nil {
		t.Fatal(err)
	}
	set := toSet(t, m, motors)
	d, err := calib.Wrap(s, set)
	if err != nil {
		t.Fatal(err)
	}
	target := rc.HomePosition(m)
	for i, j := range m.Joints {
		target[i] = min(target[i]+0.05, (j.Limits.Lower+3*j.Limits.Upper)/4)
	}
	if err := d.WriteCommand(&robot.Command{Position: target}); err != nil {
		t.Fatal(err)
	}
	for range 300 {
		s.Step(10 * time.Millisecond)
	}
	st, truth := robot.NewState(m.DoF()), robot.NewState(m.DoF())
	if err := d.ReadState(&st); err != nil {
		t.Fatal(err)
	}
	s.TrueStateTo(&truth)
	raw := robot.NewState(m.DoF())
	if err := s.ReadState(&raw); err != nil {
		t.Fatal(err)
	}
	for i := range target {
		half := 0.5 / math.Abs(set.Transmission(i).Scale())
		if e := math.Abs(st.Position[i] - truth.Position[i]); e > half+1e-12 {
			t.Errorf("joint %d: read %v, true %v (off by %g > half a tick %g)", i, st.Position[i], truth.Position[i], e, half)
		}
		if e := math.Abs(truth.Position[i] - target[i]); e > 2*half+1e-6 {
			t.Errorf("joint %d: at %v, commanded %v", i, truth.Position[i], target[i])
		}
		if w := float64(motors[m.Joints[i].Name].Wrap); raw.Position[i] != math.Round(raw.Position[i]) || w > 0 && (raw.Position[i] < 0 || raw.Position[i] >= w) {
			t.Errorf("joint %d: the simulator reads %v, not a tick of a 4096 counter", i, raw.Position[i])
		}
	}
	// Malformed commands are refused before they reach the motors.
	if err := d.WriteCommand(&robot.Command{Position: target[:2]}); err == nil {
		t.Error("short command accepted")
	}
	bad := append([]float64(nil), target...)
	bad[0] = math.NaN()
	if err := d.WriteCommand(&robot.Command{Position: bad}); err == nil {
		t.Error("NaN command accepted")
	}
}
