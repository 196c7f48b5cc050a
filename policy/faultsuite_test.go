package policy

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/flowact/flowact/expert/ode"
	"github.com/flowact/flowact/policy/chunk"
	"github.com/flowact/flowact/policy/safety"
	"github.com/flowact/flowact/robot"
)

// slowTicks makes every n-th command take longer than two periods (a CPU hog beside the loop
// descheduling it: overruns).
type slowTicks struct {
	*driver
	n    int
	k    int
	take time.Duration
}

func (s *slowTicks) WriteCommand(c *robot.Command) error {
	if s.k++; s.k%s.n == 0 {
		time.Sleep(s.take)
	}
	return s.driver.WriteCommand(c)
}

// badReading makes the next ReadState report a reading beyond a limit that the driver saw
// between two ticks (robot.ErrBadState), as robot/ros's mailbox does.
type badReading struct {
	*driver
	once atomic.Bool
}

func (b *badReading) ReadState(dst *robot.State) error {
	if b.once.CompareAndSwap(true, false) {
		return fmt.Errorf("ros: joint %q: reading 4 outside [-1.5, 1.5] (tolerance 0.01): %w", "j1", robot.ErrBadState)
	}
	return b.driver.ReadState(dst)
}

// faultEnv is one row's world in TestFaultSuite.
type faultEnv struct {
	drv  *driver
	l    *Loop
	at   time.Duration                 // the fault's time
	emb  atomic.Pointer[Embedding]     // when set, put every tick
	read func(n int, dst *robot.State) // from the fault on; set under drv.mu (setRead)
	// onFault, when set by a row's setup, injects the fault (rows without a fault func).
	onFault func()
}

// setRead makes f change what the driver reads from now on (under the driver's lock, which
// ReadState holds while it calls readFn).
func (e *faultEnv) setRead(f func(n int, dst *robot.State)) { e.drv.set(func(*driver) { e.read = f }) }

