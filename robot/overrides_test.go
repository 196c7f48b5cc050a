package robot_test

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/flowact/flowact/robot"
)

func ptr(v float64) *float64 { return &v }

// limited is a model with a revolute joint (±2 rad, 3 rad/s, 100 N m, soft ±1.9) and a
// continuous one with only a velocity limit.
func limited() *robot.Model {
	return &robot.Model{
		Name: "limited", Root: "base",
		Joints: []robot.Joint{
			{Name: "rev", Type: robot.Revolute, Parent: "base", Child: "a", Origin: robot.Identity, Axis: zAxis,
				Limits: robot.Limits{HasPosition: true, Lower: -2, Upper: 2, Velocity: 3, Effort: 100},
				Soft:   &robot.SoftLimits{Lower: -1.9, Upper: 1.9, KPosition: 10, KVelocity: 5}},
			{Name: "cont", Type: robot.Continuous, Parent: "a", Child: "b", Origin: robot.Identity, Axis: zAxis,
				Limits: robot.Limits{Velocity: 4}},
		},
	}
}

func TestApply(t *testing.T) {
	m := limited()
	orig := *m.Joints[0].Soft
	err := m.Apply(robot.Overrides{Joints: map[string]robot.JointOverride{
		"rev":  {Lower: ptr(-1.5), Upper: ptr(1.8), Velocity: 2, Acceleration: 10, Jerk: 100, Effort: 50},
		"cont": {Lower: ptr(-7), Upper: ptr(7), Acceleration: 20, Jerk: 200},
	}})
	if err != nil {
		t.Fatal(err)
	}
	want := robot.Limits{HasPosition: true, Lower: -1.5, Upper: 1.8, Velocity: 2, Acceleration: 10, Jerk: 100, Effort: 50}
	if got := m.Joints[0].Limits; got != want {
		t.Errorf("rev limits %+v, want %+v", got, want)
	}
	if got, want := *m.Joints[0].Soft, (robot.SoftLimits{Lower: -1.5, Upper: 1.8, KPosition: 10, KVelocity: 5}); got != want {
		t.Errorf("rev soft limits %+v, want %+v (clipped into the new band)", got, want)
	}
	want = robot.Limits{HasPosition: true, Lower: -7, Upper: 7, Velocity: 4, Acceleration: 20, Jerk: 200}
	if got := m.Joints[1].Limits; got != want {
		t.Errorf("cont limits %+v, want %+v", got, want)
	}
	if err := m.Validate(); err != nil {
		t.Error(err)
	}
	// The soft limits were copied, not changed in place (models may share them).
	if orig.Lower != -1.9 {
		t.Error("Apply changed the caller's SoftLimits")
	}
	// A second, tighter Apply still works; a looser acceleration does not.
	if err := m.Apply(robot.Overrides{Joints: map[string]robot.JointOverride{"rev": {Acceleration: 5}}}); err != nil {
		t.Error(err)
	}
	if err := m.Apply(robot.Overrides{Joints: map[string]robot.JointOverride{"rev": {Acceleration: 6}}}); !errors.Is(err, robot.ErrLoosen) {
		t.Errorf("looser acceleration: %v, want ErrLoosen", err)
	}
}

func TestApplyErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		o     map[string]robot.JointOverride
		field string
		is    error
		want  string
	}{
		{"unknown joint", map[string]robot.JointOverride{"nope": {Velocity: 1}}, "", robot.ErrUnknownJoint, `joint "nope": not an actuated joint`},
		{"looser lower", map[string]robot.JointOverride{"rev": {Lower: ptr(-2.5)}}, "lower", robot.ErrLoosen, `joint "rev": lower: would loosen the model's limit (-2.5 below the model's -2)`},
		{"looser upper", map[string]robot.JointOverride{"rev": {Upper: ptr(2.1)}}, "upper", robot.ErrLoosen, "2.1 above the model's 2"},
		{"crossed", map[string]robot.JointOverride{"rev": {Lower: ptr(1), Upper: ptr(0.5)}}, "lower", robot.ErrBadLimit, "1 above upper 0.5"},
		{"NaN lower", map[string]robot.JointOverride{"rev": {Lower: ptr(math.NaN())}}, "lower", robot.ErrBadLimit, "NaN"},
		{"infinite upper", map[string]robot.JointOverride{"rev": {Upper: ptr(math.Inf(1))}}, "upper", robot.ErrBadLimit, "+Inf"},
		{"half band on continuous", map[string]robot.JointOverride{"cont": {Upper: ptr(1)}}, "upper", robot.ErrBadLimit, "needs both lower and upper"},
		{"looser velocity", map[string]robot.JointOverride{"rev": {Velocity: 3.5}}, "velocity", robot.ErrLoosen, "3.5 above the model's 3"},
		{"looser effort", map[string]robot.JointOverride{"rev": {Effort: 101}}, "effort", robot.ErrLoosen, "101 above"},
		{"negative acceleration", map[string]robot.JointOverride{"rev": {Acceleration: -1}}, "acceleration", robot.ErrBadLimit, "must be positive"},
		{"NaN jerk", map[string]robot.JointOverride{"cont": {Jerk: math.NaN()}}, "jerk", robot.ErrBadLimit, "NaN"},
		{"infinite velocity", map[string]robot.JointOverride{"cont": {Velocity: math.Inf(1)}}, "velocity", robot.ErrBadLimit, "+Inf"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := limited()
			before := m.Joints[0].Limits
			// A valid override of "rev" (applied before "nope" fails) must not stick either.
			o := robot.Overrides{Joints: map[string]robot.JointOverride{}}
			for k, v := range tc.o {
				o.Joints[k] = v
			}
			if _, ok := o.Joints["rev"]; !ok {
				o.Joints["rev"] = robot.JointOverride{Velocity: 1}
			}
			err := m.Apply(o)
			var oe *robot.OverrideError
			if !errors.As(err, &oe) || !errors.Is(err, tc.is) || oe.Field != tc.field || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v (field %q), want %v on field %q containing %q", err, fieldOf(oe), tc.is, tc.field, tc.want)
			}
			if m.Joints[0].Limits != before {
				t.Errorf("a failed Apply changed the model: %+v", m.Joints[0].Limits)
			}
		})
	}
}

func fieldOf(e *robot.OverrideError) string {
	if e == nil {
		return ""
	}
	return e.Field
}

func TestConfigValidate(t *testing.T) {
	good := func() robot.Config {
		return robot.Config{
			EELink: "tool",
			Topics: robot.Topics{JointStates: "/arm/joint_states", Command: "cmd", Trajectory: "~traj"},
			Limits: robot.Overrides{Joints: map[string]robot.JointOverride{"rev": {Acceleration: 1, Jerk: 2}}},
			Motors: map[string]robot.Motor{"rev": {ID: 1, Direction: -1, GearRatio: 100}, "cont": {ID: 2}},
		}
	}
	c := good()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		edit func(c *robot.Config)
		want string
	}{
		{"no ee_link", func(c *robot.Config) { c.EELink = "" }, "ee_link: missing"},
		{"bad topic", func(c *robot.Config) { c.Topics.Command = "/flowact//cmd" }, "topics.command"},
		{"topic with space", func(c *robot.Config) { c.Topics.JointStates = "/joint states" }, "topics.joint_states"},
		{"private and global", func(c *robot.Config) { c.Topics.Trajectory = "~/traj" }, "topics.trajectory"},
		{"topic digit first", func(c *robot.Config) { c.Topics.Trajectory = "/1traj" }, "topics.trajectory"},
		{"negative jerk", func(c *robot.Config) { c.Limits.Joints["rev"] = robot.JointOverride{Jerk: -1} }, "limits.joints.rev.jerk"},
		{"NaN lower", func(c *robot.Config) { c.Limits.Joints["rev"] = robot.JointOverride{Lower: ptr(math.NaN())} }, "limits.joints.rev.lower"},
		{"duplicate motor id", func(c *robot.Config) { c.Motors["cont"] = robot.Motor{ID: 1} }, `motors.rev.id: 1: also the id of joint "cont"`},
		{"negative id", func(c *robot.Config) { c.Motors["cont"] = robot.Motor{ID: -3} }, "motors.cont.id"},
		{"direction 2", func(c *robot.Config) { c.Motors["cont"] = robot.Motor{ID: 2, Direction: 2} }, "motors.cont.direction"},
		{"negative gear", func(c *robot.Config) { c.Motors["cont"] = robot.Motor{ID: 2, GearRatio: -5} }, "motors.cont.gear_ratio"},
		{"NaN offset", func(c *robot.Config) { c.Motors["cont"] = robot.Motor{ID: 2, Offset: math.NaN()} }, "motors.cont.offset"},
		{"negative resolution", func(c *robot.Config) { c.Motors["cont"] = robot.Motor{ID: 2, Resolution: -1} }, "motors.cont.resolution"},
		{"wrap without resolution", func(c *robot.Config) { c.Motors["cont"] = robot.Motor{ID: 2, Wrap: 4096} }, "motors.cont.wrap"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := good()
			tc.edit(&c)
			err := c.Validate()
			if !errors.Is(err, robot.ErrConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want ErrConfig containing %q", err, tc.want)
			}
		})
	}
}

