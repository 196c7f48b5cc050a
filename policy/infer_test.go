package policy

import (
	"errors"
	"math"
	"slices"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/flowact/flowact/calib/norm"
	"github.com/flowact/flowact/expert"
	"github.com/flowact/flowact/expert/experttest"
	"github.com/flowact/flowact/expert/ode"
	"github.com/flowact/flowact/expert/path"
	"github.com/flowact/flowact/policy/chunk"
	"github.com/flowact/flowact/policy/safety"
)

func testSet(d int) *norm.Set {
	st := func(scale float64) norm.Stats {
		s := norm.Stats{Count: 100}
		for j := range d {
			m, sd := 0.1*float64(j)*scale, 0.5+0.25*float64(j)
			s.Mean = append(s.Mean, m)
			s.Std = append(s.Std, sd)
			s.Q01 = append(s.Q01, m-2*sd)
			s.Q99 = append(s.Q99, m+2*sd)
			s.Min = append(s.Min, m-3*sd)
			s.Max = append(s.Max, m+3*sd)
		}
		return s
	}
	return &norm.Set{Version: norm.Version, State: st(1), Action: st(-1)}
}

// TestNorm: the calib/norm adapter is an inverse pair up to float32 rounding, in both modes.
func TestNorm(t *testing.T) {
	for _, mode := range []norm.Mode{norm.MeanStd, norm.Quantile} {
		n, err := NewNorm(testSet(3), mode, 4, 3)
		if err != nil {
			t.Fatal(err)
		}
		x := []float64{0.3, -1.2, 2.5, 0, 1, -1, 0.7, 0.8, 0.9, -2, -3, 3}
		y := make([]float32, len(x))
		back := make([]float64, len(x))
		n.NormalizeActions(y, x)
		n.UnnormalizeActions(back, y)
		for i := range x {
			if math.Abs(back[i]-x[i]) > 1e-6*(1+math.Abs(x[i])) {
				t.Errorf("mode %v: %g -> %g -> %g", mode, x[i], y[i], back[i])
			}
		}
		// mean_std: state joint 1 has mean 0.1 and std 0.75.
		s := make([]float32, 3)
		n.NormalizeState(s, []float64{0, 0.85, 0})
		if mode == norm.MeanStd && math.Abs(float64(s[1])-1) > 1e-5 {
			t.Errorf("normalized state %v, want joint 1 at 1", s)
		}
		if n := testing.AllocsPerRun(50, func() { n.NormalizeActions(y, x); n.UnnormalizeActions(back, y) }); n != 0 {
			t.Errorf("%v allocations", n)
		}
	}
	if _, err := NewNorm(testSet(2), norm.MeanStd, 4, 3); err == nil {
		t.Error("stats of 2 dims accepted for 3 joints")
	}
}

// stateModel records the state it is conditioned on and plans to stay put.
type stateModel struct {
	h, d  int
	state []float32
	f     line
}

func (m *stateModel) Shape() (int, int) { return m.h, m.d }
func (m *stateModel) Bind(c *expert.Condition) (expert.Field, error) {
	m.state = append(m.state[:0], c.State...)
	return &m.f, nil
}

