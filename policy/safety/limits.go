package safety

import (
	"errors"
	"fmt"
	"math"
	"sort"

	"github.com/flowact/flowact/robot"
)

// Limit is one joint's resolved limits, as the filter enforces them.
type Limit struct {
	Name         string
	HasPosition  bool    // false for continuous joints
	Lower, Upper float64 // the position band commands stay in (rad or m)
	// HardLower and HardUpper are the band a start position must lie in: the model's hard limits
	// (or config's band where the model has none). A joint that starts between them and the
	// band above (parked beyond a soft limit) is never moved further out and comes in as its
	// targets ask.
	HardLower, HardUpper float64
	Velocity             float64 // > 0
	Acceleration         float64 // > 0
	Jerk                 float64 // 0: not limited
}

// JointConfig tightens one joint's limits. A nil Lower/Upper or a zero rate keeps the model's.
type JointConfig struct {
	Lower        *float64 `yaml:"lower"`
	Upper        *float64 `yaml:"upper"`
	Velocity     float64  `yaml:"velocity"`
	Acceleration float64  `yaml:"acceleration"`
	Jerk         float64  `yaml:"jerk"`
}

// Config tightens the robot model's limits. The zero value keeps the model's limits unchanged.
type Config struct {
	// Joints maps a joint name to its tightenings. A joint the model lacks is an error.
	Joints map[string]JointConfig `yaml:"joints"`
	// VelocityScale and AccelerationScale scale every joint's limit, in (0, 1]; 0 means 1.
	VelocityScale     float64 `yaml:"velocity_scale"`
	AccelerationScale float64 `yaml:"acceleration_scale"`
	// PositionMargin (rad or m, >= 0) shrinks every position band on both sides; 0 means none.
	PositionMargin float64 `yaml:"position_margin"`
}

// ErrLimits is wrapped by every error about limits that are missing, invalid or loosened.
var ErrLimits = errors.New("safety: bad limits")

// Validate checks the values that do not need the robot model.
func (c *Config) Validate() error {
	if c.VelocityScale < 0 || c.VelocityScale > 1 || c.VelocityScale != c.VelocityScale {
		return fmt.Errorf("safety: velocity_scale %g not in [0, 1]: %w", c.VelocityScale, ErrLimits)
	}
	if c.AccelerationScale < 0 || c.AccelerationScale > 1 || c.AccelerationScale != c.AccelerationScale {
		return fmt.Errorf("safety: acceleration_scale %g not in [0, 1]: %w", c.AccelerationScale, ErrLimits)
	}
	if !(c.PositionMargin >= 0) || math.IsInf(c.PositionMargin, 0) {
		return fmt.Errorf("safety: position_margin %g must be finite and >= 0: %w", c.PositionMargin, ErrLimits)
	}
	names := make([]string, 0, len(c.Joints))
	for n := range c.Joints {
		names = append(names, n)
	}
	sort.Strings(names) // report the same first error every time
	for _, n := range names {
		j := c.Joints[n]
		for _, v := range []struct {
			field string
			v     float64
		}{{"velocity", j.Velocity}, {"acceleration", j.Acceleration}, {"jerk", j.Jerk}} {
			if !(v.v >= 0) || math.IsInf(v.v, 0) {
				return fmt.Errorf("safety: joints.%s.%s = %g must be finite and >= 0: %w", n, v.field, v.v, ErrLimits)
			}
		}
		for _, p := range []*float64{j.Lower, j.Upper} {
			if p != nil && (math.IsNaN(*p) || math.IsInf(*p, 0)) {
				return fmt.Errorf("safety: joints.%s: position limit %g is not finite: %w", n, *p, ErrLimits)
			}
		}
	}
	return nil
}

// tighten returns the tighter of a model rate limit (0: not given) and a config one (0: keep).
// A config value above a given model value is an error.
func tighten(joint, field string, model, cfg float64) (float64, error) {
	switch {
	case cfg == 0:
		return model, nil
	case model == 0 || cfg <= model:
		return cfg, nil
	}
	return 0, fmt.Errorf("safety: joint %q: %s %g would loosen the model's %g: %w", joint, field, cfg, model, ErrLimits)
}

