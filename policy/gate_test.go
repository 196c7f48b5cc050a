package policy

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/flowact/flowact/expert"
	"github.com/flowact/flowact/expert/ode"
	"github.com/flowact/flowact/policy/chunk"
)

// TestGateConfig: the gate is off by default; one sample, too many, a threshold without samples
// and a bad threshold are refused by name.
func TestGateConfig(t *testing.T) {
	for _, c := range []struct {
		g   GateConfig
		bad string // "" when valid
	}{
		{GateConfig{}, ""},
		{GateConfig{Samples: 4}, ""},
		{GateConfig{Samples: 2, MaxSpread: 0.5}, ""},
		{GateConfig{Samples: 1}, "gate.samples"},
		{GateConfig{Samples: MaxSpreadSamples + 1}, "gate.samples"},
		{GateConfig{Samples: -2}, "gate.samples"},
		{GateConfig{MaxSpread: 0.5}, "needs gate.samples"},
		{GateConfig{Samples: 4, MaxSpread: -1}, "gate.max_spread"},
		{GateConfig{Samples: 4, Rows: 8}, ""},
		{GateConfig{Samples: 4, Rows: -1}, "gate.rows"},
		{GateConfig{Rows: 8}, "needs gate.samples"},
		{GateConfig{Samples: 4, MaxSpread: math.NaN()}, "gate.max_spread"},
		{GateConfig{Samples: 4, MaxSpread: math.Inf(1)}, "gate.max_spread"},
		{GateConfig{MaxStateOut: 0.5}, ""},
		{GateConfig{Samples: 4, MaxSpread: 0.5, MaxStateOut: 1}, ""},
		{GateConfig{MaxStateOut: -1}, "gate.max_state_out"},
		{GateConfig{MaxStateOut: math.NaN()}, "gate.max_state_out"},
		{GateConfig{MaxStateOut: math.Inf(1)}, "gate.max_state_out"},
	} {
		cfg := Config{Gate: c.g}
		err := cfg.Validate()
		switch {
		case c.bad == "" && err != nil:
			t.Errorf("%+v: %v", c.g, err)
		case c.bad != "" && (!errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), c.bad)):
			t.Errorf("%+v: %v, want an ErrConfig naming %s", c.g, err, c.bad)
		}
	}
	// An inferer that measures no spread cannot serve gate.samples.
	drv := newDriver(t, armModel(), 10*time.Millisecond, []float64{0, 0, 0})
	plain := inferFunc{h: 10, d: 3, f: func(*chunk.Chunk, *Request) error { return nil }}
	if _, err := New(Config{Gate: GateConfig{Samples: 4}}, Deps{Driver: drv, Inferer: plain}); !errors.Is(err, ErrConfig) {
		t.Errorf("gate.samples with an inferer without spread: %v", err)
	}
	// Nor can one that does not know its training data's states serve gate.max_state_out: an
	// expert without normalization statistics.
	if _, err := New(Config{Gate: GateConfig{MaxStateOut: 0.5}}, Deps{Driver: drv, Inferer: plain}); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "gate.max_state_out") {
		t.Errorf("gate.max_state_out with an inferer that does not measure it: %v", err)
	}
	if _, err := New(Config{Gate: GateConfig{MaxStateOut: 0.5}}, Deps{Driver: drv, Inferer: NewExpert(newPlanModel(10, 3), nil, nil, 1)}); !errors.Is(err, ErrConfig) {
		t.Errorf("gate.max_state_out with an expert without statistics: %v", err)
	}
	if err := NewExpert(newPlanModel(10, 3), nil, nil, 1).SetSpreadSamples(4, 0); !errors.Is(err, ErrNoBatch) {
		t.Errorf("spread samples on a model without batched binding: %v", err)
	}
}

