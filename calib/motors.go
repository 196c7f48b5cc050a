package calib

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/flowact/flowact/robot"
)

// Operator puts the arm in a pose for a calibration: a person moving the arm by hand (torque
// off) and confirming, a teach pendant, or the simulator's joint-unit face in tests. Pose returns
// once the arm is at q (joint units, model order) and still, or with ctx's error. The procedure
// reads the motors after Pose returns and its settle time has passed.
type Operator interface {
	Pose(ctx context.Context, step string, q []float64) error
}

// MotorsConfig configures CalibrateMotors. The zero value is the defaults given per field.
type MotorsConfig struct {
	// Period is how often the procedure reads the motors and, while sweeping, commands them;
	// 0 means 10 ms.
	Period time.Duration `yaml:"period"`
	// Settle is how long the procedure waits after a pose before reading; at each end of a
	// sweep leg, the joint must stay within Follow of the leg's goal, and still, over the last
	// Settle/2 of readings (one per Period); 0 means 500 ms.
	Settle time.Duration `yaml:"settle"`
	// SettleLimit is how long, at each end of a sweep leg, the procedure waits for the joint to
	// settle (see Settle) before refusing it as a joint that does not follow: counted both on the
	// clock and in the procedure's own periods since the leg's last command, so that a starved
	// process (whose clock ran on while it did not) still watches the joint for that many
	// periods. Transport delay and a loaded machine make a joint settle late; a stall, a limit or
	// a wrong calibration never make it settle. 0 means 5 × Settle; at least Settle.
	SettleLimit time.Duration `yaml:"settle_limit"`
	// Samples is how many readings, one per Period, are averaged at a pose; 0 means 20.
	Samples int `yaml:"samples"`
	// Step is the direction step: the second pose moves every joint up by this fraction of its
	// travel; in (0, 0.5]; 0 means 0.2. A continuous joint steps by 0.5 rad.
	Step float64 `yaml:"step"`
	// Sweep is the fraction of each joint's travel swept, centred on the hold pose; in (0, 1];
	// 0 means 0.9 (a margin of 5% of the travel at each limit).
	Sweep float64 `yaml:"sweep"`
	// Speed is the sweep's speed as a fraction of each joint's velocity limit; in (0, 1]; 0 means
	// 0.1 (slowly). A joint without a velocity limit sweeps at 0.1 rad/s (or m/s).
	Speed float64 `yaml:"speed"`
	// ReductionTolerance is the relative difference allowed between the reduction measured by
	// the direction step and the nominal one; 0 means 0.05.
	ReductionTolerance float64 `yaml:"reduction_tolerance"`
	// MaxOffset is how far (joint units) a measured offset may lie from the nominal one, after
	// removing whole counter turns when the counter wraps; 0 means a quarter of a motor turn
	// (π/(2|Reduction|)): further means the motor was mounted off or the arm was not at the
	// hold pose.
	MaxOffset float64 `yaml:"max_offset"`
	// Follow is how close (joint units) the calibrated position must come to each end of a
	// sweep, and how far a joint may move over the readings averaged at a pose (it must be
	// still); 0 means 1% of the joint's travel (of a turn for a continuous joint) plus one tick.
	Follow float64 `yaml:"follow"`
}

func (c MotorsConfig) withDefaults() MotorsConfig {
	if c.Period == 0 {
		c.Period = 10 * time.Millisecond
	}
	if c.Settle == 0 {
		c.Settle = 500 * time.Millisecond
	}
	if c.SettleLimit == 0 {
		c.SettleLimit = 5 * c.Settle
	}
	if c.Samples == 0 {
		c.Samples = 20
	}
	if c.Step == 0 {
		c.Step = 0.2
	}
	if c.Sweep == 0 {
		c.Sweep = 0.9
	}
	if c.Speed == 0 {
		c.Speed = 0.1
	}
	if c.ReductionTolerance == 0 {
		c.ReductionTolerance = 0.05
	}
	return c
}

// ErrConfig is wrapped by the errors of MotorsConfig.Validate and LatencyConfig.Validate.
var ErrConfig = errors.New("calib: bad config")

