package robot

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
)

// Config is a robot's robot.yaml: what flowact needs beside the URDF. robot/urdf.LoadConfig reads
// both from a directory, applies Limits to the model and checks the result with CheckModel.
// The zero value of every field is documented; call EnsureDefaults to fill them in.
type Config struct {
	// URDF is the URDF file, relative to the directory of robot.yaml. "" means "<dir>.urdf",
	// where <dir> is the base name of that directory.
	URDF string `yaml:"urdf"`
	// EELink is the end-effector link: the tip of the chain that tasks and the simulator use.
	// Required.
	EELink string `yaml:"ee_link"`
	// Topics are the ROS topic names of the robot's controllers.
	Topics Topics `yaml:"topics"`
	// Limits tighten the URDF's limits; acceleration and jerk limits come only from here.
	Limits Overrides `yaml:"limits"`
	// Motors maps each actuated joint to its motor: the nominal (design) transmissions that
	// package calib starts from when no calibration file is given, and that `flowact calib
	// motors` checks a measured calibration against. A joint whose URDF has a <transmission> must
	// not be listed here too (one source per joint). Empty means the robot speaks joint units
	// (or the URDF's transmissions say otherwise); when given it must cover every actuated joint.
	Motors map[string]Motor `yaml:"motors"`
	// Home is the joint configuration (rad or m, by joint name) where the simulator and the demo
	// start the robot and where it parks. Joints not listed are at 0, or at the limit nearest to 0
	// when 0 is outside their position limits.
	Home map[string]float64 `yaml:"home"`
}

// Topics are ROS graph names (global "/a/b", relative "a/b" or private "~a").
type Topics struct {
	JointStates string `yaml:"joint_states"` // sensor_msgs/JointState in; "" means "/joint_states"
	Command     string `yaml:"command"`      // std_msgs/Float64MultiArray out; "" means "/flowact/command"
	Trajectory  string `yaml:"trajectory"`   // trajectory_msgs/JointTrajectory out; "" means "/flowact/trajectory"
}

// Default topic names (DESIGN.md, "Interfaces to the world").
const (
	DefaultJointStatesTopic = "/joint_states"
	DefaultCommandTopic     = "/flowact/command"
	DefaultTrajectoryTopic  = "/flowact/trajectory"
)

// Motor maps one joint to its motor. The relation, which package calib inverts and refines, is
//
//	motor = Direction · GearRatio · (joint - Offset)
//	joint = Offset + Direction · motor / GearRatio
//
// in the joint's units (rad or m) and the motor's (rad of the motor shaft); with a Resolution
// the motor side is read in encoder ticks, Resolution per motor revolution, wrapping at Wrap
// (package calib, which also holds the wrap rule).
type Motor struct {
	ID         int     `yaml:"id"`         // bus or controller id, unique per robot; >= 0
	Direction  int     `yaml:"direction"`  // +1 or -1; 0 means +1
	Offset     float64 `yaml:"offset"`     // joint value at motor zero
	GearRatio  float64 `yaml:"gear_ratio"` // motor turns per joint turn (or per m); 0 means 1
	Resolution int64   `yaml:"resolution"` // encoder ticks per motor turn; 0 means motor rad, unquantized
	Wrap       int64   `yaml:"wrap"`       // ticks after which the counter wraps to 0; 0 means never
}

// ToMotor returns the motor value for joint value q (the zero Direction and GearRatio read as 1).
func (m Motor) ToMotor(q float64) float64 {
	d, g := m.dirGear()
	return d * g * (q - m.Offset)
}

// ToJoint returns the joint value for motor value v, the inverse of ToMotor.
func (m Motor) ToJoint(v float64) float64 {
	d, g := m.dirGear()
	return m.Offset + d*v/g
}

func (m Motor) dirGear() (d, g float64) {
	d, g = 1, 1
	if m.Direction < 0 {
		d = -1
	}
	if m.GearRatio != 0 {
		g = m.GearRatio
	}
	return d, g
}

// EnsureDefaults replaces zero topic names with the defaults.
func (c *Config) EnsureDefaults() {
	for _, t := range []struct {
		p   *string
		def string
	}{
		{&c.Topics.JointStates, DefaultJointStatesTopic},
		{&c.Topics.Command, DefaultCommandTopic},
		{&c.Topics.Trajectory, DefaultTrajectoryTopic},
	} {
		if *t.p == "" {
			*t.p = t.def
		}
	}
}

// ErrConfig is wrapped by every error of Config.Validate and Config.CheckModel.
var ErrConfig = errors.New("robot: bad config")

func configErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...)
}

