package safety

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func TestStateGuard(t *testing.T) {
	lim := []Limit{
		{Name: "a", HasPosition: true, Lower: -1, Upper: 1, HardLower: -1.1, HardUpper: 1.1, Velocity: 2, Acceleration: 10},
		{Name: "b", Velocity: 1, Acceleration: 10}, // continuous
	}
	t0 := time.Unix(100, 0)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	type st struct {
		pos   []float64
		stamp time.Time
	}
	for _, c := range []struct {
		name   string
		states []st
		want   string // in the last state's error; "" for none
	}{
		{"within limits and velocity", []st{{[]float64{0, 0}, ms(0)}, {[]float64{0.02, -0.01}, ms(10)}, {[]float64{0.04, 5}, ms(5010)}}, ""},
		{"between soft and hard limit", []st{{[]float64{1.05, 0}, ms(0)}}, ""},
		{"within tolerance of the hard limit", []st{{[]float64{1.109, 0}, ms(0)}}, ""},
		{"beyond the hard limit", []st{{[]float64{0, 0}, ms(0)}, {[]float64{-1.2, 0}, ms(1000)}}, `joint "a": position -1.2 outside [-1.1, 1.1]`},
		{"NaN", []st{{[]float64{0, 0}, ms(0)}, {[]float64{0, 0 / zero()}, ms(10)}}, `joint "b": position NaN`},
		// 1.5 x 2 rad/s x 10 ms + 0.01 = 0.04 rad.
		{"a jump", []st{{[]float64{0, 0}, ms(0)}, {[]float64{0.6, 0}, ms(10)}}, `joint "a" moved 0.6 in 0.01 s, from 0 to 0.6 (at most 0.04`},
		{"just within the jump allowance", []st{{[]float64{0, 0}, ms(0)}, {[]float64{0.0399, 0}, ms(10)}}, ""},
		{"the same message again", []st{{[]float64{0.1, 0}, ms(0)}, {[]float64{0.1, 0}, ms(0)}}, ""},
		{"two publishers, one stamp", []st{{[]float64{0.1, 0}, ms(0)}, {[]float64{0.2, 0}, ms(0)}}, "differ (two publishers?)"},
		{"a stamp going back", []st{{[]float64{0.1, 0}, ms(20)}, {[]float64{0.1, 0}, ms(10)}}, "stamp went back 10ms"},
		{"wrong length", []st{{[]float64{0}, ms(0)}}, "state of 1 joints for 2"},
	} {
		t.Run(c.name, func(t *testing.T) {
			g := NewStateGuard(lim, 0)
			var err error
			for i, s := range c.states {
				err = g.Check(s.pos, s.stamp)
				if i < len(c.states)-1 && err != nil {
					t.Fatalf("state %d: %v", i, err)
				}
			}
			switch {
			case c.want == "" && err != nil:
				t.Errorf("error %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, ErrState)):
				t.Errorf("error %v, want one containing %q and wrapping ErrState", err, c.want)
			}
		})
	}
	// After Reset the next state is not compared with the last.
	g := NewStateGuard(lim, 0)
	g.Check([]float64{0, 0}, ms(0))
	g.Reset()
	if err := g.Check([]float64{0.9, 0}, ms(10)); err != nil {
		t.Errorf("after Reset: %v", err)
	}
}

func zero() float64 { return 0 }

func TestStateGuardAllocs(t *testing.T) {
	g := NewStateGuard([]Limit{{Name: "a", Velocity: 1, Acceleration: 1}}, 0)
	pos := []float64{0}
	now := time.Unix(0, 0)
	if n := testing.AllocsPerRun(100, func() {
		now = now.Add(time.Millisecond)
		pos[0] += 1e-4
		if err := g.Check(pos, now); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("%v allocations per check", n)
	}
}

// TestFollowThenStaticTarget: the trajectory output predicts the filter's commands with a
// scratch copy (CopyState, then Step toward the plan) and has the tick follow the points it sent
// (Follow). After Follow the filter knows nothing of the target's motion, so a static target is
// approached without overshoot. Taking the jump from the followed point to the target as the
// target's own step, at every new trajectory, made trajectory output overshoot a 0.3 rad move
// by 70% and oscillate for seconds.
func TestFollowThenStaticTarget(t *testing.T) {
	const dt, target = 0.02, 0.3
	lim := []Limit{{Name: "a", HasPosition: true, Lower: -3, Upper: 3, HardLower: -3, HardUpper: 3, Velocity: 2, Acceleration: 8, Jerk: 80}}
	f, sc := NewFilter(lim, dt), NewFilter(lim, dt)
	if err := f.Reset([]float64{0}); err != nil {
		t.Fatal(err)
	}
	dst := make([]float64, 1)
	most, last := 0.0, 0.0
	for range 60 { // a new trajectory every 5 ticks, as chunks arrive
		sc.CopyState(f)
		var pts [5]float64
		for i := range pts {
			sc.Step(dst, []float64{target})
			pts[i] = dst[0]
		}
		for _, p := range pts {
			f.Follow([]float64{p})
			most, last = max(most, p), p
		}
	}
	if most > target+1e-9 || math.Abs(last-target) > 1e-9 {
		t.Errorf("went up to %v and ended at %v for a static target %v", most, last, target)
	}
}