// Validate checks the fields; zero fields take their defaults first.
func (c MotorsConfig) Validate() error {
	c = c.withDefaults()
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...)
	}
	switch {
	case c.Period < 0 || c.Settle < 0:
		return bad("period %v and settle %v must not be negative", c.Period, c.Settle)
	case c.SettleLimit < c.Settle:
		return bad("settle_limit %v is shorter than settle %v", c.SettleLimit, c.Settle)
	case c.Samples < 1:
		return bad("samples %d must be positive", c.Samples)
	case !(c.Step > 0 && c.Step <= 0.5):
		return bad("step %g not in (0, 0.5]", c.Step)
	case !(c.Sweep > 0 && c.Sweep <= 1):
		return bad("sweep %g not in (0, 1]", c.Sweep)
	case !(c.Speed > 0 && c.Speed <= 1):
		return bad("speed %g not in (0, 1]", c.Speed)
	case !(c.ReductionTolerance > 0 && c.ReductionTolerance < 1):
		return bad("reduction_tolerance %g not in (0, 1)", c.ReductionTolerance)
	case !(c.MaxOffset >= 0) || math.IsInf(c.MaxOffset, 0):
		return bad("max_offset %g must be finite and >= 0", c.MaxOffset)
	case !(c.Follow >= 0) || math.IsInf(c.Follow, 0):
		return bad("follow %g must be finite and >= 0", c.Follow)
	}
	return nil
}

// JointReport is what CalibrateMotors measured for one joint.
type JointReport struct {
	Joint     string
	Hold      float64 // motor position read at the hold pose (mean)
	Stepped   float64 // motor position read at the stepped pose (mean)
	Direction int     // measured: +1 or -1
	Reduction float64 // measured |motor units per joint unit| / the nominal's, 1 when they agree
	Offset    float64 // measured offset (joint units)
	Range     [2]float64
}

// ErrRefused is wrapped by the errors of a calibration that CalibrateMotors refuses: a direction
// that disagrees with the model, an offset out of range, a wrap inside the travel, a reduction
// that does not match, or a joint that does not follow its sweep.
var ErrRefused = errors.New("calib: calibration refused")

