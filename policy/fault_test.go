package policy

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/flowact/flowact/expert/ode"
	"github.com/flowact/flowact/policy/chunk"
	"github.com/flowact/flowact/policy/safety"
	"github.com/flowact/flowact/robot"
)

// records keeps log records with their attributes as text.
type records struct {
	mu    sync.Mutex
	lines []string
}

func (h *records) Enabled(context.Context, slog.Level) bool { return true }
func (h *records) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Level.String() + " " + r.Message)
	r.Attrs(func(a slog.Attr) bool { b.WriteString(" " + a.String()); return true })
	h.mu.Lock()
	h.lines = append(h.lines, b.String())
	h.mu.Unlock()
	return nil
}
func (h *records) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *records) WithGroup(string) slog.Handler      { return h }

// with returns the lines that contain every one of subs.
func (h *records) with(subs ...string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
next:
	for _, l := range h.lines {
		for _, s := range subs {
			if !strings.Contains(l, s) {
				continue next
			}
		}
		out = append(out, l)
	}
	return out
}

// TestBadStateMidRun: a joint state that no robot within its limits can be in (a reading beyond
// the hard limit, a jump a second publisher makes) latches a fault naming the joint, once it
// arrives mid-motion; the robot decelerates to a stop on its commands (the driver checks every
// command against the limits) instead of chasing the reading; the snapshot is an error with the
// cause, and the log says it at once.
func TestBadStateMidRun(t *testing.T) {
	for _, c := range []struct {
		name  string
		read  func(n int, dst *robot.State) // the n-th read from 500 ms on
		cause string
	}{
		{"beyond the limit", func(_ int, dst *robot.State) { dst.Position[1] = 4 }, `joint "j1": position 4 outside [-1.5, 1.5]`},
		{"a second publisher", func(n int, dst *robot.State) {
			if n%2 == 1 {
				dst.Position[0] += 0.6
			}
		}, `joint "j0" moved 0.6`},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				per := 10 * time.Millisecond
				drv := newDriver(t, armModel(), per, []float64{0, 0, 0})
				logs := &records{}
				l, err := New(Config{Rate: 100, Threshold: 10}, Deps{Driver: drv, Logger: slog.New(logs),
					Inferer: NewExpert(newPlanModel(40, 3), &ode.Fixed{Method: ode.Euler, Steps: 4}, nil, 1)})
				if err != nil {
					t.Fatal(err)
				}
				l.PutEmbedding(goal(time.Now().Add(time.Hour), 1.5, 1.2, 2))
				l.Start()
				var faultAt, stoppedAt time.Duration
				reads := 0
				runFor(t, l, 2*time.Second, func(el time.Duration) {
					if el == 500*time.Millisecond {
						if !moving(drv) {
							t.Fatal("not moving at 500 ms")
						}
						drv.set(func(d *driver) {
							d.readFn = func(dst *robot.State) { c.read(reads, dst); reads++ }
						})
					}
					if faultAt == 0 && l.State() == safety.Fault {
						faultAt = el
					}
					if faultAt != 0 && stoppedAt == 0 && !moving(drv) {
						stoppedAt = el
					}
				})
				if faultAt == 0 || faultAt > 520*time.Millisecond {
					t.Fatalf("fault at %v, want at the first bad state after 500 ms", faultAt)
				}
				if stoppedAt == 0 {
					t.Errorf("still moving 1.5 s after the fault")
				}
				s := l.Snapshot()
				if s.Level != Error || !strings.Contains(s.Cause, c.cause) || !strings.Contains(s.Message, c.cause) {
					t.Errorf("snapshot level %v, message %q, cause %q; want an error naming %q", s.Level, s.Message, s.Cause, c.cause)
				}
				if s.Trips[safety.StateInvalid] == 0 {
					t.Errorf("trips %v: no state_invalid", s.Trips)
				}
				if len(logs.with("safety: state_invalid", c.cause)) == 0 || len(logs.with("safety: fault", c.cause)) == 0 {
					t.Errorf("the log does not say why: %q", logs.lines)
				}
			})
		})
	}
}

