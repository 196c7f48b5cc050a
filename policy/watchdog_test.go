package policy

import (
	"errors"
	"github.com/flowact/flowact/expert/ode"
	"math"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/flowact/flowact/policy/chunk"
	"github.com/flowact/flowact/policy/safety"
)

// moving reports whether the last two commands differ.
func moving(d *driver) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, s := range d.step {
		if s != 0 {
			return true
		}
	}
	return false
}

// TestEmbeddingStale: when the embedding goes stale no chunk is asked for; the committed plan
// is finished, then the robot holds. A fresh embedding resumes.
func TestEmbeddingStale(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		per := 10 * time.Millisecond
		drv := newDriver(t, armModel(), per, []float64{0, 0, 0})
		m := newPlanModel(40, 3)
		l, err := New(Config{Rate: 100, Threshold: 10, Watchdog: safety.WatchdogConfig{EmbeddingMaxAge: 300 * time.Millisecond}},
			Deps{Driver: drv, Inferer: NewExpert(m, &ode.Fixed{Method: ode.Euler, Steps: 4}, nil, 1)})
		if err != nil {
			t.Fatal(err)
		}
		goals := [][]float32{{1, -1, 2}, {-1, 1, -2}}
		l.PutEmbedding(goal(time.Now(), goals[0]...))
		l.Start()
		var staleAt, starvedAt, resumedAt time.Duration
		var reqAtStale uint64
		runFor(t, l, 6*time.Second, func(el time.Duration) {
			switch {
			case el < 2*time.Second && el%(100*time.Millisecond) == 0:
				l.PutEmbedding(goal(time.Now(), goals[int(el/time.Second)%2]...))
			case el == 4*time.Second:
				l.PutEmbedding(goal(time.Now(), goals[0]...))
			case el > 4*time.Second && el%(100*time.Millisecond) == 0:
				l.PutEmbedding(goal(time.Now(), goals[0]...))
			}
			wd := l.Watchdogs()
			if staleAt == 0 && wd.Active(safety.EmbeddingStale) && el > time.Second {
				staleAt, reqAtStale = el, l.Telemetry().Requests.Load()
			}
			if staleAt != 0 && starvedAt == 0 && wd.Active(safety.Starved) {
				starvedAt = el
				if msg := l.Snapshot().Message; !strings.Contains(msg, "holding") {
					t.Errorf("diagnostic %q while starved", msg)
				}
			}
			if el > 2500*time.Millisecond && el < 4*time.Second && l.Telemetry().Requests.Load() > reqAtStale+1 {
				t.Fatalf("a chunk was asked for with a stale embedding at %v", el)
			}
			if el == 3900*time.Millisecond && moving(drv) {
				t.Errorf("still moving at %v with a stale embedding and no plan", el)
			}
			if starvedAt != 0 && resumedAt == 0 && el > 4*time.Second && !wd.Active(safety.Starved) {
				resumedAt = el
			}
		})
		// The last embedding at 1.9 s goes stale after 2.2 s; the plan (at most 40 actions, the
		// last chunk asked for before) runs out within 400 ms after that.
		if staleAt < 2200*time.Millisecond || staleAt > 2220*time.Millisecond {
			t.Errorf("embedding went stale at %v, want just after 2.2 s", staleAt)
		}
		if starvedAt <= staleAt || starvedAt > staleAt+400*time.Millisecond {
			t.Errorf("starved at %v: the committed plan should run out after the stale trip at %v, within 400 ms", starvedAt, staleAt)
		}
		if resumedAt == 0 || resumedAt > 4100*time.Millisecond {
			t.Errorf("resumed at %v after a fresh embedding at 4 s", resumedAt)
		}
		if l.Watchdogs().Active(safety.EmbeddingStale) || l.Watchdogs().Count(safety.EmbeddingStale) != 1 {
			t.Errorf("embedding_stale active %v, trips %d", l.Watchdogs().Active(safety.EmbeddingStale), l.Watchdogs().Count(safety.EmbeddingStale))
		}
	})
}

