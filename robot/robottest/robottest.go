package robottest

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/flowact/flowact/robot"
)

// Options tell the suite how to drive the robot behind a driver and what it guarantees.
type Options struct {
	// Step advances the robot behind the driver by dt (see the package documentation). Required.
	Step func(dt time.Duration)
	// Dt is the suite's control period; 0 means 10 ms.
	Dt time.Duration
	// Settle is the stepped time a target may take to be reached beyond the time its travel
	// needs at the velocity limits (and beyond a trajectory's duration); 0 means 5 s.
	Settle time.Duration
	// Tolerance is the position error accepted as "reached" (rad or m); 0 means 1e-3.
	Tolerance float64
	// Fresh: the robot has not been stepped yet, so ReadState must return robot.ErrNoState.
	Fresh bool
	// ClampsPosition: the driver keeps every joint within its position limits whatever it is
	// commanded (check 5).
	ClampsPosition bool
	// VelocityLimited: no joint ever moves faster than its velocity limit (check 4).
	VelocityLimited bool
}

func (o *Options) defaults() {
	if o.Step == nil {
		panic("robottest: Options.Step is nil")
	}
	if o.Dt <= 0 {
		o.Dt = 10 * time.Millisecond
	}
	if o.Settle <= 0 {
		o.Settle = 5 * time.Second
	}
	if o.Tolerance <= 0 {
		o.Tolerance = 1e-3
	}
}

// TestDriver runs the driver contract checks (see the package documentation) on d, each as a
// subtest of t. Run it under -race.
func TestDriver(t *testing.T, d robot.Driver, opt Options) {
	t.Helper()
	c := newChecker(d, opt)
	for _, s := range c.sections() {
		t.Run(s.name, func(t *testing.T) {
			if c.aborted != "" {
				t.Skipf("skipped: %s failed", c.aborted)
			}
			for _, err := range c.run(s) {
				t.Error(err)
			}
		})
	}
}

// Check runs the same checks as TestDriver and returns every failure, joined; nil if d keeps the
// contract.
func Check(d robot.Driver, opt Options) error {
	c := newChecker(d, opt)
	var all []error
	for _, s := range c.sections() {
		if c.aborted != "" {
			break
		}
		for _, err := range c.run(s) {
			all = append(all, fmt.Errorf("%s: %w", s.name, err))
		}
	}
	return errors.Join(all...)
}

type section struct {
	name  string
	fn    func()
	fatal bool // a failure here stops the remaining sections
}

type checker struct {
	d       robot.Driver
	opt     Options
	m       *robot.Model
	n       int
	st      robot.State // the suite's read buffer
	errs    []error
	aborted string
}

// stop ends the current section, like testing.T.FailNow.
type stop struct{}

func newChecker(d robot.Driver, opt Options) *checker {
	opt.defaults()
	return &checker{d: d, opt: opt}
}

func (c *checker) sections() []section {
	ss := []section{
		{"Model", c.checkModel, true},
		{"State", c.checkState, true},
		{"Rejects", c.checkRejects, false},
		{"Track", c.checkTrack, false},
	}
	if c.opt.ClampsPosition {
		ss = append(ss, section{"Clamp", c.checkClamp, false})
	}
	ss = append(ss, section{"NoAlloc", c.checkNoAlloc, false}, section{"Concurrent", c.checkConcurrent, false})
	if _, ok := c.d.(robot.TrajectoryWriter); ok {
		ss = append(ss, section{"Trajectory", c.checkTrajectory, false})
	}
	return ss
}

func (c *checker) run(s section) (errs []error) {
	c.errs = nil
	func() {
		defer func() {
			if r := recover(); r != nil {
				if _, ok := r.(stop); !ok {
					c.errs = append(c.errs, fmt.Errorf("panic: %v", r))
				}
			}
		}()
		s.fn()
	}()
	if len(c.errs) > 0 && s.fatal {
		c.aborted = s.name
	}
	return c.errs
}