// CalibrateMotors runs the guided motor calibration (see the package documentation) on d, a
// driver in motor units, on clock clk. nominal are the design transmissions (Nominal): their
// resolution, wrap, id and reduction magnitude are taken as given; the procedure measures each
// joint's offset and direction and checks them against the nominal ones. It returns the
// calibration file (Robot and Joints filled, Ranges from the sweep) and per-joint reports. A
// refused calibration returns the reports so far and an error wrapping ErrRefused that names
// every joint at fault; no file.
func CalibrateMotors(ctx context.Context, d robot.Driver, clk robot.Clock, op Operator, nominal map[string]Transmission, cfg MotorsConfig) (*File, []JointReport, error) {
	if err := cfg.Validate(); err != nil {
		return nil, nil, err
	}
	cfg = cfg.withDefaults()
	m := d.Model()
	nom, err := NewSet(m, nominal)
	if err != nil {
		return nil, nil, fmt.Errorf("calib: nominal transmissions: %w", err)
	}
	n := m.DoF()
	rep := make([]JointReport, n)
	for i, j := range m.Joints {
		rep[i].Joint = j.Name
	}
	hold, stepped := make([]float64, n), make([]float64, n)
	for i, j := range m.Joints {
		l := j.Limits
		if l.HasPosition {
			hold[i] = (l.Lower + l.Upper) / 2
			stepped[i] = hold[i] + cfg.Step*(l.Upper-l.Lower)
		} else {
			stepped[i] = 0.5
		}
	}
	r := reader{d: d, clk: clk, st: robot.NewState(n), sum: make([]float64, n), first: make([]float64, n), wrap: make([]float64, n)}
	r.still, r.ring = make([]float64, n), make([]float64, cfg.Samples*n)
	for i, j := range m.Joints {
		r.wrap[i] = float64(nom.joints[i].Wrap)
		// Still: the sweep's follow band (1% of the travel, a turn for a continuous joint, plus
		// a tick), in motor units.
		tick := 1 / math.Abs(nom.joints[i].scale)
		follow := cfg.Follow
		if follow == 0 {
			travel := 2 * math.Pi
			if l := j.Limits; l.HasPosition {
				travel = l.Upper - l.Lower
			}
			follow = 0.01*travel + tick
		}
		r.still[i] = follow / tick
	}

	// 1. Hold: the offsets (once the directions are known).
	if err := op.Pose(ctx, "hold every joint at the middle of its travel", hold); err != nil {
		return nil, rep, fmt.Errorf("calib: hold pose: %w", err)
	}
	uh := make([]float64, n)
	if err := r.mean(ctx, uh, cfg); err != nil {
		return nil, rep, fmt.Errorf("calib: reading the hold pose: %w", err)
	}
	// 2. Step: the directions and the reductions' magnitudes.
	if err := op.Pose(ctx, "move every joint up (its positive direction) by a fifth of its travel", stepped); err != nil {
		return nil, rep, fmt.Errorf("calib: stepped pose: %w", err)
	}
	us := make([]float64, n)
	if err := r.mean(ctx, us, cfg); err != nil {
		return nil, rep, fmt.Errorf("calib: reading the stepped pose: %w", err)
	}
	var refused []error
	measured := make(map[string]Transmission, n)
	for i, j := range m.Joints {
		nt := nom.joints[i]
		rep[i].Hold, rep[i].Stepped = uh[i], us[i]
		du := us[i] - uh[i]
		if w := r.wrap[i]; w > 0 {
			du = centredMod(du, w)
		}
		ratio := du / (stepped[i] - hold[i]) / nt.scale // +1 when all agrees
		rep[i].Direction = 1
		if du < 0 {
			rep[i].Direction = -1
		}
		rep[i].Reduction = math.Abs(ratio)
		t := nt.Transmission
		if rep[i].Direction != t.Direction() {
			refused = append(refused, fieldErr(j.Name, "direction", "measured %+d, the model says %+d (motor moved %+.1f for a joint step of %+.4g): check the motor's mounting or the nominal transmission", rep[i].Direction, t.Direction(), du, stepped[i]-hold[i]))
			continue
		}
		if math.Abs(rep[i].Reduction-1) > cfg.ReductionTolerance {
			refused = append(refused, fieldErr(j.Name, "reduction", "measured %.4g motor units per joint unit, the model says %.4g (off by %.1f%%)", math.Abs(du/(stepped[i]-hold[i])), math.Abs(nt.scale), 100*(rep[i].Reduction-1)))
			continue
		}
		// The offset puts the hold reading at the hold pose: q = off + u/scale.
		off := hold[i] - uh[i]/nt.scale
		if t.Resolution > 0 {
			off = hold[i] - math.Round(uh[i])/nt.scale // the counter's whole ticks
		}
		rep[i].Offset = off
		dev := off - t.Offset
		if w := r.wrap[i]; w > 0 {
			dev = centredMod(dev*nt.scale, w) / nt.scale
		}
		maxOff := cfg.MaxOffset
		if maxOff == 0 {
			maxOff = math.Pi / (2 * math.Abs(t.Reduction))
		}
		if math.Abs(dev) > maxOff {
			refused = append(refused, fieldErr(j.Name, "offset", "measured %.6g, %.4g from the model's %.6g (more than %.4g): the motor is mounted off, or the joint was not at the hold pose", off, math.Abs(dev), t.Offset, maxOff))
			continue
		}
		t.Offset = off
		measured[j.Name] = t
	}
	if len(refused) > 0 {
		return nil, rep, fmt.Errorf("%w: %w", ErrRefused, errors.Join(refused...))
	}
	// The wrap rule on the measured calibration.
	set, err := NewSet(m, measured)
	if err != nil {
		return nil, rep, fmt.Errorf("%w: %w", ErrRefused, err)
	}

	// 3. Sweep each joint through the new calibration, recording the motors' range.
	if err := op.Pose(ctx, "release the arm: it sweeps each joint slowly within its limits", hold); err != nil {
		return nil, rep, fmt.Errorf("calib: before the sweep: %w", err)
	}
	w, err := Wrap(d, set)
	if err != nil {
		return nil, rep, err
	}
	sw := sweeper{w: w, raw: d, clk: clk, cfg: cfg, n: n, st: robot.NewState(n), raw0: robot.NewState(n), cmd: make([]float64, n), wrap: r.wrap,
		win: make([]float64, max(1, int(math.Round(float64(cfg.Settle/2)/float64(cfg.Period)))))}
	for i, j := range m.Joints {
		if !j.Limits.HasPosition {
			continue // a continuous joint has no range to record
		}
		rg, err := sw.joint(ctx, i, hold, set)
		if err != nil {
			if ctx.Err() != nil {
				return nil, rep, err
			}
			refused = append(refused, err)
			continue
		}
		rep[i].Range = rg
	}
	if len(refused) > 0 {
		return nil, rep, fmt.Errorf("%w: %w", ErrRefused, errors.Join(refused...))
	}
	f := &File{Version: FileVersion, Robot: m.Name, Joints: measured, Ranges: make(map[string][2]float64)}
	for i, j := range m.Joints {
		if j.Limits.HasPosition {
			f.Ranges[j.Name] = rep[i].Range
		}
	}
	return f, rep, nil
}

