package ros

import (
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/goroslib/v2/pkg/msgs/sensor_msgs"

	"github.com/flowact/flowact/robot"
)

// MissingJointsError is returned by JointStates.ReadState while some model joints have never
// been reported. It wraps robot.ErrNoState.
type MissingJointsError struct {
	Missing []string // model joint names never seen, in model order
}

func (e *MissingJointsError) Error() string {
	return fmt.Sprintf("ros: no joint state yet for %d joint(s) %q", len(e.Missing), e.Missing)
}

func (e *MissingJointsError) Unwrap() error { return robot.ErrNoState }

// JointStateStats counts what the JointStates mailbox saw. All counters only grow.
type JointStateStats struct {
	Messages    uint64 // messages offered to Store
	Stored      uint64 // messages that updated at least one joint
	Overwritten uint64 // stored messages replaced before any ReadState saw them
	Invalid     uint64 // messages rejected: array lengths disagree with name, a non-finite position, or a joint named twice
	Duplicate   uint64 // of those, messages that named a model joint twice
	Beyond      uint64 // of those, messages with a position beyond a joint's limit (ReadingTolerance)
	Unknown     uint64 // joint names not in the model (ignored), counted per occurrence
}

// ReadingTolerance (rad or m) is how far a reading may lie beyond a joint's hard limit before its
// message is refused: policy/safety's DefaultStateTolerance, well above encoder resolution and a
// position controller's overshoot at the limit.
const ReadingTolerance = 0.01

// JointStates is the latest-value mailbox for sensor_msgs/JointState. Store (the subscriber
// callback) matches each name to the model's joint order and merges the message into the joints
// it names, so partial messages from several publishers combine; ReadState copies the merged
// state out. Both hold the lock only while copying DoF values; neither allocates.
//
// Per joint it keeps the message stamp (header.stamp, or the receive time when the stamp is zero)
// and the receive time, from which Ages reports how old each joint's data is.
type JointStates struct {
	lims  []robot.Limits // the model's, for the per-message band check; nil: readings in motor units
	bad   error          // the first reading beyond a limit since the last ReadState (under mu)
	names []string
	index map[string]int
	now   func() time.Time

	// storeMu serializes Store calls so that idx can be reused; held while matching names,
	// before mu is taken.
	storeMu sync.Mutex
	idx     []int

	mu        sync.Mutex
	pos       []float64
	vel       []float64
	eff       []float64
	stamp     []time.Time // per joint: stamp of the message that last set it
	recv      []time.Time // per joint: when that message was stored
	seen      []bool
	missing   int  // joints never seen
	unread    bool // a Store happened since the last ReadState
	messages  atomic.Uint64
	stored    atomic.Uint64
	over      atomic.Uint64
	invalid   atomic.Uint64
	duplicate atomic.Uint64
	beyond    atomic.Uint64
	unknown   atomic.Uint64
}

// NewJointStates returns an empty mailbox for the actuated joints of m. now gives the receive
// time (nil means time.Now).
func NewJointStates(m *robot.Model, now func() time.Time) *JointStates {
	if now == nil {
		now = time.Now
	}
	dof := m.DoF()
	lims := make([]robot.Limits, dof)
	for i, jt := range m.Joints {
		lims[i] = jt.Limits
	}
	j := &JointStates{
		lims:    lims,
		names:   m.Names(),
		index:   make(map[string]int, dof),
		now:     now,
		pos:     make([]float64, dof),
		vel:     make([]float64, dof),
		eff:     make([]float64, dof),
		stamp:   make([]time.Time, dof),
		recv:    make([]time.Time, dof),
		seen:    make([]bool, dof),
		missing: dof,
	}
	for i, n := range j.names {
		j.index[n] = i
	}
	return j
}

// DoF returns the number of joints in model order.
func (j *JointStates) DoF() int { return len(j.names) }