func (c *checker) errorf(format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf(format, args...))
}

func (c *checker) fatalf(format string, args ...any) {
	c.errorf(format, args...)
	panic(stop{})
}

func (c *checker) step() { c.opt.Step(c.opt.Dt) }

// read reads the state into c.st, failing the section on error.
func (c *checker) read() *robot.State {
	if err := c.d.ReadState(&c.st); err != nil {
		c.fatalf("ReadState: %v", err)
	}
	return &c.st
}

// write writes a command, failing the section on error. A driver whose queue is full (ErrBusy:
// a section before flooded it) is given steps to drain it, at most 100.
func (c *checker) write(pos []float64) {
	for range 100 {
		err := c.d.WriteCommand(&robot.Command{Position: pos})
		if !errors.Is(err, robot.ErrBusy) {
			if err != nil {
				c.fatalf("WriteCommand(%v): %v", pos, err)
			}
			return
		}
		c.step()
	}
	c.fatalf("WriteCommand(%v): still %v after 100 steps", pos, robot.ErrBusy)
}

func (c *checker) checkModel() {
	m := c.d.Model()
	if m == nil {
		c.fatalf("Model() is nil")
	}
	if err := m.Validate(); err != nil {
		c.fatalf("Model().Validate(): %v", err)
	}
	if m2 := c.d.Model(); m2 != m {
		c.errorf("Model() returned %p, then %p: want the same model", m, m2)
	}
	c.m, c.n = m, m.DoF()
	c.st = robot.NewState(c.n)
}

func (c *checker) checkState() {
	if c.opt.Fresh {
		if err := c.d.ReadState(&c.st); !errors.Is(err, robot.ErrNoState) {
			c.errorf("before the first step, ReadState returned %v, want an error wrapping robot.ErrNoState", err)
		}
	}
	var waited time.Duration
	for {
		err := c.d.ReadState(&c.st)
		if err == nil {
			break
		}
		if !errors.Is(err, robot.ErrNoState) {
			c.fatalf("ReadState: %v (want nil, or robot.ErrNoState before a first state)", err)
		}
		if waited > c.opt.Settle {
			c.fatalf("no state after %v of steps: %v", waited, err)
		}
		c.step()
		waited += c.opt.Dt
	}
	// Filled in place, finite, stamped.
	p0, v0, e0 := &c.st.Position[0], &c.st.Velocity[0], &c.st.Effort[0]
	st := c.read()
	if len(st.Position) != c.n || len(st.Velocity) != c.n || len(st.Effort) != c.n || &st.Position[0] != p0 || &st.Velocity[0] != v0 || &st.Effort[0] != e0 {
		c.errorf("ReadState replaced the caller's slices of length DoF; it must fill them in place")
		c.st = robot.NewState(c.n)
		st = c.read()
	}
	for i, q := range st.Position {
		if math.IsNaN(q) || math.IsInf(q, 0) {
			c.errorf("joint %q position %v", c.m.Joints[i].Name, q)
		}
	}
	if st.Stamp.IsZero() {
		c.errorf("state has a zero Stamp")
	}
	// No reference to dst is kept.
	want := append([]float64(nil), st.Position...)
	for i := range st.Position {
		st.Position[i] = math.NaN()
	}
	st = c.read()
	for i := range want {
		if math.IsNaN(st.Position[i]) {
			c.fatalf("a second ReadState returned the NaN written into the first one's dst: the driver kept a reference to it")
		}
	}
	// Stamps advance with steps and never go backwards.
	first, prev := st.Stamp, st.Stamp
	for waited := time.Duration(0); ; waited += c.opt.Dt {
		c.step()
		st = c.read()
		if st.Stamp.Before(prev) {
			c.errorf("stamp went backwards from %v to %v", prev, st.Stamp)
		}
		prev = st.Stamp
		if st.Stamp.After(first) {
			break
		}
		if waited > c.opt.Settle {
			c.errorf("stamp stayed %v over %v of steps", first, waited)
			break
		}
	}
	// Wrong lengths: an error or a resize, never a panic.
	for _, tc := range []struct {
		name string
		st   robot.State
	}{
		{"nil slices", robot.State{}},
		{"short Position", robot.State{Position: make([]float64, c.n-1), Velocity: make([]float64, c.n), Effort: make([]float64, c.n)}},
		{"long Effort", robot.State{Position: make([]float64, c.n), Velocity: make([]float64, c.n), Effort: make([]float64, c.n+1)}},
	} {
		err := c.safe(func() error { return c.d.ReadState(&tc.st) })
		if err == nil && (len(tc.st.Position) != c.n || len(tc.st.Velocity) != c.n || len(tc.st.Effort) != c.n) {
			c.errorf("ReadState with %s: no error, and lengths %d/%d/%d, want an error or DoF %d", tc.name, len(tc.st.Position), len(tc.st.Velocity), len(tc.st.Effort), c.n)
		}
	}
}