// TestExpertEndEffector: with SetEndEffector the model is conditioned on the joint positions
// followed by the end effector's position fk(q), both normalized with the state statistics
// (d + 3 of them), and the request path still allocates nothing.
func TestExpertEndEffector(t *testing.T) {
	const h, d = 4, 3
	set := testSet(d)
	set.State = testSet(d + EEStateDim).State
	n, err := NewNorm(set, norm.MeanStd, h, d)
	if err != nil {
		t.Fatal(err)
	}
	m := &stateModel{h: h, d: d, f: line{h: h, d: d, mu: make([]float32, h*d), u: make([]float32, h*d)}}
	e := NewExpert(m, &ode.Fixed{Method: ode.Euler, Steps: 2}, n, 1)
	fk := func(q []float64) [3]float64 { return [3]float64{q[0] + 1, 2, 3} }
	e.SetEndEffector(fk)
	req := &Request{Seq: 1, Position: []float64{0.5, -0.25, 1}}
	c := &chunk.Chunk{Data: make([]float64, h*d)}
	if err := e.Infer(c, req); err != nil {
		t.Fatal(err)
	}
	raw := []float64{0.5, -0.25, 1, 1.5, 2, 3}
	if len(m.state) != len(raw) {
		t.Fatalf("the model saw a state of %d values, want %d (joints, then the end effector)", len(m.state), len(raw))
	}
	for i, v := range raw {
		want := (v - set.State.Mean[i]) / (set.State.Std[i] + norm.Eps)
		if math.Abs(float64(m.state[i])-want) > 1e-6 {
			t.Errorf("state value %d: %g, want %g", i, m.state[i], want)
		}
	}
	if a := testing.AllocsPerRun(20, func() { req.Seq++; _ = e.Infer(c, req) }); a != 0 {
		t.Errorf("Infer allocates %v times", a)
	}
	if _, err := NewNorm(testSet(d), norm.MeanStd, h, d); err != nil {
		t.Errorf("joint-only statistics refused: %v", err)
	}
	set.State = testSet(d + 1).State
	if _, err := NewNorm(set, norm.MeanStd, h, d); err == nil {
		t.Error("state statistics of d + 1 dimensions accepted")
	}
}

// TestExpertDeterministic: the same seed and request number give the same chunk bit for bit;
// the committed prefix comes back exactly; another request number gives other noise.
func TestExpertDeterministic(t *testing.T) {
	mk := func() *Expert {
		n, _ := NewNorm(testSet(3), norm.MeanStd, 30, 3)
		return NewExpert(newPlanModel(30, 3), &ode.Fixed{Method: ode.Midpoint, Steps: 8}, n, 99)
	}
	a, b := mk(), mk()
	req := &Request{Seq: 5, Tick: 100, Start: 100, Position: []float64{0.2, -0.1, 0.4},
		Embedding: Embedding{Tokens: 1, Width: 3, Data: []float32{1, 1, 1}},
		Prefix:    []float64{0.21, -0.11, 0.41, 0.22, -0.12, 0.42}}
	ca := chunk.Chunk{Data: make([]float64, 90)}
	cb := chunk.Chunk{Data: make([]float64, 90)}
	if err := a.Infer(&ca, req); err != nil {
		t.Fatal(err)
	}
	b.Infer(&cb, &Request{Seq: 1, Position: req.Position}) // a different history must not matter
	if err := b.Infer(&cb, req); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ca.Data, cb.Data) || ca.Start != 100 || ca.H != 30 || ca.D != 3 {
		t.Fatalf("not reproducible: %v vs %v", ca.Data[:6], cb.Data[:6])
	}
	if !slices.Equal(ca.Data[:6], req.Prefix) {
		t.Errorf("prefix rows %v, want %v exactly", ca.Data[:6], req.Prefix)
	}
	req.Seq = 6
	b.Infer(&cb, req)
	if slices.Equal(ca.Data, cb.Data) {
		t.Error("another request number gave the same chunk")
	}
	bad := *req
	bad.Position = []float64{1}
	if err := a.Infer(&ca, &bad); err == nil {
		t.Error("a state of the wrong length was accepted")
	}
	if n := testing.AllocsPerRun(20, func() { a.Infer(&ca, req) }); n != 0 {
		t.Errorf("Infer allocates %v", n)
	}
}

// source is an EmbeddingSource: a latest-value mailbox.
type source struct{ e atomic.Pointer[Embedding] }

func (s *source) Latest() (Embedding, error) {
	e := s.e.Load()
	if e == nil {
		return Embedding{}, errors.New("none")
	}
	return *e, nil
}