// TestStateStale: a frozen joint state stamp decelerates the robot to a stop within the
// acceleration limit (the driver checks every command); fresh state resumes.
func TestStateStale(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		per := 10 * time.Millisecond
		drv := newDriver(t, armModel(), per, []float64{0, 0, 0})
		m := newPlanModel(40, 3)
		m.tau = 60 // a slow approach: the robot is still moving fast when the state freezes
		l, err := New(Config{Rate: 100, Threshold: 10, Watchdog: safety.WatchdogConfig{StateMaxAge: 50 * time.Millisecond}},
			Deps{Driver: drv, Inferer: NewExpert(m, &ode.Fixed{Method: ode.Euler, Steps: 4}, nil, 1)})
		if err != nil {
			t.Fatal(err)
		}
		l.PutEmbedding(goal(time.Now().Add(time.Hour), 1.8, -1.4, 3))
		l.Start()
		var trippedAt, stoppedAt, movedAgain time.Duration
		runFor(t, l, 4*time.Second, func(el time.Duration) {
			switch el {
			case 500 * time.Millisecond:
				if !moving(drv) {
					t.Fatal("not moving before the freeze")
				}
				drv.setFrozen(true)
			case 2 * time.Second:
				drv.setFrozen(false)
			}
			if trippedAt == 0 && l.Watchdogs().Active(safety.StateStale) {
				trippedAt = el
			}
			if trippedAt != 0 && stoppedAt == 0 && !moving(drv) {
				stoppedAt = el
			}
			if stoppedAt != 0 && el < 2*time.Second && moving(drv) {
				t.Fatalf("moving again at %v with a stale state", el)
			}
			if el > 2*time.Second && movedAgain == 0 && moving(drv) {
				movedAgain = el
			}
		})
		if trippedAt < 550*time.Millisecond || trippedAt > 570*time.Millisecond {
			t.Errorf("state_stale tripped at %v, want just after 550 ms", trippedAt)
		}
		// From at most 2 rad/s at 20 rad/s^2 (joint 0; the others stop sooner): 100 ms + ticks.
		if stoppedAt == 0 || stoppedAt > trippedAt+150*time.Millisecond {
			t.Errorf("stopped at %v after the trip at %v: want within 150 ms", stoppedAt, trippedAt)
		}
		if movedAgain == 0 || movedAgain > 2100*time.Millisecond {
			t.Errorf("moved again at %v after fresh state at 2 s", movedAgain)
		}
		if drv.maxA < 0.5 {
			t.Errorf("the deceleration used %.2f of the acceleration limit: not a hard stop", drv.maxA)
		}
	})
}

// TestNaNGuard: chunks with NaN, Inf or the wrong shape are rejected and counted; the robot
// never receives them and keeps going on the next good chunk.
func TestNaNGuard(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		per := 10 * time.Millisecond
		drv := newDriver(t, armModel(), per, []float64{0, 0, 0})
		m := newPlanModel(30, 3)
		ex := NewExpert(m, &ode.Fixed{Method: ode.Euler, Steps: 4}, nil, 1)
		var calls atomic.Int64
		inf := inferFunc{h: 30, d: 3, f: func(dst *chunk.Chunk, req *Request) error {
			err := ex.Infer(dst, req)
			switch calls.Add(1) % 5 {
			case 1:
				dst.Data[7] = math.NaN()
			case 2:
				dst.Data[40] = math.Inf(-1)
			case 3:
				dst.H = 29 // wrong shape
			}
			return err
		}}
		l, err := New(Config{Rate: 100, Threshold: 10}, Deps{Driver: drv, Inferer: inf})
		if err != nil {
			t.Fatal(err)
		}
		l.PutEmbedding(goal(time.Now().Add(time.Hour), 0.5, 0.5, 0.5))
		l.Start()
		runFor(t, l, 3*time.Second, nil)
		tel := l.Telemetry()
		rej, ok := tel.Rejected.Load(), tel.Chunks.Load()
		if rej == 0 || ok == 0 || l.Watchdogs().Count(safety.ChunkRejected) != rej {
			t.Errorf("rejected %d (trips %d), spliced %d", rej, l.Watchdogs().Count(safety.ChunkRejected), ok)
		}
		// 3 of 5 chunks are bad: about 60% rejected.
		if frac := float64(rej) / float64(rej+ok); frac < 0.5 || frac > 0.7 {
			t.Errorf("rejected fraction %.2f, want 0.6", frac)
		}
		last := make([]float64, 3)
		drv.last(last)
		if math.Abs(last[0]-0.5) > 0.05 {
			t.Errorf("the robot did not reach the goal on good chunks: %v", last)
		}
	})
}

// TestStarvedHolds: when inference stalls the plan runs out and the robot holds; when it comes
// back the robot moves on.
func TestStarvedHolds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		per := 10 * time.Millisecond
		drv := newDriver(t, armModel(), per, []float64{0, 0, 0})
		m := newPlanModel(30, 3)
		var stall atomic.Bool
		m.sleep = func(int) time.Duration {
			if stall.Load() {
				return 1500 * time.Millisecond
			}
			return 0
		}
		l, _ := New(Config{Rate: 100, Threshold: 5}, Deps{Driver: drv, Inferer: NewExpert(m, &ode.Fixed{Method: ode.Euler, Steps: 4}, nil, 1)})
		l.PutEmbedding(goal(time.Now().Add(time.Hour), 1, 1, 1))
		l.Start()
		var starved, cleared time.Duration
		runFor(t, l, 4*time.Second, func(el time.Duration) {
			if el == time.Second {
				stall.Store(true)
			}
			if el == 1300*time.Millisecond {
				// Chunks are asked for every 240 ms, so one request fell in the last 300 ms;
				// it still takes 1.5 s.
				stall.Store(false)
			}
			if starved == 0 && l.Watchdogs().Active(safety.Starved) {
				starved = el
			}
			if starved != 0 && cleared == 0 && !l.Watchdogs().Active(safety.Starved) {
				cleared = el
			}
		})
		if starved == 0 || starved > 1400*time.Millisecond || cleared < 2*time.Second || cleared > 3*time.Second {
			t.Errorf("starved at %v, cleared at %v", starved, cleared)
		}
	})
}

