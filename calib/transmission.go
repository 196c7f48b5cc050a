package calib

import (
	"errors"
	"fmt"
	"math"

	"github.com/flowact/flowact/robot"
)

// Transmission maps one joint to its motor as ros_control's SimpleTransmission does, followed by
// the motor's encoder (see the package documentation for the conventions).
type Transmission struct {
	// ID is the motor's bus or controller id, unique per robot among ids >= 0; -1 means none
	// (a URDF transmission names its actuator instead). It is carried for the hardware driver
	// and for messages; the mapping does not use it.
	ID int `yaml:"id"`
	// Reduction is motor rad per joint rad (revolute) or per m (prismatic); a negative value
	// flips the direction. 0 is refused: a transmission must say its reduction.
	Reduction float64 `yaml:"reduction"`
	// Offset is the joint value (rad or m) at motor zero.
	Offset float64 `yaml:"offset"`
	// Resolution is encoder ticks per motor revolution. 0 means the motor side is continuous,
	// in motor rad: no quantization and no wrap.
	Resolution int64 `yaml:"resolution"`
	// Wrap is the number of ticks after which the encoder's counter wraps to 0 (a single-turn
	// absolute encoder: Wrap = Resolution). 0 means it never wraps (a multi-turn or
	// incremental counter). It needs Resolution > 0.
	Wrap int64 `yaml:"wrap"`
}

// ErrTransmission is wrapped by every error about a transmission's values or its fit to a joint.
var ErrTransmission = errors.New("calib: bad transmission")

// FieldError is a problem with one field of one joint's transmission. Its message names the
// joint and the field; Source (a file, "robot.yaml motors" or "URDF <transmission>") is added
// by the caller that knows it.
type FieldError struct {
	Joint  string
	Field  string // "reduction", "offset", "resolution", "wrap", "id", or "" for the whole entry
	Reason string
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("calib: joint %q: %s", e.Joint, e.Reason)
	}
	return fmt.Sprintf("calib: joint %q: %s: %s", e.Joint, e.Field, e.Reason)
}

func (e *FieldError) Unwrap() error { return ErrTransmission }

func fieldErr(joint, field, format string, args ...any) error {
	return &FieldError{Joint: joint, Field: field, Reason: fmt.Sprintf(format, args...)}
}

// MaxResolution bounds Resolution and Wrap: 2^40 ticks keeps every tick count of a joint's
// travel an exact integer in a float64 (53-bit mantissa) with room for the products below.
const MaxResolution = 1 << 40

// Check validates the transmission's own values for joint name (finite, non-zero reduction,
// resolution and wrap in range).
func (t Transmission) Check(name string) error {
	switch {
	case t.ID < -1:
		return fieldErr(name, "id", "%d: must be >= 0, or -1 for none", t.ID)
	case t.Reduction == 0 || math.IsNaN(t.Reduction) || math.IsInf(t.Reduction, 0):
		return fieldErr(name, "reduction", "%g: must be non-zero and finite", t.Reduction)
	case math.Abs(t.Reduction) > 1e6 || math.Abs(t.Reduction) < 1e-6:
		return fieldErr(name, "reduction", "%g: magnitude outside [1e-6, 1e6]", t.Reduction)
	case math.IsNaN(t.Offset) || math.IsInf(t.Offset, 0) || math.Abs(t.Offset) > 1e6:
		return fieldErr(name, "offset", "%g: must be finite and within ±1e6", t.Offset)
	case t.Resolution < 0 || t.Resolution > MaxResolution:
		return fieldErr(name, "resolution", "%d: must be in [0, 2^40]", t.Resolution)
	case t.Wrap < 0 || t.Wrap > MaxResolution:
		return fieldErr(name, "wrap", "%d: must be in [0, 2^40]", t.Wrap)
	case t.Wrap > 0 && t.Resolution == 0:
		return fieldErr(name, "wrap", "%d: a wrapping counter needs an encoder resolution", t.Wrap)
	}
	return nil
}