// Resolve combines the model's limits with cfg's tightenings, in model order.
func Resolve(m *robot.Model, cfg *Config) ([]Limit, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	for n := range cfg.Joints {
		if m.Index(n) < 0 {
			return nil, fmt.Errorf("safety: joints.%s: the model %q has no actuated joint %q: %w", n, m.Name, n, ErrLimits)
		}
	}
	vs, as := scale(cfg.VelocityScale), scale(cfg.AccelerationScale)
	out := make([]Limit, len(m.Joints))
	for i := range m.Joints {
		j := &m.Joints[i]
		jc := cfg.Joints[j.Name]
		l := Limit{Name: j.Name}
		var err error
		if l.Velocity, err = tighten(j.Name, "velocity", j.Limits.Velocity, jc.Velocity); err != nil {
			return nil, err
		}
		if l.Acceleration, err = tighten(j.Name, "acceleration", j.Limits.Acceleration, jc.Acceleration); err != nil {
			return nil, err
		}
		if l.Jerk, err = tighten(j.Name, "jerk", j.Limits.Jerk, jc.Jerk); err != nil {
			return nil, err
		}
		l.Velocity *= vs
		l.Acceleration *= as
		if l.Velocity <= 0 {
			return nil, fmt.Errorf("safety: joint %q: no velocity limit in the model or config (joints.%s.velocity): %w", j.Name, j.Name, ErrLimits)
		}
		if l.Acceleration <= 0 {
			return nil, fmt.Errorf("safety: joint %q: no acceleration limit in the model or config (joints.%s.acceleration): %w", j.Name, j.Name, ErrLimits)
		}
		if j.Type != robot.Continuous {
			lo, hi := j.Limits.Lower, j.Limits.Upper
			if !j.Limits.HasPosition {
				if jc.Lower == nil || jc.Upper == nil {
					return nil, fmt.Errorf("safety: joint %q: no position limits in the model or config (joints.%s.lower/upper): %w", j.Name, j.Name, ErrLimits)
				}
				lo, hi = math.Inf(-1), math.Inf(1)
				l.HardLower, l.HardUpper = *jc.Lower, *jc.Upper
			} else {
				l.HardLower, l.HardUpper = lo, hi
			}
			if s := j.Soft; s != nil && j.Limits.HasPosition {
				lo, hi = math.Max(lo, s.Lower), math.Min(hi, s.Upper)
			}
			if jc.Lower != nil {
				if *jc.Lower < lo {
					return nil, fmt.Errorf("safety: joint %q: lower %g would loosen the model's %g: %w", j.Name, *jc.Lower, lo, ErrLimits)
				}
				lo = *jc.Lower
			}
			if jc.Upper != nil {
				if *jc.Upper > hi {
					return nil, fmt.Errorf("safety: joint %q: upper %g would loosen the model's %g: %w", j.Name, *jc.Upper, hi, ErrLimits)
				}
				hi = *jc.Upper
			}
			lo, hi = lo+cfg.PositionMargin, hi-cfg.PositionMargin
			if !(lo <= hi) {
				return nil, fmt.Errorf("safety: joint %q: empty position band [%g, %g]: %w", j.Name, lo, hi, ErrLimits)
			}
			l.HasPosition, l.Lower, l.Upper = true, lo, hi
		} else if jc.Lower != nil || jc.Upper != nil {
			// A continuous joint may still be given a band by config: that only tightens.
			if jc.Lower == nil || jc.Upper == nil || *jc.Lower > *jc.Upper {
				return nil, fmt.Errorf("safety: joint %q: continuous joint needs both lower and upper, lower <= upper: %w", j.Name, ErrLimits)
			}
			l.HasPosition, l.Lower, l.Upper = true, *jc.Lower+cfg.PositionMargin, *jc.Upper-cfg.PositionMargin
			l.HardLower, l.HardUpper = *jc.Lower, *jc.Upper
			if l.Lower > l.Upper {
				return nil, fmt.Errorf("safety: joint %q: empty position band: %w", j.Name, ErrLimits)
			}
		}
		out[i] = l
	}
	return out, nil
}

func scale(s float64) float64 {
	if s == 0 {
		return 1
	}
	return s
}