// centredMod returns x modulo m in [-m/2, m/2).
func centredMod(x, m float64) float64 {
	return floorMod(x+m/2, m) - m/2
}

// reader averages motor readings.
type reader struct {
	d     robot.Driver
	clk   robot.Clock
	st    robot.State
	sum   []float64
	first []float64
	wrap  []float64
	still []float64 // the most a joint's motor may move over the readings averaged (motor units)
	ring  []float64 // the last Samples readings, unwrapped: reading k of joint i at (k%Samples)*n+i
}

// mean waits cfg.Settle, then reads the motors once a Period until the last cfg.Samples readings
// of every joint span no more than r.still (the arm is still: a reading that lags behind a
// loaded machine or an arm still on its way is not averaged in), and averages those into dst;
// with a wrapping counter the readings are unwrapped around the first. An arm that is not still
// within cfg.SettleLimit (on the clock and in periods) after the settle time is an error naming
// the joint.
func (r *reader) mean(ctx context.Context, dst []float64, cfg MotorsConfig) error {
	t := r.clk.Now().Add(cfg.Settle)
	if err := r.clk.SleepUntil(ctx, t); err != nil {
		return err
	}
	n, S := len(dst), cfg.Samples
	limit := r.clk.Now().Add(cfg.SettleLimit)
	limitTicks := int(math.Ceil(float64(cfg.SettleLimit) / float64(cfg.Period)))
	for k := 0; ; k++ {
		if k > 0 {
			if err := nextTick(ctx, r.clk, &t, cfg.Period); err != nil {
				return err
			}
		}
		if err := r.d.ReadState(&r.st); err != nil {
			return err
		}
		for i, u := range r.st.Position {
			if math.IsNaN(u) || math.IsInf(u, 0) {
				return fmt.Errorf("calib: joint %d: motor position %v", i, u)
			}
			if k == 0 {
				r.first[i] = u
			}
			if w := r.wrap[i]; w > 0 {
				u = r.first[i] + centredMod(u-r.first[i], w)
			}
			r.ring[(k%S)*n+i] = u
		}
		if k+1 < S {
			continue
		}
		moving, span := -1, 0.0
		for i := range n {
			lo, hi := math.Inf(1), math.Inf(-1)
			for s := range S {
				lo, hi = min(lo, r.ring[s*n+i]), max(hi, r.ring[s*n+i])
			}
			if hi-lo > r.still[i] {
				moving, span = i, hi-lo
				break
			}
		}
		if moving < 0 {
			break
		}
		if k+1 >= limitTicks && !r.clk.Now().Before(limit) {
			return fmt.Errorf("calib: joint %q is not still: its motor moved %.4g over the last %d readings (more than %.4g), %v after the settle time: hold the arm still at the pose (or its sensor is that noisy: raise follow)", r.d.Model().Joints[moving].Name, span, S, r.still[moving], cfg.SettleLimit)
		}
	}
	clear(r.sum)
	for s := range S {
		for i := range n {
			r.sum[i] += r.ring[s*n+i]
		}
	}
	for i := range dst {
		dst[i] = r.sum[i] / float64(S)
		if w := r.wrap[i]; w > 0 {
			dst[i] = floorMod(dst[i], w)
		}
	}
	return nil
}

