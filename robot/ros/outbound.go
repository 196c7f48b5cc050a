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

// commandBox is the outgoing queue of per-tick commands: put (the control tick) copies
// positions into the next of a ring of preallocated slots under a mutex and signals the sender;
// the sender takes them in order, each into a fresh message (goroslib encodes it later, on its
// own goroutines, so a message can never be reused), and hands them to the publisher. While a
// sender runs, never is a command replaced by the next: a robot differencing the stream would
// see two steps in one. A full ring (the sender starved for commandQueue ticks) refuses the new
// command (put returns false: robot.ErrBusy), which is counted as dropped. With no sender (no
// master connection) nothing reaches the robot anyway and the connection discards what
// waits: a full ring drops its oldest command for the new one.
type commandBox struct {
	mu      sync.Mutex
	slots   [][]float64
	head    int           // the oldest queued slot
	n       int           // queued
	signal  chan struct{} // capacity 1
	sending atomic.Bool   // a sender is running

	written atomic.Uint64 // put calls
	sent    atomic.Uint64 // messages handed to the publisher
	dropped atomic.Uint64 // refused (queue full) or discarded before sending
}

// commandQueue is the ring's length: 64 ticks (128 ms at 500 Hz, 640 ms at 100 Hz) of a sender
// that did not run (goroslib's publisher goroutine takes each message through an unbuffered
// channel, so a starved process starves the sender twice); a sender starved longer than that
// leaves the robot without commands anyway.
const commandQueue = 64

func newCommandBox(dof int) *commandBox {
	b := &commandBox{slots: make([][]float64, commandQueue), signal: make(chan struct{}, 1)}
	for i := range b.slots {
		b.slots[i] = make([]float64, dof)
	}
	return b
}

// put queues pos; false when the queue is full (nothing queued). It never blocks and does not
// allocate.
func (b *commandBox) put(pos []float64) bool {
	b.written.Add(1)
	b.mu.Lock()
	if b.n == len(b.slots) {
		b.dropped.Add(1)
		if b.sending.Load() {
			b.mu.Unlock()
			return false
		}
		b.head = (b.head + 1) % len(b.slots)
		b.n--
	}
	copy(b.slots[(b.head+b.n)%len(b.slots)], pos)
	b.n++
	b.mu.Unlock()
	select {
	case b.signal <- struct{}{}:
	default:
	}
	return true
}

// take returns a new message holding the oldest queued command, or nil.
func (b *commandBox) take() *std_msgs.Float64MultiArray {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.n == 0 {
		return nil
	}
	pos := slices.Clone(b.slots[b.head])
	b.head = (b.head + 1) % len(b.slots)
	b.n--
	n := uint32(len(pos))
	return &std_msgs.Float64MultiArray{
		Layout: std_msgs.MultiArrayLayout{Dim: []std_msgs.MultiArrayDimension{{Label: "joints", Size: n, Stride: n}}},
		Data:   pos,
	}
}

// discard drops the queued commands (written while no master connection existed: stale by the
// time a connection comes up).
func (b *commandBox) discard() {
	b.mu.Lock()
	b.dropped.Add(uint64(b.n))
	b.head, b.n = 0, 0
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