// safe calls f and turns a panic into an error naming it.
func (c *checker) safe(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			c.errorf("panicked: %v", r)
			err = fmt.Errorf("panic")
		}
	}()
	return f()
}

// hold commands the current position and waits for the robot to rest there; it returns it.
func (c *checker) hold() []float64 {
	q := append([]float64(nil), c.read().Position...)
	c.write(q)
	c.reach(q, c.opt.Settle, nil)
	return q
}

// reach steps until every joint is within Tolerance of target or budget has passed, calling
// each(st) on every sample; it reports whether the target was reached.
func (c *checker) reach(target []float64, budget time.Duration, each func(st *robot.State)) bool {
	for waited := time.Duration(0); ; waited += c.opt.Dt {
		st := c.read()
		if each != nil {
			each(st)
		}
		if c.within(st.Position, target) {
			return true
		}
		if waited > budget {
			return false
		}
		c.step()
	}
}

func (c *checker) within(q, target []float64) bool {
	for i := range target {
		if math.Abs(q[i]-target[i]) > c.opt.Tolerance {
			return false
		}
	}
	return true
}

// travel is the stepped time the robot needs, at its velocity limits, from q to target, plus
// Settle.
func (c *checker) travel(q, target []float64) time.Duration {
	var t float64
	for i, j := range c.m.Joints {
		if v := j.Limits.Velocity; v > 0 {
			t = max(t, math.Abs(target[i]-q[i])/v)
		}
	}
	return c.opt.Settle + time.Duration(t*float64(time.Second))
}

func (c *checker) checkRejects() {
	q := c.hold()
	nan := append([]float64(nil), q...)
	nan[c.n-1] = math.NaN()
	inf := append([]float64(nil), q...)
	inf[0] = math.Inf(-1)
	for _, tc := range []struct {
		name string
		pos  []float64
	}{
		{"nil Position", nil},
		{"DoF-1 positions", make([]float64, c.n-1)},
		{"DoF+1 positions", make([]float64, c.n+1)},
		{"a NaN position", nan},
		{"an infinite position", inf},
	} {
		err := c.safe(func() error { return c.d.WriteCommand(&robot.Command{Position: tc.pos}) })
		if err == nil {
			c.errorf("WriteCommand with %s: no error", tc.name)
		}
	}
	// The robot keeps its target.
	for range int(c.opt.Settle / c.opt.Dt / 4) {
		c.step()
	}
	st := c.read()
	for i := range q {
		if math.Abs(st.Position[i]-q[i]) > c.opt.Tolerance {
			c.errorf("after the rejected commands joint %q moved from %g to %g", c.m.Joints[i].Name, q[i], st.Position[i])
		}
	}
	if err := c.d.WriteCommand(&robot.Command{Position: q, Velocity: make([]float64, c.n)}); err != nil {
		c.errorf("WriteCommand with a zero Velocity feed-forward of length DoF: %v", err)
	}
}

