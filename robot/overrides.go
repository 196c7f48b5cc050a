package robot

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// Overrides tighten a model's limits from configuration (the limits: section of robot.yaml).
// They may only tighten: a looser value than the URDF's is an error, never silently ignored.
// Acceleration and jerk limits exist only here (URDF has no field for them).
type Overrides struct {
	Joints map[string]JointOverride `yaml:"joints"` // by actuated joint name
}

// JointOverride is one joint's limits. A nil Lower or Upper and a zero Velocity, Acceleration,
// Jerk or Effort mean "keep the model's". Units as in Limits.
type JointOverride struct {
	Lower        *float64 `yaml:"lower"`
	Upper        *float64 `yaml:"upper"`
	Velocity     float64  `yaml:"velocity"`
	Acceleration float64  `yaml:"acceleration"`
	Jerk         float64  `yaml:"jerk"`
	Effort       float64  `yaml:"effort"`
}

// Errors of Model.Apply, wrapped in an *OverrideError.
var (
	ErrUnknownJoint = errors.New("not an actuated joint of the model")
	ErrLoosen       = errors.New("would loosen the model's limit")
	ErrBadLimit     = errors.New("not a valid limit")
)

// OverrideError reports a rejected override: the joint, the field (lower, upper, velocity,
// acceleration, jerk, effort) and why (one of ErrUnknownJoint, ErrLoosen, ErrBadLimit).
type OverrideError struct {
	Joint, Field string
	Detail       string
	Err          error
}

func (e *OverrideError) Error() string {
	s := fmt.Sprintf("robot: limits of joint %q", e.Joint)
	if e.Field != "" {
		s += ": " + e.Field
	}
	s += ": " + e.Err.Error()
	if e.Detail != "" {
		s += " (" + e.Detail + ")"
	}
	return s
}

func (e *OverrideError) Unwrap() error { return e.Err }

// Apply tightens m's limits by o. It changes nothing and returns an *OverrideError (the first
// joint in name order) if any override names an unknown joint, loosens a limit, or is negative,
// zero where a value is required, or not finite. A position band on a continuous joint needs both
// Lower and Upper and turns its position limits on. Soft limits that the new hard band cuts are
// clipped into it.
func (m *Model) Apply(o Overrides) error {
	names := make([]string, 0, len(o.Joints))
	for name := range o.Joints {
		names = append(names, name)
	}
	slices.Sort(names)
	joints := slices.Clone(m.Joints)
	for _, name := range names {
		i := m.Index(name)
		if i < 0 {
			return &OverrideError{Joint: name, Err: ErrUnknownJoint}
		}
		j := &joints[i]
		if err := tighten(j, o.Joints[name]); err != nil {
			return err
		}
	}
	m.Joints = joints
	return nil
}

func tighten(j *Joint, o JointOverride) error {
	bad := func(field, detail string, err error) error {
		return &OverrideError{Joint: j.Name, Field: field, Detail: detail, Err: err}
	}
	l := &j.Limits
	lower, upper := l.Lower, l.Upper
	if o.Lower != nil || o.Upper != nil {
		if !l.HasPosition && (o.Lower == nil || o.Upper == nil) {
			field := "lower"
			if o.Lower == nil {
				field = "upper"
			}
			return bad(field, "a joint without position limits needs both lower and upper", ErrBadLimit)
		}
		if o.Lower != nil {
			if v := *o.Lower; math.IsNaN(v) || math.IsInf(v, 0) {
				return bad("lower", fmt.Sprint(v), ErrBadLimit)
			} else if l.HasPosition && v < l.Lower {
				return bad("lower", fmt.Sprintf("%g below the model's %g", v, l.Lower), ErrLoosen)
			}
			lower = *o.Lower
		}
		if o.Upper != nil {
			if v := *o.Upper; math.IsNaN(v) || math.IsInf(v, 0) {
				return bad("upper", fmt.Sprint(v), ErrBadLimit)
			} else if l.HasPosition && v > l.Upper {
				return bad("upper", fmt.Sprintf("%g above the model's %g", v, l.Upper), ErrLoosen)
			}
			upper = *o.Upper
		}
		if lower > upper {
			return bad("lower", fmt.Sprintf("%g above upper %g", lower, upper), ErrBadLimit)
		}
	}
	rates := []struct {
		field string
		v     float64
		lim   *float64
	}{
		{"velocity", o.Velocity, &l.Velocity},
		{"acceleration", o.Acceleration, &l.Acceleration},
		{"jerk", o.Jerk, &l.Jerk},
		{"effort", o.Effort, &l.Effort},
	}
	for _, r := range rates {
		switch {
		case r.v == 0:
			continue
		case !(r.v > 0) || math.IsInf(r.v, 0):
			return bad(r.field, fmt.Sprintf("%g: must be positive and finite", r.v), ErrBadLimit)
		case *r.lim > 0 && r.v > *r.lim:
			return bad(r.field, fmt.Sprintf("%g above the model's %g", r.v, *r.lim), ErrLoosen)
		}
	}
	// All checks passed: write.
	for _, r := range rates {
		if r.v != 0 {
			*r.lim = r.v
		}
	}
	if o.Lower != nil || o.Upper != nil {
		l.HasPosition, l.Lower, l.Upper = true, lower, upper
		if s := j.Soft; s != nil {
			c := *s
			c.Lower = min(max(c.Lower, lower), upper)
			c.Upper = min(max(c.Upper, lower), upper)
			j.Soft = &c
		}
	}
	return nil
}
