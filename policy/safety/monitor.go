package safety

import (
	"fmt"
	"math"
	"strings"
)

// MonitorTolerance is the relative tolerance of a Monitor: a value v of a limited quantity is a
// violation when |v| > limit*(1+MonitorTolerance) + rounding, where rounding is what differencing
// float64 positions produces (see Monitor). 1e-9 is the filter's documented rounding tolerance.
const MonitorTolerance = 1e-9

// monitorRounding is the absolute rounding allowance, in units of 2^-52*max(1, |p|)/dt^k, for the
// k-th finite difference of positions of magnitude |p|: each position carries half an ulp of
// rounding and a k-th difference adds k+1 of them with weights summing to 2^k (<= 8 for k <= 3);
// the filter adds a few ulps of its own when it forms p+step. 16 covers both.
const monitorRounding = 16

// Monitor checks a stream of joint position commands, one sample per control period in the
// order they are published (as a robot driver sees them), against the limits: it differences the
// samples (v, a and j as the package documentation defines them) and counts, per kind, the
// samples and joints that violate the position band [Lower, Upper], Velocity, Acceleration or
// Jerk (skipped where Jerk is 0), and NaN or Inf values (kind NotFinite). It keeps the worst
// ratio to the limit per kind (|v|/Velocity etc.; for the position, the distance from the band's
// middle over half its width, so 1 is at a limit) whether or not it violated, and the first
// violation.
//
// A violation is a value beyond limit*(1+MonitorTolerance) plus the rounding of the difference:
// 16*2^-52*max(1, |p|)/dt^k for the k-th difference (k = 1 velocity, 2 acceleration, 3 jerk) of
// positions of magnitude |p|; the position band gets 1e-9*max(1, |limit|).
//
// Start convention: the first samples have no history. Reset(pos) states that the robot was at
// rest at pos before the first sample (the positions before it all equal pos), the default for a
// robot that a command stream starts; ResetMoving gives a measured velocity and acceleration
// instead. A NaN or Inf sample is counted and erases that joint's history: its next finite sample
// is checked for position only, the one after for velocity, and so on.
//
// Observe allocates nothing. A Monitor is not safe for concurrent use.
type Monitor struct {
	lim []Limit
	dt  float64

	p, v, a []float64 // last finite position and its finite-difference velocity and acceleration
	hist    []int8    // how many of p, v, a are known (0..3) per joint
	tick    int64

	counts [NumKinds]uint64
	worst  [NumKinds]float64
	first  struct {
		ok    bool
		tick  int64
		joint int
		kind  Kind
		ratio float64
	}
}

// NewMonitor returns a monitor of the limits at control period dt (s), reset at rest at 0. It
// panics on a non-positive dt.
func NewMonitor(lim []Limit, dt float64) *Monitor {
	if !(dt > 0) {
		panic("safety: control period must be > 0")
	}
	n := len(lim)
	m := &Monitor{lim: append([]Limit(nil), lim...), dt: dt,
		p: make([]float64, n), v: make([]float64, n), a: make([]float64, n), hist: make([]int8, n)}
	m.Reset(make([]float64, n))
	return m
}

// Reset clears the counts and starts the monitor with the robot at rest at pos.
func (m *Monitor) Reset(pos []float64) { m.ResetMoving(pos, nil, nil) }

// ResetMoving clears the counts and starts the monitor with the robot at pos, moving at vel
// (rad/s) with acceleration acc (rad/s^2); nil means 0.
func (m *Monitor) ResetMoving(pos, vel, acc []float64) {
	for j := range m.lim {
		m.p[j], m.v[j], m.a[j], m.hist[j] = pos[j], 0, 0, 3
		if vel != nil {
			m.v[j] = vel[j]
		}
		if acc != nil {
			m.a[j] = acc[j]
		}
	}
	m.tick = 0
	m.counts = [NumKinds]uint64{}
	m.worst = [NumKinds]float64{}
	m.first.ok = false
}

