package policy

import (
	"context"
	"errors"
	"fmt"
	"github.com/flowact/flowact/expert/ode"
	"log/slog"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/flowact/flowact/policy/chunk"
	"github.com/flowact/flowact/policy/safety"
	"github.com/flowact/flowact/robot"
)

// slowWriter makes some WriteCommand calls take longer than a period.
type slowWriter struct {
	*driver
	every int
	take  time.Duration
	n     int
}

func (s *slowWriter) WriteCommand(c *robot.Command) error {
	s.n++
	if s.n%s.every == 0 {
		time.Sleep(s.take)
	}
	return s.driver.WriteCommand(c)
}

// TestOverruns: a tick that takes 2.5 periods makes the next tick run late, for the period it
// falls in, once: the deadline in between is skipped (counted), the late tick is the tick of its
// own period (so actions stay aligned with time), and the ticks after it run on the original
// grid: no burst, no drift.
func TestOverruns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		per := 10 * time.Millisecond
		drv := &slowWriter{driver: newDriver(t, armModel(), per, []float64{0, 0, 0}), every: 10, take: 25 * time.Millisecond}
		l, _ := New(Config{Rate: 100}, Deps{Driver: drv, Inferer: NewExpert(newPlanModel(20, 3), &ode.Fixed{Method: ode.Euler, Steps: 2}, nil, 1)})
		l.PutEmbedding(goal(time.Now().Add(time.Hour), 0.1, 0.1, 0.1))
		l.Start()
		ctx, cancel := context.WithTimeout(t.Context(), time.Second+per/2)
		defer cancel()
		if err := l.Run(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatal(err)
		}
		tel := l.Telemetry()
		// Every 10th tick (k) runs 25 ms: the next tick starts when it ends, 25 ms after it, as
		// tick k+2 (its deadline 20 ms after k's, so 5 ms late); tick k+1 is skipped, and tick
		// k+3 starts on the grid 5 ms later: cycles of 10 + 1 = 11 grid points with 10 ticks.
		p := tel.TickPeriod.Snapshot()
		if p.Max != 0.025 {
			t.Errorf("longest period %v, want 25 ms (the tick after the overrunning one starts when it ends)", p.Max)
		}
		j := tel.TickJitter.Snapshot()
		if j.Max != 0.005 {
			t.Errorf("largest jitter %v s, want 5 ms (the late tick runs for its own period)", j.Max)
		}
		ticks, over := tel.Ticks.Load(), tel.Overruns.Load()
		if ticks+over != 101 || over != ticks/10 {
			t.Errorf("%d ticks and %d overruns in 1 s at 100 Hz", ticks, over)
		}
	})
}

// recorder collects snapshots.
type recorder struct {
	mu sync.Mutex
	s  []*Snapshot
}

func (r *recorder) Record(s *Snapshot) { r.mu.Lock(); r.s = append(r.s, s); r.mu.Unlock() }

// logSink counts log records by message.
type logSink struct {
	mu   sync.Mutex
	msgs map[string]int
}

func (h *logSink) Enabled(context.Context, slog.Level) bool { return true }
func (h *logSink) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	h.msgs[r.Message]++
	h.mu.Unlock()
	return nil
}
func (h *logSink) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logSink) WithGroup(string) slog.Handler      { return h }

// TestRecorderAndLog: a Recorder gets a snapshot every TelemetryPeriod; watchdog logs are rate
// limited per kind.
func TestRecorderAndLog(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		per := 10 * time.Millisecond
		drv := newDriver(t, armModel(), per, []float64{0, 0, 0})
		rec := &recorder{}
		sink := &logSink{msgs: map[string]int{}}
		// Every other chunk has a NaN: a rejection every ~100 ms, logged at most once per second.
		ex := NewExpert(newPlanModel(20, 3), &ode.Fixed{Method: ode.Euler, Steps: 2}, nil, 1)
		n := 0
		inf := inferFunc{h: 20, d: 3, f: func(dst *chunk.Chunk, req *Request) error {
			err := ex.Infer(dst, req)
			if n++; n%2 == 0 {
				dst.Data[0] = math.NaN()
			}
			return err
		}}
		l, _ := New(Config{Rate: 100, TelemetryPeriod: 500 * time.Millisecond},
			Deps{Driver: drv, Inferer: inf, Recorder: rec, Logger: slog.New(sink)})
		l.PutEmbedding(goal(time.Now().Add(time.Hour), 0.1, 0.1, 0.1))
		l.Start()
		runFor(t, l, 5*time.Second, nil)
		rec.mu.Lock()
		got := len(rec.s)
		last := rec.s[len(rec.s)-1]
		rec.mu.Unlock()
		if got != 10 {
			t.Errorf("%d snapshots in 5 s every 500 ms, want 10", got)
		}
		if last.State != safety.Running || last.Counters.Ticks < 400 || last.Trips[safety.ChunkRejected] == 0 {
			t.Errorf("last snapshot %+v", last)
		}
		sink.mu.Lock()
		defer sink.mu.Unlock()
		if c := sink.msgs["safety: chunk_rejected"]; c < 4 || c > 6 {
			t.Errorf("%d chunk_rejected log lines in 5 s, want about 5 (rate limited to 1/s); rejections: %d",
				c, l.Telemetry().Rejected.Load())
		}
	})
}

