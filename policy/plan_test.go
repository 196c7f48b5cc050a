package policy

import (
	"slices"
	"testing"
	"time"

	"github.com/flowact/flowact/expert/ode"
	"github.com/flowact/flowact/policy/chunk"
)

// planRecorder is a PlanObserver that keeps the last plan shown, in preallocated memory.
type planRecorder struct {
	k     int64
	rows  []float64
	n     int
	calls uint64 // every call
	shown uint64 // calls with a non-empty plan
}

func newPlanRecorder(h, d int) *planRecorder { return &planRecorder{rows: make([]float64, h*d)} }

func (p *planRecorder) ObservePlan(k int64, rows []float64) {
	p.k, p.n = k, copy(p.rows, rows)
	p.calls++
	if len(rows) > 0 {
		p.shown++
	}
}

// TestPlanObserver: at every splice the observer is shown the plan from that tick on, and it
// is the plan the loop then executes: until the next splice, the target of tick j (before the
// safety filter) is row j - k of what was shown at tick k.
func TestPlanObserver(t *testing.T) {
	for _, st := range []chunk.Strategy{chunk.Replace, chunk.Blend, chunk.Ensemble} {
		t.Run(string(st), func(t *testing.T) {
			const h, d = 30, 3
			per := 10 * time.Millisecond
			now := time.Unix(1000, 0)
			drv := newDriver(t, armModel(), per, []float64{0, 0, 0})
			drv.stampFn = func(time.Time) time.Time { return now }
			obs := newPlanRecorder(h, d)
			l, err := New(Config{Rate: 100, Threshold: 10, Chunk: chunk.Config{Strategy: st}},
				Deps{Driver: drv, Inferer: NewExpert(newPlanModel(h, d), &ode.Fixed{Method: ode.Euler, Steps: 5}, nil, 7), Plan: obs})
			if err != nil {
				t.Fatal(err)
			}
			l.PutEmbedding(goal(now.Add(time.Hour), 0.5, -0.5, 1))
			l.Start()
			checked := 0
			for range 200 {
				calls := obs.calls
				if err := l.Step(now); err != nil {
					t.Fatal(err)
				}
				l.InferPending(0)
				now = now.Add(per)
				if obs.n%d != 0 || obs.n > h*d {
					t.Fatalf("plan of %d values for D = %d, H = %d", obs.n, d, h)
				}
				if obs.calls == calls && obs.calls == 0 {
					continue
				}
				i := int(l.k - obs.k)
				if obs.calls != calls && i != 0 {
					t.Fatalf("plan shown at tick %d, during tick %d", obs.k, l.k)
				}
				if (i+1)*d > obs.n {
					continue // past the plan shown: the loop holds
				}
				if row := obs.rows[i*d : (i+1)*d]; !slices.Equal(row, l.target) {
					t.Fatalf("tick %d: target %v, row %d of the plan shown at tick %d is %v", l.k, l.target, i, obs.k, row)
				}
				checked++
			}
			if obs.shown < 5 || checked < 150 {
				t.Errorf("%d plans shown, %d ticks checked: the test saw too little", obs.shown, checked)
			}
			// Holding executes no plan: the observer is shown an empty one, once; a new start
			// shows plans again.
			if err := l.Hold(); err != nil {
				t.Fatal(err)
			}
			calls := obs.calls
			for range 5 {
				if err := l.Step(now); err != nil {
					t.Fatal(err)
				}
				l.InferPending(0)
				now = now.Add(per)
			}
			if obs.n != 0 || obs.calls != calls+1 {
				t.Errorf("holding: %d values in the plan after %d calls, want 0 after 1", obs.n, obs.calls-calls)
			}
			if err := l.Start(); err != nil {
				t.Fatal(err)
			}
			shown := obs.shown
			for range 20 {
				if err := l.Step(now); err != nil {
					t.Fatal(err)
				}
				l.InferPending(0)
				now = now.Add(per)
			}
			if obs.shown == shown || obs.n == 0 {
				t.Errorf("running again: %d plans shown, the last of %d values", obs.shown-shown, obs.n)
			}
		})
	}
}