// sweeper moves one joint at a time through the calibrated driver w.
type sweeper struct {
	w, raw    robot.Driver
	clk       robot.Clock
	cfg       MotorsConfig
	n         int
	st, raw0  robot.State
	cmd, wrap []float64
	win       []float64 // the settle window's calibrated positions, oldest first
}

// joint sweeps joint i from the hold pose down to the lower end of the sweep, up to the upper
// end and back, at constant speed, commanding every Period; it records the raw motor positions
// at the two ends, refuses a counter that wraps during the sweep, and checks that the joint
// reaches each end.
func (s *sweeper) joint(ctx context.Context, i int, hold []float64, set *Set) ([2]float64, error) {
	j := &set.m.Joints[i]
	l := j.Limits
	name := j.Name
	travel := l.Upper - l.Lower
	lo := hold[i] - s.cfg.Sweep*travel/2
	hi := hold[i] + s.cfg.Sweep*travel/2
	v := s.cfg.Speed * l.Velocity
	if l.Velocity == 0 {
		v = 0.1
	}
	follow := s.cfg.Follow
	if follow == 0 {
		follow = 0.01*travel + 1/math.Abs(set.joints[i].scale)
	}
	copy(s.cmd, hold)
	var rg [2]float64
	var prev float64
	havePrev := false
	dt := s.cfg.Period.Seconds()
	t := s.clk.Now()
	for leg, goal := range []float64{lo, hi, hold[i]} {
		for {
			q := s.cmd[i]
			if q == goal {
				break
			}
			stepq := math.Copysign(min(v*dt, math.Abs(goal-q)), goal-q)
			s.cmd[i] = q + stepq
			if math.Abs(goal-s.cmd[i]) < 1e-12 {
				s.cmd[i] = goal
			}
			u, err := s.tick(ctx, &t, i, name)
			if err != nil {
				return rg, err
			}
			if w := s.wrap[i]; w > 0 && havePrev && math.Abs(u-prev) > w/2 {
				return rg, fieldErr(name, "wrap", "the counter wrapped from tick %.0f to %.0f during the sweep, inside the travel", prev, u)
			}
			prev, havePrev = u, true
		}
		// Settle at the end of the leg, still commanding the goal and watching for wraps, until
		// the joint is within follow of the goal and still over the window; a joint that does
		// not get there within the settle limit does not follow.
		if err := s.settle(ctx, &t, i, name, goal, follow, &prev); err != nil {
			return rg, err
		}
		if leg < 2 {
			rg[leg] = prev
		}
	}
	return rg, nil
}

