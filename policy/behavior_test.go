package policy

import (
	"context"
	"github.com/flowact/flowact/expert/ode"
	"math"
	"runtime"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/flowact/flowact/policy/chunk"
	"github.com/flowact/flowact/policy/safety"
	"github.com/flowact/flowact/robot"
)

// goal returns an embedding whose first row holds one goal per joint.
func goal(at time.Time, g ...float32) *Embedding {
	return &Embedding{Stamp: at, Tokens: 1, Width: len(g), Data: g}
}

// TestTickAllocs: a tick allocates nothing, in steady state with chunks arriving and requests
// going out, whether Run's worker serves inference (it runs concurrently and allocates nothing
// either) or InferPending does between Steps.
func TestTickAllocs(t *testing.T) {
	for _, st := range []chunk.Strategy{chunk.Replace, chunk.Ensemble, chunk.Blend, chunk.Prefix, chunk.Guided, "trajectory", "mlp", "step"} {
		t.Run(string(st), func(t *testing.T) {
			stepped := st == "step"
			if stepped {
				st = chunk.Prefix
			}
			per := 10 * time.Millisecond
			now := time.Unix(1000, 0)
			d0 := newDriver(t, armModel(), per, []float64{0, 0, 0})
			d0.stampFn = func(time.Time) time.Time { return now }
			var drv robot.Driver = d0
			cfg := Config{Rate: 100, Threshold: 10, Chunk: chunk.Config{Strategy: st}}
			if st == "trajectory" {
				cfg.Chunk.Strategy, cfg.Output = chunk.Prefix, "trajectory"
				drv = &trajDriver{driver: d0}
			}
			var inf Inferer = NewExpert(newPlanModel(30, 3), &ode.Fixed{Method: ode.Euler, Steps: 5}, nil, 7)
			emb := goal(now.Add(time.Hour), 0.5, -0.5, 1)
			if st == "mlp" { // the real network behind the worker (prefix through its mask channel)
				cfg.Chunk.Strategy = chunk.Prefix
				inf = NewExpert(newMLP(t, 30, 3, 8, 32), &ode.Fixed{Method: ode.Euler, Steps: 3}, nil, 7)
				emb = &Embedding{Stamp: now.Add(time.Hour), Tokens: 2, Width: 8, Data: make([]float32, 16)}
			}
			obs := newPlanRecorder(30, 3) // the plan shown at every splice: no allocation either
			l, err := New(cfg, Deps{Driver: drv, Inferer: inf, Plan: obs})
			if err != nil {
				t.Fatal(err)
			}
			l.PutEmbedding(emb)
			l.Start()
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan struct{})
			if stepped {
				close(done)
			} else {
				l.async = true // as Run does
				go func() { l.work(ctx); close(done) }()
			}
			tick := func() {
				if stepped {
					if err := l.Step(now); err != nil {
						t.Fatal(err)
					}
					l.InferPending(0)
					now = now.Add(per)
					return
				}
				// Let the worker finish (it runs in real time, ticks here run back to back) so
				// that each chunk arrives at the next tick, as with fast inference.
				for l.inflight && len(l.resCh) == 0 {
					runtime.Gosched()
				}
				if err := l.Step(now); err != nil {
					t.Fatal(err)
				}
				now = now.Add(per)
			}
			for range 300 { // warm up: buffers sized, several chunks through
				tick()
			}
			if n := testing.AllocsPerRun(500, tick); n != 0 {
				t.Errorf("%v allocations per tick", n)
			}
			if l.Telemetry().Chunks.Load() < 10 {
				t.Errorf("only %d chunks spliced: the steady state was not exercised", l.Telemetry().Chunks.Load())
			}
			if obs.shown != l.Telemetry().Chunks.Load() {
				t.Errorf("the plan was shown %d times for %d chunks spliced", obs.shown, l.Telemetry().Chunks.Load())
			}
			if n := l.Telemetry().Late.Load(); n != 0 {
				t.Errorf("%d late chunks", n)
			}
			cancel()
			<-done
		})
	}
}