// TestExpertStateOut: an expert with normalization statistics reports how far the observed
// state lay beyond the statistics' range (testSet: joint j spans mean ± 3 sd, joint 2 is 0.2 ±
// 3), naming the joint; within it, 0; one without statistics measures nothing.
func TestExpertStateOut(t *testing.T) {
	const h, d, width = 8, 3, 16
	net := newMLP(t, h, d, width, 32)
	n, _ := NewNorm(testSet(d), 0, h, d)
	e := NewExpert(net, &ode.Fixed{Method: ode.Euler, Steps: 2}, n, 5)
	if !e.MeasuresStateOut() || NewExpert(net, &ode.Fixed{Method: ode.Euler, Steps: 2}, nil, 5).MeasuresStateOut() {
		t.Fatal("MeasuresStateOut: want true with statistics, false without")
	}
	emb := rampEmbedding(width)
	for _, c := range []struct {
		pos []float64
		out float64
		at  int
	}{{[]float64{0.1, 0.2, 0.3}, 0, -1}, {[]float64{0.1, 0.2, 4.2}, 1, 2}, {[]float64{-3, 0.2, 0.3}, 3, 0}} {
		req := &Request{Seq: 1, Position: c.pos, Embedding: Embedding{Tokens: 1, Width: width, Data: emb}}
		got := inferEach(t, req, h*d, e)[0]
		if math.Abs(got.StateOut-c.out) > 1e-5 || got.StateOut > 0 && got.StateOutAt != c.at {
			t.Errorf("state %v: outside by %g sd at feature %d, want %g at %d", c.pos, got.StateOut, got.StateOutAt, c.out, c.at)
		}
	}
}

// TestExpertSpread: with K samples per request the executed chunk is the one-sample chunk, and
// the spread is that of K chunks drawn one at a time from the continuing noise stream, over the
// uncommitted rows; Infer still allocates nothing.
func TestExpertSpread(t *testing.T) {
	const h, d, width, k = 8, 3, 16, 4
	net := newMLP(t, h, d, width, 32)
	n, _ := NewNorm(testSet(d), 0, h, d)
	sampler := func() expert.Sampler { return &ode.Fixed{Method: ode.Midpoint, Steps: 4} }
	one := NewExpert(net, sampler(), n, 5)
	many := NewExpert(net, sampler(), n, 5)
	if err := many.SetSpreadSamples(k, 0); err != nil {
		t.Fatal(err)
	}
	const rows = 3
	near := NewExpert(net, sampler(), n, 5) // the spread of the 3 rows after the committed ones
	if err := near.SetSpreadSamples(k, rows); err != nil {
		t.Fatal(err)
	}
	emb := rampEmbedding(width)
	for _, prefix := range [][]float64{nil, {0.1, 0.2, 0.3, 0.1, 0.2, 0.3}} {
		req := &Request{Seq: 9, Position: []float64{0.1, 0.2, 0.3}, Prefix: prefix,
			Embedding: Embedding{Tokens: 1, Width: width, Data: emb}}
		cs := inferEach(t, req, h*d, one, many)
		c1, ck := cs[0], cs[1]
		if c1.Spread != 0 {
			t.Errorf("one sample reported a spread %g", c1.Spread)
		}
		for i := range c1.Data {
			if math.Abs(c1.Data[i]-ck.Data[i]) > 1e-5 {
				t.Fatalf("prefix %d: element %d of the executed chunk %g with %d samples, %g with one", len(prefix), i, ck.Data[i], k, c1.Data[i])
			}
		}
		// The reference: K chunks sampled one at a time from the stream's consecutive noise.
		cond := &expert.Condition{Tokens: 1, Width: width, Embedding: emb, State: make([]float32, d)}
		n.NormalizeState(cond.State, req.Position)
		if len(prefix) > 0 {
			cond.Prefix = make([]float32, len(prefix))
			n.NormalizeActions(cond.Prefix, prefix)
		}
		noise := make([]float32, k*h*d)
		expert.Noise(noise, rand.New(rand.NewPCG(5, req.Seq)))
		xs := make([][]float32, k)
		for s := range xs {
			f, err := net.Bind(cond)
			if err != nil {
				t.Fatal(err)
			}
			xs[s] = make([]float32, h*d)
			if err := sampler().Sample(xs[s], noise[s*h*d:(s+1)*h*d], f); err != nil {
				t.Fatal(err)
			}
		}
		ref := func(lo, hi int) float64 {
			var ss float64
			for i := lo; i < hi; i++ {
				var m float64
				for s := range xs {
					m += float64(xs[s][i]) / k
				}
				for s := range xs {
					ss += (float64(xs[s][i]) - m) * (float64(xs[s][i]) - m) / k
				}
			}
			return math.Sqrt(ss / float64(hi-lo))
		}
		lo := len(prefix)
		if want := ref(lo, h*d); want == 0 || math.Abs(ck.Spread-want) > 1e-4*want {
			t.Errorf("prefix %d: spread %g, want %g", len(prefix), ck.Spread, want)
		}
		cn := chunk.Chunk{Data: make([]float64, h*d)}
		if err := near.Infer(&cn, req); err != nil {
			t.Fatal(err)
		}
		if want := ref(lo, lo+rows*d); want == 0 || math.Abs(cn.Spread-want) > 1e-4*want {
			t.Errorf("prefix %d: spread of %d rows %g, want %g", len(prefix), rows, cn.Spread, want)
		}
		if a := testing.AllocsPerRun(10, func() { _ = many.Infer(&ck, req) }); a != 0 {
			t.Errorf("Infer with %d samples allocates %v times", k, a)
		}
	}
	// The guided strategy steers each of the K chunks: the executed one is still the one-sample
	// chunk.
	guide := make([]float64, h*d)
	for i := range guide {
		guide[i] = 0.1 * float64(i%d+1)
	}
	greq := &Request{Seq: 4, Position: []float64{0.1, 0.2, 0.3}, Embedding: Embedding{Tokens: 1, Width: width, Data: emb},
		Guide: guide, GuideWeights: []float64{1, 1, 0.8, 0.6, 0.4, 0.2, 0, 0}, Frozen: 2, GuidanceWeight: 5}
	g1 := chunk.Chunk{Data: make([]float64, h*d)}
	gk := chunk.Chunk{Data: make([]float64, h*d)}
	if err := one.Infer(&g1, greq); err != nil {
		t.Fatal(err)
	}
	if err := many.Infer(&gk, greq); err != nil {
		t.Fatal(err)
	}
	for i := range g1.Data {
		if math.Abs(g1.Data[i]-gk.Data[i]) > 1e-5 {
			t.Fatalf("guided: element %d of the executed chunk %g with %d samples, %g with one", i, gk.Data[i], k, g1.Data[i])
		}
	}
	if !(gk.Spread > 0) {
		t.Errorf("guided: spread %g", gk.Spread)
	}
	if err := many.SetSpreadSamples(MaxSpreadSamples+1, 0); !errors.Is(err, ErrConfig) {
		t.Errorf("%d samples: %v", MaxSpreadSamples+1, err)
	}
}

