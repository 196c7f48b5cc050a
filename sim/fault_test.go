package sim

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/flowact/flowact/robot"
)

const tick = 10 * time.Millisecond

func TestStateLatency(t *testing.T) {
	const lat = 35 * time.Millisecond
	s := mustNew(t, arm(0, 0), Config{Faults: Faults{StateLatency: lat}})
	st := robot.NewState(3)
	if err := s.ReadState(&st); !errors.Is(err, robot.ErrNoState) {
		t.Fatalf("before the first sample is %v old: %v, want ErrNoState", lat, err)
	}
	command(t, s, 1, 1, 1)
	history := map[time.Time]float64{}
	var truth robot.State
	for k := 1; k <= 50; k++ {
		s.Step(tick)
		s.TrueStateTo(&truth)
		history[truth.Stamp] = truth.Position[0]
		if err := s.ReadState(&st); err != nil {
			if k >= 4 {
				t.Fatalf("tick %d: %v", k, err)
			}
			continue
		}
		// Samples are taken every 10 ms; the newest one at least 35 ms old is 40 ms old.
		if age := s.Now().Sub(st.Stamp); age != 40*time.Millisecond {
			t.Fatalf("tick %d: sample is %v old, want 40ms", k, age)
		}
		if want, ok := history[st.Stamp]; k > 4 && (!ok || want != st.Position[0]) {
			t.Fatalf("tick %d: sample position %g, true position then %g", k, st.Position[0], want)
		}
	}
}

func TestStateDrop(t *testing.T) {
	const p, n = 0.3, 2000
	s := mustNew(t, arm(0, 0), Config{Faults: Faults{StateDrop: p, Seed: 7}})
	st := robot.NewState(3)
	stale := 0
	for range n {
		s.Step(tick)
		if err := s.ReadState(&st); err != nil {
			t.Fatal(err)
		}
		if st.Stamp.Before(s.Now()) {
			stale++
		}
	}
	stats := s.Stats()
	frac := float64(stats.Dropped) / float64(stats.Samples)
	// Binomial: sd = sqrt(p (1-p) / n) = 0.0102; 4 sd fails a correct sampler with prob < 1e-4.
	if sd := math.Sqrt(p * (1 - p) / n); math.Abs(frac-p) > 4*sd {
		t.Errorf("dropped %.3f of samples, want %.2f ± %.3f", frac, p, 4*sd)
	}
	if int64(stale) != stats.Dropped {
		t.Errorf("%d reads were stale but %d samples were dropped", stale, stats.Dropped)
	}
}

func TestStateNoise(t *testing.T) {
	const sd, n = 0.01, 4000
	s := mustNew(t, arm(0, 0), Config{Faults: Faults{PositionNoise: sd, VelocityNoise: 2 * sd, Seed: 9}})
	st := robot.NewState(3)
	var sum, sum2, vsum2 float64
	for range n {
		s.Step(tick)
		if err := s.ReadState(&st); err != nil {
			t.Fatal(err)
		}
		sum += st.Position[1]
		sum2 += st.Position[1] * st.Position[1]
		vsum2 += st.Velocity[1] * st.Velocity[1]
	}
	mean := sum / n
	std := math.Sqrt(sum2/n - mean*mean)
	vstd := math.Sqrt(vsum2 / n)
	// The mean has sd sd/sqrt(n); a sample sd has relative sd 1/sqrt(2n) = 1.1%. Bounds are 4 sd.
	if math.Abs(mean) > 4*sd/math.Sqrt(n) {
		t.Errorf("noise mean %g, want 0 ± %g", mean, 4*sd/math.Sqrt(n))
	}
	if tol := 4 / math.Sqrt(2*n); math.Abs(std/sd-1) > tol || math.Abs(vstd/(2*sd)-1) > tol {
		t.Errorf("noise sd %g and %g, want %g and %g within %.1f%%", std, vstd, sd, 2*sd, 100*tol)
	}
}

