package policy

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/flowact/flowact/expert/ode"
)

// simClock is a simulated clock: SleepUntil jumps to the deadline at once, and ends the run
// (errEnd) past end.
type simClock struct{ now, end time.Time }

var errEnd = errors.New("end of the simulated run")

func (c *simClock) Now() time.Time { return c.now }

func (c *simClock) SleepUntil(ctx context.Context, t time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if t.After(c.end) {
		return errEnd
	}
	if t.After(c.now) {
		c.now = t
	}
	return nil
}

// simulate runs a loop for 3 simulated seconds at 100 Hz with the given simulated inference
// latency and returns its commands and telemetry.
func simulate(t *testing.T, latency time.Duration) ([][]float64, *Telemetry) {
	t.Helper()
	per := 10 * time.Millisecond
	clk := &simClock{now: time.Unix(5000, 0)}
	clk.end = clk.now.Add(3 * time.Second)
	drv := newDriver(t, armModel(), per, []float64{0, 0, 0})
	drv.stampFn = func(time.Time) time.Time { return clk.Now() }
	drv.record = true
	l, err := New(Config{Rate: 100, Threshold: 10}, Deps{Driver: drv, Clock: clk,
		Inferer: NewExpert(newPlanModel(30, 3), &ode.Fixed{Method: ode.Euler, Steps: 4}, nil, 11)})
	if err != nil {
		t.Fatal(err)
	}
	l.PutEmbedding(goal(clk.end.Add(time.Hour), 0.5, -0.4, 0.8))
	if err := l.Start(); err != nil {
		t.Fatal(err)
	}
	if err := l.Simulate(t.Context(), latency); !errors.Is(err, errEnd) {
		t.Fatalf("Simulate: %v, want the clock's error", err)
	}
	if err := l.Simulate(t.Context(), latency); !errors.Is(err, ErrRunning) {
		t.Errorf("second Simulate: %v, want ErrRunning", err)
	}
	return drv.history, l.Telemetry()
}

// TestSimulate: in simulated time a chunk asked for at tick k is spliced at the first tick at
// or after k's time plus the latency, every time (a delay of exactly ceil(latency / period)
// ticks, 1 for no latency), nothing overruns, and a run is a function of its seeds: two runs
// send the same commands, bit for bit.
func TestSimulate(t *testing.T) {
	for _, c := range []struct {
		latency time.Duration
		delay   float64 // ticks
	}{{0, 1}, {10 * time.Millisecond, 1}, {45 * time.Millisecond, 5}, {120 * time.Millisecond, 12}} {
		t.Run(c.latency.String(), func(t *testing.T) {
			a, tel := simulate(t, c.latency)
			b, _ := simulate(t, c.latency)
			if len(a) < 290 || !slices.EqualFunc(a, b, slices.Equal) {
				t.Errorf("two runs: %d and %d commands, equal: %v", len(a), len(b), slices.EqualFunc(a, b, slices.Equal))
			}
			d := tel.Delay.Snapshot()
			if d.N < 5 || d.Max != c.delay || d.Mean() != c.delay {
				t.Errorf("chunk delays: %d chunks, mean %v max %v ticks, want all %v", d.N, d.Mean(), d.Max, c.delay)
			}
			if n := tel.Overruns.Load(); n != 0 {
				t.Errorf("%d overruns in simulated time", n)
			}
			if moved := a[len(a)-1][0] - a[0][0]; moved < 0.3 {
				t.Errorf("joint 0 moved %v rad toward its goal of 0.5", moved)
			}
		})
	}
}

// TestStep: Step runs the tick of the period its time falls in: a second Step in the same
// period does nothing, a Step after a gap runs once and counts the ticks it skipped, and a
// request waits for InferPending.
func TestStep(t *testing.T) {
	per := 10 * time.Millisecond
	t0 := time.Unix(7000, 0)
	now := t0
	drv := newDriver(t, armModel(), per, []float64{0, 0, 0})
	drv.stampFn = func(time.Time) time.Time { return now }
	l, err := New(Config{Rate: 100}, Deps{Driver: drv, Inferer: NewExpert(newPlanModel(20, 3), &ode.Fixed{Method: ode.Euler, Steps: 2}, nil, 1)})
	if err != nil {
		t.Fatal(err)
	}
	l.PutEmbedding(goal(t0.Add(time.Hour), 0.1, 0.1, 0.1))
	l.Start()
	step := func(at time.Duration) {
		t.Helper()
		now = t0.Add(at)
		if err := l.Step(now); err != nil {
			t.Fatal(err)
		}
	}
	tel := l.Telemetry()
	step(0)
	if tel.Ticks.Load() != 1 || tel.Requests.Load() != 1 {
		t.Fatalf("first Step: %d ticks, %d requests", tel.Ticks.Load(), tel.Requests.Load())
	}
	step(9 * time.Millisecond) // still tick 0's period
	if tel.Ticks.Load() != 1 {
		t.Errorf("a Step within the same period ticked again")
	}
	step(10 * time.Millisecond)
	if tel.Chunks.Load() != 0 || tel.Requests.Load() != 1 {
		t.Errorf("without InferPending: %d chunks, %d requests", tel.Chunks.Load(), tel.Requests.Load())
	}
	if !l.InferPending(0) || l.InferPending(0) {
		t.Errorf("InferPending: ran the pending inference once")
	}
	step(25 * time.Millisecond) // tick 2, 5 ms late
	if tel.Chunks.Load() != 1 || tel.Overruns.Load() != 0 {
		t.Errorf("after InferPending: %d chunks, %d overruns", tel.Chunks.Load(), tel.Overruns.Load())
	}
	step(61 * time.Millisecond) // tick 6: ticks 3 to 5 skipped
	if tel.Ticks.Load() != 4 || tel.Overruns.Load() != 3 {
		t.Errorf("after a gap: %d ticks, %d overruns; want 4 and 3", tel.Ticks.Load(), tel.Overruns.Load())
	}
	if j := tel.TickJitter.Snapshot().Max; j != 0.005 {
		t.Errorf("largest jitter %v, want 5 ms", j)
	}
}