// TestFaultLatches: a fault decelerates the robot and latches; Start is refused until Reset,
// which stops the robot and goes idle; then Start runs again.
func TestFaultLatches(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		per := 10 * time.Millisecond
		drv := newDriver(t, armModel(), per, []float64{0, 0, 0})
		m := newPlanModel(30, 3)
		m.tau = 80
		l, _ := New(Config{Rate: 100}, Deps{Driver: drv, Inferer: NewExpert(m, &ode.Fixed{Method: ode.Euler, Steps: 4}, nil, 1)})
		l.PutEmbedding(goal(time.Now().Add(time.Hour), 1.9, 1.4, 3))
		l.Start()
		var cmdsIdle int
		runFor(t, l, 4*time.Second, func(el time.Duration) {
			switch el {
			case 500 * time.Millisecond:
				l.Fault("emergency stop")
			case 1 * time.Second:
				if moving(drv) || l.State() != safety.Fault {
					t.Fatalf("state %v, moving %v after a fault", l.State(), moving(drv))
				}
				if err := l.Start(); !errors.Is(err, safety.ErrFaulted) {
					t.Fatalf("Start during a fault: %v", err)
				}
				if s := l.Snapshot(); s.Level != Error || !strings.Contains(s.Message, "emergency stop") {
					t.Errorf("diagnostic %v %q", s.Level, s.Message)
				}
				if err := l.Reset(); err != nil {
					t.Fatal(err)
				}
			case 1500 * time.Millisecond:
				if l.State() != safety.Idle {
					t.Fatalf("state %v after Reset, want idle", l.State())
				}
				cmdsIdle = drv.commands()
			case 2 * time.Second:
				if drv.commands() != cmdsIdle {
					t.Errorf("%d commands sent while idle", drv.commands()-cmdsIdle)
				}
				if err := l.Start(); err != nil {
					t.Fatal(err)
				}
			case 2500 * time.Millisecond:
				if !moving(drv) {
					t.Error("not moving after the restart")
				}
				l.Hold()
			case 3 * time.Second:
				if moving(drv) || l.State() != safety.Holding {
					t.Errorf("state %v moving %v after Hold", l.State(), moving(drv))
				}
			}
		})
	})
}

// TestStartOutsideLimits: a robot measured outside its limits faults at Start, naming the joint.
func TestStartOutsideLimits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		drv := newDriver(t, armModel(), 10*time.Millisecond, []float64{0, 1.7, 0}) // j1 upper is 1.5
		l, _ := New(Config{}, Deps{Driver: drv, Inferer: NewExpert(newPlanModel(20, 3), &ode.Fixed{Method: ode.Euler, Steps: 2}, nil, 1)})
		l.Start()
		runFor(t, l, 100*time.Millisecond, nil)
		if l.State() != safety.Fault || !strings.Contains(l.Snapshot().Cause, `"j1"`) || drv.commands() != 0 {
			t.Errorf("state %v cause %q, %d commands", l.State(), l.Snapshot().Cause, drv.commands())
		}
	})
}

// TestInferPanicFaults: a panicking model faults the loop (the robot decelerates to a stop)
// instead of crashing the process.
func TestInferPanicFaults(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		drv := newDriver(t, armModel(), 10*time.Millisecond, []float64{0, 0, 0})
		ex := NewExpert(newPlanModel(20, 3), &ode.Fixed{Method: ode.Euler, Steps: 2}, nil, 1)
		var calls atomic.Int64
		inf := inferFunc{h: 20, d: 3, f: func(dst *chunk.Chunk, req *Request) error {
			if calls.Add(1) == 5 {
				var m map[string]int
				m["boom"]++ // a bug in a model
			}
			return ex.Infer(dst, req)
		}}
		l, _ := New(Config{Rate: 100}, Deps{Driver: drv, Inferer: inf})
		l.PutEmbedding(goal(time.Now().Add(time.Hour), 1, 1, 1))
		l.Start()
		runFor(t, l, 2*time.Second, nil)
		if l.State() != safety.Fault || !strings.Contains(l.Snapshot().Cause, "inference panicked") || moving(drv) {
			t.Errorf("state %v cause %q moving %v", l.State(), l.Snapshot().Cause, moving(drv))
		}
	})
}
