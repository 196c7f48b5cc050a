package safety

import (
	"errors"
	"fmt"
	"sync/atomic"
)

// State is the supervisor's state.
//
//	idle --Start--> running --Hold--> holding --Start--> running
//	running/holding --Stop--> stopping --(at rest)--> idle
//	any --Trip--> fault --Reset--> stopping --(at rest)--> idle
//
// In idle no command is sent; in holding, stopping and fault the robot is decelerated to a stop
// and kept there; a fault latches until Reset.
type State uint32

const (
	Idle State = iota
	Running
	Holding
	Stopping
	Fault
)

var stateNames = [...]string{"idle", "running", "holding", "stopping", "fault"}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", uint32(s))
}

// Errors returned by the Machine's commands.
var (
	ErrFaulted    = errors.New("safety: fault latched: reset first")
	ErrNotRunning = errors.New("safety: not running")
	ErrNotFaulted = errors.New("safety: no fault to reset")
)

// Machine is the supervisory state machine. Its methods are safe for concurrent use: commands
// (from ROS services or a CLI) and the control tick change it with compare-and-swap.
type Machine struct {
	state atomic.Uint32
	gen   atomic.Uint64 // incremented on every transition into running
	cause atomic.Pointer[string]
}

// State returns the current state.
func (m *Machine) State() State { return State(m.state.Load()) }

// Generation counts transitions into running; the loop restarts its plan when it changes.
func (m *Machine) Generation() uint64 { return m.gen.Load() }

// Cause returns the reason of the latched fault ("" when none).
func (m *Machine) Cause() string {
	if p := m.cause.Load(); p != nil {
		return *p
	}
	return ""
}

func (m *Machine) cas(from, to State) bool { return m.state.CompareAndSwap(uint32(from), uint32(to)) }

// Start moves idle, holding or stopping to running.
func (m *Machine) Start() error {
	for {
		switch s := m.State(); s {
		case Running:
			return nil
		case Fault:
			return ErrFaulted
		default:
			if m.cas(s, Running) {
				m.gen.Add(1)
				return nil
			}
		}
	}
}

// Hold moves running to holding: the robot decelerates to a stop and stays there.
func (m *Machine) Hold() error {
	for {
		switch s := m.State(); s {
		case Holding:
			return nil
		case Running:
			if m.cas(s, Holding) {
				return nil
			}
		case Fault:
			return ErrFaulted
		default:
			return fmt.Errorf("safety: hold in state %v: %w", s, ErrNotRunning)
		}
	}
}

// Stop moves running or holding to stopping; the loop moves stopping to idle once at rest.
func (m *Machine) Stop() error {
	for {
		switch s := m.State(); s {
		case Idle, Stopping:
			return nil
		case Fault:
			return ErrFaulted
		default:
			if m.cas(s, Stopping) {
				return nil
			}
		}
	}
}

// Reset clears a latched fault: fault moves to stopping, then idle once at rest.
func (m *Machine) Reset() error {
	if m.cas(Fault, Stopping) {
		m.cause.Store(nil)
		return nil
	}
	return ErrNotFaulted
}

// Trip latches a fault with a cause, from any state.
func (m *Machine) Trip(cause string) {
	m.cause.Store(&cause)
	m.state.Store(uint32(Fault))
}

// Settle moves stopping to idle; the loop calls it once the robot is at rest.
func (m *Machine) Settle() { m.cas(Stopping, Idle) }
