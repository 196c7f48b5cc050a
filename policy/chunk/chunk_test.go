package chunk

import (
	"errors"
	"fmt"
	"math"
	"testing"
)

// tickChunk returns an h x d chunk from start whose row i encodes its absolute tick: start+i
// (+ j/10 for joint j).
func tickChunk(start int64, h, d int, offset float64) *Chunk {
	c := &Chunk{Start: start, H: h, D: d, Data: make([]float64, h*d)}
	for i := range h {
		for j := range d {
			c.Data[i*d+j] = float64(start+int64(i)) + float64(j)/10 + offset
		}
	}
	return c
}

var all = []Strategy{Replace, Ensemble, Blend, Prefix, Guided}

// TestConsistentChunks: when every chunk agrees with the absolute tick, every strategy outputs
// exactly the tick at every tick, whatever the delays: no skipped or repeated actions.
func TestConsistentChunks(t *testing.T) {
	const h, d = 20, 2
	for _, st := range all {
		t.Run(string(st), func(t *testing.T) {
			s, err := New(Config{Strategy: st, BlendTicks: 5}, h, d)
			if err != nil {
				t.Fatal(err)
			}
			dst := make([]float64, d)
			// observations at ticks 0, 12, 25, 31, 47; delays 3, 7, 0, 5, 19
			arrivals := map[int64]int64{3: 0, 19: 12, 25: 25, 36: 31, 66: 47}
			started := false
			for k := int64(0); k <= 66; k++ {
				if obs, ok := arrivals[k]; ok {
					s.Splice(tickChunk(obs, h, d, 0), k)
					started = true
				}
				ok := s.Action(dst, k)
				if !started {
					if ok {
						t.Fatalf("action before any chunk at tick %d", k)
					}
					continue
				}
				if ok != (k < s.End()) {
					t.Fatalf("tick %d: action %v with end %d", k, ok, s.End())
				}
				if !ok {
					continue // starved between the chunk observed at 31 and the one arriving at 66
				}
				for j := range d {
					want := float64(k) + float64(j)/10
					if (st == Blend || st == Prefix) && k == 66 {
						// After starving, blend and prefix fade from the held action (tick 50's) over 5 ticks.
						w := 0.5 * (1 - math.Cos(math.Pi/6))
						want = (1-w)*(50+float64(j)/10) + w*want
					}
					if math.Abs(dst[j]-want) > 1e-9 {
						t.Fatalf("tick %d joint %d: %g, want %g", k, j, dst[j], want)
					}
				}
			}
			// The chunk observed at 47 arrived at 66 = 47+19: one row left.
			if got := s.End(); got != 67 {
				t.Errorf("end %d, want 67", got)
			}
		})
	}
}

func TestLateChunkIgnored(t *testing.T) {
	for _, st := range all {
		s, _ := New(Config{Strategy: st}, 10, 1)
		s.Splice(tickChunk(0, 10, 1, 0), 2)
		s.Splice(tickChunk(5, 10, 1, 100), 15) // all rows in the past
		if s.End() != 10 {
			t.Errorf("%s: a chunk entirely in the past changed the plan: end %d", st, s.End())
		}
		s.Reset()
		if s.End() != 0 || s.Action(make([]float64, 1), 0) {
			t.Errorf("%s: Reset kept a plan", st)
		}
	}
}

// TestStrategiesMix checks the weights each strategy gives a disagreeing chunk.
func TestStrategiesMix(t *testing.T) {
	const h = 30
	dst := make([]float64, 1)
	at := func(s Splicer, k int64) float64 {
		if !s.Action(dst, k) {
			t.Fatalf("no action at %d", k)
		}
		return dst[0]
	}
	// Old chunk from tick 0 says 0; new chunk observed at 10, arriving at 14, says 1.
	old := &Chunk{Start: 0, H: h, D: 1, Data: make([]float64, h)}
	nw := &Chunk{Start: 10, H: h, D: 1, Data: make([]float64, h)}
	for i := range nw.Data {
		nw.Data[i] = 1
	}
	r, _ := New(Config{Strategy: Replace}, h, 1)
	r.Splice(old, 0)
	o13 := at(r, 13)
	r.Splice(nw, 14)
	if o13 != 0 || at(r, 14) != 1 {
		t.Error("replace does not switch at arrival")
	}

	const k = 4
	b, _ := New(Config{Strategy: Blend, BlendTicks: k}, h, 1)
	b.Splice(old, 0)
	b.Splice(nw, 14)
	for i := range k + 2 {
		want := 1.0
		if i < k {
			want = 0.5 * (1 - math.Cos(math.Pi*float64(i+1)/(k+1)))
		}
		if got := at(b, 14+int64(i)); math.Abs(got-want) > 1e-12 {
			t.Errorf("blend tick +%d: %g, want %g", i, got, want)
		}
	}

	const m = 0.5
	e, _ := New(Config{Strategy: Ensemble, EnsembleDecay: m}, h, 1)
	e.Splice(old, 0)
	e.Splice(nw, 14)
	// Where both cover the tick (14..29): (1*0 + exp(-m)*1)/(1+exp(-m)); after: 1.
	if got, want := at(e, 20), math.Exp(-m)/(1+math.Exp(-m)); math.Abs(got-want) > 1e-12 {
		t.Errorf("ensemble: %g, want %g", got, want)
	}
	if got := at(e, 30); got != 1 {
		t.Errorf("ensemble after the old chunk: %g, want 1", got)
	}
	if e.End() != 40 {
		t.Errorf("ensemble end %d, want 40", e.End())
	}
}