// TestSourceAndTriggers: the tick reads an EmbeddingSource; the Trigger services drive the state
// machine and report it.
func TestSourceAndTriggers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		drv := newDriver(t, armModel(), 10*time.Millisecond, []float64{0, 0, 0})
		src := &source{}
		l, err := New(Config{}, Deps{Driver: drv, Inferer: NewExpert(newPlanModel(20, 3), &ode.Fixed{}, nil, 1), Embeddings: src})
		if err != nil {
			t.Fatal(err)
		}
		start, stop, hold, reset := l.Triggers()
		if msg, err := start(); err != nil || msg != "policy: running" {
			t.Fatalf("start: %q %v", msg, err)
		}
		runFor(t, l, time.Second, func(el time.Duration) {
			if el == 300*time.Millisecond {
				if l.Telemetry().Requests.Load() != 0 {
					t.Error("asked for a chunk without an embedding")
				}
				src.e.Store(&Embedding{Stamp: time.Now().Add(time.Hour), Tokens: 1, Width: 3, Data: []float32{0.3, 0.3, 0.3}})
			}
			if el == 600*time.Millisecond {
				if l.Telemetry().Chunks.Load() == 0 {
					t.Error("no chunk from the source's embedding")
				}
				if msg, err := hold(); err != nil || msg != "policy: holding" {
					t.Errorf("hold: %q %v", msg, err)
				}
				if _, err := reset(); !errors.Is(err, safety.ErrNotFaulted) {
					t.Errorf("reset without a fault: %v", err)
				}
				if msg, err := stop(); err != nil || msg != "policy: stopping" {
					t.Errorf("stop: %q %v", msg, err)
				}
			}
		})
		if l.State() != safety.Idle {
			t.Errorf("state %v after stop, want idle", l.State())
		}
	})
}

// gaussModel is an unconditional expert whose chunks are N(mean, diag(std^2)): the exact
// field of expert/experttest, so the clean-chunk estimate responds to the state as a trained
// denoiser's does (guidance acts through it).
type gaussModel struct {
	h, d int
	f    *experttest.Field
}

func (m *gaussModel) Shape() (int, int)                            { return m.h, m.d }
func (m *gaussModel) Bind(*expert.Condition) (expert.Field, error) { return m.f, nil }

// TestGuidance: guiding pulls the sample toward the guide where weighted, the frozen rows come
// back exactly, and zero weights leave the expert's own sample.
func TestGuidance(t *testing.T) {
	const h, d = 20, 3
	mean, std := make([]float64, h*d), make([]float64, h*d)
	for i := range std {
		std[i] = 0.3
	}
	f, err := experttest.NewField(path.CondOT{}, experttest.Gaussian{}, experttest.Mixture{N: h * d, Components: []experttest.Gaussian{{Mean: mean, Std: std}}})
	if err != nil {
		t.Fatal(err)
	}
	ex := NewExpert(&gaussModel{h: h, d: d, f: f}, &ode.Fixed{Method: ode.Euler, Steps: 20}, nil, 4)
	guide := make([]float64, h*d)
	for i := range guide {
		guide[i] = 0.5
	}
	req := &Request{Seq: 1, Position: []float64{0, 0, 0}}
	free := chunk.Chunk{Data: make([]float64, h*d)}
	ex.Infer(&free, req)
	zero := make([]float64, h)
	req.Guide, req.GuideWeights, req.Frozen, req.GuidanceWeight = guide, zero, 0, 5
	same := chunk.Chunk{Data: make([]float64, h*d)}
	ex.Infer(&same, req)
	if !slices.Equal(free.Data, same.Data) {
		t.Error("zero guidance weights changed the sample")
	}
	w := make([]float64, h)
	chunk.GuideWeights(w, 4, 12)
	req.GuideWeights, req.Frozen = w, 4
	g := chunk.Chunk{Data: make([]float64, h*d)}
	ex.Infer(&g, req)
	if !slices.Equal(g.Data[:4*d], guide[:4*d]) {
		t.Error("frozen rows not written back exactly")
	}
	dist := func(c *chunk.Chunk, from, to int) (s float64) {
		for i := from * d; i < to*d; i++ {
			s += math.Abs(c.Data[i] - guide[i])
		}
		return s
	}
	// Strongly weighted rows land near the guide, unweighted rows are left alone.
	if a, b := dist(&free, 4, 8), dist(&g, 4, 8); !(b < 0.5*a) {
		t.Errorf("rows 4..7: distance to the guide %g guided vs %g free, want less than half", b, a)
	}
	if a, b := dist(&free, 12, h), dist(&g, 12, h); math.Abs(a-b) > 1e-6 {
		t.Errorf("rows past the overlap moved: %g vs %g", b, a)
	}
}