func TestConfigValidate(t *testing.T) {
	bad := []struct {
		cfg  Config
		want string
	}{
		{Config{Rate: 20}, "rate"},
		{Config{Rate: 2000}, "rate"},
		{Config{Horizon: -1}, "horizon"},
		{Config{Threshold: -2}, "threshold"},
		{Config{Horizon: 10, Threshold: 10}, "threshold"},
		{Config{DelayWindow: -1}, "delay_window"},
		{Config{DelayMargin: -2}, "delay_margin"},
		{Config{TelemetryPeriod: -time.Second}, "telemetry_period"},
		{Config{Chunk: chunk.Config{Strategy: "zigzag"}}, "strategy"},
		{Config{Watchdog: safety.WatchdogConfig{StateMaxAge: -1}}, "state_max_age"},
		{Config{Limits: safety.Config{VelocityScale: 2}}, "velocity_scale"},
	}
	for _, c := range bad {
		if err := c.cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want an error naming %s", c.cfg, err, c.want)
		}
	}
	if err := (&Config{}).Validate(); err != nil {
		t.Errorf("zero config: %v", err)
	}
	// Errors that need the robot and the model.
	drv := newDriver(t, armModel(), 10*time.Millisecond, []float64{0, 0, 0})
	ex := NewExpert(newPlanModel(20, 3), &ode.Fixed{Method: ode.Euler, Steps: 2}, nil, 1)
	for _, c := range []struct {
		cfg  Config
		deps Deps
		want string
	}{
		{Config{Horizon: 30}, Deps{Driver: drv, Inferer: ex}, "horizon 30"},
		{Config{Threshold: 20}, Deps{Driver: drv, Inferer: ex}, "threshold 20"},
		{Config{}, Deps{Driver: drv, Inferer: NewExpert(newPlanModel(20, 2), &ode.Fixed{Method: ode.Euler, Steps: 2}, nil, 1)}, "2 joints"},
		{Config{Limits: safety.Config{Joints: map[string]safety.JointConfig{"j1": {Velocity: 9}}}}, Deps{Driver: drv, Inferer: ex}, `"j1": velocity`},
		{Config{}, Deps{Driver: drv}, "inferer"},
	} {
		if _, err := New(c.cfg, c.deps); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want an error with %q", c.cfg, err, c.want)
		}
	}
}

// TestHistogram: quantiles within 0.78% of the exact ones on spread-out data (log-uniform over
// nine decades, as latencies and jerks are), exact N, Sum, Min and Max (NaN and ±Inf not
// recorded), the zero bucket, Merge
// equal to recording everything in one, and a Record that allocates nothing.
func TestHistogram(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	h, a, b := NewHistogram(), NewHistogram(), NewHistogram()
	var vals []float64
	sum := 0.0
	for i := range 20000 {
		v := math.Pow(10, -6+9*r.Float64())
		vals = append(vals, v)
		sum += v
		h.Record(v)
		if i%3 == 0 {
			a.Record(v)
		} else {
			b.Record(v)
		}
	}
	h.Record(math.NaN())
	h.Record(math.Inf(1))
	h.Record(math.Inf(-1))
	slices.Sort(vals)
	s := h.Snapshot()
	if s.N != 20000 || s.Min != vals[0] || s.Max != vals[len(vals)-1] || math.Abs(s.Sum-sum) > 1e-9*sum {
		t.Errorf("N %d min %v max %v sum %v, want 20000 %v %v %v", s.N, s.Min, s.Max, s.Sum, vals[0], vals[len(vals)-1], sum)
	}
	for _, q := range []float64{0.001, 0.01, 0.25, 0.5, 0.9, 0.99, 0.999} {
		exact := vals[int(math.Ceil(q*float64(len(vals))))-1]
		if got := s.Quantile(q); math.Abs(got-exact) > exact/(2*SubBuckets) {
			t.Errorf("quantile %v: %v, exact %v (relative error %.2g)", q, got, exact, math.Abs(got-exact)/exact)
		}
	}
	if s.Quantile(0) != s.Min || s.Quantile(1) != s.Max {
		t.Errorf("quantiles 0 and 1: %v %v, want min %v and max %v", s.Quantile(0), s.Quantile(1), s.Min, s.Max)
	}
	var m HistogramSnapshot
	m.Merge(a.Snapshot())
	m.Merge(b.Snapshot())
	if m.N != s.N || m.Offset != s.Offset || !slices.Equal(m.Counts, s.Counts) || m.Min != s.Min || m.Max != s.Max {
		t.Errorf("merged %d values, offset %d, %d buckets; want %d, %d, %d", m.N, m.Offset, len(m.Counts), s.N, s.Offset, len(s.Counts))
	}
	z := NewHistogram()
	for _, v := range []float64{0, 0, 3} {
		z.Record(v)
	}
	if zs := z.Snapshot(); zs.Quantile(0.5) != 0 || zs.Quantile(1) != 3 || zs.Mean() != 1 {
		t.Errorf("with zeros: median %v, max %v, mean %v", zs.Quantile(0.5), zs.Quantile(1), zs.Mean())
	}
	if (HistogramSnapshot{}).Quantile(0.5) != 0 {
		t.Errorf("empty quantile not 0")
	}
	if n := testing.AllocsPerRun(100, func() { h.Record(1.2) }); n != 0 {
		t.Errorf("Record allocates %v", n)
	}
}

