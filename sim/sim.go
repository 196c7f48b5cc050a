package sim

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/flowact/flowact/robot"
)

// Sim is a simulated position-controlled arm. Create it with New.
type Sim struct {
	mu  sync.Mutex
	m   *robot.Model
	cfg Config
	n   int

	t         time.Duration // elapsed simulation time
	q, v      []float64     // true joint positions and velocities
	ref       []float64     // held reference (per-tick command or initial position)
	lo, hi    []float64     // position limits, ±Inf when absent
	vmax      []float64     // velocity limits, +Inf when absent
	amax      []float64     // acceleration limits, +Inf when absent
	stuck     int           // model index of the stuck joint, -1 for none
	lastH     float64       // substep of the cached decay factor
	decay     float64       // exp(-lastH/tau)
	plan      plan          // active trajectory
	scratch   []float64     // length n
	sensor    sensor
	delayed   queue
	rng       *rand.Rand
	nextTick  time.Duration // next sensor sample when SensorPeriod > 0
	stats     Stats
	targets   []Target
	obstacles []Obstacle
	late      int64     // Run's late steps
	motors    []motor   // the motor face, nil for joint units
	mbuf      []float64 // length n: a command converted to joint units
	mtraj     []float64 // a trajectory converted to joint units
	lastDue   time.Duration
}

// motor is one joint's motor face: ticks (or motor rad) = scale·(q - off), rounded and wrapped
// when there is an encoder; base is the unwrapped tick of the counter's 0 in the window that
// holds the initial position.
type motor struct {
	scale, off float64
	enc        bool
	wrap, base float64
}

func (m *motor) toMotor(q float64) float64 {
	u := m.scale * (q - m.off)
	if !m.enc {
		return u
	}
	u = math.Round(u)
	if m.wrap > 0 {
		u = math.Mod(u, m.wrap)
		if u < 0 {
			u += m.wrap
		}
	}
	return u
}

func (m *motor) toJoint(u float64) float64 {
	if m.enc {
		u = math.Round(u)
		if m.wrap > 0 {
			u = math.Mod(u, m.wrap)
			if u < 0 {
				u += m.wrap
			}
			u += m.base
		}
	}
	return m.off + u/m.scale
}

// Stats counts what the simulator did.
type Stats struct {
	Samples      int64 // sensor samples taken (including dropped ones)
	Dropped      int64 // sensor samples lost to Faults.StateDrop
	Commands     int64 // per-tick commands applied
	Trajectories int64 // trajectories applied
	Rejected     int64 // delayed trajectories rejected on arrival (all points in the past)
}

var (
	_ robot.Driver           = (*Sim)(nil)
	_ robot.TrajectoryWriter = (*Sim)(nil)
	_ robot.Clock            = Clock{}
)

// Errors.
var (
	// ErrCommand is wrapped by the errors of malformed commands and trajectories.
	ErrCommand = errors.New("sim: bad command")
	// ErrPast is returned for a trajectory whose points all lie at or before its start.
	ErrPast = errors.New("sim: trajectory lies in the past")
)

