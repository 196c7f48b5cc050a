package policy

import (
	"errors"
	"math"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/flowact/flowact/expert/ode"
	"github.com/flowact/flowact/policy/chunk"
	"github.com/flowact/flowact/robot"
	"github.com/flowact/flowact/robot/robottest"
)

// TestOnFakeRobot runs the loop on robottest.Fake, stepped to the synctest clock, with 20 ms of
// inference: the robot reaches the goal within its limits for every strategy. On the Fake's own
// clock (which steps the Fake), a closed driver ends Run with robot.ErrClosed.
func TestOnFakeRobot(t *testing.T) {
	for _, st := range []chunk.Strategy{chunk.Replace, chunk.Ensemble, chunk.Blend, chunk.Prefix, chunk.Guided} {
		t.Run(string(st), func(t *testing.T) {
			model := armModel()
			f := robottest.NewFake(model, []float64{0, 0, 0})
			synctest.Test(t, func(t *testing.T) {
				chk := newDriver(t, model, 10*time.Millisecond, []float64{0, 0, 0})
				drv := &checked{Fake: f, chk: chk, t0: time.Now(), f0: f.Now()}
				m := newPlanModel(40, 3)
				m.sleep = func(int) time.Duration { return 20*time.Millisecond + time.Microsecond }
				l, err := New(Config{Rate: 100, Threshold: 20, Chunk: chunk.Config{Strategy: st}},
					Deps{Driver: drv, Inferer: NewExpert(m, &ode.Fixed{Method: ode.Euler, Steps: 5}, nil, 1)})
				if err != nil {
					t.Fatal(err)
				}
				l.PutEmbedding(goal(time.Now().Add(time.Hour), 1, -1, 2))
				l.Start()
				runFor(t, l, 4*time.Second, nil)
				if l.Telemetry().Chunks.Load() < 20 {
					t.Errorf("%d chunks", l.Telemetry().Chunks.Load())
				}
			})
			got := make([]float64, 3)
			f.TargetTo(got)
			// The plan approaches the goal with a 25-tick time constant plus offsets of 0.05 rad.
			for j, g := range []float64{1, -1, 2} {
				if math.Abs(got[j]-g) > 0.2 {
					t.Errorf("joint %d at %g, goal %g", j, got[j], g)
				}
			}

			// A driver that closes ends Run.
			f.SetWriteError(robot.ErrClosed)
			l2, _ := New(Config{Rate: 100}, Deps{Driver: f, Inferer: NewExpert(newPlanModel(40, 3), &ode.Fixed{}, nil, 1), Clock: f.Clock()})
			l2.Start()
			if err := l2.Run(t.Context()); !errors.Is(err, robot.ErrClosed) {
				t.Errorf("Run on a closed driver: %v", err)
			}
		})
	}
}

// checked is a robottest.Fake stepped to the synctest clock (its time since f0 follows the
// bubble's since t0), whose commands are checked against the limits.
type checked struct {
	*robottest.Fake
	chk    *driver
	t0, f0 time.Time
}

func (c *checked) sync() {
	if dt := c.f0.Add(time.Since(c.t0)).Sub(c.Fake.Now()); dt > 0 {
		c.Fake.Step(dt)
	}
}

func (c *checked) ReadState(dst *robot.State) error {
	c.sync()
	if err := c.Fake.ReadState(dst); err != nil {
		return err
	}
	dst.Stamp = c.t0.Add(dst.Stamp.Sub(c.f0))
	return nil
}

func (c *checked) WriteCommand(cmd *robot.Command) error {
	c.sync()
	c.chk.WriteCommand(cmd)
	return c.Fake.WriteCommand(cmd)
}

// trajRecorder is a checked Fake that also records the trajectories it is sent.
type trajRecorder struct {
	*checked
	mu    sync.Mutex
	trajs []robot.Trajectory
}

func (r *trajRecorder) WriteTrajectory(tr *robot.Trajectory) error {
	r.sync()
	cp := robot.Trajectory{Start: tr.Start, TimeFromStart: slices.Clone(tr.TimeFromStart), Positions: slices.Clone(tr.Positions)}
	r.mu.Lock()
	r.trajs = append(r.trajs, cp)
	r.mu.Unlock()
	c := *tr
	c.Start = r.f0.Add(tr.Start.Sub(r.t0)) // to the Fake's clock
	return r.Fake.WriteTrajectory(&c)
}