// TestRejectionDiagnostics: a loop whose chunks are all refused says so, with the reason, in its
// snapshot (an error) and log; one that refuses some says it as a warning.
func TestRejectionDiagnostics(t *testing.T) {
	failing := errors.New("expert: want width 256")
	for _, c := range []struct {
		name  string
		inf   func() Inferer
		emb   func(at time.Time) *Embedding
		level Level
		msg   string
		trip  safety.Trip
	}{
		{"wrong embedding width", func() Inferer {
			return NewExpert(newMLP(t, 20, 3, 8, 16), &ode.Fixed{Method: ode.Euler, Steps: 2}, nil, 1)
		}, func(at time.Time) *Embedding {
			return &Embedding{Stamp: at, Tokens: 2, Width: 5, Data: make([]float32, 10)}
		}, Error, "embedding width 5, the model takes 8", safety.EmbeddingInvalid},
		{"every inference fails", func() Inferer {
			return inferFunc{h: 20, d: 3, f: func(*chunk.Chunk, *Request) error { return failing }}
		}, nil, Error, "every chunk of the last second rejected: expert: want width 256", safety.ChunkRejected},
		{"every other chunk NaN", func() Inferer {
			ex := NewExpert(newPlanModel(20, 3), &ode.Fixed{Method: ode.Euler, Steps: 2}, nil, 1)
			n := 0
			return inferFunc{h: 20, d: 3, f: func(dst *chunk.Chunk, req *Request) error {
				err := ex.Infer(dst, req)
				if n++; n%2 == 0 {
					dst.Data[4] = math.NaN()
				}
				return err
			}}
		}, nil, Warn, "chunks rejected in the last second: safety: chunk step 1 joint 1 is NaN", safety.ChunkRejected},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				drv := newDriver(t, armModel(), 10*time.Millisecond, []float64{0, 0, 0})
				logs := &records{}
				l, err := New(Config{Rate: 100, Threshold: 5}, Deps{Driver: drv, Logger: slog.New(logs), Inferer: c.inf()})
				if err != nil {
					t.Fatal(err)
				}
				emb := goal(time.Now().Add(time.Hour), 0.5, 0.5, 0.5)
				if c.emb != nil {
					emb = c.emb(time.Now().Add(time.Hour))
				}
				l.PutEmbedding(emb)
				l.Start()
				runFor(t, l, 2*time.Second, nil)
				s := l.Snapshot()
				if s.Level != c.level || !strings.Contains(s.Message, c.msg) {
					t.Errorf("snapshot level %v message %q; want level %v with %q", s.Level, s.Message, c.level, c.msg)
				}
				if s.Trips[c.trip] == 0 {
					t.Errorf("trips %v: no %s", s.Trips, c.trip)
				}
				if len(logs.with("safety: "+c.trip.String(), strings.TrimPrefix(c.msg[strings.Index(c.msg, ":")+1:], " "))) == 0 && len(logs.with("safety: "+c.trip.String(), c.msg)) == 0 {
					t.Errorf("no log line for %s with its cause: %q", c.trip, logs.lines)
				}
			})
		})
	}
}

