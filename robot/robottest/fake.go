package robottest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/flowact/flowact/robot"
)

// ErrCommand is wrapped by the errors of Fake.WriteCommand and Fake.WriteTrajectory.
var ErrCommand = errors.New("robottest: bad command")

// Fake is an ideal position-controlled robot (see the package documentation). Make one with
// NewFake.
type Fake struct {
	m *robot.Model
	n int

	mu       sync.Mutex
	elapsed  time.Duration // since the epoch
	stepped  bool          // a state exists
	q, v     []float64     // position, velocity of the last step
	target   []float64     // the reference the joints move toward
	commands int           // accepted WriteCommand calls
	trajs    int           // accepted WriteTrajectory calls
	writeErr error         // returned by writes when set (SetWriteError)

	// The active trajectory (reused buffers): points at start+tfs[k] with positions pts[k*n:],
	// leading from `from` at `start`.
	traj  bool
	start time.Duration
	tfs   []time.Duration
	pts   []float64
	from  []float64
}

var (
	_ robot.Driver           = (*Fake)(nil)
	_ robot.TrajectoryWriter = (*Fake)(nil)
)

// epoch is the Fake's time zero: the Unix epoch, where ROS sim time starts.
func epoch() time.Time { return time.Unix(0, 0).UTC() }

// NewFake returns a Fake of model m (which it does not copy: do not change it) at rest at q0, in
// model order; nil q0 means every joint at 0, clamped into its position limits. Its target is
// its start position. It panics if len(q0) is neither 0 nor DoF.
func NewFake(m *robot.Model, q0 []float64) *Fake {
	n := m.DoF()
	if q0 != nil && len(q0) != n {
		panic(fmt.Sprintf("robottest: NewFake: %d start positions for %d joints", len(q0), n))
	}
	f := &Fake{m: m, n: n, q: make([]float64, n), v: make([]float64, n), target: make([]float64, n), from: make([]float64, n)}
	copy(f.q, q0)
	f.clampInto(f.q)
	copy(f.target, f.q)
	return f
}

func (f *Fake) clampInto(q []float64) {
	for i, j := range f.m.Joints {
		if l := j.Limits; l.HasPosition {
			q[i] = min(max(q[i], l.Lower), l.Upper)
		}
	}
}

// Model returns the robot model.
func (f *Fake) Model() *robot.Model { return f.m }

// Now returns the Fake's clock: the epoch plus the stepped time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return epoch().Add(f.elapsed)
}

// Commands returns how many commands and trajectories the Fake has accepted.
func (f *Fake) Commands() (commands, trajectories int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.commands, f.trajs
}

// TargetTo copies the current target (model order) into dst[:DoF].
func (f *Fake) TargetTo(dst []float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	copy(dst[:f.n], f.target)
}

// SetWriteError makes every later WriteCommand and WriteTrajectory return err (nil restores
// normal operation), for tests of a caller's error handling, e.g. robot.ErrClosed.
func (f *Fake) SetWriteError(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.writeErr = err
}