// recordModel is a Model whose field is zero (a sample is its noise) and that records the
// prefix it was bound with.
type recordModel struct {
	h, d   int
	prefix []float32
}

func (m *recordModel) Shape() (int, int) { return m.h, m.d }
func (m *recordModel) Bind(c *expert.Condition) (expert.Field, error) {
	m.prefix = append(m.prefix[:0], c.Prefix...)
	return zeroField(m.h * m.d), nil
}

type zeroField int

func (f zeroField) Dim() int                           { return int(f) }
func (zeroField) Velocity(dst, _ []float32, _ float64) { clear(dst) }

// TestExpertRelativeFrame: in the Relative frame the model sees the prefix as offsets from the
// observed positions and its chunk is shifted back by them: with the same noise, the chunk is
// the Absolute chunk plus the positions, row by row, and the committed rows still come back
// exactly. Requests and chunks stay absolute.
func TestExpertRelativeFrame(t *testing.T) {
	const h, d = 5, 3
	mk := func(f Frame) (*Expert, *recordModel) {
		n, _ := NewNorm(testSet(d), norm.MeanStd, h, d)
		m := &recordModel{h: h, d: d}
		e := NewExpert(m, &ode.Fixed{Method: ode.Euler, Steps: 2}, n, 7)
		e.SetFrame(f)
		return e, m
	}
	abs, am := mk(Absolute)
	rel, rm := mk(Relative)
	pos := []float64{0.5, -1, 2}
	req := &Request{Seq: 3, Tick: 10, Position: pos, Prefix: []float64{0.6, -0.9, 2.1, 0.7, -0.8, 2.2}}
	ca := chunk.Chunk{Data: make([]float64, h*d)}
	cr := chunk.Chunk{Data: make([]float64, h*d)}
	if err := abs.Infer(&ca, req); err != nil {
		t.Fatal(err)
	}
	if err := rel.Infer(&cr, req); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cr.Data[:6], req.Prefix) {
		t.Errorf("relative: prefix rows %v, want %v exactly", cr.Data[:6], req.Prefix)
	}
	for i := 6; i < h*d; i++ {
		if got, want := cr.Data[i]-ca.Data[i], pos[i%d]; math.Abs(got-want) > 1e-5 {
			t.Errorf("row %d joint %d: relative - absolute = %g, want the position %g", i/d, i%d, got, want)
		}
	}
	n, _ := NewNorm(testSet(d), norm.MeanStd, h, d)
	wantAbs, wantRel := make([]float32, 6), make([]float32, 6)
	n.NormalizeActions(wantAbs, req.Prefix)
	off := make([]float64, 6)
	for i, v := range req.Prefix {
		off[i] = v - pos[i%d]
	}
	n.NormalizeActions(wantRel, off)
	if !slices.Equal(am.prefix, wantAbs) || !slices.Equal(rm.prefix, wantRel) {
		t.Errorf("model saw prefixes %v (absolute) and %v (relative), want %v and %v", am.prefix, rm.prefix, wantAbs, wantRel)
	}
	if n := testing.AllocsPerRun(20, func() { rel.Infer(&cr, req) }); n != 0 {
		t.Errorf("relative Infer allocates %v", n)
	}
	for _, s := range []string{"", "absolute", "relative"} {
		f, err := ParseFrame(s)
		if err != nil || (s != "" && f.String() != s) {
			t.Errorf("ParseFrame(%q) = %v, %v", s, f, err)
		}
	}
	if _, err := ParseFrame("delta"); err == nil {
		t.Error(`ParseFrame("delta") accepted`)
	}
}