// settle holds joint i at goal, commanding s.cmd every period and reading the joint, until its
// last window readings (Settle/2 of periods) all lie within follow of goal and span no more
// than follow: it has arrived and stopped. Readings arrive late under transport delay or a
// loaded machine, so the joint is given up to SettleLimit, on the clock and in periods since the
// leg's last command, before it is refused as not following; the error names where it was (the
// window's mean) and how far it moved over the window. *prev is the last raw motor reading.
func (s *sweeper) settle(ctx context.Context, t *time.Time, i int, name string, goal, follow float64, prev *float64) error {
	win := s.win
	limit := s.clk.Now().Add(s.cfg.SettleLimit)
	limitTicks := int(math.Ceil(float64(s.cfg.SettleLimit) / float64(s.cfg.Period)))
	for k := 1; ; k++ {
		u, err := s.tick(ctx, t, i, name)
		if err != nil {
			return err
		}
		if w := s.wrap[i]; w > 0 && math.Abs(u-*prev) > w/2 {
			return fieldErr(name, "wrap", "the counter wrapped from tick %.0f to %.0f during the sweep, inside the travel", *prev, u)
		}
		*prev = u
		if err := s.w.ReadState(&s.st); err != nil {
			return fmt.Errorf("calib: joint %q: sweep: %w", name, err)
		}
		q := s.st.Position[i]
		if math.IsNaN(q) || math.IsInf(q, 0) {
			return fmt.Errorf("calib: joint %q: sweep: position %v", name, q)
		}
		copy(win, win[1:])
		win[len(win)-1] = q
		if k < len(win) {
			continue
		}
		lo, hi, sum := math.Inf(1), math.Inf(-1), 0.0
		for _, x := range win {
			lo, hi, sum = min(lo, x), max(hi, x), sum+x
		}
		if max(hi-goal, goal-lo) <= follow && hi-lo <= follow {
			return nil
		}
		if k >= limitTicks && !s.clk.Now().Before(limit) {
			at := sum / float64(len(win))
			span := time.Duration(len(win)) * s.cfg.Period
			if off := math.Abs(at - goal); off > follow {
				return fieldErr(name, "", "did not follow its sweep: at %.5g after settling for %v, commanded %.5g (off by %.3g, more than %.3g): a stall, a limit, or a wrong calibration", at, s.cfg.SettleLimit, goal, off, follow)
			}
			return fieldErr(name, "", "did not follow its sweep: near %.5g (commanded %.5g) after settling for %v but not within %.3g of it and still: it moved %.3g over the last %v: an oscillation, a slipping joint, or a noisy sensor", at, goal, s.cfg.SettleLimit, follow, hi-lo, span)
		}
	}
}

// busyRetries bounds how often tick resends a command a full queue refused.
const busyRetries = 100

// tick sends s.cmd, waits a period on the clock (advancing *t, see nextTick) and reads joint i's
// raw motor position.
//
// A driver whose queue is full (robot.ErrBusy: nothing of the command was sent) gets the same
// command again a period later, at most busyRetries times: the sweep is slow, and skipping a
// command would make the next one two steps from the last one sent.
func (s *sweeper) tick(ctx context.Context, t *time.Time, i int, name string) (float64, error) {
	for try := 0; ; try++ {
		err := s.w.WriteCommand(&robot.Command{Position: s.cmd})
		if err != nil && (!errors.Is(err, robot.ErrBusy) || try == busyRetries) {
			return 0, fmt.Errorf("calib: joint %q: sweep: %w", name, err)
		}
		if err := nextTick(ctx, s.clk, t, s.cfg.Period); err != nil {
			return 0, err
		}
		if err == nil {
			break
		}
	}
	u, err := s.rawAt(i)
	if err != nil {
		return 0, fmt.Errorf("calib: joint %q: sweep: %w", name, err)
	}
	return u, nil
}

// nextTick advances the schedule *t by period and sleeps until it on clk. A tick that wakes a whole
// period or more late (a starved process: the clock ran on meanwhile, and the robot with it)
// rebases the schedule to now instead of firing the missed ticks back to back: a burst would
// send a sweep's commands faster than its speed, and pass a settle window on the clock without
// a reading that reflects them.
func nextTick(ctx context.Context, clk robot.Clock, t *time.Time, period time.Duration) error {
	*t = t.Add(period)
	if err := clk.SleepUntil(ctx, *t); err != nil {
		return err
	}
	if now := clk.Now(); now.Sub(*t) >= period {
		*t = now
	}
	return nil
}

func (s *sweeper) rawAt(i int) (float64, error) {
	if err := s.raw.ReadState(&s.raw0); err != nil {
		return 0, err
	}
	u := s.raw0.Position[i]
	if math.IsNaN(u) || math.IsInf(u, 0) {
		return 0, fmt.Errorf("motor position %v", u)
	}
	return u, nil
}

// OperatorFunc is an Operator from a function.
type OperatorFunc func(ctx context.Context, step string, q []float64) error

// Pose calls f.
func (f OperatorFunc) Pose(ctx context.Context, step string, q []float64) error {
	return f(ctx, step, q)
}