// New returns a simulator of model m, at rest at cfg.Initial. The model must be valid (see
// robot.Model.Validate); the Sim keeps a pointer to it and it must not change afterwards.
func New(m *robot.Model, cfg Config) (*Sim, error) {
	if m == nil {
		return nil, fmt.Errorf("%w: nil model", ErrConfig)
	}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	n := m.DoF()
	if cfg.Initial != nil && len(cfg.Initial) != n {
		return nil, fmt.Errorf("%w: %d initial positions for %d joints", ErrConfig, len(cfg.Initial), n)
	}
	s := &Sim{
		m: m, cfg: cfg, n: n,
		q: make([]float64, n), v: make([]float64, n), ref: make([]float64, n),
		lo: make([]float64, n), hi: make([]float64, n), vmax: make([]float64, n), amax: make([]float64, n),
		scratch: make([]float64, n),
		stuck:   -1,
		rng:     rand.New(rand.NewPCG(cfg.Faults.Seed, 0x5eed51)),
	}
	s.cfg.Initial = append([]float64(nil), cfg.Initial...)
	for i := range m.Joints {
		l := m.Joints[i].Limits
		s.lo[i], s.hi[i] = math.Inf(-1), math.Inf(1)
		if l.HasPosition {
			s.lo[i], s.hi[i] = l.Lower, l.Upper
		}
		s.vmax[i], s.amax[i] = posOrInf(l.Velocity), posOrInf(l.Acceleration)
		if cfg.Initial != nil {
			s.q[i] = cfg.Initial[i]
		}
		s.q[i] = clamp(s.q[i], s.lo[i], s.hi[i])
		s.ref[i] = s.q[i]
	}
	if name := cfg.Faults.StuckJoint; name != "" {
		if s.stuck = m.Index(name); s.stuck < 0 {
			return nil, fmt.Errorf("%w: faults.stuck_joint %q is not a joint of %q", ErrConfig, name, m.Name)
		}
	}
	if len(cfg.Motors) > 0 {
		for _, name := range sortedNames(cfg.Motors) {
			if m.Index(name) < 0 {
				return nil, fmt.Errorf("%w: motors.%s is not a joint of %q", ErrConfig, name, m.Name)
			}
		}
		s.motors, s.mbuf = make([]motor, n), make([]float64, n)
		for i, j := range m.Joints {
			mo, ok := cfg.Motors[j.Name]
			if !ok {
				return nil, fmt.Errorf("%w: motors: joint %q has no motor", ErrConfig, j.Name)
			}
			g := mo.GearRatio
			if g == 0 {
				g = 1
			}
			if mo.Direction < 0 {
				g = -g
			}
			mt := motor{scale: g, off: mo.Offset, enc: mo.Resolution > 0, wrap: float64(mo.Wrap)}
			if mt.enc {
				mt.scale *= float64(mo.Resolution) / (2 * math.Pi)
			}
			if mt.wrap > 0 {
				mt.base = math.Floor(math.Round(mt.scale*(s.q[i]-mt.off))/mt.wrap) * mt.wrap
			}
			s.motors[i] = mt
		}
		s.cfg.Motors = maps.Clone(cfg.Motors)
	}
	s.plan.n = n
	s.sensor.n = n
	s.delayed.n = n
	s.measure()
	if cfg.SensorPeriod > 0 {
		s.nextTick = cfg.SensorPeriod
	}
	return s, nil
}

func posOrInf(v float64) float64 {
	if v > 0 {
		return v
	}
	return math.Inf(1)
}

func clamp(v, lo, hi float64) float64 { return max(lo, min(hi, v)) }

// MotorFace reports whether the simulator speaks motor units (Config.Motors).
func (s *Sim) MotorFace() bool { return s.motors != nil }

// Model returns the simulated robot's model.
func (s *Sim) Model() *robot.Model { return s.m }

// Now returns the simulation time.
func (s *Sim) Now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg.Start.Add(s.t)
}

// Elapsed returns the simulation time since the start of the run.
func (s *Sim) Elapsed() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.t
}

// Stats returns the counters.
func (s *Sim) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Step advances the simulation by dt; dt <= 0 does nothing. It allocates nothing once the
// sensor's latency buffer has grown to its working size.
func (s *Sim) Step(dt time.Duration) {
	if dt <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k := (dt + s.cfg.MaxStep - 1) / s.cfg.MaxStep
	q, r := dt/k, dt%k
	t0 := s.t
	for i := time.Duration(1); i <= k; i++ {
		s.substep(t0 + q*i + r*i/k) // exact substep boundaries, no drift; r*i < k^2 cannot overflow
	}
	s.deliver() // what is due by the end of the step acts from now on
	if s.cfg.SensorPeriod == 0 {
		s.measure()
	}
}

// StepTo advances the simulation to time t; a t not after Now does nothing.
func (s *Sim) StepTo(t time.Time) {
	s.mu.Lock()
	dt := t.Sub(s.cfg.Start.Add(s.t))
	s.mu.Unlock()
	s.Step(dt)
}

