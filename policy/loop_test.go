package policy

import (
	"context"
	"errors"
	"fmt"
	"github.com/flowact/flowact/expert/ode"
	"math"
	"testing"
	"testing/synctest"
	"time"

	"github.com/flowact/flowact/policy/chunk"
	"github.com/flowact/flowact/robot"
)

// wideModel has limits wide enough for tick-encoded chunks (1 rad per tick at 100 Hz).
func wideModel(d int) *robot.Model {
	m := &robot.Model{Name: "wide", Root: "base"}
	for j := range d {
		m.Joints = append(m.Joints, robot.Joint{Name: fmt.Sprintf("j%d", j), Type: robot.Revolute,
			Limits: robot.Limits{HasPosition: true, Lower: -1e6, Upper: 1e6, Velocity: 1e5, Acceleration: 1e7}})
	}
	return m
}

// runFor runs l in the current synctest bubble for dur of fake time, then stops it. during is
// called after each tick with the tick's start time since Run (the tick index times the period).
func runFor(t *testing.T, l *Loop, dur time.Duration, during func(elapsed time.Duration)) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	stopped := false
	defer func() { // also when during calls t.Fatal
		if !stopped {
			cancel()
			<-done
		}
	}()
	// Sample half a period after each tick, never at the instant a tick runs.
	step := l.Period()
	time.Sleep(step / 2)
	for el := time.Duration(0); el < dur; el += step {
		if during != nil {
			during(el)
		}
		time.Sleep(step)
	}
	cancel()
	stopped = true
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v", err)
	}
}

// TestSlowFirstInference: the first inference takes 405 ms, later ones 25 ms. The robot holds
// still until the first chunk arrives at tick 41; nothing of that chunk was executed, so it
// starts from its first row (it does not jump 41 rows ahead of the robot), and every later chunk
// continues the commands one unit per tick: no skipped or repeated action, for every strategy.
// The cold start must not enter the delay estimate.
func TestSlowFirstInference(t *testing.T) {
	for _, st := range []chunk.Strategy{chunk.Replace, chunk.Blend, chunk.Ensemble, chunk.Prefix, chunk.Guided} {
		t.Run(string(st), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				const h, d, rate = 60, 2, 100
				per := 10 * time.Millisecond
				m := newTickModel(h, d)
				m.sleep = func(call int) time.Duration {
					if call == 0 {
						return 405 * time.Millisecond
					}
					return 25 * time.Millisecond
				}
				t0 := time.Now()
				drv := newDriver(t, wideModel(d), per, make([]float64, d))
				l, err := New(Config{Rate: rate, Threshold: 20, Chunk: chunk.Config{Strategy: st}},
					Deps{Driver: drv, Inferer: NewExpert(m, &ode.Fixed{Method: ode.Euler, Steps: 10}, nil, 1)})
				if err != nil {
					t.Fatal(err)
				}
				l.PutEmbedding(&Embedding{Stamp: t0.Add(time.Hour), Tokens: 1, Width: 1, Data: []float32{0}})
				if err := l.Start(); err != nil {
					t.Fatal(err)
				}
				var errs int
				cmd := make([]float64, d)
				runFor(t, l, 3*time.Second, func(el time.Duration) {
					k := int64(el / per) // the last tick that ran
					drv.last(cmd)
					want := float64(k - 40) // row 0 of the cold chunk, 1, at tick 41 (405 ms)
					if k < 41 {
						want = 0
					}
					if math.Abs(cmd[0]-want) > 1e-3 && errs < 5 {
						errs++
						t.Errorf("tick %d: command %g, want %g", k, cmd[0], want)
					}
				})
				tel := l.Telemetry()
				if n := tel.Late.Load() + tel.Rejected.Load(); n != 0 {
					t.Errorf("%d chunks late or rejected", n)
				}
				if got := l.Snapshot().DelayEst; got != 3 {
					// The estimate is the measured delay; the prefix adds the margin.
					t.Errorf("delay estimate %d ticks, want 3 (the cold start's 41 must not count)", got)
				}
				if st == chunk.Prefix {
					// call 0: cold, no prefix; call 1: no delay measured yet: min(threshold, plan left);
					// later: the measured 3 ticks plus the default margin of 1.
					for i, p := range m.prefix[2:] {
						if p != 4 {
							t.Fatalf("request %d had a prefix of %d rows, want 4 (all: %v)", i+2, p, m.prefix)
						}
					}
				}
				if hs := tel.HoldTicks.Load(); hs != 41 {
					t.Errorf("%d hold ticks, want 41 (only before the first chunk)", hs)
				}
			})
		})
	}
}
