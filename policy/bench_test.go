package policy

import (
	"context"
	"fmt"
	"github.com/flowact/flowact/expert/ode"
	"runtime"
	"testing"
	"time"

	"github.com/flowact/flowact/policy/chunk"
	"github.com/flowact/flowact/robot"
)

// arm7 is a 7-joint arm (a typical manipulator) with every limit the filter needs.
func arm7() *robot.Model {
	m := &robot.Model{Name: "arm7", Root: "base"}
	for j := range 7 {
		m.Joints = append(m.Joints, robot.Joint{Name: fmt.Sprintf("j%d", j), Type: robot.Revolute,
			Limits: robot.Limits{HasPosition: true, Lower: -3, Upper: 3, Velocity: 2, Acceleration: 20, Jerk: 2000}})
	}
	return m
}

type benchLoop struct {
	l      *Loop
	now    time.Time
	k      int64
	cancel context.CancelFunc
	done   chan struct{}
}

// newBenchLoop returns a loop on a 7-joint ideal driver at 500 Hz with inf (nil: the closed-form
// planModel, H = 50) and its worker running; ticks are driven by hand.
func newBenchLoop(b *testing.B, st chunk.Strategy, threshold int, inf Inferer) *benchLoop {
	per := 2 * time.Millisecond
	bl := &benchLoop{now: time.Unix(1000, 0), done: make(chan struct{})}
	drv := newDriver(nil, arm7(), per, make([]float64, 7))
	drv.t = nil
	drv.stampFn = func(time.Time) time.Time { return bl.now }
	if inf == nil {
		inf = NewExpert(newPlanModel(50, 7), &ode.Fixed{Method: ode.Euler, Steps: 10}, nil, 1)
	}
	l, err := New(Config{Rate: 500, Threshold: threshold, Chunk: chunk.Config{Strategy: st}}, Deps{Driver: drv, Inferer: inf})
	if err != nil {
		b.Fatal(err)
	}
	l.PutEmbedding(goal(bl.now.Add(time.Hour), 0.5, -0.5, 1, 0.2, 0.3, -0.1, 0.4))
	l.Start()
	ctx, cancel := context.WithCancel(context.Background())
	bl.l, bl.cancel = l, cancel
	l.async = true // as Run does
	go func() { l.work(ctx); close(bl.done) }()
	return bl
}

func (bl *benchLoop) wait() {
	for bl.l.inflight && len(bl.l.resCh) == 0 {
		runtime.Gosched()
	}
}

func (bl *benchLoop) tick() {
	bl.l.tick(bl.k, bl.now, bl.now)
	bl.k++
	bl.now = bl.now.Add(bl.l.period)
}

func (bl *benchLoop) close() { bl.cancel(); <-bl.done }

// BenchmarkTick is the cost of one control tick (7 joints, H = 50, 500 Hz) in steady state:
// reading the mailboxes, splicing, the safety filter, the command; a chunk arrives and a request
// goes out every ~25 ticks. Waiting for the worker is not timed.
func BenchmarkTick(b *testing.B) {
	for _, st := range []chunk.Strategy{chunk.Replace, chunk.Ensemble, chunk.Blend, chunk.Prefix, chunk.Guided} {
		b.Run(string(st), func(b *testing.B) {
			bl := newBenchLoop(b, st, 25, nil)
			defer bl.close()
			for range 200 {
				bl.wait()
				bl.tick()
			}
			b.ReportAllocs()
			for b.Loop() {
				if bl.l.inflight && len(bl.l.resCh) == 0 {
					b.StopTimer()
					bl.wait()
					b.StartTimer()
				}
				bl.tick()
			}
		})
	}
}

// BenchmarkObservationToCommand is the end-to-end latency from an observation to the first
// command computed from it: the tick that takes the observation and asks for a chunk, the
// worker's inference (normalize, a closed-form 7 x 50 field bound, 10 Euler steps, unnormalize)
// and the next tick that splices the chunk, filters and writes the command.
func BenchmarkObservationToCommand(b *testing.B) {
	bl := newBenchLoop(b, chunk.Prefix, 49, nil) // ask for a chunk at every tick
	defer bl.close()
	for range 50 {
		bl.wait()
		bl.tick()
	}
	b.ReportAllocs()
	for b.Loop() {
		bl.wait()
		bl.tick() // splices the previous chunk, writes its command, asks for the next
	}
	b.ReportMetric(float64(bl.l.tel.Chunks.Load())/float64(bl.k), "chunks/tick")
}