// substep integrates from s.t to end.
func (s *Sim) substep(end time.Duration) {
	s.deliver()
	h := (end - s.t).Seconds()
	s.t = end
	s.plan.trim(s.t)
	r := s.ref
	if s.plan.active {
		s.plan.sample(s.scratch, s.t)
		r = s.scratch
	}
	stuck := -1
	if s.stuck >= 0 && s.cfg.Faults.Stuck.Active(s.t) {
		stuck = s.stuck
	}
	lag := s.cfg.Lag
	if lag.Order == 1 && h != s.lastH {
		s.lastH, s.decay = h, math.Exp(-h/lag.TimeConstant.Seconds())
	}
	for i := range s.n {
		if i == stuck {
			s.v[i] = 0
			continue
		}
		q, v := s.q[i], s.v[i]
		ri := clamp(r[i], s.lo[i], s.hi[i])
		var vn float64
		if lag.Order == 1 {
			vn = (ri + (q-ri)*s.decay - q) / h
		} else {
			wn := lag.Frequency
			vn = v + (wn*wn*(ri-q)-2*lag.Damping*wn*v)*h
		}
		a := s.amax[i]
		if lag.Order == 1 {
			// Do not approach the reference faster than the joint can stop at it.
			if d := ri - q; d > 0 {
				vn = toward(vn, d, a, h)
			} else if d < 0 {
				vn = -toward(-vn, -d, a, h)
			}
		}
		vn = clamp(vn, v-a*h, v+a*h)
		vn = clamp(vn, -s.vmax[i], s.vmax[i])
		vn = toward(vn, s.hi[i]-q, a, h)
		vn = -toward(-vn, q-s.lo[i], a, h)
		qn := clamp(q+vn*h, s.lo[i], s.hi[i])
		s.q[i], s.v[i] = qn, (qn-q)/h
	}
	if s.cfg.SensorPeriod > 0 {
		for s.nextTick <= s.t {
			s.measure()
			s.nextTick += s.cfg.SensorPeriod
		}
	}
}

// toward limits velocity v so that the joint can stop at a point d >= 0 ahead (in the positive
// direction) with acceleration limit a: it returns min(v, brake(d, a, h)). brake(d) >= v exactly
// when d >= v (v + b h) / (2b) and d >= v h (see brake), which is checked first so that the
// square root is taken only near the point.
func toward(v, d, a, h float64) float64 {
	if v <= 0 || v*h <= d && (math.IsInf(a, 1) || v*(v+a*8/9*h) <= 2*a*8/9*d) {
		return v
	}
	return min(v, brake(d, a, h))
}

// brake returns the highest speed toward a limit d away from which the joint can still stop in
// steps of h without exceeding the acceleration limit a. Stopping from v = k b h with
// deceleration b takes k steps and covers b h^2 k (k+1) / 2, so k = sqrt(1/4 + 2d/(b h^2)) - 1/2.
// Following that curve decelerates by b per step until k < 1, where the cap d/h (land on the
// limit) takes over; the step onto that cap decelerates by up to 9/8 b (the maximum of
// k (3 - k) / 2 over 1 < k < 2), so the curve plans with b = 8/9 a.
func brake(d, a, h float64) float64 {
	if d <= 0 {
		return 0
	}
	lim := d / h
	if math.IsInf(a, 1) {
		return lim
	}
	b := a * 8 / 9
	return min(lim, b*h*(math.Sqrt(0.25+2*d/(b*h*h))-0.5))
}

// TrueStateTo writes the true joint state (before any sensor fault) into dst, stamped now, growing
// dst's slices as needed. Tasks use it for success checks.
func (s *Sim) TrueStateTo(dst *robot.State) {
	s.mu.Lock()
	defer s.mu.Unlock()
	dst.Stamp = s.cfg.Start.Add(s.t)
	dst.Position = append(dst.Position[:0], s.q...)
	dst.Velocity = append(dst.Velocity[:0], s.v...)
	dst.Effort = append(dst.Effort[:0], s.v...)
	clear(dst.Effort)
}

