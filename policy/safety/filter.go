package safety

import (
	"errors"
	"fmt"
	"math"
	"sync/atomic"
)

// Kind is the kind of a clamp the filter applied (and of a violation a Monitor found).
type Kind uint8

const (
	Position       Kind = iota // the step was cut to keep a stop before a position limit
	Velocity                   // the step was cut to the velocity limit
	Acceleration               // the step change was cut to the acceleration limit
	Jerk                       // the change of acceleration was cut to the jerk limit
	JerkInfeasible             // no step within every limit existed: the joint braked (rounding, or a Follow of a foreign command)
	NotFinite                  // a NaN or Inf target was replaced by a hold
	StartBeyond                // a start state beyond a limit (ResetMoving): braked into the limits
	NumKinds
)

var kindNames = [NumKinds]string{"position", "velocity", "acceleration", "jerk", "jerk_infeasible", "not_finite", "start_beyond"}

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
	jl  []jlim // per tick; used where Jerk > 0
	dt  float64

	pos    []float64 // last sent command
	s      []float64 // last step p_k - p_{k-1}
	s1     []float64 // the step before
	target []float64 // last finite target, for the target's own step
	tstep  []float64 // the target's last step (jerk-limited joints)
	th     []uint8   // how much target history target and tstep hold: 0, 1 or 2
	// The envelope the joint's braking trajectory must stay in: the band [Lower, Upper] and the
	// velocity limit (rad per tick), wider only after a start beyond them, and only shrinking.
	hiB, loB, vB []float64
	active       bool

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
		if !(l.Velocity > 0) || !(l.Acceleration > 0) || !(l.Jerk >= 0) || math.IsInf(l.Jerk, 0) {
			panic("safety: limits without velocity or acceleration, or with a negative or infinite jerk; use Resolve")
		}
	}
	n := len(lim)
	f := &Filter{
		lim: append([]Limit(nil), lim...), jl: make([]jlim, n), dt: dt,
		pos: make([]float64, n), s: make([]float64, n), s1: make([]float64, n), target: make([]float64, n),
		tstep: make([]float64, n), th: make([]uint8, n),
		hiB: make([]float64, n), loB: make([]float64, n), vB: make([]float64, n),
		counts: make([]atomic.Uint64, n*int(NumKinds)),
	}
	for j := range f.lim {
		if f.lim[j].Jerk > 0 {
			f.jl[j] = newJlim(&f.lim[j], dt)
		}
	}
	return f
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
func (f *Filter) Reset(pos []float64) error { return f.ResetMoving(pos, nil) }

