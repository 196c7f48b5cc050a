package safety

import "math"

// The third-order generator of a joint with a jerk limit. It works in units per tick: the step
// s = v dt (rad), the step change c = a dt^2 and its change e = j dt^3, so that a tick is
//
//	c' = c + e,  s' = s + c',  p' = p + s',  with |e| <= emax, |c'| <= cmax, |s'| <= smax.
//
// Braking law. law(s, c) is the step change that brings the step s to zero as fast as the
// limits allow, a time-optimal bang-bang controller for the step (Ruckig's velocity control
// made exact for discrete time): the step change approaches -sign(s) b(|s|), where
// b = stepLimit(., emax) is the largest step change whose release at emax per tick (c, c-emax,
// ..., the last one partial) changes the step by at most |s| in total, within the box
// [c-emax, c+emax] ∩ [-cmax, cmax]. Once on that curve it follows it exactly (b(s - b(s)) =
// b(s) - emax) and the step and the step change reach zero together, the last tick partial;
// before, it ramps at emax per tick, or holds -cmax (plateau), or, when the step change is
// already beyond the curve (an overshoot state: the velocity crosses zero), ramps back at emax.
// The law is a function of the state (s, c) alone: the braking trajectory from the state after
// it is the tail of the braking trajectory from the state before.
//
// Feasibility invariant. A state (p, s, c) is admissible when the braking trajectory the law
// produces from it keeps every position within the envelope [lo, hi] and every |step| within
// vmax (the jerk and acceleration limits hold along it by construction). The filter sends a step
// only if the state it leads to is admissible, checked by stop below, and the law's own step
// always leads to an admissible state (the tail property). So an admissible state stays
// admissible forever whatever the targets, and every command it sends satisfies all four limits.
// The envelope is the position band and the velocity limit, widened only at a start the robot
// is beyond them (ResetMoving), and never widened afterwards.

// jlim is one joint's limits in units per tick.
type jlim struct {
	smax, cmax, emax float64 // V dt, A dt^2, J dt^3
	hc               float64 // travel(cmax, emax): the law holds -cmax while the step exceeds it
	maxIter          int     // bound on stop's iterations (the overshoot phase is stepped)
	// round is the rounding of a braking trajectory's extent, per unit of position: a
	// position carries 2^-52 |p| of rounding, so the realized step change is off by about
	// 2^-51 |p| each tick, and over a braking of N ticks that moves the extent by N^2/2 of it.
	// N is the longest braking: V/A + A/J seconds, plus two ticks; 8 covers the constants.
	round float64
}

func newJlim(l *Limit, dt float64) jlim {
	g := jlim{smax: l.Velocity * dt, cmax: l.Acceleration * dt * dt, emax: l.Jerk * dt * dt * dt}
	g.hc = travel(g.cmax, g.emax)
	r := g.cmax / g.emax
	if r > 1e6 {
		r = 1e6 // a jerk limit a million ticks long: stop gives up (unsafe) beyond it
	}
	g.maxIter = 2*int(math.Ceil(r)) + 64
	n := (l.Velocity/l.Acceleration+l.Acceleration/l.Jerk)/dt + 2
	g.round = 8 * 0x1p-52 * n * n
	return g
}

// travel returns the total change of the step when the step change x > 0 is released at dec per
// tick: x + (x-dec) + (x-2dec) + ... while positive; 0 for x <= 0. It is stepLimit's inverse:
// with n = floor(x/dec), (n+1) x - dec n (n+1)/2, continuous and increasing.
func travel(x, dec float64) float64 {
	if !(x > 0) {
		return 0
	}
	n := math.Floor(x / dec)
	return (n+1)*x - dec*n*(n+1)/2
}

// box is the range of the next step change from c: the jerk and acceleration limits.
func (g *jlim) box(c float64) (lo, hi float64) {
	// |c| > cmax: a state the filter never makes (Follow of a foreign command, whose history
	// already broke the acceleration limit): continue from the limit, not from c, which would
	// keep the broken acceleration for cmax/emax ticks.
	c = math.Min(math.Max(c, -g.cmax), g.cmax)
	return math.Max(c-g.emax, -g.cmax), math.Min(c+g.emax, g.cmax)
}

// curve is the braking law's wanted step change for step s: -sign(s) b(|s|).
func (g *jlim) curve(s float64) float64 {
	switch {
	case s > 0:
		return -stepLimit(s, g.emax)
	case s < 0:
		return stepLimit(-s, g.emax)
	}
	return 0
}

// law returns the braking law's step change from the state (s, c).
func (g *jlim) law(s, c float64) float64 {
	lo, hi := g.box(c)
	return math.Min(math.Max(g.curve(s), lo), hi)
}

// ext is what a braking trajectory does from a state at position 0 (displacements in rad).
type ext struct {
	end    float64 // displacement at rest
	hi, lo float64 // largest and smallest displacement on the way (hi >= 0 >= lo)
	vpk    float64 // largest |step| on the way, the state's own included
	ticks  int     // ticks until the step and the step change are zero
	ok     bool    // false: the evaluation gave up (the state is treated as inadmissible)
}