// Validate checks the config on its own: ee_link given, topic names well formed, override values
// finite and non-negative, motors with unique ids, a direction of ±1 and a positive gear ratio.
func (c *Config) Validate() error {
	if c.EELink == "" {
		return configErr("ee_link: missing")
	}
	for _, t := range []struct{ key, name string }{
		{"topics.joint_states", c.Topics.JointStates},
		{"topics.command", c.Topics.Command},
		{"topics.trajectory", c.Topics.Trajectory},
	} {
		if t.name == "" {
			continue
		}
		if err := checkGraphName(t.name); err != nil {
			return configErr("%s: %q: %v", t.key, t.name, err)
		}
	}
	for _, name := range sortedKeys(c.Limits.Joints) {
		o := c.Limits.Joints[name]
		for _, f := range []struct {
			key string
			v   float64
		}{{"velocity", o.Velocity}, {"acceleration", o.Acceleration}, {"jerk", o.Jerk}, {"effort", o.Effort}} {
			if !(f.v >= 0) || math.IsInf(f.v, 0) {
				return configErr("limits.joints.%s.%s: %g: must be positive and finite", name, f.key, f.v)
			}
		}
		for _, f := range []struct {
			key string
			v   *float64
		}{{"lower", o.Lower}, {"upper", o.Upper}} {
			if f.v != nil && (math.IsNaN(*f.v) || math.IsInf(*f.v, 0)) {
				return configErr("limits.joints.%s.%s: %g: must be finite", name, f.key, *f.v)
			}
		}
	}
	ids := make(map[int]string, len(c.Motors))
	for _, name := range sortedKeys(c.Motors) {
		mo := c.Motors[name]
		switch {
		case mo.ID < 0:
			return configErr("motors.%s.id: %d: must be >= 0", name, mo.ID)
		case ids[mo.ID] != "":
			return configErr("motors.%s.id: %d: also the id of joint %q", name, mo.ID, ids[mo.ID])
		case mo.Direction != 0 && mo.Direction != 1 && mo.Direction != -1:
			return configErr("motors.%s.direction: %d: must be 1 or -1", name, mo.Direction)
		case math.IsNaN(mo.Offset) || math.IsInf(mo.Offset, 0):
			return configErr("motors.%s.offset: %g: must be finite", name, mo.Offset)
		case !(mo.GearRatio >= 0) || math.IsInf(mo.GearRatio, 0):
			return configErr("motors.%s.gear_ratio: %g: must be positive and finite", name, mo.GearRatio)
		case mo.Resolution < 0:
			return configErr("motors.%s.resolution: %d: must be >= 0", name, mo.Resolution)
		case mo.Wrap < 0:
			return configErr("motors.%s.wrap: %d: must be >= 0", name, mo.Wrap)
		case mo.Wrap > 0 && mo.Resolution == 0:
			return configErr("motors.%s.wrap: %d: a wrapping counter needs a resolution", name, mo.Wrap)
		}
		ids[mo.ID] = name
	}
	return nil
}

// CheckModel checks the config against the robot it describes (with the overrides applied):
// ee_link is a link reachable from the root, home names actuated joints and lies within their
// position limits, and motors, when given, name each actuated joint exactly once.
func (c *Config) CheckModel(m *Model) error {
	if _, err := m.Chain(c.EELink); err != nil {
		return configErr("ee_link: %v", err)
	}
	for _, name := range sortedKeys(c.Home) {
		i := m.Index(name)
		if i < 0 {
			return configErr("home.%s: not an actuated joint of model %q", name, m.Name)
		}
		v, l := c.Home[name], m.Joints[i].Limits
		if math.IsNaN(v) || math.IsInf(v, 0) || l.HasPosition && (v < l.Lower || v > l.Upper) {
			return configErr("home.%s: %g outside the position limits [%g, %g]", name, v, l.Lower, l.Upper)
		}
	}
	if len(c.Motors) == 0 {
		return nil
	}
	for _, name := range sortedKeys(c.Motors) {
		if m.Index(name) < 0 {
			return configErr("motors.%s: not an actuated joint of model %q", name, m.Name)
		}
	}
	for _, j := range m.Joints {
		if _, ok := c.Motors[j.Name]; !ok {
			return configErr("motors: joint %q has no motor", j.Name)
		}
	}
	return nil
}

// HomePosition returns the home configuration in m's joint order (see Home).
func (c *Config) HomePosition(m *Model) []float64 {
	q := make([]float64, m.DoF())
	for i, j := range m.Joints {
		v, ok := c.Home[j.Name]
		if !ok && j.Limits.HasPosition {
			v = min(max(0, j.Limits.Lower), j.Limits.Upper)
		}
		q[i] = v
	}
	return q
}

// checkGraphName accepts ROS 1 graph resource names: [~/]? then segments of [A-Za-z0-9_] that
// start with a letter, separated by single slashes (ROS wiki, "Names").
func checkGraphName(s string) error {
	body, private := strings.CutPrefix(s, "~")
	if !private {
		body = strings.TrimPrefix(body, "/")
	}
	if body == "" {
		return errors.New("empty name")
	}
	for seg := range strings.SplitSeq(body, "/") {
		if seg == "" {
			return errors.New("empty segment")
		}
		for i, r := range seg {
			letter := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
			if i == 0 && !letter {
				return fmt.Errorf("segment %q does not start with a letter", seg)
			}
			if !letter && r != '_' && (r < '0' || r > '9') {
				return fmt.Errorf("character %q not allowed", r)
			}
		}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