// Store merges a JointState message into the mailbox. It is the subscriber callback: it matches
// names, validates lengths and copies values, nothing more. It does not keep msg.
func (j *JointStates) Store(msg *sensor_msgs.JointState) {
	j.messages.Add(1)
	n := len(msg.Name)
	if len(msg.Position) != n || (len(msg.Velocity) != 0 && len(msg.Velocity) != n) ||
		(len(msg.Effort) != 0 && len(msg.Effort) != n) {
		j.invalid.Add(1)
		return
	}
	for _, p := range msg.Position {
		if math.IsNaN(p) || math.IsInf(p, 0) {
			j.invalid.Add(1)
			return
		}
	}
	recv := j.now()
	stamp := msg.Header.Stamp
	if stamp.IsZero() {
		stamp = recv
	}

	j.storeMu.Lock()
	defer j.storeMu.Unlock()
	j.idx = j.idx[:0]
	matched, unknown := 0, 0
	for _, name := range msg.Name {
		i, ok := j.index[name]
		if !ok {
			i = -1
			unknown++
		} else {
			if slices.Contains(j.idx, i) {
				// A joint named twice: which value is the robot's? Neither is trusted.
				j.invalid.Add(1)
				j.duplicate.Add(1)
				return
			}
			matched++
		}
		j.idx = append(j.idx, i)
	}
	if unknown > 0 {
		j.unknown.Add(uint64(unknown))
	}
	if matched == 0 {
		return
	}

	// Every message, not only the one a reader happens to see: a position beyond a joint's
	// hard limit (by more than ReadingTolerance) is refused and kept for the next ReadState.
	for k, i := range j.idx {
		if i < 0 {
			continue
		}
		if j.lims == nil {
			break
		}
		if l := &j.lims[i]; l.HasPosition {
			if p := msg.Position[k]; p < l.Lower-ReadingTolerance || p > l.Upper+ReadingTolerance {
				j.invalid.Add(1)
				j.beyond.Add(1)
				j.mu.Lock()
				if j.bad == nil {
					j.bad = fmt.Errorf("ros: joint %q: reading %.4g outside [%.4g, %.4g] (tolerance %g): %w",
						j.names[i], p, l.Lower, l.Upper, ReadingTolerance, robot.ErrBadState)
				}
				j.mu.Unlock()
				return
			}
		}
	}

	j.mu.Lock()
	for k, i := range j.idx {
		if i < 0 {
			continue
		}
		j.pos[i] = msg.Position[k]
		j.vel[i], j.eff[i] = 0, 0
		if len(msg.Velocity) != 0 {
			j.vel[i] = msg.Velocity[k]
		}
		if len(msg.Effort) != 0 {
			j.eff[i] = msg.Effort[k]
		}
		j.stamp[i] = stamp
		j.recv[i] = recv
		if !j.seen[i] {
			j.seen[i] = true
			j.missing--
		}
	}
	overwritten := j.unread
	j.unread = true
	j.mu.Unlock()

	j.stored.Add(1)
	if overwritten {
		j.over.Add(1)
	}
}

// ReadState copies the merged state into dst (its slices are reused when long enough). Stamp is
// the oldest per-joint stamp: the state is as old as its stalest joint. Until every model joint
// has been reported once it returns a *MissingJointsError (errors.Is robot.ErrNoState). After a
// message with a reading beyond a limit it returns, once, an error wrapping robot.ErrBadState
// that names the joint and the reading.
func (j *JointStates) ReadState(dst *robot.State) error {
	j.mu.Lock()
	if err := j.bad; err != nil {
		j.bad = nil
		j.mu.Unlock()
		return err
	}
	if j.missing > 0 {
		missing := make([]string, 0, j.missing)
		for i, s := range j.seen {
			if !s {
				missing = append(missing, j.names[i])
			}
		}
		j.mu.Unlock()
		return &MissingJointsError{Missing: missing}
	}
	dst.Position = append(dst.Position[:0], j.pos...)
	dst.Velocity = append(dst.Velocity[:0], j.vel...)
	dst.Effort = append(dst.Effort[:0], j.eff...)
	oldest := j.stamp[0]
	for _, s := range j.stamp[1:] {
		if s.Before(oldest) {
			oldest = s
		}
	}
	dst.Stamp = oldest
	j.unread = false
	j.mu.Unlock()
	return nil
}

// PositionsTo copies the latest merged joint positions into dst (len DoF) and reports whether
// every joint has been reported once. Unlike ReadState it consumes nothing (a bad reading stays
// for ReadState to report): it is for observers beside the control loop (a visualization).
func (j *JointStates) PositionsTo(dst []float64) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.missing > 0 {
		return false
	}
	copy(dst, j.pos)
	return true
}

// Ages writes, for each joint in model order, how long before now its data was received (-1 for a
// joint never seen) into dst[:DoF] and returns it.
func (j *JointStates) Ages(dst []time.Duration, now time.Time) []time.Duration {
	dst = dst[:0]
	j.mu.Lock()
	for i := range j.names {
		a := time.Duration(-1)
		if j.seen[i] {
			a = now.Sub(j.recv[i])
		}
		dst = append(dst, a)
	}
	j.mu.Unlock()
	return dst
}

// Stats returns the counters.
func (j *JointStates) Stats() JointStateStats {
	return JointStateStats{
		Messages:    j.messages.Load(),
		Stored:      j.stored.Load(),
		Overwritten: j.over.Load(),
		Invalid:     j.invalid.Load(),
		Duplicate:   j.duplicate.Load(),
		Beyond:      j.beyond.Load(),
		Unknown:     j.unknown.Load(),
	}
}