// ResetMoving starts the filter from the robot's measured state: positions pos and velocities
// vel (rad/s; nil means at rest), the acceleration taken as zero. Positions are checked as by
// Reset. The first command then continues that motion within the acceleration and jerk limits
// instead of assuming rest. A measured velocity beyond a joint's limit, or one that cannot stop
// inside the position band, is braked at the limits (the braking law, whatever the targets)
// until the joint is back within them; the joint is counted once as StartBeyond, and meanwhile
// its commands may exceed the velocity limit or leave the band by at most what that braking
// from the measured state needs (position never beyond where the brake ends, velocity never
// above the measured one). A NaN or Inf velocity is an error.
func (f *Filter) ResetMoving(pos, vel []float64) error {
	if len(pos) != len(f.lim) || vel != nil && len(vel) != len(f.lim) {
		return fmt.Errorf("safety: reset with %d positions and %d velocities for %d joints", len(pos), len(vel), len(f.lim))
	}
	for i, l := range f.lim {
		p := pos[i]
		if math.IsNaN(p) || math.IsInf(p, 0) {
			f.active = false
			return fmt.Errorf("safety: joint %q: position %v: %w", l.Name, p, ErrOutOfLimits)
		}
		if vel != nil && (math.IsNaN(vel[i]) || math.IsInf(vel[i], 0)) {
			f.active = false
			return fmt.Errorf("safety: joint %q: velocity %v is not finite: %w", l.Name, vel[i], ErrOutOfLimits)
		}
		if l.HasPosition {
			const tol = 1e-9
			if p < l.HardLower-tol || p > l.HardUpper+tol {
				f.active = false
				return fmt.Errorf("safety: joint %q: position %g outside [%g, %g]: %w", l.Name, p, l.HardLower, l.HardUpper, ErrOutOfLimits)
			}
		}
	}
	for i := range f.lim {
		l := &f.lim[i]
		p := pos[i]
		if l.HasPosition {
			p = math.Min(math.Max(p, l.HardLower), l.HardUpper)
		}
		s := 0.0
		if vel != nil {
			s = vel[i] * f.dt
		}
		f.pos[i], f.s[i], f.s1[i], f.target[i], f.tstep[i], f.th[i] = p, s, s, p, 0, 0
		// The envelope: the band and the velocity limit, widened to what braking from the
		// measured state needs.
		f.rebase(i)
		if f.vB[i] > l.Velocity*f.dt || l.HasPosition && (f.hiB[i] > l.Upper+f.slack(i) || f.loB[i] < l.Lower-f.slack(i)) {
			f.count(i, StartBeyond)
		}
	}
	f.active = true
	return nil
}

// slack is the rounding allowance of joint j's braking extents (rad): posSlack, or for a jerk
// limited joint the rounding its braking trajectory accumulates (jlim.round).
func (f *Filter) slack(j int) float64 {
	l := &f.lim[j]
	sl := 4 * posSlack(l)
	if l.Jerk > 0 {
		sl = math.Max(sl, f.jl[j].round*math.Max(1, math.Max(math.Abs(l.Lower), math.Abs(l.Upper))))
	}
	return sl
}

// posSlack is the rounding allowance of a joint's position checks (rad): 1e-12 of its scale.
func posSlack(l *Limit) float64 {
	return 1e-12 * math.Max(1, math.Max(math.Abs(l.Lower), math.Abs(l.Upper)))
}

// CopyState makes f continue from src's last commands (its counters are not copied): a scratch
// filter predicts what src will command (trajectory output). Both must have the same limits.
func (f *Filter) CopyState(src *Filter) {
	copy(f.pos, src.pos)
	copy(f.s, src.s)
	copy(f.s1, src.s1)
	copy(f.target, src.target)
	copy(f.tstep, src.tstep)
	copy(f.th, src.th)
	copy(f.hiB, src.hiB)
	copy(f.loB, src.loB)
	copy(f.vB, src.vB)
	f.active = src.active
}