// targetFrom returns a reachable target near q: each joint moves by up to 0.2 (rad or m), at most a
// quarter of its (soft, where given) position band, toward the band's middle, and ends inside it.
func (c *checker) targetFrom(q []float64) []float64 {
	target := make([]float64, c.n)
	for i, j := range c.m.Joints {
		l := j.Limits
		if !l.HasPosition {
			target[i] = q[i] + 0.2
			continue
		}
		lo, hi := l.Lower, l.Upper
		if s := j.Soft; s != nil && s.Lower >= lo && s.Upper <= hi && s.Lower <= s.Upper {
			lo, hi = s.Lower, s.Upper
		}
		d := min(0.2, (hi-lo)/4)
		if q[i] > (lo+hi)/2 {
			d = -d
		}
		target[i] = min(max(q[i]+d, lo), hi)
	}
	return target
}

func (c *checker) checkTrack() {
	q0 := c.hold()
	target := c.targetFrom(q0)
	cmd := append([]float64(nil), target...)
	c.write(cmd)
	copy(cmd, q0) // a driver that kept cmd would now hold still
	err0 := make([]float64, c.n)
	for i := range err0 {
		err0[i] = math.Abs(q0[i] - target[i])
	}
	prev := robot.NewState(c.n)
	prev.CopyFrom(c.read())
	reported := make([]bool, c.n)
	ok := c.reach(target, c.travel(q0, target), func(st *robot.State) {
		dt := st.Stamp.Sub(prev.Stamp).Seconds()
		for i, j := range c.m.Joints {
			name := j.Name
			e := math.Abs(st.Position[i] - target[i])
			// Overshoot is allowed (a servo with acceleration limits brakes late), moving off is not.
			if e > err0[i]+c.opt.Tolerance && !reported[i] {
				reported[i] = true
				c.errorf("joint %q moved away from its target %g: error %g, %g at the start", name, target[i], e, err0[i])
			}
			v := j.Limits.Velocity
			if !c.opt.VelocityLimited || v == 0 || reported[i] {
				continue
			}
			// 1e-9 absorbs rounding in positions of order 10 (rad or m).
			if dt > 0 && math.Abs(st.Position[i]-prev.Position[i]) > v*dt+1e-9 {
				reported[i] = true
				c.errorf("joint %q moved %g in %gs, faster than its velocity limit %g", name, st.Position[i]-prev.Position[i], dt, v)
			}
			if math.Abs(st.Velocity[i]) > v*(1+1e-9) {
				reported[i] = true
				c.errorf("joint %q reports velocity %g, beyond its limit %g", name, st.Velocity[i], v)
			}
		}
		prev.CopyFrom(st)
	})
	if !ok {
		c.errorf("target %v not reached within %g: at %v", target, c.opt.Tolerance, c.st.Position)
	}
}

func (c *checker) checkClamp() {
	q0 := c.hold()
	for _, side := range []string{"upper", "lower"} {
		cmd := make([]float64, c.n)
		want := make([]float64, c.n)
		for i, j := range c.m.Joints {
			l := j.Limits
			switch {
			case !l.HasPosition:
				cmd[i] = q0[i]
			case side == "upper":
				cmd[i] = l.Upper + max(0.1, (l.Upper-l.Lower)/2)
			default:
				cmd[i] = l.Lower - max(0.1, (l.Upper-l.Lower)/2)
			}
			want[i] = cmd[i]
			if l.HasPosition {
				want[i] = min(max(cmd[i], l.Lower), l.Upper)
			}
		}
		from := append([]float64(nil), c.read().Position...)
		c.write(cmd)
		reported := make([]bool, c.n)
		ok := c.reach(want, c.travel(from, want), func(st *robot.State) {
			for i, j := range c.m.Joints {
				l := j.Limits
				if q := st.Position[i]; l.HasPosition && !reported[i] && (q < l.Lower-c.opt.Tolerance || q > l.Upper+c.opt.Tolerance) {
					reported[i] = true
					c.errorf("commanded beyond its %s limit, joint %q reached %g, outside [%g, %g]", side, j.Name, q, l.Lower, l.Upper)
				}
			}
		})
		if !ok {
			c.errorf("commanded beyond the %s limits, the joints did not settle at the limits %v: at %v", side, want, c.st.Position)
		}
	}
	c.hold()
}