// ReferenceTo writes the reference the joints track now (after command delay) into dst, which
// must have length DoF.
func (s *Sim) ReferenceTo(dst []float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.plan.active {
		s.plan.sample(dst, s.t)
	} else {
		copy(dst, s.ref)
	}
}

// ReadState copies the newest joint-state sample that is visible after Faults.StateLatency into
// dst, whose slices must have length DoF; Stamp is the measurement time and Effort is zero.
// Positions and velocities are in motor units when Config.Motors is set. It returns
// robot.ErrNoState until a first sample is visible.
func (s *Sim) ReadState(dst *robot.State) error {
	if len(dst.Position) != s.n || len(dst.Velocity) != s.n || len(dst.Effort) != s.n {
		return fmt.Errorf("sim: ReadState: state has %d/%d/%d values for %d joints", len(dst.Position), len(dst.Velocity), len(dst.Effort), s.n)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	smp := s.sensor.visible(s.t - s.cfg.Faults.StateLatency)
	if smp == nil {
		return robot.ErrNoState
	}
	dst.Stamp = s.cfg.Start.Add(smp.t)
	copy(dst.Position, smp.pos)
	copy(dst.Velocity, smp.vel)
	clear(dst.Effort)
	for i := range s.motors {
		dst.Position[i] = s.motors[i].toMotor(dst.Position[i])
		dst.Velocity[i] *= s.motors[i].scale
	}
	return nil
}

// WriteCommand sets the per-tick reference to c.Position (model order; motor units when
// Config.Motors is set), cancelling any trajectory, after Faults.CommandDelay (and
// CommandJitter). c.Velocity and c.Stamp are ignored. It copies c.
func (s *Sim) WriteCommand(c *robot.Command) error { return s.writeCommand(c, s.motors != nil) }

// WriteJointCommand is WriteCommand in joint units whatever Config.Motors says: a hand moving
// the arm, or a teach pendant. Calibration tests use it as the operator.
func (s *Sim) WriteJointCommand(c *robot.Command) error { return s.writeCommand(c, false) }

// due returns the elapsed time at which a command written now takes effect, and whether that is
// later than now.
func (s *Sim) due() (time.Duration, bool) {
	f := &s.cfg.Faults
	d := f.CommandDelay
	if f.CommandJitter > 0 {
		d += time.Duration(s.rng.Int64N(int64(f.CommandJitter)))
	}
	if d == 0 && s.lastDue <= s.t {
		return s.t, false
	}
	due := max(s.t+d, s.lastDue) // in order: never before an earlier command
	s.lastDue = due
	return due, true
}

func (s *Sim) writeCommand(c *robot.Command, motors bool) error {
	if len(c.Position) != s.n {
		return fmt.Errorf("%w: %d positions for %d joints", ErrCommand, len(c.Position), s.n)
	}
	for i, v := range c.Position {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("%w: joint %q position is %v", ErrCommand, s.m.Joints[i].Name, v)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	pos := c.Position
	if motors {
		for i := range s.motors {
			s.mbuf[i] = s.motors[i].toJoint(pos[i])
		}
		pos = s.mbuf
	}
	if due, later := s.due(); later {
		s.delayed.pushCommand(due, pos)
		return nil
	}
	s.applyCommand(pos)
	return nil
}

func (s *Sim) applyCommand(pos []float64) {
	copy(s.ref, pos)
	s.plan.active = false
	s.stats.Commands++
}

// WriteTrajectory replaces the active trajectory from tr's start time on (see the package
// documentation), after Faults.CommandDelay (and CommandJitter); positions are in motor units
// when Config.Motors is set. It copies tr. It returns ErrPast when every point
// lies at or before the time it would take over, and an error wrapping ErrCommand when tr is
// malformed: no points, positions not a multiple of DoF, times negative or not increasing,
// values not finite.
func (s *Sim) WriteTrajectory(tr *robot.Trajectory) error {
	k := len(tr.TimeFromStart)
	if k == 0 {
		return fmt.Errorf("%w: trajectory has no points", ErrCommand)
	}
	if len(tr.Positions) != k*s.n {
		return fmt.Errorf("%w: trajectory has %d positions for %d points of %d joints", ErrCommand, len(tr.Positions), k, s.n)
	}
	for i, d := range tr.TimeFromStart {
		if d < 0 || (i > 0 && d <= tr.TimeFromStart[i-1]) {
			return fmt.Errorf("%w: trajectory point %d: time from start %v is negative or not increasing", ErrCommand, i, d)
		}
	}
	for i, v := range tr.Positions {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("%w: trajectory point %d joint %q position is %v", ErrCommand, i/s.n, s.m.Joints[i%s.n].Name, v)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	pos := tr.Positions
	if s.motors != nil {
		s.mtraj = slices.Grow(s.mtraj[:0], len(pos))[:len(pos)]
		for i, v := range pos {
			s.mtraj[i] = s.motors[i%s.n].toJoint(v)
		}
		pos = s.mtraj
	}
	due, later := s.due()
	start := due // a zero Start means on arrival
	if !tr.Start.IsZero() {
		start = tr.Start.Sub(s.cfg.Start)
	}
	if later {
		s.delayed.pushTrajectory(due, start, tr.TimeFromStart, pos)
		return nil
	}
	return s.applyTrajectory(start, tr.TimeFromStart, pos)
}

// applyTrajectory inserts a trajectory starting at elapsed time start.
func (s *Sim) applyTrajectory(start time.Duration, tfs []time.Duration, pos []float64) error {
	ts := max(start, s.t)
	if start+tfs[len(tfs)-1] <= ts {
		return fmt.Errorf("%w: its last point is %v before it would start", ErrPast, ts-start-tfs[len(tfs)-1])
	}
	// The reference the current plan gives at ts.
	if s.plan.active {
		s.plan.sample(s.scratch, ts)
	} else {
		copy(s.scratch, s.ref)
	}
	if !s.plan.active {
		s.plan.clear()
		// Hold the reference from now to ts.
		s.plan.add(s.t, s.ref)
	}
	s.plan.cut(ts)
	s.plan.add(ts, s.scratch)
	for i, d := range tfs {
		if at := start + d; at > ts {
			s.plan.add(at, pos[i*s.n:(i+1)*s.n])
		}
	}
	s.plan.active = true
	s.stats.Trajectories++
	return nil
}

// deliver applies the delayed commands that are due.
func (s *Sim) deliver() {
	for {
		it := s.delayed.peek()
		if it == nil || it.due > s.t {
			return
		}
		if it.traj {
			if err := s.applyTrajectory(it.start, it.tfs, it.pos); err != nil {
				s.stats.Rejected++
			}
		} else {
			s.applyCommand(it.pos)
		}
		s.delayed.pop()
	}
}

// measure takes a sensor sample at s.t, applying drops, freezing and noise.
func (s *Sim) measure() {
	s.stats.Samples++
	f := &s.cfg.Faults
	if f.StateDrop > 0 && s.rng.Float64() < f.StateDrop {
		s.stats.Dropped++
		return
	}
	s.sensor.visible(s.t - f.StateLatency) // forget what no reader will see again
	smp := s.sensor.push(s.t)
	if f.Freeze.Active(s.t) {
		if s.sensor.frozen {
			copy(smp.pos, s.sensor.hold.pos)
			copy(smp.vel, s.sensor.hold.vel)
			return
		}
	}
	copy(smp.pos, s.q)
	copy(smp.vel, s.v)
	if f.PositionNoise > 0 || f.VelocityNoise > 0 {
		for i := range s.n {
			smp.pos[i] += f.PositionNoise * s.rng.NormFloat64()
			smp.vel[i] += f.VelocityNoise * s.rng.NormFloat64()
		}
	}
	if f.Freeze.Active(s.t) {
		s.sensor.freeze(smp)
	} else {
		s.sensor.frozen = false
	}
}