// Scale returns motor units per joint unit: Reduction·Resolution/2π ticks per rad (or m), or
// Reduction motor rad when Resolution is 0. Its sign is the direction.
func (t Transmission) Scale() float64 {
	if t.Resolution == 0 {
		return t.Reduction
	}
	return t.Reduction * float64(t.Resolution) / (2 * math.Pi)
}

// Direction returns +1 or -1, the sign of Reduction.
func (t Transmission) Direction() int {
	if t.Reduction < 0 {
		return -1
	}
	return 1
}

// joint is a transmission bound to a joint's travel, ready to convert.
type joint struct {
	Transmission
	name  string
	scale float64 // motor units per joint unit
	base  float64 // with a wrap: the unwrapped tick count of the counter's 0 over the travel
}

// bind checks t against joint j and precomputes the conversion. The wrap rule: the encoder's
// counter must not wrap inside the joint's travel [Lower, Upper] (the ticks the travel's ends
// round to lie in one window [k·Wrap, (k+1)·Wrap)); a continuous joint (no travel bounds)
// cannot have a wrapping counter.
func bind(j *robot.Joint, t Transmission) (joint, error) {
	b := joint{Transmission: t, name: j.Name, scale: t.Scale()}
	if err := t.Check(j.Name); err != nil {
		return b, err
	}
	if t.Wrap == 0 {
		return b, nil
	}
	if !j.Limits.HasPosition {
		return b, fieldErr(j.Name, "wrap", "%d: a %v joint has no bounded travel, so a wrapping counter would wrap inside it (use wrap: 0, a multi-turn counter)", t.Wrap, j.Type)
	}
	a := math.Round(b.scale * (j.Limits.Lower - t.Offset))
	c := math.Round(b.scale * (j.Limits.Upper - t.Offset))
	lo, hi := min(a, c), max(a, c)
	w := float64(t.Wrap)
	if hi-lo >= w {
		return b, fieldErr(j.Name, "wrap", "the travel [%g, %g] spans %.0f ticks, more than the counter's %d: it cannot be read without ambiguity", j.Limits.Lower, j.Limits.Upper, hi-lo+1, t.Wrap)
	}
	k := math.Floor(lo / w)
	if hi >= (k+1)*w {
		at := t.Offset + (k+1)*w/b.scale
		return b, fieldErr(j.Name, "offset", "%g: the counter wraps at joint value %.6g, inside the travel [%g, %g]; move the offset so that the wrap falls outside it", t.Offset, at, j.Limits.Lower, j.Limits.Upper)
	}
	b.base = k * w
	return b, nil
}

// toMotor maps a joint position to motor units: rounded to a tick and wrapped when there is an
// encoder. With a wrap, a position beyond the counter's window (past the wrap points on either
// side of the travel) saturates at the window's edge instead of aliasing to the far side of the
// travel. A non-finite value stays non-finite.
func (b *joint) toMotor(q float64) float64 {
	u := b.scale * (q - b.Offset)
	if b.Resolution == 0 || math.IsInf(u, 0) || math.IsNaN(u) {
		return u // non-finite stays so, for the driver to refuse
	}
	u = math.Round(u)
	if b.Wrap > 0 {
		u = min(max(u, b.base), b.base+float64(b.Wrap-1)) - b.base
	}
	return u
}

// toJoint maps motor units to a joint position: the tick is rounded, wrapped into the counter's
// range and unwrapped into the window that holds the travel. NaN stays NaN.
func (b *joint) toJoint(u float64) float64 {
	if b.Resolution > 0 {
		u = math.Round(u)
		if b.Wrap > 0 {
			u = b.base + floorMod(u, float64(b.Wrap))
		}
	}
	return b.Offset + u/b.scale
}

// floorMod returns x mod m in [0, m) for m > 0; NaN and ±Inf give NaN.
func floorMod(x, m float64) float64 {
	r := math.Mod(x, m)
	if r < 0 {
		r += m
	}
	return r
}
