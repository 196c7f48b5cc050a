package dataset

import (
	"errors"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flowact/flowact/robot"
)

// rows records what AccumulateTo adds.
type rows [][]float64

func (r *rows) Add(row []float64) error {
	*r = append(*r, slices.Clone(row))
	return nil
}

// flat is one joint with positions 0, 1, 2, 3 and actions 1, 2, 3, 3 (the next position, then
// hold).
func flat() *Aligned {
	return &Aligned{Path: "flat.bag", N: 4, D: 1, Tokens: 1, Width: 2, Rate: 10,
		State: []float64{0, 1, 2, 3}, Action: []float64{1, 2, 3, 3},
		Embeddings: [][]float32{{7, 8}}, EmbeddingOf: []int32{0, 0, 0, 0}, Meta: Meta{Joints: []string{"j"}}}
}

// TestAccumulateFrames: absolute action statistics are of the actions; relative ones of the
// offsets a chunk of h holds from each tick's joint positions, h rows per tick where the
// episode has them; the state is the positions, then the end effector's position.
func TestAccumulateFrames(t *testing.T) {
	abs, err := NewExamples([]*Aligned{flat()}, ExamplesConfig{Horizon: 2})
	if err != nil {
		t.Fatal(err)
	}
	var st, act rows
	if err := abs.AccumulateTo(&st, &act); err != nil {
		t.Fatal(err)
	}
	if !slices.EqualFunc(act, rows{{1}, {2}, {3}, {3}}, slices.Equal) || !slices.EqualFunc(st, rows{{0}, {1}, {2}, {3}}, slices.Equal) {
		t.Errorf("absolute: states %v, actions %v", st, act)
	}
	fk := func(q []float64) [3]float64 { return [3]float64{10 * q[0], -1, 0} }
	rel, err := NewExamples([]*Aligned{flat()}, ExamplesConfig{Horizon: 2, Relative: true, EndEffector: fk})
	if err != nil {
		t.Fatal(err)
	}
	st, act = nil, nil
	if err := rel.AccumulateTo(&st, &act); err != nil {
		t.Fatal(err)
	}
	// h = 2: offsets 1, 2 (tick 0), 1, 2 (tick 1), 1, 1 (tick 2), 0 (tick 3).
	if !slices.EqualFunc(act, rows{{1}, {2}, {1}, {2}, {1}, {1}, {0}}, slices.Equal) {
		t.Errorf("relative actions %v", act)
	}
	if !slices.EqualFunc(st, rows{{0, 0, -1, 0}, {1, 10, -1, 0}, {2, 20, -1, 0}, {3, 30, -1, 0}}, slices.Equal) {
		t.Errorf("states with the end effector %v", st)
	}
	if got := rel.StateNames(); !slices.Equal(got, []string{"j", "ee_x", "ee_y", "ee_z"}) {
		t.Errorf("state names %v", got)
	}
	if h, d, tokens, width, sd := rel.Shape(); h != 2 || d != 1 || tokens != 1 || width != 2 || sd != 4 {
		t.Errorf("shape %d %d %d %d %d", h, d, tokens, width, sd)
	}
}

// TestDrawTo draws every tick of the flat episode: the state and embedding are the tick's, the
// relative actions offsets from its position with the last action held past the end, and the
// returned length counts the recorded rows. A second Examples with the same seed draws the
// same ticks.
func TestDrawTo(t *testing.T) {
	x, err := NewExamples([]*Aligned{flat()}, ExamplesConfig{Horizon: 3, Relative: true})
	if err != nil {
		t.Fatal(err)
	}
	emb, state, action := make([]float32, 2), make([]float64, 1), make([]float64, 3)
	want := map[float64]struct {
		action []float64
		n      int
	}{
		0: {[]float64{1, 2, 3}, 3}, 1: {[]float64{1, 2, 2}, 3}, 2: {[]float64{1, 1, 1}, 2}, 3: {[]float64{0, 0, 0}, 1},
	}
	seen := map[float64]bool{}
	r := rand.New(rand.NewPCG(1, 2))
	var drawn []float64
	for range 40 {
		n := x.DrawTo(r, emb, state, action)
		w := want[state[0]]
		if n != w.n || !slices.Equal(action, w.action) || !slices.Equal(emb, []float32{7, 8}) {
			t.Fatalf("tick %v: %d rows %v, embedding %v; want %d rows %v", state[0], n, action, emb, w.n, w.action)
		}
		seen[state[0]] = true
		drawn = append(drawn, state[0])
	}
	if len(seen) != 4 {
		t.Errorf("40 draws saw ticks %v", seen)
	}
	y, _ := NewExamples([]*Aligned{flat()}, ExamplesConfig{Horizon: 3, Relative: true})
	r = rand.New(rand.NewPCG(1, 2))
	for i := range drawn {
		y.DrawTo(r, emb, state, action)
		if state[0] != drawn[i] {
			t.Fatalf("draw %d: tick %v, the first run drew %v", i, state[0], drawn[i])
		}
	}
	if n := testing.AllocsPerRun(100, func() { x.DrawTo(r, emb, state, action) }); n != 0 {
		t.Errorf("DrawTo allocates %v times", n)
	}
}