// stop evaluates the braking law's trajectory from the state (s, c) in closed form: it jumps
// over the ramp and plateau phases (sums of arithmetic sequences) and finishes the curve phase
// in one go; only the overshoot phase is stepped, for at most about 2 cmax/emax ticks. Within a
// jump the step keeps its sign, so the position is monotone and its extremes lie at the ends.
func (g *jlim) stop(s, c float64) (r ext) {
	r.vpk = math.Abs(s)
	if math.IsNaN(s) || math.IsInf(s, 0) || math.IsNaN(c) || math.IsInf(c, 0) {
		return r // not ok
	}
	P := 0.0
	em, cm := g.emax, g.cmax
	for it := 0; it < g.maxIter; it++ {
		if s == 0 && c == 0 {
			r.end, r.ok = P, true
			return r
		}
		// Mirror so that S >= 0 (and C >= 0 when S == 0).
		sg := 1.0
		if s < 0 || (s == 0 && c < 0) {
			sg = -1
		}
		S, C := sg*s, sg*c
		b, n := stepLimitN(S, em)
		lo, hi := g.box(C)
		switch {
		case -b >= lo && -b <= hi:
			// Curve: n+1 ticks of steps S - i b + em i(i-1)/2 down to exactly zero, then one
			// tick that zeroes the step change.
			N := n + 1
			var d float64
			if S > 0 {
				d = N*S - b*N*(N+1)/2 + em*(N-1)*N*(N+1)/6
				r.ticks += int(N)
			}
			if C != -b || S > 0 {
				r.ticks++
			}
			P += sg * d
			r.hi, r.lo = math.Max(r.hi, P), math.Min(r.lo, P)
			r.end, r.ok = P, true
			return r
		case -b < lo && lo > -cm:
			// Ramp down at em per tick while the law keeps choosing c - em: find the first
			// tick k whose state no longer does (the condition is a prefix in k).
			K := math.Ceil((C+cm)/em) + 1
			if !g.rampOn(S, C, K) {
				k := 0.0
				for a, z := 0.0, K; z-a > 1; { // rampOn(a) && !rampOn(z)
					m := math.Floor((a + z) / 2)
					if m <= a || m >= z {
						break // beyond 2^53 ticks: no state the filter makes
					}
					if g.rampOn(S, C, m) {
						a = m
					} else {
						z = m
					}
					k = z
				}
				if k >= 1 {
					d := k*S + C*k*(k+1)/2 - em*k*(k+1)*(k+2)/6
					if C > 0 {
						i := math.Min(k, math.Floor(C/em))
						r.vpk = math.Max(r.vpk, S+i*C-em*i*(i+1)/2)
					}
					S2 := S + k*C - em*k*(k+1)/2
					r.vpk = math.Max(r.vpk, math.Abs(S2))
					P += sg * d
					r.hi, r.lo = math.Max(r.hi, P), math.Min(r.lo, P)
					s, c = sg*S2, sg*(C-k*em)
					r.ticks += int(k)
					continue
				}
			}
		case -b < lo && C == -cm:
			// Plateau at -cm while the step exceeds hc.
			k := math.Ceil((S - g.hc) / cm)
			for i := 0; i < 4 && k > 1 && S-(k-1)*cm <= g.hc; i++ {
				k--
			}
			for i := 0; i < 4 && S-k*cm > g.hc; i++ {
				k++
			}
			if k >= 1 {
				P += sg * (k*S - cm*k*(k+1)/2)
				r.hi, r.lo = math.Max(r.hi, P), math.Min(r.lo, P)
				s = sg * (S - k*cm)
				r.ticks += int(k)
				continue
			}
		}
		// One tick of the law: the plateau's entry, the overshoot phase, rounding at a phase
		// boundary.
		c2 := math.Min(math.Max(-b, lo), hi)
		S += c2
		P += sg * S
		r.hi, r.lo = math.Max(r.hi, P), math.Min(r.lo, P)
		r.vpk = math.Max(r.vpk, math.Abs(S))
		s, c = sg*S, sg*c2
		r.ticks++
	}
	return r // gave up: not ok
}

// bound returns cheap upper bounds on the largest |step| and the largest |displacement| of the
// braking trajectory from (s, c). The step never exceeds |s| + travel(|c|): aligned with the
// motion, c is released at emax per tick (adding travel(c) - c); opposed, the step may cross
// zero (overshoot) with |c| at most what it was, and the release then adds at most travel(|c|).
// The trajectory lasts at most |c|/emax (overshoot ramp) + 2 cmax/emax (ramp to the curve or
// -cmax) + v/cmax (plateau) + cmax/emax (curve) + 5 ticks of partial steps; 8 are allowed.
func (g *jlim) bound(s, c float64) (v, d float64) {
	ac := math.Abs(c)
	v = math.Abs(s) + travel(ac, g.emax)
	n := ac/g.emax + 3*g.cmax/g.emax + v/g.cmax + 8
	return v, v * n
}

// rampOn reports whether, after k ticks of ramping down from (S, C) (S >= 0), the law still
// ramps down: c_k - em > max(-b(s_k), -cm), with b(x) > y written as x > travel(y).
func (g *jlim) rampOn(S, C, k float64) bool {
	em := g.emax
	ck := C - k*em
	if !(ck-em > -g.cmax) {
		return false
	}
	if ck-em >= 0 {
		return true
	}
	sk := S + k*C - em*k*(k+1)/2
	return sk > travel(em-ck, em)
}

// stepLimitN is stepLimit that also returns its n: the step x = stepLimit(dist, dec) is
// followed by n more positive steps x-dec, ..., x-n dec that sum with x to dist.
func stepLimitN(dist, dec float64) (x, n float64) {
	if !(dist > 0) {
		return 0, 0
	}
	x = stepLimit(dist, dec)
	n = math.Floor(x / dec)
	if n > 0 && x-n*dec <= 0 {
		n-- // x is a multiple of dec: its last term is zero
	}
	return x, n
}