// TestStartMoving: a loop that starts on a robot already moving (left so by another node) takes
// its velocity into account, from JointState.velocity or, when the driver gives none, from the
// last two positions: its commands continue the motion and bring it under the plan within every
// limit, as a Monitor started at the robot's measured motion sees them. Starting as if at rest
// would stop the joint within one tick.
func TestStartMoving(t *testing.T) {
	for _, measured := range []bool{true, false} {
		t.Run(map[bool]string{true: "velocity measured", false: "velocity differenced"}[measured], func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				per := 10 * time.Millisecond
				model := armModel()
				drv := newDriver(t, model, per, []float64{0, 0, 0})
				drv.nocheck = true          // its checker assumes a start at rest; the Monitor checks here
				v0 := []float64{1.5, -1, 2} // rad/s, within the limits
				t0 := time.Now()
				seen := make([]float64, 3) // the last state read before the first command
				drv.readFn = func(dst *robot.State) {
					if drv.n > 0 {
						clear(dst.Velocity)
						return // commanded: the ideal robot is at its last command
					}
					el := time.Since(t0).Seconds()
					for j := range v0 {
						dst.Position[j] = v0[j] * el
						seen[j] = dst.Position[j]
						dst.Velocity[j] = 0
						if measured {
							dst.Velocity[j] = v0[j]
						}
					}
				}
				lim, err := safety.Resolve(model, &safety.Config{})
				if err != nil {
					t.Fatal(err)
				}
				mon := safety.NewMonitor(lim, per.Seconds())
				drv.record = true
				l, err := New(Config{Rate: 100, Threshold: 10}, Deps{Driver: drv,
					Inferer: NewExpert(newPlanModel(40, 3), &ode.Fixed{Method: ode.Euler, Steps: 4}, nil, 1)})
				if err != nil {
					t.Fatal(err)
				}
				l.PutEmbedding(goal(time.Now().Add(time.Hour), 0, 0, 0))
				runFor(t, l, 2*time.Second, func(el time.Duration) {
					if el == 200*time.Millisecond {
						l.Start()
					}
				})
				drv.mu.Lock()
				hist := drv.history
				drv.mu.Unlock()
				if len(hist) < 100 {
					t.Fatalf("%d commands", len(hist))
				}
				mon.ResetMoving(seen, v0, nil) // where and how fast the loop found the robot
				for _, c := range hist {
					mon.Observe(c)
				}
				if n := mon.Violations(); n != 0 {
					t.Errorf("%d limit violations at the robot: %s", n, mon)
				}
				// The first step continues the motion (about v0 dt), it does not stop the joint.
				if step := hist[1][0] - hist[0][0]; step < 0.5*v0[0]*per.Seconds() {
					t.Errorf("joint 0 stepped %.4f rad after the start; moving at %.4f rad per tick", step, v0[0]*per.Seconds())
				}
			})
		})
	}
}

// busyDriver refuses every third command with robot.ErrBusy (a publisher whose queue is full).
type busyDriver struct {
	*driver
	n int
}

func (b *busyDriver) WriteCommand(c *robot.Command) error {
	if b.n++; b.n%3 == 0 {
		return robot.ErrBusy
	}
	return b.driver.WriteCommand(c)
}

// TestRefusedCommands: a command the driver refuses never reached the robot, so the next one is
// one filter step from the last one taken, never two: the stream the robot gets, checked by a
// Monitor, stays within every limit while the arm moves at speed, and the refusals are counted.
func TestRefusedCommands(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		per := 10 * time.Millisecond
		model := armModel()
		d := newDriver(t, model, per, []float64{0, 0, 0})
		d.nocheck, d.record = true, true
		drv := &busyDriver{driver: d}
		l, err := New(Config{Rate: 100, Threshold: 10}, Deps{Driver: drv,
			Inferer: NewExpert(newPlanModel(40, 3), &ode.Fixed{Method: ode.Euler, Steps: 4}, nil, 1)})
		if err != nil {
			t.Fatal(err)
		}
		l.PutEmbedding(goal(time.Now().Add(time.Hour), 1.8, -1.4, 3))
		l.Start()
		runFor(t, l, 2*time.Second, nil)
		lim, _ := safety.Resolve(model, &safety.Config{})
		mon := safety.NewMonitor(lim, per.Seconds())
		mon.Reset([]float64{0, 0, 0})
		for _, c := range d.history {
			mon.Observe(c)
		}
		s := l.Snapshot()
		if n := mon.Violations(); n != 0 || mon.Worst(safety.Velocity) < 0.5 {
			t.Errorf("%d violations (velocity used %.2f of its limit): %s", n, mon.Worst(safety.Velocity), mon)
		}
		if s.Counters.Refused < 50 || s.Counters.Refused != s.Counters.WriteErrors {
			t.Errorf("refused %d, write errors %d of %d ticks", s.Counters.Refused, s.Counters.WriteErrors, s.Counters.Ticks)
		}
	})
}