// ExampleLoop builds a loop for a 3-joint arm. Run(ctx) would then tick at 100 Hz on the wall
// clock until ctx ends.
func ExampleLoop() {
	drv := newDriver(nil, armModel(), 10*time.Millisecond, []float64{0, 0, 0})
	inf := NewExpert(newPlanModel(50, 3), &ode.Fixed{Method: ode.Euler, Steps: 10}, nil, 42)
	l, err := New(Config{Chunk: chunk.Config{Strategy: chunk.Prefix}}, Deps{Driver: drv, Inferer: inf})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(l.Period(), l.State())
	fmt.Println(l.Hold())
	fmt.Println(l.Start(), l.State())
	// Output:
	// 10ms idle
	// safety: hold in state idle: safety: not running
	// <nil> running
}

// TestShutdownDecelerates: cancelling Run while the robot moves at speed brings it to rest within
// the limits (the driver checks every command) before Run returns.
func TestShutdownDecelerates(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		per := 10 * time.Millisecond
		drv := newDriver(t, armModel(), per, []float64{-1.5, -1, 0})
		m := newPlanModel(30, 3)
		m.tau = 100
		l, _ := New(Config{Rate: 100}, Deps{Driver: drv, Inferer: NewExpert(m, &ode.Fixed{Method: ode.Euler, Steps: 4}, nil, 1)})
		l.PutEmbedding(goal(time.Now().Add(time.Hour), 1.9, 1.4, 5))
		l.Start()
		n := 0
		runFor(t, l, time.Second, func(time.Duration) { n = drv.commands() })
		if !(drv.maxV > 0.3) {
			t.Fatalf("not moving fast before shutdown: %.2f of the velocity limit", drv.maxV)
		}
		if moving(drv) {
			t.Error("still moving when Run returned")
		}
		if extra := drv.commands() - n; extra < 2 {
			t.Errorf("%d commands after cancellation: no deceleration", extra)
		}
	})
}

// TestRunAllocs: between ticks the loop allocates nothing either (no timer per period on the
// wall clock): over one second of steady running at 500 Hz with chunks flowing, the whole
// process allocates (almost) nothing.
func TestRunAllocs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		per := 2 * time.Millisecond
		drv := newDriver(t, armModel(), per, []float64{0, 0, 0})
		m := newPlanModel(50, 3)
		m.sleep = func(int) time.Duration { return 7*time.Millisecond + time.Microsecond }
		l, _ := New(Config{Rate: 500, Threshold: 20}, Deps{Driver: drv, Inferer: NewExpert(m, &ode.Fixed{Method: ode.Euler, Steps: 4}, nil, 1)})
		l.PutEmbedding(goal(time.Now().Add(time.Hour), 0.5, 0.5, 0.5))
		l.Start()
		var ms runtime.MemStats
		var before, chunks uint64
		runFor(t, l, 3*time.Second, func(el time.Duration) {
			switch el {
			case time.Second:
				runtime.ReadMemStats(&ms)
				before, chunks = ms.Mallocs, l.Telemetry().Chunks.Load()
			case 2 * time.Second:
				runtime.ReadMemStats(&ms)
				chunks = l.Telemetry().Chunks.Load() - chunks
				// A few allocations may come from the runtime itself (e.g. timers' heap growth).
				if n := ms.Mallocs - before; n > 20 {
					t.Errorf("%d allocations in 1 s (500 ticks, %d chunks)", n, chunks)
				}
			}
		})
	})
}
