package robot

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"
)

// JointType is the URDF joint type.
type JointType uint8

const (
	Fixed JointType = iota
	Revolute
	Continuous
	Prismatic
)

func (t JointType) String() string {
	switch t {
	case Fixed:
		return "fixed"
	case Revolute:
		return "revolute"
	case Continuous:
		return "continuous"
	case Prismatic:
		return "prismatic"
	}
	return fmt.Sprintf("JointType(%d)", uint8(t))
}

// Actuated reports whether joints of type t carry a joint value.
func (t JointType) Actuated() bool { return t == Revolute || t == Continuous || t == Prismatic }

// Limits are a joint's hard limits. A zero Velocity, Acceleration, Jerk or Effort means the limit
// is not given. Lower and Upper are meaningful only when HasPosition is set (continuous joints
// have none).
type Limits struct {
	HasPosition  bool
	Lower, Upper float64 // rad or m
	Velocity     float64 // rad/s or m/s, > 0 when given
	Acceleration float64 // rad/s^2 or m/s^2, from YAML overrides
	Jerk         float64 // rad/s^3 or m/s^3, from YAML overrides
	Effort       float64 // N m or N
}

// SoftLimits come from a URDF <safety_controller>: a position band inside the hard limits and the
// gains of the ROS safety controller.
type SoftLimits struct {
	Lower, Upper float64
	KPosition    float64
	KVelocity    float64
}

// Pose is a rigid transform: Rot is a row-major 3x3 rotation matrix, Pos a translation in m.
// Applied to a point p it gives Rot p + Pos.
type Pose struct {
	Pos [3]float64
	Rot [9]float64
}

// Identity is the identity pose.
var Identity = Pose{Rot: [9]float64{1, 0, 0, 0, 1, 0, 0, 0, 1}}

// Joint is one URDF joint. Origin is the transform from the parent link's frame to the joint
// frame at zero joint value; Axis is a unit vector in the joint frame.
type Joint struct {
	Name          string
	Type          JointType
	Parent, Child string
	Origin        Pose
	Axis          [3]float64
	Limits        Limits
	Soft          *SoftLimits // nil when the URDF gives no <safety_controller>
}

// Model is a robot: its actuated joints in a fixed order, and every joint (fixed ones too) for
// kinematics. Build one with robot/urdf or by hand and call Validate.
type Model struct {
	Name   string
	Root   string  // the root link
	Joints []Joint // actuated joints, in model order
	Fixed  []Joint // fixed joints, kept for kinematics
}

// DoF returns the number of actuated joints.
func (m *Model) DoF() int { return len(m.Joints) }

// Index returns the model-order index of the actuated joint name, or -1.
func (m *Model) Index(name string) int {
	for i := range m.Joints {
		if m.Joints[i].Name == name {
			return i
		}
	}
	return -1
}

// Names returns the actuated joint names in model order.
func (m *Model) Names() []string {
	names := make([]string, len(m.Joints))
	for i := range m.Joints {
		names[i] = m.Joints[i].Name
	}
	return names
}

// Validate checks names, types and limits.
func (m *Model) Validate() error {
	if len(m.Joints) == 0 {
		return fmt.Errorf("robot: model %q has no actuated joints", m.Name)
	}
	seen := make(map[string]bool, len(m.Joints)+len(m.Fixed))
	check := func(j *Joint) error {
		if j.Name == "" {
			return fmt.Errorf("robot: model %q: joint with no name", m.Name)
		}
		if seen[j.Name] {
			return fmt.Errorf("robot: model %q: joint %q appears twice", m.Name, j.Name)
		}
		seen[j.Name] = true
		l := j.Limits
		for _, v := range []float64{l.Lower, l.Upper, l.Velocity, l.Acceleration, l.Jerk, l.Effort} {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Errorf("robot: joint %q: limit is not finite", j.Name)
			}
		}
		if l.Velocity < 0 || l.Acceleration < 0 || l.Jerk < 0 || l.Effort < 0 {
			return fmt.Errorf("robot: joint %q: negative limit", j.Name)
		}
		if l.HasPosition && l.Lower > l.Upper {
			return fmt.Errorf("robot: joint %q: lower limit %g above upper limit %g", j.Name, l.Lower, l.Upper)
		}
		if s := j.Soft; s != nil && l.HasPosition && s.Lower > s.Upper {
			return fmt.Errorf("robot: joint %q: soft lower limit %g above soft upper limit %g", j.Name, s.Lower, s.Upper)
		}
		return nil
	}
	for i := range m.Joints {
		j := &m.Joints[i]
		if !j.Type.Actuated() {
			return fmt.Errorf("robot: joint %q: type %v in the actuated list", j.Name, j.Type)
		}
		if err := check(j); err != nil {
			return err
		}
	}
	for i := range m.Fixed {
		j := &m.Fixed[i]
		if j.Type != Fixed {
			return fmt.Errorf("robot: joint %q: type %v in the fixed list", j.Name, j.Type)
		}
		if err := check(j); err != nil {
			return err
		}
	}
	return nil
}

