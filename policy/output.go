package policy

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/flowact/flowact/policy/safety"
	"github.com/flowact/flowact/robot"
)

// output is how the tick's commands leave the loop: commandOutput writes one position command
// per tick (a group position controller); trajectoryOutput, around the same safety filter,
// writes the filtered plan as one trajectory whenever it changes (a
// joint_trajectory_controller) and has the tick follow it. The tick calls the same methods
// either way.
type output interface {
	// plan moves the filter one tick toward target; hold decelerates it toward rest. Both leave
	// the tick's command in cmd.
	plan(cmd, target []float64)
	hold(cmd []float64)
	// send writes what tick k produced at now: planned, the plan drove it; spliced, a chunk was
	// spliced. An error ends the loop (the driver closed).
	send(k int64, now time.Time, planned, spliced bool) error
	// idle forgets what was sent: the loop went idle.
	idle()
	// stop brings a moving robot to rest within its limits (the loop is shutting down).
	stop()
}

// commandOutput writes the tick's command to the driver every tick.
type commandOutput struct{ l *Loop }

func (o commandOutput) plan(cmd, target []float64) { o.l.filter.Step(cmd, target) }
func (o commandOutput) hold(cmd []float64)         { o.l.filter.Hold(cmd) }
func (o commandOutput) idle()                      {}

func (o commandOutput) send(_ int64, now time.Time, _, _ bool) error {
	l := o.l
	l.cmd.Stamp = now
	if err := l.drv.WriteCommand(&l.cmd); err != nil {
		l.tel.WriteErrors.Add(1)
		if errors.Is(err, robot.ErrClosed) {
			l.live = false
			return fmt.Errorf("policy: write command: %w", err)
		}
	}
	return nil
}

// stop decelerates on the clock, a filter step per period, for at most the braking time at the
// limits plus a few ticks.
func (o commandOutput) stop() {
	l := o.l
	worst := 0.0
	for _, lim := range l.filter.Limits() {
		b := lim.Velocity / lim.Acceleration
		if lim.Jerk > 0 {
			b += lim.Acceleration / lim.Jerk
		}
		worst = math.Max(worst, b)
	}
	n := int64(worst/l.period.Seconds()) + 10
	ctx := context.Background()
	t := l.clock.Now()
	for i := int64(0); i < n && !l.filter.AtRest(0); i++ {
		t = t.Add(l.period)
		if l.clock.SleepUntil(ctx, t) != nil {
			return
		}
		l.filter.Hold(l.cmd.Position)
		l.cmd.Stamp = l.clock.Now()
		if err := l.drv.WriteCommand(&l.cmd); err != nil {
			l.tel.WriteErrors.Add(1)
			return
		}
	}
}

// trajectoryOutput sends what the filter will command from the next tick on if nothing changes
// (the plan, then a stop to rest, predicted by a scratch copy of the filter, one point per tick)
// whenever that changes: a chunk is spliced, or the robot must hold or stop. While a trajectory
// runs, the tick follows its points (safety.Filter.Follow) so that the next one starts from the
// robot's reference. A trajectory always ends at rest: if the loop dies, the robot stops within
// its limits.
type trajectoryOutput struct {
	l       *Loop
	tw      robot.TrajectoryWriter
	scratch *safety.Filter // predicts the filter's commands
	traj    robot.Trajectory
	times   []time.Duration // full buffers that traj slices
	points  []float64
	action  []float64
	mode    int8  // what the last trajectory does: 0 none, trajPlan, trajBrake
	k0      int64 // the tick it was written at: its point i is for tick k0+1+i
	n       int   // its points
}

const (
	trajPlan  = 1 // follow the plan, then brake to a stop
	trajBrake = 2 // brake to a stop
)

func newTrajectoryOutput(l *Loop, tw robot.TrajectoryWriter, lim []safety.Limit) *trajectoryOutput {
	// Room for the plan and a stop from full speed: v/a ticks, plus a/j to ramp the deceleration
	// when a jerk limit is given, plus a few for rounding.
	brake := 0.0
	for _, lm := range lim {
		b := lm.Velocity / lm.Acceleration
		if lm.Jerk > 0 {
			b += lm.Acceleration / lm.Jerk
		}
		brake = math.Max(brake, b)
	}
	per := l.period
	n := l.h + int(math.Ceil(brake/per.Seconds())) + 4
	o := &trajectoryOutput{l: l, tw: tw, scratch: safety.NewFilter(lim, per.Seconds()),
		times: make([]time.Duration, n), points: make([]float64, n*l.d), action: make([]float64, l.d)}
	for i := range n {
		o.times[i] = time.Duration(i+1) * per
	}
	return o
}

func (o *trajectoryOutput) plan(cmd, _ []float64) { o.follow(cmd) }
func (o *trajectoryOutput) hold(cmd []float64)    { o.follow(cmd) }
func (o *trajectoryOutput) idle()                 { o.mode = 0 }

// follow makes the running trajectory's point for this tick the last command: the robot
// executes the trajectory, so the filter's history must be its points.
func (o *trajectoryOutput) follow(cmd []float64) {
	l := o.l
	if o.mode == 0 {
		l.filter.Last(cmd) // nothing sent yet: the robot stays where it is
	} else {
		i := int(min(l.k-o.k0-1, int64(o.n-1)))
		copy(cmd, o.points[i*l.d:(i+1)*l.d])
	}
	l.filter.Follow(cmd)
}

func (o *trajectoryOutput) send(k int64, now time.Time, planned, spliced bool) error {
	mode := int8(trajBrake)
	if planned {
		mode = trajPlan
	}
	if mode == o.mode && !spliced {
		return nil
	}
	o.mode = mode
	return o.write(k, now, planned)
}

// stop sends the whole stop in one trajectory, from the last tick's command and time (a start in
// the past takes over on arrival).
func (o *trajectoryOutput) stop() { o.write(o.l.k, o.l.prevNow, false) }

// write sends the trajectory the filter will follow from tick k+1 on.
func (o *trajectoryOutput) write(k int64, now time.Time, planned bool) error {
	l := o.l
	sc, d, pos := o.scratch, l.d, o.points
	sc.CopyState(l.filter)
	limit := len(o.times)
	n := 0
	if planned {
		for kk := k + 1; kk < l.splicer.End() && n < limit && l.splicer.Action(o.action, kk); kk++ {
			sc.Step(pos[n*d:(n+1)*d], o.action)
			n++
		}
	}
	for n < limit && !sc.AtRest(0) {
		sc.Hold(pos[n*d : (n+1)*d])
		n++
	}
	if n == 0 { // at rest: one point where it is, replacing whatever ran before
		sc.Last(pos[:d])
		n = 1
	}
	o.traj.Start, o.traj.TimeFromStart, o.traj.Positions = now, o.times[:n], pos[:n*d]
	o.k0, o.n = k, n
	if err := o.tw.WriteTrajectory(&o.traj); err != nil {
		l.tel.WriteErrors.Add(1)
		if errors.Is(err, robot.ErrClosed) {
			l.live = false
			return fmt.Errorf("policy: write trajectory: %w", err)
		}
	}
	return nil
}