// callField is a field that counts its evaluations and records the last x and t; its velocity
// is x + 1 + i/10 for element i.
type callField struct {
	n     int
	calls int
	x     []float32
	t     float64
}

func (f *callField) Dim() int { return f.n }
func (f *callField) Velocity(dst, x []float32, t float64) {
	f.calls++
	f.x, f.t = append(f.x[:0], x...), t
	for i := range dst {
		dst[i] = x[i] + 1 + float32(i)/10
	}
}

// callModel binds its callField and records the prefix it was bound with.
type callModel struct {
	h, d   int
	f      callField
	prefix []float32
}

func (m *callModel) Shape() (int, int) { return m.h, m.d }
func (m *callModel) Bind(c *expert.Condition) (expert.Field, error) {
	m.prefix = append(m.prefix[:0], c.Prefix...)
	return &m.f, nil
}

// TestExpertRegressor: a regressor's chunk is one evaluation of the network at x = 0, t = 0,
// unnormalized (the same for every request number: no noise), the committed prefix is not fed
// to the network but its rows come back exactly, and Infer allocates nothing.
func TestExpertRegressor(t *testing.T) {
	const h, d = 4, 3
	n, _ := NewNorm(testSet(d), norm.MeanStd, h, d)
	m := &callModel{h: h, d: d, f: callField{n: h * d}}
	e := NewExpert(m, &ode.Fixed{Method: ode.Midpoint, Steps: 5}, n, 3)
	e.SetRegressor(true)
	req := &Request{Seq: 1, Tick: 7, Start: 7, Position: []float64{0.1, 0.2, 0.3}, Prefix: []float64{0.5, 0.6, 0.7}}
	c := chunk.Chunk{Data: make([]float64, h*d)}
	if err := e.Infer(&c, req); err != nil {
		t.Fatal(err)
	}
	if m.f.calls != 1 || m.f.t != 0 || slices.ContainsFunc(m.f.x, func(v float32) bool { return v != 0 }) {
		t.Errorf("the network was evaluated %d times, last at t = %g with x = %v; want once, at t = 0, x = 0", m.f.calls, m.f.t, m.f.x)
	}
	if len(m.prefix) != 0 {
		t.Errorf("the regressor was bound with a prefix %v; it is trained without one", m.prefix)
	}
	want := make([]float32, h*d)
	for i := range want {
		want[i] = 1 + float32(i)/10
	}
	wantC := make([]float64, h*d)
	n.UnnormalizeActions(wantC, want)
	copy(wantC, req.Prefix)
	if !slices.Equal(c.Data, wantC) || c.Start != 7 || c.H != h || c.D != d {
		t.Errorf("chunk %v (start %d, %d x %d), want %v (start 7, %d x %d)", c.Data, c.Start, c.H, c.D, wantC, h, d)
	}
	req.Seq = 2
	c2 := chunk.Chunk{Data: make([]float64, h*d)}
	if err := e.Infer(&c2, req); err != nil || !slices.Equal(c2.Data, c.Data) {
		t.Errorf("another request number gave %v (%v), want the same chunk %v", c2.Data, err, c.Data)
	}
	if a := testing.AllocsPerRun(20, func() { _ = e.Infer(&c, req) }); a != 0 {
		t.Errorf("Infer allocates %v times", a)
	}
}