// TestSlowInferenceHolds: inference takes 3x the chunk's execution time, so every chunk arrives
// after its last action: the loop keeps its exact rate, drops them, and holds the robot still
// (never jumps). When inference speeds up it recovers and moves.
func TestSlowInferenceHolds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const h = 20 // 200 ms of actions at 100 Hz
		per := 10 * time.Millisecond
		var slow atomic.Bool
		slow.Store(true)
		m := newPlanModel(h, 3)
		m.sleep = func(int) time.Duration {
			if slow.Load() {
				return 3*h*per + 3*time.Millisecond // 603 ms: 3x the chunk, off the tick grid
			}
			return 23 * time.Millisecond
		}
		start := []float64{0.1, -0.2, 0.3}
		drv := newDriver(t, armModel(), per, start)
		l, err := New(Config{Rate: 100, Threshold: 5}, Deps{Driver: drv, Inferer: NewExpert(m, &ode.Fixed{Method: ode.Euler, Steps: 4}, nil, 3)})
		if err != nil {
			t.Fatal(err)
		}
		l.PutEmbedding(goal(time.Now().Add(time.Hour), 0.8, 0.5, -1))
		l.Start()
		cmd := make([]float64, 3)
		var moved, lateAtSwitch uint64
		runFor(t, l, 6*time.Second, func(el time.Duration) {
			drv.last(cmd)
			switch {
			case el < 3*time.Second:
				for j := range cmd {
					if cmd[j] != start[j] {
						t.Fatalf("at %v the robot moved to %v while no chunk was usable", el, cmd)
					}
				}
			case el == 3*time.Second:
				slow.Store(false) // the request in flight still takes 603 ms
				lateAtSwitch = l.Telemetry().Late.Load()
			case math.Abs(cmd[0]-start[0]) > 0.1:
				moved++
			}
		})
		tel := l.Telemetry()
		// After recovery a chunk of 20 arrives 3 ticks after its request, which goes out when 5
		// actions are left: one chunk per ~13 ticks over the last ~2.4 s.
		if lateAtSwitch < 3 || tel.Chunks.Load() < 15 {
			t.Errorf("late chunks while slow %d (want >= 3), chunks after recovery %d (want >= 15)", lateAtSwitch, tel.Chunks.Load())
		}
		if hold := tel.HoldTicks.Load(); hold > 300+70 {
			t.Errorf("%d hold ticks: after recovery the robot should follow chunks", hold)
		}
		if tel.Late.Load() > lateAtSwitch+1 {
			t.Errorf("%d chunks late after inference sped up", tel.Late.Load()-lateAtSwitch)
		}
		if moved == 0 {
			t.Error("the robot never moved toward the goal after recovery")
		}
		p := tel.TickPeriod.Snapshot()
		if tel.Overruns.Load() != 0 || p.Max != per.Seconds() || math.Abs(p.Mean()-per.Seconds()) > 1e-12 {
			t.Errorf("rate not kept: overruns %d, period max %v mean %v", tel.Overruns.Load(), p.Max, p.Mean())
		}
	})
}