func TestNewExamplesErrors(t *testing.T) {
	other := flat()
	other.Path, other.Width = "wide.bag", 3
	empty := flat()
	empty.N = 0
	for _, c := range []struct {
		name string
		eps  []*Aligned
		cfg  ExamplesConfig
		want error
	}{
		{"none", nil, ExamplesConfig{Horizon: 2}, ErrEmpty},
		{"no horizon", []*Aligned{flat()}, ExamplesConfig{}, ErrConfiguration},
		{"two shapes", []*Aligned{flat(), other}, ExamplesConfig{Horizon: 2}, ErrShape},
		{"no ticks", []*Aligned{empty}, ExamplesConfig{Horizon: 2}, ErrEmpty},
	} {
		if _, err := NewExamples(c.eps, c.cfg); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
}

// TestLoadEpisodes writes three episodes (one failed, one with another joint count) and loads
// them: failed ones are kept or dropped by keep, another shape is an error naming both bags,
// and Hash depends on the bags' names and bytes.
func TestLoadEpisodes(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, joints []string, success bool) string {
		ep := &Episode{Meta: Meta{Version: MetaVersion, Task: "reach", Success: success, Joints: joints, Rate: 10},
			Embeddings: []robot.Embedding{{Stamp: t0, Tokens: 1, Width: 2, Data: []float32{1, 2}}}}
		for i := range 5 {
			ts := t0.Add(time.Duration(i) * 100 * time.Millisecond)
			ep.States = append(ep.States, JointState{Stamp: ts, Position: make([]float64, len(joints))})
			ep.Actions = append(ep.Actions, Action{Stamp: ts, Position: make([]float64, len(joints))})
		}
		p := filepath.Join(dir, name)
		if err := WriteEpisode(p, ep, WriterConfig{}); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ok, failed := write("a.bag", []string{"j"}, true), write("b.bag", []string{"j"}, false)
	two := write("c.bag", []string{"j", "k"}, true)
	eps, err := LoadEpisodes([]string{ok, failed}, Config{}, Successful)
	if err != nil || len(eps) != 1 || eps[0].Path != ok {
		t.Errorf("successful only: %d episodes, %v", len(eps), err)
	}
	if eps, err := LoadEpisodes([]string{ok, failed}, Config{}, nil); err != nil || len(eps) != 2 {
		t.Errorf("all: %d episodes, %v", len(eps), err)
	}
	_, err = LoadEpisodes([]string{ok, two}, Config{}, nil)
	if !errors.Is(err, ErrShape) || !strings.Contains(err.Error(), "c.bag") || !strings.Contains(err.Error(), "a.bag") {
		t.Errorf("two shapes: %v", err)
	}
	if _, err := LoadEpisodes([]string{filepath.Join(dir, "none.bag")}, Config{}, nil); err == nil {
		t.Error("a missing bag loaded")
	}
	h1, err1 := Hash([]string{ok, failed})
	h2, err2 := Hash([]string{ok})
	h3, _ := Hash([]string{ok, failed})
	if err1 != nil || err2 != nil || h1 == h2 || h1 != h3 || !strings.HasPrefix(h1, "sha256:") {
		t.Errorf("hashes %s %s %s (%v %v)", h1, h2, h3, err1, err2)
	}
}
