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
