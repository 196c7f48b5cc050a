package policy

import (
	"math"
	"sync"
	"testing"
	"time"

	"github.com/flowact/flowact/expert"
	"github.com/flowact/flowact/policy/chunk"
	"github.com/flowact/flowact/robot"
)

// armModel is a 3-joint arm with every limit the filter needs.
func armModel() *robot.Model {
	return &robot.Model{Name: "arm", Root: "base", Joints: []robot.Joint{
		{Name: "j0", Type: robot.Revolute, Limits: robot.Limits{HasPosition: true, Lower: -2, Upper: 2, Velocity: 2, Acceleration: 20, Jerk: 2000}},
		{Name: "j1", Type: robot.Revolute, Limits: robot.Limits{HasPosition: true, Lower: -1.5, Upper: 1.5, Velocity: 1.5, Acceleration: 15}},
		{Name: "j2", Type: robot.Continuous, Limits: robot.Limits{Velocity: 3, Acceleration: 30}},
	}}
}

// line is the field of a straight-line flow from each noise x0 to y = Y(x0), v = y - x0, where
// y_i = mu_i + u_i z with z the noise of one carrier coordinate per joint: a deterministic flow
// whose samples are smooth chunks mu + u z with a random offset scale z. Euler integrates it
// exactly (up to rounding) because the velocity is constant along each path. From x_t the field
// recovers z on the carrier row c (u_c > 0): x_t[c] = t (mu_c + u_c z) + (1-t) z. It is singular
// at t = 1 (x0 is lost there): use samplers that do not evaluate it there (Euler, midpoint, RK4).
type line struct {
	h, d  int
	mu, u []float32 // h x d
	c     int       // carrier row
}

func (l *line) Dim() int { return l.h * l.d }

func (l *line) Velocity(dst, x []float32, t float64) {
	for j := range l.d {
		cj := l.c*l.d + j
		z := (float64(x[cj]) - t*float64(l.mu[cj])) / (t*float64(l.u[cj]) + 1 - t)
		for i := range l.h {
			k := i*l.d + j
			y := float64(l.mu[k]) + float64(l.u[k])*z
			x0 := (float64(x[k]) - t*y) / (1 - t)
			dst[k] = float32(y - x0)
		}
	}
}

// planModel is a closed-form conditional expert. Its mean plan moves each joint from the observed
// state q toward the goal g (the embedding's first row, one value per joint) with time constant
// tau ticks; each chunk adds a random smooth offset of scale sigma (multimodality). With a
// committed prefix P of p rows it reproduces P and continues from it: the difference between P
// and its own plan at row p-1 (position, and velocity when p >= 2) decays as a critically damped
// response (a + b m + c m^2) exp(-m/tc) that starts with P's position, velocity and the plan's
// acceleration, and its offset grows in as 1 - (1 + m/tc + m^2/(2 tc^2)) exp(-m/tc), flat to
// second order at the seam. This is what a model trained with prefix conditioning (Black et al.
// 2025) learns to do: continue the committed actions smoothly.
type planModel struct {
	h, d          int
	tau, tc       float64
	sigma         float64
	f             line
	plan          []float64
	lastPrefixLen int
	binds         int
	sleep         func(call int) time.Duration // inference latency by call, nil: none
}

func newPlanModel(h, d int) *planModel {
	return &planModel{h: h, d: d, tau: 25, tc: 6, sigma: 0.05,
		f:    line{h: h, d: d, mu: make([]float32, h*d), u: make([]float32, h*d), c: h - 1},
		plan: make([]float64, h*d)}
}

func (m *planModel) Shape() (int, int) { return m.h, m.d }

func (m *planModel) Bind(c *expert.Condition) (expert.Field, error) {
	if m.sleep != nil {
		time.Sleep(m.sleep(m.binds))
	}
	m.binds++
	p := c.PrefixLen(m.d)
	m.lastPrefixLen = p
	for j := range m.d {
		q := float64(c.State[j])
		g := 0.0
		if len(c.Embedding) > j {
			g = float64(c.Embedding[j])
		}
		for i := range m.h {
			m.plan[i*m.d+j] = g + (q-g)*math.Exp(-float64(i+1)/m.tau)
		}
		var a, b, cc float64 // the continuation's offset coefficients
		if p > 0 {
			pre := func(i int) float64 { return float64(c.Prefix[i*m.d+j]) }
			a = pre(p-1) - m.plan[(p-1)*m.d+j]
			dv := 0.0
			if p >= 2 {
				dv = (pre(p-1) - pre(p-2)) - (m.plan[(p-1)*m.d+j] - m.plan[(p-2)*m.d+j])
			}
			b = dv + a/m.tc
			cc = b/m.tc - a/(2*m.tc*m.tc)
		}
		for i := range m.h {
			k := i*m.d + j
			if i < p {
				m.f.mu[k], m.f.u[k] = c.Prefix[k], 0
				continue
			}
			grow := 1.0
			off := 0.0
			if p > 0 {
				mm := float64(i - p + 1)
				e := math.Exp(-mm / m.tc)
				off = (a + b*mm + cc*mm*mm) * e
				grow = 1 - (1+mm/m.tc+mm*mm/(2*m.tc*m.tc))*e
			}
			m.f.mu[k] = float32(m.plan[k] + off)
			m.f.u[k] = float32(m.sigma * grow)
		}
	}
	return &m.f, nil
}

// tickModel plans one unit of motion per tick: row i of every joint is state + i + 1, where the
// robot would be after i + 1 more ticks. Driving the ideal driver (the measured position is the
// last command), every executed chunk continues the previous command by exactly 1, so a skipped
// or repeated action shows as a step of 2 or 0.
type tickModel struct {
	h, d   int
	f      line
	sleep  func(call int) time.Duration
	binds  int
	prefix []int // prefix length of each call
}