func TestFrozenSensor(t *testing.T) {
	s := mustNew(t, arm(0, 0), Config{Faults: Faults{Freeze: Window{Enabled: true, At: 100 * time.Millisecond, For: 200 * time.Millisecond}}})
	command(t, s, 1, 1, 1)
	st := robot.NewState(3)
	var frozen float64
	for k := 1; k <= 50; k++ {
		s.Step(tick)
		if err := s.ReadState(&st); err != nil {
			t.Fatal(err)
		}
		if !st.Stamp.Equal(s.Now()) {
			t.Fatalf("tick %d: a frozen sensor still publishes fresh stamps; got one %v old", k, s.Now().Sub(st.Stamp))
		}
		el := s.Elapsed()
		switch {
		case el == 100*time.Millisecond:
			frozen = st.Position[0]
		case el > 100*time.Millisecond && el < 300*time.Millisecond:
			if st.Position[0] != frozen {
				t.Fatalf("at %v the frozen sensor reads %g, want %g", el, st.Position[0], frozen)
			}
		case el >= 300*time.Millisecond:
			var truth robot.State
			s.TrueStateTo(&truth)
			if st.Position[0] != truth.Position[0] {
				t.Fatalf("at %v after the freeze the sensor reads %g, true %g", el, st.Position[0], truth.Position[0])
			}
		}
	}
	if frozen == 0 {
		t.Fatal("the arm did not move before the freeze")
	}
}

func TestCommandDelay(t *testing.T) {
	const delay = 50 * time.Millisecond
	s := mustNew(t, arm(0, 0), Config{Faults: Faults{CommandDelay: delay}})
	command(t, s, 1, 0, 0)
	ref := make([]float64, 3)
	for k := 1; k <= 10; k++ {
		s.Step(tick)
		s.ReferenceTo(ref)
		if want := float64(btoi(s.Elapsed() >= delay)); ref[0] != want {
			t.Fatalf("at %v the reference is %g, want %g", s.Elapsed(), ref[0], want)
		}
	}
	// Trajectories are delayed too: this one reaches the joints at 150 ms, starting then.
	tr := &robot.Trajectory{TimeFromStart: []time.Duration{100 * time.Millisecond}, Positions: []float64{2, 0, 0}}
	if err := s.WriteTrajectory(tr); err != nil {
		t.Fatal(err)
	}
	s.Step(40 * time.Millisecond)
	if s.ReferenceTo(ref); ref[0] != 1 {
		t.Fatalf("a delayed trajectory acts early: reference %g", ref[0])
	}
	s.Step(60 * time.Millisecond) // 50 ms after arrival, halfway
	if s.ReferenceTo(ref); math.Abs(ref[0]-1.5) > 1e-12 {
		t.Fatalf("delayed trajectory halfway: reference %g, want 1.5", ref[0])
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestStuckJoint(t *testing.T) {
	s := mustNew(t, arm(0, 0), Config{Faults: Faults{StuckJoint: "shoulder", Stuck: Window{Enabled: true, At: 100 * time.Millisecond, For: 200 * time.Millisecond}}})
	command(t, s, 1, 1, 1)
	var st robot.State
	var held float64
	for k := 1; k <= 40; k++ {
		s.Step(tick)
		s.TrueStateTo(&st)
		el := s.Elapsed()
		switch {
		case el == 100*time.Millisecond:
			held = st.Position[1]
		case el > 100*time.Millisecond && el < 300*time.Millisecond:
			if st.Position[1] != held || st.Velocity[1] != 0 {
				t.Fatalf("at %v the stuck joint is at %g moving %g, want held at %g", el, st.Position[1], st.Velocity[1], held)
			}
			if st.Position[0] == st.Position[1] {
				t.Fatalf("at %v the other joints stopped too", el)
			}
		}
	}
	if st.Position[1] < 0.95 {
		t.Errorf("after the window the joint did not resume: at %g", st.Position[1])
	}
}

// TestDeterministic runs two sims with every random fault from one seed and compares every read.
func TestDeterministic(t *testing.T) {
	run := func(seed uint64) []float64 {
		s := mustNew(t, arm(2, 10), Config{Lag: Lag{Order: 2}, Faults: Faults{StateDrop: 0.2, PositionNoise: 0.01, VelocityNoise: 0.01, StateLatency: 15 * time.Millisecond, Seed: seed}})
		st := robot.NewState(3)
		var out []float64
		for k := range 200 {
			command(t, s, math.Sin(float64(k)/10), 0.5, -0.5)
			s.Step(tick)
			if s.ReadState(&st) == nil {
				out = append(out, st.Position...)
				out = append(out, float64(st.Stamp.UnixNano()))
			}
		}
		return out
	}
	a, b, c := run(1), run(1), run(2)
	if len(a) != len(b) {
		t.Fatalf("same seed, %d and %d values", len(a), len(b))
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("same seed differs at %d: %g vs %g", i, a[i], b[i])
		}
	}
	same := len(a) == len(c)
	for i := 0; same && i < len(a); i++ {
		same = a[i] == c[i]
	}
	if same {
		t.Error("seeds 1 and 2 give the same run")
	}
}