// Observe checks the next published command (one position per joint).
func (m *Monitor) Observe(cmd []float64) {
	k := m.tick
	m.tick++
	dt := m.dt
	for j := range m.lim {
		l := &m.lim[j]
		x := cmd[j]
		if math.IsNaN(x) || math.IsInf(x, 0) {
			m.hit(k, j, NotFinite, math.Inf(1), true)
			m.hist[j] = 0
			continue
		}
		if l.HasPosition {
			h := (l.Upper - l.Lower) / 2
			r := math.Abs(x-(l.Upper+l.Lower)/2) / h
			bad := x > l.Upper+MonitorTolerance*math.Max(1, math.Abs(l.Upper)) ||
				x < l.Lower-MonitorTolerance*math.Max(1, math.Abs(l.Lower))
			if h == 0 {
				r = 0
				if bad {
					r = math.Inf(1)
				}
			}
			m.hit(k, j, Position, r, bad)
		}
		scale := monitorRounding * 0x1p-52 * math.Max(1, math.Max(math.Abs(x), math.Abs(m.p[j])))
		v := (x - m.p[j]) / dt
		a := (v - m.v[j]) / dt
		jk := (a - m.a[j]) / dt
		h := m.hist[j]
		if h >= 1 {
			m.check(k, j, Velocity, v, l.Velocity, scale/dt)
		}
		if h >= 2 {
			m.check(k, j, Acceleration, a, l.Acceleration, scale/(dt*dt))
		}
		if h >= 3 && l.Jerk > 0 {
			m.check(k, j, Jerk, jk, l.Jerk, scale/(dt*dt*dt))
		}
		m.p[j], m.v[j], m.a[j] = x, v, a
		if h < 3 {
			m.hist[j] = h + 1
		}
	}
}

func (m *Monitor) check(k int64, j int, kind Kind, v, limit, round float64) {
	r := math.Abs(v) / limit
	m.hit(k, j, kind, r, math.Abs(v) > limit*(1+MonitorTolerance)+round)
}

func (m *Monitor) hit(k int64, j int, kind Kind, ratio float64, bad bool) {
	if ratio > m.worst[kind] {
		m.worst[kind] = ratio
	}
	if !bad {
		return
	}
	m.counts[kind]++
	if !m.first.ok {
		m.first.ok, m.first.tick, m.first.joint, m.first.kind, m.first.ratio = true, k, j, kind, ratio
	}
}

// Ticks returns the number of samples observed since the last reset.
func (m *Monitor) Ticks() int64 { return m.tick }

// Count returns the number of violations of kind k (Position, Velocity, Acceleration, Jerk or
// NotFinite; one per joint and sample).
func (m *Monitor) Count(k Kind) uint64 { return m.counts[k] }

// Violations returns the number of violations of every kind.
func (m *Monitor) Violations() uint64 {
	var n uint64
	for _, c := range m.counts {
		n += c
	}
	return n
}

// Worst returns the largest ratio of kind k's quantity to its limit seen so far (1 is at the
// limit; +Inf for NotFinite once seen).
func (m *Monitor) Worst(k Kind) float64 { return m.worst[k] }

// First returns the first violation: the sample index (0 is the first sample after the reset),
// the joint, the kind and its ratio to the limit; ok is false when there was none.
func (m *Monitor) First() (tick int64, joint int, kind Kind, ratio float64, ok bool) {
	f := m.first
	return f.tick, f.joint, f.kind, f.ratio, f.ok
}

// String summarizes the counts (allocates; for reports and test failures).
func (m *Monitor) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d samples, %d violations", m.tick, m.Violations())
	for _, k := range []Kind{Position, Velocity, Acceleration, Jerk, NotFinite} {
		fmt.Fprintf(&b, "; %v %d (worst %.4g)", k, m.counts[k], m.worst[k])
	}
	if t, j, k, r, ok := m.First(); ok {
		name := ""
		if j < len(m.lim) {
			name = m.lim[j].Name
		}
		fmt.Fprintf(&b, "; first at sample %d joint %d %q: %v %.4g x limit", t, j, name, k, r)
	}
	return b.String()
}