func TestCommitted(t *testing.T) {
	s, _ := New(Config{Strategy: Prefix}, 10, 2)
	dst := make([]float64, 6*2)
	if Committed(dst, s, 0, 6, 2) {
		t.Error("committed actions without a plan")
	}
	s.Splice(tickChunk(0, 10, 2, 0), 1)
	if !Committed(dst, s, 7, 6, 2) {
		t.Fatal("no committed actions")
	}
	// ticks 7, 8, 9 then hold the last (9), never zero.
	for i, want := range []float64{7, 8, 9, 9, 9, 9} {
		if dst[2*i] != want || dst[2*i+1] != want+0.1 {
			t.Errorf("row %d: %v, want %g", i, dst[2*i:2*i+2], want)
		}
	}
	if !Committed(dst, s, 12, 3, 2) || dst[0] != 9 || dst[4] != 9 {
		t.Errorf("past the end: %v, want the last action held", dst[:6])
	}
}

// TestMeter checks the seam metrics on analytic streams.
func TestMeter(t *testing.T) {
	const dt = 0.01
	m := NewMeter(1, dt, 4)
	x := []float64{0}
	// A constant stream with a step of 0.2 at tick 5.
	for k := range 5 {
		m.Observe(x)
		_ = k
	}
	m.Mark(5)
	x[0] = 0.2
	var s Seam
	var done bool
	for range 4 {
		s, done = m.Observe(x)
	}
	if !done {
		t.Fatal("seam not done after its window")
	}
	// x: 0 0 0 | .2 .2 .2 .2 : jump .2, dv = .2/dt/dt?? v_k: 20 at the step; |v_k - v_{k-1}| = 20/dt... computed directly:
	if s.Tick != 5 || math.Abs(s.Jump-0.2) > 1e-12 || math.Abs(s.Velocity-0.2/dt) > 1e-9 ||
		math.Abs(s.Acceleration-0.4/(dt*dt)) > 1e-6 || math.Abs(s.Jerk-0.4/(dt*dt*dt)) > 1e-3 {
		// second differences of the step: .2, -.2 -> max .2; third: .2, -.4, .2 -> max .4
		t.Errorf("step seam %+v", s)
	}

	// A cubic x = (k dt)^3 has jerk exactly 6 everywhere.
	m = NewMeter(1, dt, 10)
	for k := range 20 {
		if k == 10 {
			m.Mark(int64(k))
		}
		tt := float64(k) * dt
		x[0] = tt * tt * tt
		s, done = m.Observe(x)
	}
	if !done || math.Abs(s.Jerk-6) > 1e-6 {
		t.Errorf("cubic jerk %+v done %v, want 6", s, done)
	}
}

func TestConfig(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{Strategy: "smooth"}, "strategy"},
		{Config{BlendTicks: -1}, "blend_ticks"},
		{Config{EnsembleDecay: math.NaN()}, "ensemble_decay"},
		{Config{EnsembleChunks: 100}, "ensemble_chunks"},
		{Config{Strategy: Prefix, GuidedPrefix: true}, "guided_prefix"},
		{Config{GuidedPrefix: true}, "guided_prefix"},
		{Config{Strategy: Guided, PrefixTail: -2}, "prefix_tail"},
	} {
		err := c.cfg.Validate()
		if !errors.Is(err, ErrConfig) || !contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want an error naming %s", c.cfg, err, c.want)
		}
	}
	if d := (Config{}).WithDefaults(); d.Strategy != Blend || d.BlendTicks != 10 || d.PrefixTail != DefaultPrefixTail {
		t.Errorf("defaults %+v", d)
	}
	if d := (Config{PrefixTail: -1}).WithDefaults(); d.PrefixTail != 0 {
		t.Errorf("prefix_tail -1: %d, want 0 (none)", d.PrefixTail)
	}
	if err := (&Config{Strategy: Guided, GuidedPrefix: true, PrefixTail: -1}).Validate(); err != nil {
		t.Errorf("guided with guided_prefix: %v", err)
	}
}

