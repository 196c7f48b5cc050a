package safety

import (
	"errors"
	"fmt"
	"math"
	"sync/atomic"
)

// Kind is the kind of a clamp the filter applied.
type Kind uint8

const (
	Position       Kind = iota // the step was cut to keep a stop before a position limit
	Velocity                   // the step was cut to the velocity limit
	Acceleration               // the step change was cut to the acceleration limit
	Jerk                       // the change of acceleration was cut to the jerk limit
	JerkInfeasible             // the jerk limit had to yield to a hard limit
	NotFinite                  // a NaN or Inf target was replaced by a hold
	NumKinds
)

var kindNames = [NumKinds]string{"position", "velocity", "acceleration", "jerk", "jerk_infeasible", "not_finite"}

func (k Kind) String() string {
	if k < NumKinds {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// ErrOutOfLimits is returned by Reset when a start position lies outside a position band.
var ErrOutOfLimits = errors.New("safety: position outside limits")

// Filter enforces the limits on a stream of joint targets, one call per control tick.
type Filter struct {
	lim []Limit
	dt  float64

	pos    []float64 // last sent command
	s      []float64 // last step p_k - p_{k-1}
	s1     []float64 // the step before
	target []float64 // last finite target, for the target's own step
	active bool

	counts []atomic.Uint64 // [joint*NumKinds + kind]
	totals [NumKinds]atomic.Uint64
}

// NewFilter returns a filter for the resolved limits at control period dt (s). It panics on a
// non-positive dt or limits without a velocity or acceleration (a programmer error: use Resolve).
func NewFilter(lim []Limit, dt float64) *Filter {
	if !(dt > 0) {
		panic("safety: control period must be > 0")
	}
	for _, l := range lim {
		if !(l.Velocity > 0) || !(l.Acceleration > 0) {
			panic("safety: limits without velocity or acceleration; use Resolve")
		}
	}
	n := len(lim)
	return &Filter{
		lim: append([]Limit(nil), lim...), dt: dt,
		pos: make([]float64, n), s: make([]float64, n), s1: make([]float64, n), target: make([]float64, n),
		counts: make([]atomic.Uint64, n*int(NumKinds)),
	}
}

// Limits returns the filter's limits (shared; do not modify).
func (f *Filter) Limits() []Limit { return f.lim }

// Period returns the control period in seconds.
func (f *Filter) Period() float64 { return f.dt }

// Active reports whether the filter has a last command (since Reset).
func (f *Filter) Active() bool { return f.active }

// Reset starts the filter at rest at pos (the measured joint positions). It returns an error
// wrapping ErrOutOfLimits, naming the joint, when a position is outside its hard band
// [HardLower, HardUpper] (beyond 1e-9 of rounding, which is clamped); the filter is then
// inactive. A position between the band and the hard band is allowed: the joint is never
// commanded further out, and comes into the band as its targets ask.
func (f *Filter) Reset(pos []float64) error {
	if len(pos) != len(f.lim) {
		return fmt.Errorf("safety: reset with %d positions for %d joints", len(pos), len(f.lim))
	}
	for i, l := range f.lim {
		p := pos[i]
		if math.IsNaN(p) || math.IsInf(p, 0) {
			f.active = false
			return fmt.Errorf("safety: joint %q: position %v: %w", l.Name, p, ErrOutOfLimits)
		}
		if l.HasPosition {
			const tol = 1e-9
			if p < l.HardLower-tol || p > l.HardUpper+tol {
				f.active = false
				return fmt.Errorf("safety: joint %q: position %g outside [%g, %g]: %w", l.Name, p, l.HardLower, l.HardUpper, ErrOutOfLimits)
			}
			p = math.Min(math.Max(p, l.HardLower), l.HardUpper)
		}
		f.pos[i], f.s[i], f.s1[i], f.target[i] = p, 0, 0, p
	}
	f.active = true
	return nil
}

// CopyState makes f continue from src's last commands (its counters are not copied): a scratch
// filter predicts what src will command (trajectory output). Both must have the same limits.
func (f *Filter) CopyState(src *Filter) {
	copy(f.pos, src.pos)
	copy(f.s, src.s)
	copy(f.s1, src.s1)
	copy(f.target, src.target)
	f.active = src.active
}

// Follow makes p the last sent command without filtering it: for a command that a copy of this
// filter produced earlier (a trajectory being executed). It keeps the guarantee only for such p.
func (f *Filter) Follow(p []float64) {
	for j := range f.pos {
		s := p[j] - f.pos[j]
		f.s1[j], f.s[j], f.pos[j], f.target[j] = f.s[j], s, p[j], p[j]
	}
}

// Last copies the last sent command into dst.
func (f *Filter) Last(dst []float64) { copy(dst, f.pos) }

// Velocity copies the last command's finite-difference velocity (rad/s) into dst.
func (f *Filter) Velocity(dst []float64) {
	for i, s := range f.s {
		dst[i] = s / f.dt
	}
}

// AtRest reports whether the last two commands were equal within tol (rad per tick).
func (f *Filter) AtRest(tol float64) bool {
	for _, s := range f.s {
		if math.Abs(s) > tol {
			return false
		}
	}
	return true
}

// Step writes into dst the command closest to target that respects the limits, and makes it the
// last sent command. A NaN or Inf target component holds that joint (decelerates it to a stop).
// The filter must be active (Reset).
func (f *Filter) Step(dst, target []float64) {
	for j := range f.lim {
		t := target[j]
		if math.IsNaN(t) || math.IsInf(t, 0) {
			f.count(j, NotFinite)
			dst[j] = f.joint(j, 0, true)
			continue
		}
		dst[j] = f.joint(j, t, false)
	}
}

// Hold writes into dst a command that decelerates every joint to a stop as fast as the limits
// allow, and makes it the last sent command.
func (f *Filter) Hold(dst []float64) {
	for j := range f.lim {
		dst[j] = f.joint(j, 0, true)
	}
}

func (f *Filter) count(j int, k Kind) {
	f.counts[j*int(NumKinds)+int(k)].Add(1)
	f.totals[k].Add(1)
}

// Count returns how many clamps of kind k the filter applied to joint j (j < 0: all joints).
func (f *Filter) Count(j int, k Kind) uint64 {
	if j < 0 {
		return f.totals[k].Load()
	}
	return f.counts[j*int(NumKinds)+int(k)].Load()
}

// joint computes the next command of joint j: the desired step is target-p (or 0 when holding),
// capped by a braking curve toward the target, then shaped by the jerk limit, then clamped to
// the hard band (velocity, acceleration, position), which always has priority.
func (f *Filter) joint(j int, target float64, hold bool) float64 {
	l := &f.lim[j]
	dt := f.dt
	p, s, s1 := f.pos[j], f.s[j], f.s1[j]
	dec := l.Acceleration * dt * dt // the most a step may change per tick

	want := 0.0
	if !hold {
		e := target - p
		want = e
		// Braking toward the target: approach a static target without overshoot; the target's
		// own step is added so that a moving target is tracked exactly when feasible.
		st := math.Abs(target - f.target[j])
		// With a jerk limit the deceleration takes dec/eps ticks to build up, during which the
		// joint keeps (at most) its current step: reserve that distance.
		reserve := 0.0
		if l.Jerk > 0 {
			reserve = math.Abs(s) * dec / (l.Jerk * dt * dt * dt)
		}
		if e > 0 {
			want = math.Min(want, stepLimit(e-reserve, dec)+st)
		} else if e < 0 {
			want = math.Max(want, -stepLimit(-e-reserve, dec)-st)
		}
		f.target[j] = target
	} else {
		f.target[j] = p
	}

	// The hard band.
	vmax := l.Velocity * dt
	lo, hi := -vmax, vmax
	kLo, kHi := Velocity, Velocity
	if s-dec > lo {
		lo, kLo = s-dec, Acceleration
	}
	if s+dec < hi {
		hi, kHi = s+dec, Acceleration
	}
	if l.HasPosition {
		if h := stepLimit(l.Upper-p, dec); h < hi {
			hi, kHi = h, Position
		}
		if m := -stepLimit(p-l.Lower, dec); m > lo {
			lo, kLo = m, Position
		}
	}
	if lo > hi {
		// Only rounding (or a state the invariant excludes) gets here: brake as hard as allowed.
		b := math.Min(math.Max(0, s-dec), s+dec)
		b = math.Min(math.Max(b, -vmax), vmax)
		lo, hi = b, b
	}

	// Jerk, best effort: limit the change of the step's change, and brake it toward the wanted
	// velocity so the acceleration can return to zero on time.
	if l.Jerk > 0 {
		eps := l.Jerk * dt * dt * dt
		c0 := s - s1
		c := want - s
		if c > 0 {
			c = math.Min(c, stepLimit(c, eps))
		} else if c < 0 {
			c = math.Max(c, -stepLimit(-c, eps))
		}
		// The acceleration may fall to zero at once (never cause a limit cycle near a target)
		// but grows by at most eps per tick.
		hiC, loC := c0+eps, c0-eps
		if c0 > 0 {
			loC = math.Min(loC, 0)
		} else if c0 < 0 {
			hiC = math.Max(hiC, 0)
		}
		if c > hiC {
			c = hiC
			f.count(j, Jerk)
		} else if c < loC {
			c = loC
			f.count(j, Jerk)
		}
		if s+c > hi || s+c < lo {
			f.count(j, JerkInfeasible)
		}
		want = s + c
	}

	step := want
	if step > hi {
		step = hi
		f.count(j, kHi)
	} else if step < lo {
		step = lo
		f.count(j, kLo)
	}
	np := p + step
	if l.HasPosition {
		// Rounding only: the band above keeps np inside, or, for a joint that started outside
		// (between a soft and a hard limit), never further out than it is.
		if np > l.Upper && np > p {
			np = math.Max(p, l.Upper)
		} else if np < l.Lower && np < p {
			np = math.Min(p, l.Lower)
		}
	}
	f.s1[j] = s
	f.s[j] = np - p
	f.pos[j] = np
	return np
}

// stepLimit returns the largest step s >= 0 such that a joint taking step s now and then
// shrinking its step by dec each tick (s-dec, s-2dec, ... while positive) travels at most dist.
// It is the discrete braking curve: with n = floor(s/dec) the distance is
// (n+1) s - dec n (n+1)/2, piecewise linear and increasing in s. dist <= 0 gives 0.
func stepLimit(dist, dec float64) float64 {
	if !(dist > 0) {
		return 0
	}
	if math.IsInf(dist, 1) {
		return math.Inf(1)
	}
	x := 8 * dist / dec
	if x > 1e24 {
		// Beyond 5e11 ticks of braking the discrete curve is the continuous one to 1e-12
		// relative, and far beyond any velocity limit; n+1 would no longer differ from n.
		return math.Sqrt(2 * dist * dec)
	}
	// n is the largest integer with dec n (n+1)/2 <= dist; the square root is off by at most
	// one either way, so each correction loop runs at most a few times.
	n := math.Floor((math.Sqrt(1+x) - 1) / 2)
	for i := 0; i < 4 && n > 0 && dec*n*(n+1)/2 > dist; i++ {
		n--
	}
	for i := 0; i < 4 && dec*(n+1)*(n+2)/2 <= dist; i++ {
		n++
	}
	return (dist + dec*n*(n+1)/2) / (n + 1)
}
