package calib_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/flowact/flowact/calib"
	"github.com/flowact/flowact/robot"
	"github.com/flowact/flowact/robot/urdf"
	"github.com/flowact/flowact/sim"
)

// hand is the operator of a simulated calibration: it moves the joints in joint units (the
// simulator's joint face, as a hand would) and lets 3 s of simulated time pass.
func hand(s *sim.Sim) calib.Operator {
	return calib.OperatorFunc(func(ctx context.Context, _ string, q []float64) error {
		if err := s.WriteJointCommand(&robot.Command{Position: q}); err != nil {
			return err
		}
		return s.Clock().SleepUntil(ctx, s.Now().Add(3*time.Second))
	})
}

// motorsCase is a robot with nominal motors and a simulated truth that differs from them.
type motorsCase struct {
	m       *robot.Model
	nominal map[string]robot.Motor
	truth   map[string]robot.Motor
}

func arm5Case(t *testing.T, shift []float64) motorsCase {
	t.Helper()
	m, rc, err := urdf.Shipped("arm5")
	if err != nil {
		t.Fatal(err)
	}
	return motorsCase{m, truth(m, rc, 4096, 4096, nil), truth(m, rc, 4096, 4096, shift)}
}

func (c motorsCase) run(t *testing.T, cfg sim.Config) (*calib.File, []calib.JointReport, error) {
	t.Helper()
	cfg.Motors = c.truth
	s, err := sim.New(c.m, cfg)
	if err != nil {
		t.Fatal(err)
	}
	nom, err := calib.Nominal(c.m, c.nominal, nil)
	if err != nil {
		t.Fatal(err)
	}
	return calib.CalibrateMotors(context.Background(), s, s.Clock(), hand(s), nom, calib.MotorsConfig{})
}

// TestCalibrateMotors recovers, in the simulator, offsets within one encoder tick and directions
// exactly, for a servo arm with single-turn counters and a flipped joint (arm5) and for a
// harmonic-drive arm with multi-turn counters (ur5).
func TestCalibrateMotors(t *testing.T) {
	arm5 := arm5Case(t, []float64{0.31, -0.42, 0.2, -0.05, 0.7, 0.004})
	m, rc, err := urdf.Shipped("ur5")
	if err != nil {
		t.Fatal(err)
	}
	ur5 := motorsCase{m, truth(m, rc, 1<<17, 0, nil), truth(m, rc, 1<<17, 0, []float64{0.004, -0.0021, 0.001, 0.0, 0.0033, -0.0075})}
	for _, tc := range []struct {
		name string
		c    motorsCase
		cfg  sim.Config
	}{
		{"arm5", arm5, sim.Config{}},
		{"arm5 noisy and late", arm5, sim.Config{Faults: sim.Faults{PositionNoise: 2e-5, StateLatency: 30 * time.Millisecond, CommandDelay: 20 * time.Millisecond, Seed: 3}}},
		{"ur5", ur5, sim.Config{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, rep, err := tc.c.run(t, tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if f.Version != calib.FileVersion || f.Robot != tc.c.m.Name {
				t.Errorf("file header %d %q", f.Version, f.Robot)
			}
			set, err := calib.NewSet(tc.c.m, f.Joints)
			if err != nil {
				t.Fatal(err)
			}
			worst := 0.0
			defer func() { t.Logf("worst offset error %.3f ticks", worst) }()
			for i, j := range tc.c.m.Joints {
				got, want := f.Joints[j.Name], tc.c.truth[j.Name]
				tick := 1 / math.Abs(set.Transmission(i).Scale())
				worst = max(worst, math.Abs(got.Offset-want.Offset)/tick)
				if e := math.Abs(got.Offset - want.Offset); e > tick {
					t.Errorf("%s: offset %.8g, true %.8g: off by %.3g ticks", j.Name, got.Offset, want.Offset, e/tick)
				}
				wantDir := 1
				if want.Direction < 0 {
					wantDir = -1
				}
				if got.Direction() != wantDir || rep[i].Direction != wantDir {
					t.Errorf("%s: direction %d (report %d), true %d", j.Name, got.Direction(), rep[i].Direction, wantDir)
				}
				if _, ok := f.Ranges[j.Name]; !ok && j.Limits.HasPosition {
					t.Errorf("%s: no range recorded", j.Name)
				}
			}
			// The file reads back.
			data, err := f.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := calib.ParseFile("motors.yaml", data); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestCalibrateMotorsRefuses: a flipped motor, an offset out of range, a counter that wraps
// inside the travel, and a wrong reduction are refused, naming the joint and field.
func TestCalibrateMotorsRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(c *motorsCase)
		want []string
	}{
		{"flipped shoulder", func(c *motorsCase) {
			mo := c.truth["shoulder"]
			mo.Direction = 1
			mo.Offset -= 2 * math.Pi // keep its counter's wrap outside the travel
			c.truth["shoulder"] = mo
		}, []string{`joint "shoulder": direction: measured +1, the model says -1`}},
		{"offset out of range", func(c *motorsCase) {
			mo := c.truth["elbow"]
			mo.Offset += 2.0
			c.truth["elbow"] = mo
		}, []string{`joint "elbow": offset: measured`, "mounted off"}},
		{"wrap inside the travel", func(c *motorsCase) {
			mo := c.truth["elbow"]
			mo.Offset += 1.4
			c.truth["elbow"] = mo
		}, []string{`joint "elbow": offset:`, "inside the travel"}},
		{"reduction", func(c *motorsCase) {
			mo := c.truth["wrist_pitch"]
			mo.GearRatio = 1.5
			c.truth["wrist_pitch"] = mo
		}, []string{`joint "wrist_pitch": reduction: measured`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := arm5Case(t, nil)
			tc.edit(&c)
			f, _, err := c.run(t, sim.Config{})
			if err == nil || f != nil {
				t.Fatalf("accepted: %+v", f)
			}
			if !errors.Is(err, calib.ErrRefused) {
				t.Errorf("error %v does not wrap ErrRefused", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}
