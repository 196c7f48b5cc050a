package safety

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// ErrState is wrapped by StateGuard's errors: a joint state no robot within its limits can be
// in, or move to.
var ErrState = errors.New("safety: implausible joint state")

// Defaults of StateGuard.
const (
	// DefaultStateTolerance (rad or m): how far a measured position may lie beyond the hard
	// band, and how far a joint may move beyond what its velocity limit allows between two
	// states, before the state is refused. 0.01 rad (0.6 degree) is well above encoder
	// resolution and a position controller's overshoot at the limit, and far below a wrong
	// reading.
	DefaultStateTolerance = 0.01
	// JumpFactor: a joint may move up to JumpFactor x its velocity limit x the time between two
	// states (plus the tolerance): a robot tracking commands within the limit overshoots them a
	// little, never by half.
	JumpFactor = 1.5
)

// StateGuard checks every measured joint state, not only the first: a position outside the hard
// band (beyond Tolerance) or a change between two consecutive states (by their stamps) that no
// motion within JumpFactor times the velocity limit explains is an error naming the joint, the
// values and the limit. A state whose stamp is not after the last one checked is skipped (the
// same message read again); one that differs with the same stamp, or whose stamp goes back,
// comes from a second publisher: an error. Check allocates only to build an error.
type StateGuard struct {
	lim       []Limit
	tol       float64
	prev      []float64
	prevStamp time.Time
	has       bool
}

// NewStateGuard returns a guard for the resolved limits; tol <= 0 means DefaultStateTolerance.
func NewStateGuard(lim []Limit, tol float64) *StateGuard {
	if !(tol > 0) {
		tol = DefaultStateTolerance
	}
	return &StateGuard{lim: lim, tol: tol, prev: make([]float64, len(lim))}
}

// Reset forgets the previous state (after a gap in which the robot may have been moved).
func (g *StateGuard) Reset() { g.has = false }

// Check checks the state with positions pos stamped at stamp against the limits and the last
// state checked, and remembers it.
func (g *StateGuard) Check(pos []float64, stamp time.Time) error {
	if len(pos) != len(g.lim) {
		return fmt.Errorf("safety: state of %d joints for %d: %w", len(pos), len(g.lim), ErrState)
	}
	if g.has && !stamp.After(g.prevStamp) {
		same := true
		for i, p := range pos {
			if p != g.prev[i] {
				same = false
				break
			}
		}
		switch {
		case same && stamp.Equal(g.prevStamp):
			return nil // the same state again
		case stamp.Equal(g.prevStamp):
			return fmt.Errorf("safety: two joint states stamped %s differ (two publishers?): %w", stamp.Format(time.RFC3339Nano), ErrState)
		default:
			return fmt.Errorf("safety: joint state stamp went back %v, from %s (two publishers?): %w",
				g.prevStamp.Sub(stamp), g.prevStamp.Format(time.RFC3339Nano), ErrState)
		}
	}
	for i, l := range g.lim {
		p := pos[i]
		if math.IsNaN(p) || math.IsInf(p, 0) {
			return fmt.Errorf("safety: joint %q: position %v: %w", l.Name, p, ErrState)
		}
		if l.HasPosition && (p < l.HardLower-g.tol || p > l.HardUpper+g.tol) {
			return fmt.Errorf("safety: joint %q: position %.4g outside [%.4g, %.4g] (tolerance %g): %w", l.Name, p, l.HardLower, l.HardUpper, g.tol, ErrState)
		}
	}
	if g.has {
		dt := stamp.Sub(g.prevStamp).Seconds()
		for i, l := range g.lim {
			jump := math.Abs(pos[i] - g.prev[i])
			if most := JumpFactor*l.Velocity*dt + g.tol; jump > most {
				return fmt.Errorf("safety: joint %q moved %.4g in %.4g s, from %.4g to %.4g (at most %.4g within its %g velocity limit): %w",
					l.Name, jump, dt, g.prev[i], pos[i], most, l.Velocity, ErrState)
			}
		}
	}
	copy(g.prev, pos)
	g.prevStamp, g.has = stamp, true
	return nil
}
