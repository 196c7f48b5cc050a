package chunk

import "math"

// Seam is the measure of one splice (see the package doc).
type Seam struct {
	Tick         int64   // the first tick of the new chunk
	Jump         float64 // rad: max |x_k - x_{k-1}|
	Velocity     float64 // rad/s: max |v_k - v_{k-1}|
	Acceleration float64 // rad/s^2: max |a_k - a_{k-1}|
	Jerk         float64 // rad/s^3: max |j_k|
}

// Meter measures seams in a stream of targets. Call Mark on the tick of a splice, before that
// tick's Observe.
type Meter struct {
	dt     float64
	window int
	hist   [3][]float64 // x_{k-1}, x_{k-2}, x_{k-3}
	seen   int          // observed ticks, saturating at 3
	left   int          // ticks left in the window; 0: not measuring
	cur    Seam
}

// NewMeter returns a meter for d joints at control period dt (s) with a window of ticks per seam.
func NewMeter(d int, dt float64, window int) *Meter {
	m := &Meter{dt: dt, window: max(window, 1)}
	for i := range m.hist {
		m.hist[i] = make([]float64, d)
	}
	return m
}

// Mark starts a seam at tick k. If a seam was being measured it is returned as done (its window
// cut short).
func (m *Meter) Mark(k int64) (prev Seam, done bool) {
	if m.left > 0 {
		prev, done = m.cur, true
	}
	m.cur = Seam{Tick: k}
	m.left = m.window
	return prev, done
}

// Reset forgets the history (after a gap in the stream, e.g. a hold).
func (m *Meter) Reset() { m.seen, m.left = 0, 0 }

// Observe feeds the target of the next tick and returns a seam when its window is complete.
func (m *Meter) Observe(x []float64) (s Seam, done bool) {
	if m.left > 0 && m.seen >= 3 {
		dt := m.dt
		for j, xj := range x {
			x1, x2, x3 := m.hist[0][j], m.hist[1][j], m.hist[2][j]
			d1 := xj - x1               // dt v_k
			d2 := xj - 2*x1 + x2        // dt^2 a_k = dt (v_k - v_{k-1})
			d3 := xj - 3*x1 + 3*x2 - x3 // dt^3 j_k
			m.cur.Jump = math.Max(m.cur.Jump, math.Abs(d1))
			m.cur.Velocity = math.Max(m.cur.Velocity, math.Abs(d2)/dt)
			m.cur.Acceleration = math.Max(m.cur.Acceleration, math.Abs(d3)/(dt*dt))
			m.cur.Jerk = math.Max(m.cur.Jerk, math.Abs(d3)/(dt*dt*dt))
		}
	}
	m.hist[0], m.hist[1], m.hist[2] = m.hist[2], m.hist[0], m.hist[1]
	copy(m.hist[0], x)
	if m.seen < 3 {
		m.seen++
	}
	if m.left > 0 {
		m.left--
		if m.left == 0 {
			return m.cur, true
		}
	}
	return Seam{}, false
}