// Step advances the Fake by dt: the trajectory, if any, sets the target for the end of the step,
// and each joint moves toward the target by at most its velocity limit times dt. Step(0) only
// makes the state available. It panics if dt < 0.
func (f *Fake) Step(dt time.Duration) {
	if dt < 0 {
		panic(fmt.Sprintf("robottest: Fake.Step(%v)", dt))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stepped = true
	f.elapsed += dt
	if f.traj {
		f.sample(f.elapsed)
	}
	h := dt.Seconds()
	for i, j := range f.m.Joints {
		d := f.target[i] - f.q[i]
		if vmax := j.Limits.Velocity; vmax > 0 {
			d = min(max(d, -vmax*h), vmax*h)
		}
		if h > 0 {
			f.v[i] = d / h
		} else {
			f.v[i] = 0
		}
		f.q[i] += d
		if h > 0 && math.Abs(f.target[i]-f.q[i]) < 1e-12*max(1, math.Abs(f.target[i])) {
			f.q[i] = f.target[i] // land exactly, not one rounding away
		}
	}
}

// sample sets the target to the trajectory's reference at elapsed time t.
func (f *Fake) sample(t time.Duration) {
	n := f.n
	k := len(f.tfs)
	if end := f.start + f.tfs[k-1]; t >= end {
		copy(f.target, f.pts[(k-1)*n:])
		f.traj = false
		return
	}
	prevT, prev := f.start, f.from
	for i := range k {
		tk := f.start + f.tfs[i]
		if t < tk {
			s := 0.0
			if t > prevT {
				s = float64(t-prevT) / float64(tk-prevT)
			}
			next := f.pts[i*n : (i+1)*n]
			for j := range n {
				f.target[j] = prev[j] + s*(next[j]-prev[j])
			}
			f.clampInto(f.target)
			return
		}
		prevT, prev = tk, f.pts[i*n:(i+1)*n]
	}
}

// ReadState copies the state of the last Step into dst, whose slices must have length DoF
// (else it returns an error); Stamp is the Fake's clock and Effort is zero. It returns
// robot.ErrNoState before the first Step.
func (f *Fake) ReadState(dst *robot.State) error {
	if len(dst.Position) != f.n || len(dst.Velocity) != f.n || len(dst.Effort) != f.n {
		return fmt.Errorf("robottest: ReadState: state has %d/%d/%d values for %d joints", len(dst.Position), len(dst.Velocity), len(dst.Effort), f.n)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.stepped {
		return robot.ErrNoState
	}
	dst.Stamp = epoch().Add(f.elapsed)
	copy(dst.Position, f.q)
	copy(dst.Velocity, f.v)
	clear(dst.Effort)
	return nil
}

// WriteCommand sets the target to c.Position clamped into the position limits, cancelling any
// trajectory. c.Velocity, if not nil, must have length DoF and be finite; it is otherwise
// ignored. It copies c.
func (f *Fake) WriteCommand(c *robot.Command) error {
	if err := f.checkJoints("command position", c.Position, 1); err != nil {
		return err
	}
	if c.Velocity != nil {
		if err := f.checkJoints("command velocity", c.Velocity, 1); err != nil {
			return err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.writeErr != nil {
		return f.writeErr
	}
	copy(f.target, c.Position)
	f.clampInto(f.target)
	f.traj = false
	f.commands++
	return nil
}

// WriteTrajectory replaces any trajectory or command by tr: the target moves linearly from its
// current value at tr.Start (a zero or past Start means now) through the points, then holds the
// last one. It copies tr.
func (f *Fake) WriteTrajectory(tr *robot.Trajectory) error {
	k := len(tr.TimeFromStart)
	if k == 0 {
		return fmt.Errorf("%w: trajectory has no points", ErrCommand)
	}
	if err := f.checkJoints("trajectory", tr.Positions, k); err != nil {
		return err
	}
	for i, d := range tr.TimeFromStart {
		if d < 0 || i > 0 && d <= tr.TimeFromStart[i-1] {
			return fmt.Errorf("%w: trajectory point %d: time from start %v is negative or not increasing", ErrCommand, i, d)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.writeErr != nil {
		return f.writeErr
	}
	start := f.elapsed
	if !tr.Start.IsZero() {
		start = max(tr.Start.Sub(epoch()), f.elapsed)
	}
	f.traj = true
	f.start = start
	f.tfs = append(f.tfs[:0], tr.TimeFromStart...)
	f.pts = append(f.pts[:0], tr.Positions...)
	copy(f.from, f.target)
	f.trajs++
	return nil
}

// checkJoints checks that v holds points x DoF finite values.
func (f *Fake) checkJoints(what string, v []float64, points int) error {
	if len(v) != points*f.n {
		return fmt.Errorf("%w: %s has %d values for %d point(s) of %d joints", ErrCommand, what, len(v), points, f.n)
	}
	for i, x := range v {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return fmt.Errorf("%w: %s: joint %q is %v", ErrCommand, what, f.m.Joints[i%f.n].Name, x)
		}
	}
	return nil
}

// Clock returns a robot.Clock that runs on the Fake's time: Now is Fake.Now, and SleepUntil
// steps the Fake to t in one Step and returns at once, so a loop paced by it runs as fast as it
// computes and deterministically. SleepUntil returns ctx.Err() without stepping when ctx is done.
func (f *Fake) Clock() robot.Clock { return fakeClock{f} }

type fakeClock struct{ f *Fake }

func (c fakeClock) Now() time.Time { return c.f.Now() }

func (c fakeClock) SleepUntil(ctx context.Context, t time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d := t.Sub(c.f.Now()); d > 0 {
		c.f.Step(d)
	}
	return nil
}