// TestFaultSuite runs the loop through every fault of issue #13's table, on an ideal robot at
// 100 Hz chasing far goals at speed, and differences the command stream the robot receives with
// a safety.Monitor (position, velocity, acceleration and jerk limits, NaN), as a robot driver
// would: zero violations in every row, and the snapshot's level and message say what happened.
// docs/faults.md has the table this prints (go test ./policy -run TestFaultSuite -v).
func TestFaultSuite(t *testing.T) {
	type env = faultEnv
	rows := []struct {
		name   string
		level  Level
		msg    string // in the snapshot's message (after the fault)
		setup  func(e *env) robot.Driver
		inf    func() Inferer
		fault  func(e *env)
		cancel bool // end with a cancel mid-motion (shutdown braking)
	}{
		{name: "none", level: OK, msg: "running"},
		{name: "reading beyond a limit", level: Error, msg: `joint "j1": position 4 outside`,
			fault: func(e *env) { e.setRead(func(_ int, dst *robot.State) { dst.Position[1] = 4 }) }},
		{name: "reading beyond a limit between ticks", level: Error, msg: `joint "j1": reading 4 outside [-1.5, 1.5]`,
			setup: func(e *env) robot.Driver {
				b := &badReading{driver: e.drv}
				e.onFault = func() { b.once.Store(true) }
				return b
			}},
		{name: "second publisher jumping", level: Error, msg: `joint "j0" moved`,
			fault: func(e *env) {
				e.setRead(func(n int, dst *robot.State) {
					if n%2 == 1 {
						dst.Position[0] += 0.6
					}
				})
			}},
		{name: "joint states frozen", level: Warn, msg: "joint state stale",
			fault: func(e *env) { e.drv.setFrozen(true) }},
		{name: "NaN embedding", level: Error, msg: "embedding value 1 (token 0) is NaN",
			fault: func(e *env) {
				g := goal(time.Now().Add(time.Hour), 1.5, 1.2, 2)
				g.Data = []float32{1.5, float32(math.NaN()), 2}
				e.emb.Store(g)
			}},
		{name: "wrong embedding width", level: Error, msg: "embedding width 2, the model takes 3",
			inf: func() Inferer {
				return NewExpert(newMLP(t, 40, 3, 3, 16), &ode.Fixed{Method: ode.Euler, Steps: 2}, nil, 1)
			},
			fault: func(e *env) {
				e.emb.Store(&Embedding{Stamp: time.Now().Add(time.Hour), Tokens: 1, Width: 2, Data: []float32{1, 1}})
			}},
		{name: "every inference failing", level: Error, msg: "every chunk of the last second rejected: expert: want width 256",
			inf: func() Inferer {
				ex := NewExpert(newPlanModel(40, 3), &ode.Fixed{Method: ode.Euler, Steps: 4}, nil, 1)
				var failing atomic.Bool
				return inferFunc{h: 40, d: 3, f: func(dst *chunk.Chunk, req *Request) error {
					if req.Stamp.After(time.Unix(0, 0)) && failing.Load() {
						return fmt.Errorf("expert: want width 256")
					}
					if req.Seq >= 3 {
						failing.Store(true)
					}
					return ex.Infer(dst, req)
				}}
			}},
		{name: "inference panicking", level: Error, msg: "inference panicked",
			inf: func() Inferer {
				ex := NewExpert(newPlanModel(40, 3), &ode.Fixed{Method: ode.Euler, Steps: 4}, nil, 1)
				return inferFunc{h: 40, d: 3, f: func(dst *chunk.Chunk, req *Request) error {
					if req.Seq == 3 {
						var m map[string]int
						m["boom"]++
					}
					return ex.Infer(dst, req)
				}}
			}},
		{name: "overruns (CPU hog)", level: OK, msg: "running",
			setup: func(e *env) robot.Driver { return &slowTicks{driver: e.drv, n: 7, take: 25 * time.Millisecond} }},
		{name: "commands refused (publisher queue full)", level: OK, msg: "running",
			setup: func(e *env) robot.Driver { return &busyDriver{driver: e.drv} }},
		{name: "stopped mid-motion (SIGTERM)", level: OK, msg: "running", cancel: true},
	}
	t.Logf("| fault | violations | level | message |")
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				per := 10 * time.Millisecond
				model := armModel()
				e := &env{drv: newDriver(t, model, per, []float64{0, 0, 0}), at: 600 * time.Millisecond}
				e.drv.nocheck, e.drv.record = true, true
				var drv robot.Driver = e.drv
				if r.setup != nil {
					drv = r.setup(e)
				}
				reads := 0
				e.drv.readFn = func(dst *robot.State) {
					if e.read != nil {
						e.read(reads, dst)
						reads++
					}
				}
				inf := Inferer(NewExpert(newPlanModel(40, 3), &ode.Fixed{Method: ode.Euler, Steps: 4}, nil, 1))
				if r.inf != nil {
					inf = r.inf()
				}
				l, err := New(Config{Rate: 100, Threshold: 10}, Deps{Driver: drv, Inferer: inf})
				if err != nil {
					t.Fatal(err)
				}
				e.l = l
				l.PutEmbedding(goal(time.Now().Add(time.Hour), 1.5, 1.2, 2))
				if r.name == "wrong embedding width" {
					l.PutEmbedding(&Embedding{Stamp: time.Now().Add(time.Hour), Tokens: 1, Width: 3, Data: []float32{1.5, 1.2, 2}})
				}
				l.Start()
				ctx, cancel := context.WithCancel(t.Context())
				done := make(chan error, 1)
				go func() { done <- l.Run(ctx) }()
				time.Sleep(per / 2)
				var snap *Snapshot
				for el := time.Duration(0); el < 2*time.Second; el += per {
					if el == e.at && r.fault != nil {
						r.fault(e)
					}
					if el == e.at && e.onFault != nil {
						e.onFault()
					}
					if p := e.emb.Load(); p != nil {
						l.PutEmbedding(p)
					}
					if el == e.at+1200*time.Millisecond || r.cancel && el == e.at {
						snap = l.Snapshot() // the fault's report, while it lasts
						if r.cancel {
							break
						}
					}
					time.Sleep(per)
				}
				if snap == nil {
					snap = l.Snapshot()
				}
				cancel()
				<-done
				lim, _ := safety.Resolve(model, &safety.Config{})
				mon := safety.NewMonitor(lim, per.Seconds())
				mon.Reset([]float64{0, 0, 0})
				e.drv.mu.Lock()
				for _, c := range e.drv.history {
					mon.Observe(c)
				}
				e.drv.mu.Unlock()
				t.Logf("| %s | %d of %d commands (worst |j|/limit %.2f) | %v | %s |", r.name, mon.Violations(), mon.Ticks(), mon.Worst(safety.Jerk), snap.Level, snap.Message)
				if mon.Violations() != 0 {
					t.Errorf("violations at the robot: %s", mon)
				}
				if mon.Worst(safety.Velocity) < 0.3 {
					t.Errorf("the arm never moved fast (velocity %.2f of its limit): the fault was not met at speed", mon.Worst(safety.Velocity))
				}
				if snap.Level != r.level || !strings.Contains(snap.Message, r.msg) {
					t.Errorf("snapshot level %v %q; want %v with %q", snap.Level, snap.Message, r.level, r.msg)
				}
				if moving(e.drv) {
					t.Errorf("still moving when Run returned")
				}
			})
		})
	}
}
