package calib

import (
	"fmt"
	"slices"

	"github.com/flowact/flowact/robot"
)

// Set is the transmissions of every actuated joint of a model, bound to the joints' travel:
// the joint <-> motor map of a whole robot. Build one with NewSet; it is immutable and safe for
// concurrent use. Every XxxTo method writes into dst, of length DoF, and allocates nothing.
type Set struct {
	m      *robot.Model
	joints []joint // model order
}

// NewSet binds tr (by joint name) to model m. Every actuated joint must have a transmission and
// every transmission must name an actuated joint; ids >= 0 must be unique; each transmission must
// pass the wrap rule against its joint's travel (see the package documentation).
func NewSet(m *robot.Model, tr map[string]Transmission) (*Set, error) {
	if m == nil {
		return nil, fmt.Errorf("%w: nil model", ErrTransmission)
	}
	for _, name := range sortedKeys(tr) {
		if m.Index(name) < 0 {
			return nil, fieldErr(name, "", "not an actuated joint of model %q", m.Name)
		}
	}
	s := &Set{m: m, joints: make([]joint, m.DoF())}
	ids := make(map[int]string, len(tr))
	for i := range m.Joints {
		j := &m.Joints[i]
		t, ok := tr[j.Name]
		if !ok {
			return nil, fieldErr(j.Name, "", "has no transmission (model %q)", m.Name)
		}
		if other, dup := ids[t.ID]; dup && t.ID >= 0 {
			return nil, fieldErr(j.Name, "id", "%d: also the id of joint %q", t.ID, other)
		}
		ids[t.ID] = j.Name
		b, err := bind(j, t)
		if err != nil {
			return nil, err
		}
		s.joints[i] = b
	}
	return s, nil
}

// Model returns the model the set is bound to.
func (s *Set) Model() *robot.Model { return s.m }

// Transmission returns joint i's transmission (model order).
func (s *Set) Transmission(i int) Transmission { return s.joints[i].Transmission }

// Transmissions returns a copy of the transmissions by joint name.
func (s *Set) Transmissions() map[string]Transmission {
	out := make(map[string]Transmission, len(s.joints))
	for _, j := range s.joints {
		out[j.name] = j.Transmission
	}
	return out
}

func (s *Set) check(dst, src []float64) {
	if len(dst) != len(s.joints) || len(src) != len(s.joints) {
		panic(fmt.Sprintf("calib: %d and %d values for %d joints", len(dst), len(src), len(s.joints)))
	}
}

// PositionToMotor writes the motor positions of joint positions q into dst: ticks (integers,
// wrapped into [0, Wrap) when the counter wraps) or motor rad.
func (s *Set) PositionToMotor(dst, q []float64) {
	s.check(dst, q)
	for i := range s.joints {
		dst[i] = s.joints[i].toMotor(q[i])
	}
}

// PositionToJoint is the inverse of PositionToMotor: PositionToJoint(PositionToMotor(q)) is q to
// within half a tick (0.5/|Scale| in joint units) everywhere in the travel, and
// PositionToMotor(PositionToJoint(u)) is u exactly for every tick u the travel reads.
func (s *Set) PositionToJoint(dst, u []float64) {
	s.check(dst, u)
	for i := range s.joints {
		dst[i] = s.joints[i].toJoint(u[i])
	}
}

// VelocityToMotor writes motor velocities (ticks/s or motor rad/s) of joint velocities v.
func (s *Set) VelocityToMotor(dst, v []float64) {
	s.check(dst, v)
	for i := range s.joints {
		dst[i] = s.joints[i].scale * v[i]
	}
}

// VelocityToJoint is the inverse of VelocityToMotor.
func (s *Set) VelocityToJoint(dst, v []float64) {
	s.check(dst, v)
	for i := range s.joints {
		dst[i] = v[i] / s.joints[i].scale
	}
}

// EffortToMotor writes motor efforts (N m at the motor shaft) for joint efforts e (N m or N):
// power is conserved, so motor effort = joint effort / Reduction.
func (s *Set) EffortToMotor(dst, e []float64) {
	s.check(dst, e)
	for i := range s.joints {
		dst[i] = e[i] / s.joints[i].Reduction
	}
}

// EffortToJoint is the inverse of EffortToMotor: joint effort = motor effort · Reduction.
func (s *Set) EffortToJoint(dst, e []float64) {
	s.check(dst, e)
	for i := range s.joints {
		dst[i] = e[i] * s.joints[i].Reduction
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