// refDriver is a driver that knows the position the robot holds from the controller before it
// (robot.ReferenceReader), until its first command.
type refDriver struct {
	*driver
	ref []float64
}

func (r *refDriver) ReadReference(dst []float64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n > 0 {
		return false
	}
	copy(dst, r.ref)
	return true
}

// TestStartFromReference: a position-controlled robot that lags holds the last command of the
// controller before (an instance this one replaced), its measured position a few mrad short and
// still converging. Started from the measured state, the first command steps the robot's
// reference by that error (a jerk violation at the robot); started from the reference the
// driver reports, the stream continues it within every limit. A reference farther than the
// state tolerance from the measured position is not trusted: the start is from the measured state.
func TestStartFromReference(t *testing.T) {
	ref := []float64{0.3, -0.2, 0.1}
	for _, c := range []struct {
		name      string
		reader    bool
		off       float64 // measured minus reference, rad
		wantClean bool    // no violation for a Monitor started at the reference at rest
	}{
		{"reference", true, 0.004, true},
		{"no reference", false, 0.004, false},
		{"reference too far", true, 0.05, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				per := 10 * time.Millisecond
				model := armModel()
				drv := newDriver(t, model, per, []float64{0, 0, 0})
				drv.nocheck = true
				const tau = 0.05 // s: the robot's lag toward its reference
				t0 := time.Now()
				drv.readFn = func(dst *robot.State) {
					if drv.n > 0 {
						clear(dst.Velocity)
						return // commanded: the ideal robot is at its last command
					}
					decay := math.Exp(-time.Since(t0).Seconds() / tau)
					for j := range ref {
						e := c.off * decay
						dst.Position[j] = ref[j] + e
						dst.Velocity[j] = -e / tau
					}
				}
				drv.record = true
				var d robot.Driver = drv
				if c.reader {
					d = &refDriver{driver: drv, ref: ref}
				}
				lim, err := safety.Resolve(model, &safety.Config{})
				if err != nil {
					t.Fatal(err)
				}
				l, err := New(Config{Rate: 100, Threshold: 10}, Deps{Driver: d,
					Inferer: NewExpert(newPlanModel(40, 3), &ode.Fixed{Method: ode.Euler, Steps: 4}, nil, 1)})
				if err != nil {
					t.Fatal(err)
				}
				l.PutEmbedding(goal(time.Now().Add(time.Hour), 0, 0, 0))
				runFor(t, l, time.Second, func(el time.Duration) {
					if el == 20*time.Millisecond { // the measured position still 0.67 of the offset away
						l.Start()
					}
				})
				drv.mu.Lock()
				hist := drv.history
				drv.mu.Unlock()
				if len(hist) < 50 {
					t.Fatalf("%d commands", len(hist))
				}
				mon := safety.NewMonitor(lim, per.Seconds())
				mon.Reset(ref) // the robot holds the reference at rest
				for _, h := range hist {
					mon.Observe(h)
				}
				if clean := mon.Violations() == 0; clean != c.wantClean {
					t.Errorf("violations at the robot: %s; want none: %v", mon, c.wantClean)
				}
				first := math.Abs(hist[0][0] - ref[0])
				if c.name == "reference too far" && first < safety.DefaultStateTolerance {
					t.Errorf("first command %.4f rad from the reference: started there, not from the measured position %.3f rad away", first, c.off*math.Exp(-0.4))
				}
				t.Logf("first command %.5f rad from the reference; %s", first, mon)
			})
		})
	}
}