// State is a joint state in model order. Position, Velocity and Effort have length DoF; a driver
// that does not measure velocity or effort leaves them zero. Stamp is when it was measured.
type State struct {
	Stamp    time.Time
	Position []float64
	Velocity []float64
	Effort   []float64
}

// Embedding is one VLM embedding, the policy's other input beside State: Tokens x Width float32
// values, row-major, taken at Stamp (the ROS adapter: the message's header stamp, else its
// receive time; a recorded episode: when it became available to the policy). Data is shared,
// never copied: once handed out by a mailbox (robot/ros's Embeddings) or to the control loop it
// must not be modified. The ROS adapter, the control loop (package policy) and recorded episodes
// (package dataset) all use this type.
type Embedding struct {
	Stamp         time.Time
	Tokens, Width int
	Data          []float32
}

// NewState returns a zero state for dof joints.
func NewState(dof int) State {
	return State{Position: make([]float64, dof), Velocity: make([]float64, dof), Effort: make([]float64, dof)}
}

// CopyFrom copies s into st, reusing st's slices when they are large enough.
func (st *State) CopyFrom(s *State) {
	st.Stamp = s.Stamp
	st.Position = append(st.Position[:0], s.Position...)
	st.Velocity = append(st.Velocity[:0], s.Velocity...)
	st.Effort = append(st.Effort[:0], s.Effort...)
}

// Command is one position command in model order: joint targets for the controller to track.
// Velocity is an optional feed-forward (nil for none).
type Command struct {
	Stamp    time.Time
	Position []float64
	Velocity []float64
}

// Trajectory is a chunk of position targets for a trajectory controller: point k is
// Positions[k*dof:(k+1)*dof], to be reached at Start + TimeFromStart[k].
type Trajectory struct {
	Start         time.Time
	TimeFromStart []time.Duration
	Positions     []float64
}

// Driver is a robot as the control loop sees it. Both methods must not block: ReadState copies
// the latest measured state into dst (its slices of length DoF) and WriteCommand hands a command
// to the robot, copying what it keeps. ReadState returns ErrNoState until a first state has
// arrived. A WriteCommand that cannot take the command now returns ErrBusy (nothing of it
// reaches the robot); it never replaces a command not yet sent by this one.
type Driver interface {
	Model() *Model
	ReadState(dst *State) error
	WriteCommand(c *Command) error
}

// TrajectoryWriter is a Driver that also accepts whole trajectories (joint_trajectory_controller
// semantics: a new trajectory replaces the old one from its start time on).
type TrajectoryWriter interface {
	WriteTrajectory(tr *Trajectory) error
}

// ReferenceReader is a Driver that may know the position the robot holds from a controller
// that commanded it before this one (on ROS: the last command another node sent on the command
// topic, seen while waiting for that node to go). A position-controlled robot holds its last
// command, not its measured position, so a loop starting there continues the robot's command
// stream without a step. ReadReference copies it (model order) into dst and reports true; false
// when none is known, or once this driver has sent a command of its own.
type ReferenceReader interface {
	ReadReference(dst []float64) bool
}

// Errors.
var (
	ErrNoState = errors.New("robot: no joint state yet")
	ErrClosed  = errors.New("robot: driver closed")
	// ErrBadState: the driver received a joint reading no robot within its limits can give (a
	// position beyond a hard limit). ReadState returns an error wrapping it once, for the first
	// such reading since the last ReadState, whatever came after it: a bad reading is never lost
	// behind a good one.
	ErrBadState = errors.New("robot: implausible joint reading")
	// ErrBusy: the driver's outgoing queue is full and the command was not taken (nothing of
	// it reaches the robot). The caller's next command must be relative to the last one taken.
	ErrBusy = errors.New("robot: command queue full")
)

// Clock is the time source for loops: the wall clock, ROS sim time (/clock), or a fake in tests.
// SleepUntil returns when the clock reaches t (at once if it has) or with ctx.Err().
type Clock interface {
	Now() time.Time
	SleepUntil(ctx context.Context, t time.Time) error
}

// WallClock is the system clock. Under testing/synctest it follows the bubble's fake time.
type WallClock struct{}

func (WallClock) Now() time.Time { return time.Now() }

func (WallClock) SleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