func (c *checker) checkNoAlloc() {
	q := c.hold()
	cmd := robot.Command{Position: q}
	st := robot.NewState(c.n)
	if a := testing.AllocsPerRun(50, func() { _ = c.d.ReadState(&st) }); a != 0 {
		c.errorf("ReadState allocates %v times per call, want 0", a)
	}
	if a := testing.AllocsPerRun(50, func() { _ = c.d.WriteCommand(&cmd) }); a != 0 {
		c.errorf("WriteCommand allocates %v times per call, want 0", a)
	}
}

func (c *checker) checkConcurrent() {
	q := c.hold()
	const n = 200
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	wg.Add(2)
	go func() {
		defer wg.Done()
		st := robot.NewState(c.n)
		for range n {
			if err := c.d.ReadState(&st); err != nil {
				errs <- fmt.Errorf("concurrent ReadState: %w", err)
			}
		}
	}()
	go func() {
		defer wg.Done()
		cmd := robot.Command{Position: append([]float64(nil), q...)}
		for range n {
			// Writes back to back outrun a driver that queues commands for a sender: a full
			// queue refuses with robot.ErrBusy, which is no failure.
			if err := c.d.WriteCommand(&cmd); err != nil && !errors.Is(err, robot.ErrBusy) {
				errs <- fmt.Errorf("concurrent WriteCommand: %w", err)
			}
		}
	}()
	for range 20 {
		c.step()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		c.errorf("%v", err)
		break
	}
	if !c.reach(q, c.opt.Settle, nil) {
		c.errorf("after concurrent use the robot left its held position %v: at %v", q, c.st.Position)
	}
}

func (c *checker) checkTrajectory() {
	tw := c.d.(robot.TrajectoryWriter)
	q0 := c.hold()
	target := c.targetFrom(q0)
	point := func(s float64) []float64 {
		p := make([]float64, c.n)
		for i := range p {
			p[i] = q0[i] + s*(target[i]-q0[i])
		}
		return p
	}
	ms := func(v ...int) []time.Duration {
		d := make([]time.Duration, len(v))
		for i := range v {
			d[i] = time.Duration(v[i]) * time.Millisecond
		}
		return d
	}
	two := append(point(0.5), point(1)...)
	nan := append(point(0.5), point(1)...)
	nan[c.n] = math.NaN()
	for _, tc := range []struct {
		name string
		tr   robot.Trajectory
	}{
		{"no points", robot.Trajectory{}},
		{"positions not DoF per point", robot.Trajectory{TimeFromStart: ms(500, 1000), Positions: two[:2*c.n-1]}},
		{"a negative time", robot.Trajectory{TimeFromStart: ms(-100, 1000), Positions: two}},
		{"times not increasing", robot.Trajectory{TimeFromStart: ms(500, 500), Positions: two}},
		{"a NaN position", robot.Trajectory{TimeFromStart: ms(500, 1000), Positions: nan}},
	} {
		if err := c.safe(func() error { return tw.WriteTrajectory(&tc.tr) }); err == nil {
			c.errorf("WriteTrajectory with %s: no error", tc.name)
		}
	}
	tr := robot.Trajectory{TimeFromStart: ms(500, 1000, 1500), Positions: append(append(point(1.0/3), point(2.0/3)...), point(1)...)}
	if err := tw.WriteTrajectory(&tr); err != nil {
		c.fatalf("WriteTrajectory: %v", err)
	}
	for range int(1500 * time.Millisecond / c.opt.Dt) {
		c.step()
	}
	if !c.reach(target, c.opt.Settle, nil) {
		c.errorf("trajectory to %v not finished %v after its end: at %v", target, c.opt.Settle, c.st.Position)
	}
}