func TestConfigCheckModel(t *testing.T) {
	m := limited()
	for _, tc := range []struct {
		name string
		c    robot.Config
		want string // "" for no error
	}{
		{"ok", robot.Config{EELink: "b", Motors: map[string]robot.Motor{"rev": {ID: 1}, "cont": {ID: 2}}}, ""},
		{"no motors is ok", robot.Config{EELink: "a"}, ""},
		{"unknown ee_link", robot.Config{EELink: "hand"}, `ee_link: robot: model "limited" has no link "hand"`},
		{"unknown motor joint", robot.Config{EELink: "b", Motors: map[string]robot.Motor{"rev": {ID: 1}, "cont": {ID: 2}, "x": {ID: 3}}}, "motors.x: not an actuated joint"},
		{"missing motor", robot.Config{EELink: "b", Motors: map[string]robot.Motor{"rev": {ID: 1}}}, `joint "cont" has no motor`},
		{"home ok", robot.Config{EELink: "b", Home: map[string]float64{"rev": -2, "cont": 100}}, ""},
		{"home unknown joint", robot.Config{EELink: "b", Home: map[string]float64{"x": 0}}, "home.x: not an actuated joint"},
		{"home outside limits", robot.Config{EELink: "b", Home: map[string]float64{"rev": 2.5}}, "home.rev: 2.5 outside the position limits [-2, 2]"},
		{"home NaN", robot.Config{EELink: "b", Home: map[string]float64{"cont": math.NaN()}}, "home.cont: NaN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.c.CheckModel(m)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func TestHomePosition(t *testing.T) {
	m := limited()
	m.Joints[0].Limits.Lower, m.Joints[0].Limits.Upper = 0.5, 2 // 0 is outside: home clamps to 0.5
	c := robot.Config{Home: map[string]float64{"cont": 3}}
	if got := c.HomePosition(m); got[0] != 0.5 || got[1] != 3 {
		t.Errorf("home %v, want [0.5 3]", got)
	}
}

func TestConfigDefaultsAndMotor(t *testing.T) {
	var c robot.Config
	c.Topics.Command = "/arm/cmd"
	c.EnsureDefaults()
	if c.Topics != (robot.Topics{JointStates: "/joint_states", Command: "/arm/cmd", Trajectory: "/flowact/trajectory"}) {
		t.Errorf("topics %+v", c.Topics)
	}
	for _, mo := range []robot.Motor{{}, {Direction: -1, GearRatio: 100, Offset: 0.3}, {Direction: 1, GearRatio: 0.5, Offset: -1}} {
		for _, q := range []float64{-2, 0, 0.7} {
			if got := mo.ToJoint(mo.ToMotor(q)); math.Abs(got-q) > 1e-12 {
				t.Errorf("%+v: ToJoint(ToMotor(%g)) = %g", mo, q, got)
			}
		}
	}
	// motor = Direction · GearRatio · (joint - Offset).
	if got := (robot.Motor{Direction: -1, GearRatio: 100, Offset: 0.3}).ToMotor(0.5); math.Abs(got+20) > 1e-12 {
		t.Errorf("ToMotor(0.5) = %g, want -20", got)
	}
}

func ExampleModel_Apply() {
	m := limited() // joint "rev": ±2 rad, 3 rad/s
	err := m.Apply(robot.Overrides{Joints: map[string]robot.JointOverride{
		"rev": {Upper: ptr(1.5), Velocity: 2, Acceleration: 10, Jerk: 100},
	}})
	fmt.Println(err, m.Joints[0].Limits)
	err = m.Apply(robot.Overrides{Joints: map[string]robot.JointOverride{"rev": {Velocity: 2.5}}})
	fmt.Println(err)
	// Output:
	// <nil> {true -2 1.5 2 10 100 100}
	// robot: limits of joint "rev": velocity: would loosen the model's limit (2.5 above the model's 2)
}
