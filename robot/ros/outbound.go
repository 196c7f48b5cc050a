package ros

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/goroslib/v2"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/diagnostic_msgs"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/std_msgs"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/trajectory_msgs"

	"github.com/flowact/flowact/robot"
)

// commandBox is the outgoing latest-value mailbox for per-tick commands: put (the control tick)
// copies positions into a preallocated slot under a mutex and signals the sender; the sender
// builds a fresh message (goroslib encodes it later, on its own goroutines, so a message can never
// be reused) and hands it to the publisher. A command not yet taken when the next arrives is
// replaced and counted as dropped.
type commandBox struct {
	mu      sync.Mutex
	pos     []float64
	pending bool
	signal  chan struct{} // capacity 1

	written atomic.Uint64 // put calls
	sent    atomic.Uint64 // messages handed to the publisher
	dropped atomic.Uint64 // replaced or discarded before sending
}

func newCommandBox(dof int) *commandBox {
	return &commandBox{pos: make([]float64, dof), signal: make(chan struct{}, 1)}
}

// put stores c's positions. It never blocks and does not allocate.
func (b *commandBox) put(pos []float64) {
	b.mu.Lock()
	copy(b.pos, pos)
	if b.pending {
		b.dropped.Add(1)
	}
	b.pending = true
	b.mu.Unlock()
	b.written.Add(1)
	select {
	case b.signal <- struct{}{}:
	default:
	}
}

// take returns a new message holding the pending command, or nil.
func (b *commandBox) take() *std_msgs.Float64MultiArray {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.pending {
		return nil
	}
	b.pending = false
	n := uint32(len(b.pos))
	return &std_msgs.Float64MultiArray{
		Layout: std_msgs.MultiArrayLayout{Dim: []std_msgs.MultiArrayDimension{{Label: "joints", Size: n, Stride: n}}},
		Data:   slices.Clone(b.pos),
	}
}

// discard drops a pending command (one written while no master connection existed: stale by the
// time a connection comes up).
func (b *commandBox) discard() {
	b.mu.Lock()
	if b.pending {
		b.pending = false
		b.dropped.Add(1)
	}
	b.mu.Unlock()
}

// latest is the outgoing latest-value mailbox for messages built by the caller's goroutine
// (trajectories, and everything SimSide publishes but joint states): put stores a message and
// signals the sender, take empties it. A message replaced or discarded before it was taken counts
// as dropped. Call init before use.
type latest[T any] struct {
	p       atomic.Pointer[T]
	signal  chan struct{} // capacity 1
	written atomic.Uint64 // put calls
	sent    atomic.Uint64 // messages handed to the publisher
	dropped atomic.Uint64 // replaced or discarded before sending
}

func (b *latest[T]) init() { b.signal = make(chan struct{}, 1) }

func (b *latest[T]) put(m *T) {
	b.written.Add(1)
	if b.p.Swap(m) != nil {
		b.dropped.Add(1)
	}
	select {
	case b.signal <- struct{}{}:
	default:
	}
}

func (b *latest[T]) take() *T { return b.p.Swap(nil) }

// discard drops a message stored while no connection existed: stale once one comes up.
func (b *latest[T]) discard() {
	if b.p.Swap(nil) != nil {
		b.dropped.Add(1)
	}
}

// sender returns the loop that hands box's messages to pub until ctx ends.
func sender[T any](box *latest[T], pub *goroslib.Publisher) func(context.Context) {
	return func(ctx context.Context) {
		for {
			select {
			case <-ctx.Done():
				return
			case <-box.signal:
			}
			if m := box.take(); m != nil {
				pub.Write(m)
				box.sent.Add(1)
			}
		}
	}
}

// trajectoryMsg builds a JointTrajectory in model order. Header.stamp is tr.Start (zero means
// "start now" to joint_trajectory_controller).
func trajectoryMsg(names []string, tr *robot.Trajectory) (*trajectory_msgs.JointTrajectory, error) {
	dof := len(names)
	k := len(tr.TimeFromStart)
	if k == 0 {
		return nil, fmt.Errorf("ros: trajectory has no points")
	}
	if len(tr.Positions) != k*dof {
		return nil, fmt.Errorf("ros: trajectory has %d positions for %d points x %d joints", len(tr.Positions), k, dof)
	}
	m := &trajectory_msgs.JointTrajectory{
		Header:     std_msgs.Header{Stamp: tr.Start},
		JointNames: names,
		Points:     make([]trajectory_msgs.JointTrajectoryPoint, k),
	}
	var prev time.Duration = -1
	for i, d := range tr.TimeFromStart {
		if d <= prev || d < 0 {
			return nil, fmt.Errorf("ros: trajectory point %d: time_from_start %v not after %v", i, d, prev)
		}
		prev = d
		pos := tr.Positions[i*dof : (i+1)*dof]
		for j, p := range pos {
			if math.IsNaN(p) || math.IsInf(p, 0) {
				return nil, fmt.Errorf("ros: trajectory point %d: joint %q position %v", i, names[j], p)
			}
		}
		m.Points[i] = trajectory_msgs.JointTrajectoryPoint{Positions: slices.Clone(pos), TimeFromStart: d}
	}
	return m, nil
}

// Level is a diagnostic level (diagnostic_msgs/DiagnosticStatus).
type Level int8

// Diagnostic levels.
const (
	LevelOK    Level = 0
	LevelWarn  Level = 1
	LevelError Level = 2
	LevelStale Level = 3
)

// KeyValue is one diagnostic value.
type KeyValue struct{ Key, Value string }

// Status is one diagnostic status (diagnostic_msgs/DiagnosticStatus).
type Status struct {
	Level      Level
	Name       string // e.g. "flowact: policy"
	Message    string
	HardwareID string
	Values     []KeyValue
}

// statusBoard holds the latest status per name, published with every DiagnosticArray.
type statusBoard struct {
	mu sync.Mutex
	m  map[string]Status
}

func (s *statusBoard) set(st Status) {
	st.Values = slices.Clone(st.Values)
	s.mu.Lock()
	if s.m == nil {
		s.m = map[string]Status{}
	}
	s.m[st.Name] = st
	s.mu.Unlock()
}

func (s *statusBoard) appendTo(dst []diagnostic_msgs.DiagnosticStatus) []diagnostic_msgs.DiagnosticStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, name := range slices.Sorted(maps.Keys(s.m)) {
		dst = append(dst, statusMsg(s.m[name]))
	}
	return dst
}

func statusMsg(st Status) diagnostic_msgs.DiagnosticStatus {
	m := diagnostic_msgs.DiagnosticStatus{Level: int8(st.Level), Name: st.Name, Message: st.Message, HardwareId: st.HardwareID}
	for _, kv := range st.Values {
		m.Values = append(m.Values, diagnostic_msgs.KeyValue{Key: kv.Key, Value: kv.Value})
	}
	return m
}

func u64(v uint64) string { return strconv.FormatUint(v, 10) }