// spreadInferer plans a straight move toward a goal and reports the spread spread(seq).
// spreadInferer ramps toward goal and reports the spread spread(seq) or, with stateOut set, the
// state outside the training data stateOut(seq) (of joint 1).
type spreadInferer struct {
	h, d     int
	goal     []float64
	spread   func(seq uint64) float64
	stateOut func(seq uint64) float64
}

func (s *spreadInferer) Shape() (int, int)                  { return s.h, s.d }
func (s *spreadInferer) SetSpreadSamples(k, rows int) error { return nil }
func (s *spreadInferer) MeasuresStateOut() bool             { return s.stateOut != nil }
func (s *spreadInferer) Infer(dst *chunk.Chunk, req *Request) error {
	dst.H, dst.D, dst.Start = s.h, s.d, req.Tick
	dst.Data = dst.Data[:s.h*s.d]
	for r := range s.h {
		for j := range s.d {
			a := float64(r+1) / float64(s.h)
			dst.Data[r*s.d+j] = req.Position[j] + a*(s.goal[j]-req.Position[j])
		}
	}
	dst.Spread, dst.StateOut = 0, 0
	if s.spread != nil {
		dst.Spread = s.spread(req.Seq)
	}
	if s.stateOut != nil {
		dst.StateOut, dst.StateOutAt = s.stateOut(req.Seq), 1
	}
	return nil
}