func newTickModel(h, d int) *tickModel {
	return &tickModel{h: h, d: d, f: line{h: h, d: d, mu: make([]float32, h*d), u: make([]float32, h*d), c: h - 1}}
}

func (m *tickModel) Shape() (int, int) { return m.h, m.d }

func (m *tickModel) Bind(c *expert.Condition) (expert.Field, error) {
	if m.sleep != nil {
		time.Sleep(m.sleep(m.binds))
	}
	m.binds++
	m.prefix = append(m.prefix, c.PrefixLen(m.d))
	for i := range m.h {
		for j := range m.d {
			m.f.mu[i*m.d+j] = c.State[j] + float32(i+1)
		}
	}
	return &m.f, nil
}

// driver is an ideal position-controlled robot: its measured position is the last command, at
// once. Staleness and missing state can be injected. Every command is checked against the
// model's own limits relative to the previous command.
type driver struct {
	t         *testing.T
	model     *robot.Model
	per       time.Duration
	mu        sync.Mutex
	pos       []float64
	frozen    bool // stop updating the state (stale state)
	frozenPos []float64
	stamp     time.Time // last stamp when frozen
	nostate   bool
	stampFn   func(now time.Time) time.Time // optional
	readFn    func(dst *robot.State)        // optional: changes what ReadState returns
	// checking
	prev, step []float64
	prevAt     time.Time
	n          int
	bad        int
	maxV, maxA float64 // largest ratios to the limits seen
	record     bool
	history    [][]float64 // every command when record is set
}

func newDriver(t *testing.T, m *robot.Model, per time.Duration, start []float64) *driver {
	d := &driver{t: t, model: m, per: per, pos: append([]float64(nil), start...),
		prev: append([]float64(nil), start...), step: make([]float64, len(start))}
	return d
}

func (d *driver) Model() *robot.Model { return d.model }

func (d *driver) ReadState(dst *robot.State) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.nostate {
		return robot.ErrNoState
	}
	now := time.Now()
	if d.stampFn != nil {
		now = d.stampFn(now)
	}
	if d.frozen {
		// The last message again: its stamp and its positions.
		dst.Stamp = d.stamp
		copy(dst.Position, d.frozenPos)
	} else {
		copy(dst.Position, d.pos)
		dst.Stamp = now
		d.stamp = now
		d.frozenPos = append(d.frozenPos[:0], d.pos...)
	}
	if d.readFn != nil {
		d.readFn(dst)
	}
	return nil
}

func (d *driver) setFrozen(f bool) { d.mu.Lock(); d.frozen = f; d.mu.Unlock() }

func (d *driver) WriteCommand(c *robot.Command) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.n++
	first := d.prevAt.IsZero() || c.Stamp.Sub(d.prevAt) > 5*d.per
	d.prevAt = c.Stamp
	dt := d.per.Seconds()
	for j, jt := range d.model.Joints {
		x := c.Position[j]
		l := jt.Limits
		fail := func(format string, a ...any) {
			d.bad++
			if d.bad <= 5 {
				d.t.Errorf("command %d joint %s: "+format, append([]any{d.n, jt.Name}, a...)...)
			}
		}
		if math.IsNaN(x) || math.IsInf(x, 0) {
			fail("not finite: %v", x)
			continue
		}
		if l.HasPosition && (x < l.Lower-1e-9 || x > l.Upper+1e-9) {
			fail("position %g outside [%g, %g]", x, l.Lower, l.Upper)
		}
		if first {
			// The first command after a start (or an idle gap) is one step from rest at the
			// measured position, which the checker does not know: start checking from it.
			d.prev[j], d.step[j] = x, 0
			continue
		}
		s := x - d.prev[j]
		v := math.Abs(s) / dt
		a := math.Abs(s-d.step[j]) / (dt * dt)
		d.maxV = math.Max(d.maxV, v/l.Velocity)
		d.maxA = math.Max(d.maxA, a/l.Acceleration)
		if v > l.Velocity*(1+1e-9)+1e-9 {
			fail("velocity %g > %g", v, l.Velocity)
		}
		if a > l.Acceleration*(1+1e-6)+1e-6 {
			fail("acceleration %g > %g", a, l.Acceleration)
		}
		d.prev[j], d.step[j] = x, s
	}
	copy(d.pos, c.Position)
	if d.record {
		d.history = append(d.history, append([]float64(nil), c.Position...))
	}
	return nil
}

func (d *driver) set(f func(d *driver)) { d.mu.Lock(); f(d); d.mu.Unlock() }

// trajDriver is a driver that also takes trajectories (it only counts them).
type trajDriver struct {
	*driver
	trajs int
}

func (d *trajDriver) WriteTrajectory(tr *robot.Trajectory) error {
	d.mu.Lock()
	d.trajs++
	d.mu.Unlock()
	return nil
}

func (d *driver) commands() int { d.mu.Lock(); defer d.mu.Unlock(); return d.n }

func (d *driver) last(dst []float64) { d.mu.Lock(); copy(dst, d.prev); d.mu.Unlock() }

// inferFunc adapts a function to an Inferer (adversarial tests).
type inferFunc struct {
	h, d int
	f    func(dst *chunk.Chunk, req *Request) error
}

func (i inferFunc) Shape() (int, int)                          { return i.h, i.d }
func (i inferFunc) Infer(dst *chunk.Chunk, req *Request) error { return i.f(dst, req) }