// TestSeams measures the seams of each strategy with 0, 100 and 300 ms of inference delay on a
// multimodal expert whose goal changes every 3 s, and checks prefix < blend < replace for the
// mean seam jump and jerk. The delays are 1 ms short of the nominal ones so that arrivals never
// tie with a tick's deadline (0 ms: the chunk arrives at the next tick).
func TestSeams(t *testing.T) {
	type row struct{ jump, vel, acc, jerk float64 }
	strategies := []chunk.Strategy{chunk.Replace, chunk.Ensemble, chunk.Blend, chunk.Prefix, chunk.Guided}
	delays := []time.Duration{0, 100 * time.Millisecond, 300 * time.Millisecond}
	res := map[chunk.Strategy]map[time.Duration]row{}
	for _, st := range strategies {
		res[st] = map[time.Duration]row{}
		for _, delay := range delays {
			synctest.Test(t, func(t *testing.T) {
				r := runSeams(t, st, delay)
				res[st][delay] = r
			})
		}
	}
	t.Logf("seams at 50 Hz, H = 50, threshold 20 (mean over splices; rad, rad/s, rad/s^2, rad/s^3):")
	t.Logf("%-9s %6s %10s %10s %10s %12s", "strategy", "delay", "jump", "vel", "acc", "jerk")
	for _, st := range strategies {
		for _, d := range delays {
			r := res[st][d]
			t.Logf("%-9s %4dms %10.5f %10.4f %10.2f %12.1f", st, d.Milliseconds(), r.jump, r.vel, r.acc, r.jerk)
		}
	}
	for _, d := range delays {
		p, b, r := res[chunk.Prefix][d], res[chunk.Blend][d], res[chunk.Replace][d]
		if !(p.jump < b.jump && b.jump < r.jump) {
			t.Errorf("delay %v: seam jump prefix %g, blend %g, replace %g: want increasing", d, p.jump, b.jump, r.jump)
		}
		if !(p.jerk < b.jerk && b.jerk < r.jerk) {
			t.Errorf("delay %v: seam jerk prefix %g, blend %g, replace %g: want increasing", d, p.jerk, b.jerk, r.jerk)
		}
		// Guidance toward the previous plan must beat switching blindly.
		if g := res[chunk.Guided][d]; !(g.jump < r.jump && g.jerk < r.jerk) {
			t.Errorf("delay %v: guided seam %+v not below replace %+v", d, g, r)
		}
	}
}

func runSeams(t *testing.T, st chunk.Strategy, delay time.Duration) (r struct{ jump, vel, acc, jerk float64 }) {
	const h = 50
	per := 20 * time.Millisecond
	m := newPlanModel(h, 3)
	if delay > 0 {
		m.sleep = func(int) time.Duration { return delay - time.Millisecond }
	}
	drv := newDriver(t, armModel(), per, []float64{0, 0, 0})
	l, err := New(Config{Rate: 50, Threshold: 20, Seed: 11, Chunk: chunk.Config{Strategy: st}},
		Deps{Driver: drv, Inferer: NewExpert(m, &ode.Fixed{Method: ode.Euler, Steps: 4}, nil, 11)})
	if err != nil {
		t.Fatal(err)
	}
	goals := [][]float32{{0.5, -0.5, 1}, {-0.3, 0.4, -1}, {0.8, 0.2, 0.5}}
	l.PutEmbedding(goal(time.Now(), goals[0]...))
	l.Start()
	runFor(t, l, 24*time.Second, func(el time.Duration) {
		if el%(3*time.Second) == 0 {
			l.PutEmbedding(goal(time.Now(), goals[int(el/(3*time.Second))%len(goals)]...))
		} else if el%(500*time.Millisecond) == 0 {
			old := l.emb.Load()
			l.PutEmbedding(goal(time.Now(), old.Data...)) // the VLM republishes at 2 Hz
		}
	})
	tel := l.Telemetry()
	if n := tel.SeamJump.Snapshot().N; n < 20 {
		t.Fatalf("%s %v: only %d seams", st, delay, n)
	}
	if s := tel.HoldTicks.Load(); s > uint64(delay/per)+5 {
		t.Errorf("%s %v: %d hold ticks: the plan ran dry", st, delay, s)
	}
	r.jump = tel.SeamJump.Snapshot().Mean()
	r.vel = tel.SeamVel.Snapshot().Mean()
	r.acc = tel.SeamAcc.Snapshot().Mean()
	r.jerk = tel.SeamJerk.Snapshot().Mean()
	return r
}

var _ = safety.Idle