// TestGateHolds: chunks whose spread exceeds gate.max_spread, or whose state lay farther
// outside the training data than gate.max_state_out, are not executed: the robot, moving,
// decelerates to a stop within its limits (every command is checked by the fake driver) and
// stays there while the expert is unsure; the snapshot says why (naming the joint farthest
// out); when the signal falls back the robot moves again. Without a threshold the same spreads
// are only reported.
func TestGateHolds(t *testing.T) {
	for _, c := range []struct {
		gate  float64
		state bool // the state gate, else the spread's
		msg   string
	}{{0, false, ""}, {0.5, false, "expert unsure (spread 2 > gate.max_spread 0.5)"}, {0.5, true, "state outside the expert's training data (j1 2 sd beyond its range > gate.max_state_out 0.5)"}} {
		gate := c.gate
		per := 10 * time.Millisecond
		clk := &simClock{now: time.Unix(9000, 0)}
		clk.end = clk.now.Add(4 * time.Second)
		drv := newDriver(t, armModel(), per, []float64{0, 0, 0})
		drv.stampFn = func(time.Time) time.Time { return clk.Now() }
		drv.record = true
		unsure := func(seq uint64) bool { return seq >= 6 && seq < 100 }
		signal := func(seq uint64) float64 {
			if unsure(seq) {
				return 2
			}
			return 0.1
		}
		inf := &spreadInferer{h: 20, d: 3, goal: []float64{1.5, -1.2, 1}, spread: signal}
		cfg := Config{Rate: 100, Threshold: 10, Gate: GateConfig{Samples: 4, MaxSpread: gate}}
		if c.state {
			inf.spread, inf.stateOut = nil, signal
			cfg.Gate = GateConfig{MaxStateOut: gate}
		}
		l, err := New(cfg, Deps{Driver: drv, Clock: clk, Inferer: inf})
		if err != nil {
			t.Fatal(err)
		}
		l.PutEmbedding(goal(clk.end.Add(time.Hour), 0, 0, 0))
		l.Start()
		var msg string
		var stillTicks, gatedAt int
		var prev []float64
		for k := 0; ; k++ {
			now := clk.now.Add(per)
			if now.After(clk.end) {
				break
			}
			clk.now = now
			if err := l.Step(now); err != nil {
				t.Fatal(err)
			}
			l.InferPending(0)
			s := l.Snapshot()
			if s.Counters.Gated > 0 && gatedAt == 0 {
				gatedAt = k
			}
			if len(drv.history) > 0 {
				last := drv.history[len(drv.history)-1]
				if prev != nil && gatedAt > 0 && l.req.Seq < 100 && maxAbsDiff(last, prev) == 0 {
					stillTicks++
					if msg == "" {
						msg = s.Message
					}
				}
				prev = append(prev[:0], last...)
			}
		}
		s := l.Snapshot()
		hist := s.Hist.Spread
		if c.state {
			hist = s.Hist.StateOut
		}
		if hist.N == 0 || hist.Max != 2 {
			t.Errorf("gate %g: histogram %d values, max %g; want the reported signal", gate, hist.N, hist.Max)
		}
		if gate == 0 {
			if s.Counters.Gated != 0 {
				t.Errorf("gate off: %d chunks gated", s.Counters.Gated)
			}
			continue
		}
		if s.Counters.Gated < 60 {
			t.Errorf("gate %g: %d chunks gated, want every unsure one (requests 6 to 99)", gate, s.Counters.Gated)
		}
		if stillTicks < 40 {
			t.Errorf("gate %g: the robot was at rest for %d ticks while the expert was unsure", gate, stillTicks)
		}
		if !strings.Contains(msg, c.msg) {
			t.Errorf("gate %g: snapshot while holding says %q", gate, msg)
		}
		// Confident again, it moved on toward the goal.
		last := drv.history[len(drv.history)-1]
		if last[0] < 1 {
			t.Errorf("gate %g: joint 0 at %g after the expert was sure again, want it near the goal 1.5", gate, last[0])
		}
	}
}

func maxAbsDiff(a, b []float64) float64 {
	var m float64
	for i := range a {
		m = max(m, math.Abs(a[i]-b[i]))
	}
	return m
}

// rampEmbedding is a fixed one-token embedding of width values for the expert tests.
func rampEmbedding(width int) []float32 {
	emb := make([]float32, width)
	for i := range emb {
		emb[i] = float32(i%5) / 5
	}
	return emb
}

// inferEach runs req through each expert and returns their H x D chunks.
func inferEach(t *testing.T, req *Request, hd int, es ...*Expert) []chunk.Chunk {
	t.Helper()
	out := make([]chunk.Chunk, len(es))
	for i, e := range es {
		out[i] = chunk.Chunk{Data: make([]float64, hd)}
		if err := e.Infer(&out[i], req); err != nil {
			t.Fatal(err)
		}
	}
	return out
}
