package policy

import (
	"errors"
	"math"
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