// Follow makes p the last sent command without filtering it: for a command that a copy of this
// filter produced earlier (a trajectory being executed). It keeps the guarantee only for such p.
// The target's motion is forgotten (the next Step takes its target as new, not as a move of p).
// For any other p (a jump) the filter recovers as from a start beyond the limits: it brakes at
// the limits and leaves the band by at most what that braking needs.
func (f *Filter) Follow(p []float64) {
	for j := range f.pos {
		s := p[j] - f.pos[j]
		f.s1[j], f.s[j], f.pos[j], f.target[j], f.tstep[j], f.th[j] = f.s[j], s, p[j], p[j], 0, 0
		f.rebase(j)
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

// Acceleration copies the last command's finite-difference acceleration (rad/s^2) into dst.
func (f *Filter) Acceleration(dst []float64) {
	for i, s := range f.s {
		dst[i] = (s - f.s1[i]) / (f.dt * f.dt)
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

// StopTicks returns how many Hold calls bring every joint to rest from the last command (its
// step and, with a jerk limit, its step change zero): the braking time in ticks, for a caller
// that must decelerate before its stream ends. It allocates nothing.
func (f *Filter) StopTicks() int {
	n := 0
	for j := range f.lim {
		s, c := f.s[j], f.s[j]-f.s1[j]
		if f.lim[j].Jerk > 0 {
			n = max(n, f.jl[j].stop(s, c).ticks)
		} else if s != 0 {
			dec := f.lim[j].Acceleration * f.dt * f.dt
			n = max(n, int(math.Ceil(math.Abs(s)/dec)))
		}
	}
	return n
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

func (f *Filter) joint(j int, target float64, hold bool) float64 {
	if f.lim[j].Jerk > 0 {
		return f.jerkJoint(j, target, hold)
	}
	return f.accJoint(j, target, hold)
}

// accJoint is the second-order filter of a joint without a jerk limit: the desired step is
// target-p (or 0 when holding), capped by a braking curve toward the target, then clamped to
// the hard band (velocity, acceleration, position), which always has priority. The jerk is then
// unbounded: the acceleration may change from -A to A in one tick.
func (f *Filter) accJoint(j int, target float64, hold bool) float64 {
	l := &f.lim[j]
	dt := f.dt
	p, s := f.pos[j], f.s[j]
	dec := l.Acceleration * dt * dt // the most a step may change per tick

	want := 0.0
	if !hold {
		e := target - p
		want = e
		// Braking toward the target: approach a static target without overshoot; the target's
		// own step is added so that a moving target is tracked exactly when feasible.
		st := math.Abs(target - f.target[j])
		if e > 0 {
			want = math.Min(want, stepLimit(e, dec)+st)
		} else if e < 0 {
			want = math.Max(want, -stepLimit(-e, dec)-st)
		}
		f.target[j] = target
	} else {
		f.target[j] = p
	}

	// The hard band. A start faster than the velocity limit (vB above it) brakes by dec.
	vmax := l.Velocity * dt
	if f.vB[j] > vmax {
		want = s - math.Copysign(math.Min(dec, math.Abs(s)), s)
	}
	lo, hi := -vmax, vmax
	kLo, kHi := Velocity, Velocity
	if s-dec > lo {
		lo, kLo = s-dec, Acceleration
	}
	if s+dec < hi {
		hi, kHi = s+dec, Acceleration
	}
	if l.HasPosition {
		if h := stepLimit(f.hiB[j]-p, dec); h < hi {
			hi, kHi = h, Position
		}
		if m := -stepLimit(p-f.loB[j], dec); m > lo {
			lo, kLo = m, Position
		}
	}
	if lo > hi {
		// Rounding, a start beyond the limits, or a foreign Follow: brake as hard as allowed.
		b := math.Min(math.Max(0, s-dec), s+dec)
		lo, hi = b, b
	}
	step := want
	if step > hi {
		step = hi
		f.count(j, kHi)
	} else if step < lo {
		step = lo
		f.count(j, kLo)
	}
	// No clamp of np to the band: the braking curve keeps it inside up to rounding, which over
	// a braking of N ticks accumulates to about N^2 ulps of the position (1e-13 rad for 100
	// ticks), and snapping that off in one tick would break the acceleration limit by it.
	np := p + step
	f.s1[j] = s
	f.s[j] = np - p
	f.pos[j] = np
	f.shrink(j)
	return np
}

// shrink narrows joint j's envelope to what its last command's braking needs, never beyond the
// limits: the envelope only shrinks after a start.
func (f *Filter) shrink(j int) { f.envelope(j, false) }

// rebase sets joint j's envelope to what braking from its last command needs (a new start).
func (f *Filter) rebase(j int) { f.envelope(j, true) }

func (f *Filter) envelope(j int, rebase bool) {
	l := &f.lim[j]
	if rebase {
		f.vB[j], f.hiB[j], f.loB[j] = math.Inf(1), math.Inf(1), math.Inf(-1)
	} else if f.vB[j] == l.Velocity*f.dt && (!l.HasPosition || f.hiB[j] == l.Upper && f.loB[j] == l.Lower) {
		return // already the limits: nothing to shrink (the common case, one braking evaluation saved)
	}
	p, s := f.pos[j], f.s[j]
	smax := l.Velocity * f.dt
	var hi, lo, vpk float64
	if l.Jerk > 0 {
		e := f.jl[j].stop(s, s-f.s1[j])
		if !e.ok && !rebase {
			return
		}
		hi, lo, vpk = e.hi, e.lo, e.vpk
	} else {
		dec := l.Acceleration * f.dt * f.dt
		d := travel(math.Abs(s)-dec, dec)
		if s > 0 {
			hi = d
		} else {
			lo = -d
		}
		vpk = math.Abs(s)
	}
	// While moving, the new bounds keep a slack beyond the extents: recomputed every tick, the
	// extents move by rounding, and a bound that followed them inward would creep by it, tick
	// after tick, until it cut into the braking trajectory it bounds. At rest the bound is the
	// position itself: a joint parked beyond a limit never moves further out.
	sl := 0.0
	if s != 0 || s != f.s1[j] {
		sl = f.slack(j)
	}
	if vpk <= smax*(1+1e-12) {
		vpk = smax // within the limit up to rounding: no braking needed
	}
	f.vB[j] = math.Max(smax, math.Min(f.vB[j], vpk))
	if l.HasPosition {
		f.hiB[j] = math.Max(l.Upper, math.Min(f.hiB[j], p+hi+sl))
		f.loB[j] = math.Min(l.Lower, math.Max(f.loB[j], p+lo-sl))
	}
}

// jerkJoint computes the next command of a joint with a jerk limit (see jerk.go): the wanted
// step change follows the target (exactly when the joint is on a target that moves within the
// limits, else so that braking from the next state would end on the target); then, if the
// state it leads to is not admissible, the step change closest to it that is, between it and
// the braking law's.
func (f *Filter) jerkJoint(j int, target float64, hold bool) float64 {
	l := &f.lim[j]
	g := &f.jl[j]
	p, s := f.pos[j], f.s[j]
	c := s - f.s1[j]
	lo, hi := g.box(c)
	cb := math.Min(math.Max(g.curve(s), lo), hi) // the braking law
	want := cb
	braking := hold || f.vB[j] > g.smax // a start beyond the velocity limit brakes first
	var sT float64
	if !braking {
		want, sT = f.chase(j, target, p, s, lo, hi, cb)
	}

	// Keep the state admissible: the most of want that is.
	vB := f.vB[j] + 1e-12*g.smax
	hiB, loB := math.Inf(1), math.Inf(-1)
	if l.HasPosition {
		hiB, loB = f.hiB[j], f.loB[j]
	}
	// ok reports whether step change x leads to an admissible state, with the envelope widened
	// by sl (the braking law's own step is judged with the rounding slack, every other exactly).
	ok := func(x, sl float64) bool {
		s2 := s + x
		p2 := p + s2
		if v, d := g.bound(s2, x); v <= vB && p2+d <= hiB && p2-d >= loB {
			return true // far from every limit: no need for the exact extent
		}
		e := g.stop(s2, x)
		return e.ok && p2+e.hi <= hiB+sl && p2+e.lo >= loB-sl && e.vpk <= vB
	}
	x := want
	if want != cb && !ok(want, 0) {
		x = cb
		if !ok(cb, f.slack(j)) {
			f.count(j, JerkInfeasible)
		} else if d := want - cb; ok(cb+d*0x1p-40, 0) {
			good, bad := cb, want
			for range 60 {
				m := good + (bad-good)/2
				if m == good || m == bad {
					break
				}
				if ok(m, 0) {
					good = m
				} else {
					bad = m
				}
			}
			x = good
			f.count(j, Position)
		} else {
			f.count(j, Position)
		}
	}
	// No clamp to the band here: the admissibility check keeps np within it up to rounding
	// (slack), and cutting that off would break the jerk limit by it.
	np := p + s + x
	f.s1[j] = s
	f.s[j] = np - p
	f.pos[j] = np
	if hold {
		f.target[j], f.tstep[j], f.th[j] = np, 0, 0
	} else {
		f.target[j], f.tstep[j], f.th[j] = target, sT, min(f.th[j]+1, 2)
	}
	f.shrink(j)
	return np
}

// chase returns the wanted step change toward target and the target's step. When the joint is
// on the target's path (a three-tick look-ahead, with the target extrapolated at its current
// acceleration, lands on it and matches its velocity and acceleration within the limits), it
// lands on the target this tick; otherwise it takes the step change whose braking trajectory,
// relative to the target moving on at its current step, ends on the target: the joint
// approaches a static target without overshoot and catches up with a moving one.
func (f *Filter) chase(j int, target, p, s, lo, hi, cb float64) (want, sT float64) {
	g := &f.jl[j]
	var cT float64
	if f.th[j] >= 1 {
		sT = target - f.target[j]
		if f.th[j] >= 2 {
			cT = sT - f.tstep[j]
		}
		c1 := target - p - s
		s1 := s + c1
		s2 := sT + cT
		c2 := s2 - s1
		s3 := s2 + cT
		if c1 >= lo && c1 <= hi && math.Abs(c2-c1) <= g.emax && math.Abs(cT-c2) <= g.emax &&
			math.Abs(c2) <= g.cmax && math.Abs(cT) <= g.cmax &&
			math.Abs(s1) <= g.smax && math.Abs(s2) <= g.smax && math.Abs(s3) <= g.smax {
			return c1, sT
		}
	}
	// The velocity limit in closed form (the braking law releases a step change x > 0 with
	// s + travel(x) at the top): no need to search for it below.
	vB := f.vB[j]
	vlo, vhi := math.Max(lo, -stepLimit(vB+s, g.emax)), math.Min(hi, stepLimit(vB-s, g.emax))
	if vlo > vhi {
		vlo, vhi = cb, cb
	}
	rs := math.Min(math.Max(sT, -g.smax), g.smax) // the frame moves with the target's step
	fn := func(x float64) float64 {
		return p + s + x - target + g.stop(s+x-rs, x).end
	}
	fh := fn(vhi)
	if !(fh > 0) {
		f.countCut(j, vhi, hi)
		return vhi, sT
	}
	fl := fn(vlo)
	if !(fl < 0) {
		f.countCut(j, vlo, lo)
		return vlo, sT
	}
	// Illinois (regula falsi with halving of the stale end) on [vlo, vhi].
	a, b, fa, fb := vlo, vhi, fl, fh
	side := 0
	tol := 1e-15 * math.Max(1, math.Abs(target))
	x := a
	for range 60 {
		x = (a*fb - b*fa) / (fb - fa)
		if !(x > a && x < b) {
			x = a + (b-a)/2
		}
		fx := fn(x)
		if math.Abs(fx) <= tol || b-a <= 4e-16*math.Max(math.Abs(a), math.Abs(b)) {
			break
		}
		if fx < 0 {
			a, fa = x, fx
			if side == -1 {
				fb /= 2
			}
			side = -1
		} else {
			b, fb = x, fx
			if side == 1 {
				fa /= 2
			}
			side = 1
		}
	}
	return x, sT
}

// countCut counts the clamp that made the wanted step change x the end of its range: the
// velocity limit when x is inside the box [c-emax, c+emax] ∩ [-cmax, cmax] whose end is boxEnd,
// else the acceleration or the jerk limit.
func (f *Filter) countCut(j int, x, boxEnd float64) {
	g := &f.jl[j]
	switch {
	case x != boxEnd:
		f.count(j, Velocity)
	case math.Abs(x) >= g.cmax:
		f.count(j, Acceleration)
	default:
		f.count(j, Jerk)
	}
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