// TestTrajectoryOutput: with output trajectory the loop sends one trajectory per plan change and
// no per-tick command; the reference the robot follows, reconstructed tick by tick from the
// trajectories (each replaces the last from its start on), stays within the limits and reaches
// the goal, and the robot is at rest when Run returns.
func TestTrajectoryOutput(t *testing.T) {
	model := armModel()
	f := robottest.NewFake(model, []float64{0, 0, 0})
	per := 10 * time.Millisecond
	var rec *trajRecorder
	var l *Loop
	synctest.Test(t, func(t *testing.T) {
		rec = &trajRecorder{checked: &checked{Fake: f, chk: newDriver(t, model, per, []float64{0, 0, 0}), t0: time.Now(), f0: f.Now()}}
		var err error
		l, err = New(Config{Rate: 100, Threshold: 15, Output: "trajectory", Chunk: chunk.Config{Strategy: chunk.Prefix}},
			Deps{Driver: rec, Inferer: NewExpert(newPlanModel(40, 3), &ode.Fixed{Method: ode.Euler, Steps: 4}, nil, 1)})
		if err != nil {
			t.Fatal(err)
		}
		l.PutEmbedding(goal(time.Now().Add(time.Hour), 1.5, -1.2, 2))
		l.Start()
		runFor(t, l, 4*time.Second, func(el time.Duration) {
			if el == 1500*time.Millisecond {
				l.PutEmbedding(goal(time.Now().Add(time.Hour), -1, 1, -2))
			}
		})
	})
	cmds, trajs := f.Commands()
	chunks := l.Telemetry().Chunks.Load()
	if cmds != 0 || trajs < int(chunks) || trajs > int(chunks)+5 {
		t.Errorf("%d commands, %d trajectories for %d chunks", cmds, trajs, chunks)
	}
	ref := checkReference(t, model, per, rec.trajs)
	// The second goal (at 1.5 s; 2.5 rad at 2 rad/s for j0) is reached, and the last trajectory
	// ends at rest.
	if math.Abs(ref[0]+1) > 0.2 || math.Abs(ref[1]-1) > 0.2 {
		t.Errorf("final reference %v, want near the goal (-1, 1, -2)", ref)
	}
	last := rec.trajs[len(rec.trajs)-1]
	n := len(last.TimeFromStart)
	if n >= 2 && !slices.Equal(last.Positions[(n-1)*3:], last.Positions[(n-2)*3:(n-1)*3]) {
		t.Error("the last trajectory does not end at rest")
	}
}

// checkReference rebuilds, tick by tick, the reference a joint_trajectory_controller follows
// from trajectories written on the tick grid of period per (each replaces the previous one from
// its start on; point i of a trajectory is for start + (i+1) per; past its end it holds its last
// point), checks it against the model's limits like any command stream, and returns the final
// reference.
func checkReference(t *testing.T, model *robot.Model, per time.Duration, tr []robot.Trajectory) []float64 {
	t.Helper()
	d := model.DoF()
	chk := newDriver(t, model, per, make([]float64, d))
	first := tr[0].Start
	lastT := tr[len(tr)-1]
	end := lastT.Start.Add(lastT.TimeFromStart[len(lastT.TimeFromStart)-1])
	cur := 0
	ref := make([]float64, d)
	for at := first.Add(per); !at.After(end); at = at.Add(per) {
		for cur+1 < len(tr) && tr[cur+1].Start.Before(at) {
			cur++
		}
		p := tr[cur]
		i := min(int(at.Sub(p.Start)/per)-1, len(p.TimeFromStart)-1)
		copy(ref, p.Positions[i*d:(i+1)*d])
		chk.WriteCommand(&robot.Command{Stamp: at, Position: ref})
	}
	if chk.bad > 0 {
		t.Errorf("%d limit violations in the reference the trajectories make", chk.bad)
	}
	return ref
}