func contains(s, sub string) bool {
	return len(sub) == 0 || (len(s) >= len(sub) && (s[:len(sub)] == sub || contains(s[1:], sub)))
}

func TestAllocs(t *testing.T) {
	for _, st := range all {
		s, _ := New(Config{Strategy: st}, 50, 7)
		c := tickChunk(0, 50, 7, 0)
		dst := make([]float64, 7)
		m := NewMeter(7, 0.01, 13)
		k := int64(0)
		if n := testing.AllocsPerRun(200, func() {
			if k%20 == 0 {
				c.Start = k
				s.Splice(c, k+3)
				m.Mark(k)
			}
			s.Action(dst, k+3)
			m.Observe(dst)
			k++
		}); n != 0 {
			t.Errorf("%s: %v allocations per tick", st, n)
		}
	}
}

func ExampleNew() {
	s, _ := New(Config{Strategy: Replace}, 4, 1)
	// A chunk observed at tick 10 arrives at tick 12: rows for ticks 10 and 11 are in the past.
	s.Splice(&Chunk{Start: 10, H: 4, D: 1, Data: []float64{0.10, 0.11, 0.12, 0.13}}, 12)
	dst := make([]float64, 1)
	for k := int64(12); s.Action(dst, k); k++ {
		fmt.Println(k, dst[0])
	}
	// Output:
	// 12 0.12
	// 13 0.13
}

func BenchmarkAction(b *testing.B) {
	for _, st := range all {
		b.Run(string(st), func(b *testing.B) {
			s, _ := New(Config{Strategy: st}, 50, 7)
			c := tickChunk(0, 50, 7, 0)
			dst := make([]float64, 7)
			b.ReportAllocs()
			k := int64(0)
			for b.Loop() {
				if k%25 == 0 {
					c.Start = k
					s.Splice(c, k+2)
				}
				s.Action(dst, k+2)
				k++
			}
		})
	}
}

func TestGuideWeights(t *testing.T) {
	w := make([]float64, 10)
	GuideWeights(w, 3, 7)
	// 1 on the frozen rows, c (e^c - 1)/(e - 1) with c = (7 - i)/5 over the overlap, 0 past it.
	for i, want := range []float64{1, 1, 1, 0.8 * math.Expm1(0.8) / (math.E - 1), 0.6 * math.Expm1(0.6) / (math.E - 1), 0.4 * math.Expm1(0.4) / (math.E - 1), 0.2 * math.Expm1(0.2) / (math.E - 1), 0, 0, 0} {
		if math.Abs(w[i]-want) > 1e-15 {
			t.Errorf("w[%d] = %g, want %g", i, w[i], want)
		}
	}
	for i := 1; i < len(w); i++ {
		if w[i] > w[i-1] {
			t.Errorf("weights increase at %d: %v", i, w)
		}
	}
}

// TestPrefixFadesAfterCommitted: a prefix chunk's committed rows (Frozen) are the plan's own
// actions, executed as they are; the cross-fade to the chunk's continuation starts after them,
// so a continuation that misses the plan by an offset is faded in over K ticks, not jumped to.
func TestPrefixFadesAfterCommitted(t *testing.T) {
	const h, d, k = 20, 1, 4
	s, err := New(Config{Strategy: Prefix, BlendTicks: k}, h, d)
	if err != nil {
		t.Fatal(err)
	}
	s.Splice(tickChunk(0, h, d, 0), 0)
	// Observed at tick 10, arriving at 12, 5 rows committed (ticks 10-14, equal to the plan);
	// the continuation from tick 15 on is 1 rad off the plan.
	c := tickChunk(10, h, d, 1)
	for i := range 5 {
		c.Data[i] = float64(10 + i)
	}
	c.Frozen = 5
	s.Splice(c, 12)
	dst := make([]float64, d)
	for tick := int64(12); tick < 22; tick++ {
		s.Action(dst, tick)
		want := float64(tick)
		if i := tick - 15; i >= 0 {
			w := 1.0
			if i < k {
				w = 0.5 * (1 - math.Cos(math.Pi*float64(i+1)/float64(k+1)))
			}
			want += w // (1-w) plan + w (plan + 1)
		}
		if math.Abs(dst[0]-want) > 1e-12 {
			t.Errorf("tick %d: %g, want %g", tick, dst[0], want)
		}
	}
	// Without Frozen the fade starts at arrival: tick 15 is then fully the new chunk's.
	s.Reset()
	s.Splice(tickChunk(0, h, d, 0), 0)
	c.Frozen = 0
	s.Splice(c, 12)
	if s.Action(dst, 16); dst[0] != 17 {
		t.Errorf("no committed rows: tick 16 is %g, want the new chunk's 17", dst[0])
	}
}
