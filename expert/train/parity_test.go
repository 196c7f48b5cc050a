package train

import (
	"math"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"

	"github.com/flowact/flowact/expert"
	"github.com/flowact/flowact/expert/nn"
)

// randomize gives every parameter, biases included, random values, so no term of the parity
// comparison is trivially zero.
func randomize(net nn.Net, r *rand.Rand) {
	nn.Init(net, r, 1)
	for _, p := range net.Params() {
		if len(p.Shape) == 1 {
			for i := range p.Data {
				p.Data[i] = float32(0.3 * r.NormFloat64())
			}
		}
	}
	net.Repack()
}

// parityBatch builds B examples with random conditions and chunks.
func parityBatch(r *rand.Rand, B, H, D, tokens, width, state int) *Batch {
	b := &Batch{B: B}
	b.resize(H, D, tokens, width, state)
	for _, s := range [][]float32{b.Actions, b.Embedding, b.State} {
		for i := range s {
			s[i] = float32(r.NormFloat64())
		}
	}
	return b
}

// forward runs net's graph on x at time t (shared) with committed lengths d and returns the
// B x H x D velocity.
func forward(t *testing.T, net nn.Net, bt *Batch, x []float32, tt float64, d []int) []float32 {
	t.Helper()
	b := newBuilder(net)
	g, err := newGraph(b, net, bt.B, bt.Tokens)
	if err != nil {
		t.Fatal(err)
	}
	ts := make([]float64, bt.B)
	for i := range ts {
		ts[i] = tt
	}
	g.set(x, ts, d, bt)
	vm := G.NewTapeMachine(b.g)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	return append([]float32(nil), g.velocity().Value().Data().([]float32)...)
}

// checkParity compares nn's velocity with the graph's on the rows that are not committed (for
// committed rows nn returns the straight-path velocity by design). The tolerance is relative to
// the largest velocity: 1e-5, float32 rounding of sums taken in different orders.
func checkParity(t *testing.T, net nn.Net, bind func([]*expert.Condition) (expert.Field, error), r *rand.Rand, tokens, width, state, prefix int) {
	h, d := net.Shape()
	B := 3
	bt := parityBatch(r, B, h, d, tokens, width, state)
	x := make([]float32, B*h*d)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	conds := make([]*expert.Condition, B)
	lens := make([]int, B)
	xg := append([]float32(nil), x...)
	for i := range conds {
		c := &expert.Condition{Tokens: tokens, Width: width,
			Embedding: bt.Embedding[i*tokens*width : (i+1)*tokens*width],
			State:     bt.State[i*state : (i+1)*state]}
		// Chunk i commits min(i, prefix) rows: 0, 1, 2 with prefix 2, so one batch mixes lengths.
		lens[i] = min(i, prefix)
		c.Prefix = bt.Actions[i*h*d : i*h*d+lens[i]*d]
		copy(xg[i*h*d:], c.Prefix) // the graph's input carries committed rows clean
		conds[i] = c
	}
	for _, tt := range []float64{0, 0.37, 0.999} {
		f, err := bind(conds)
		if err != nil {
			t.Fatal(err)
		}
		got := make([]float32, B*h*d)
		f.Velocity(got, x, tt)
		want := forward(t, net, bt, xg, tt, lens)
		var scale, worst float64
		for _, v := range want {
			scale = math.Max(scale, math.Abs(float64(v)))
		}
		for i := 0; i < B; i++ {
			for k := lens[i] * d; k < h*d; k++ {
				j := i*h*d + k
				worst = math.Max(worst, math.Abs(float64(got[j]-want[j])))
			}
		}
		t.Logf("t = %v: max |nn - graph| / max |v| = %.2e (max |v| = %.3g)", tt, worst/scale, scale)
		if worst > 1e-5*scale {
			t.Fatalf("t = %v: nn and graph differ by %.3g relative", tt, worst/scale)
		}
	}
}

func TestParityMLP(t *testing.T) {
	for _, prefix := range []int{0, 2} {
		r := rand.New(rand.NewPCG(11, uint64(prefix)))
		cfg := nn.MLPConfig{H: 4, D: 3, Embed: 8, State: 5, Hidden: 32, Layers: 2, TimeFeatures: 16, TimeWidth: 24, CondWidth: 20}
		net, err := nn.NewMLP(cfg, r)
		if err != nil {
			t.Fatal(err)
		}
		randomize(net, r)
		checkParity(t, net, func(c []*expert.Condition) (expert.Field, error) { return net.BindBatch(c) }, r, 3, 8, 5, prefix)
	}
}

func TestParityTransformer(t *testing.T) {
	for _, prefix := range []int{0, 2} {
		r := rand.New(rand.NewPCG(12, uint64(prefix)))
		cfg := nn.TransformerConfig{H: 4, D: 3, Embed: 6, State: 2, Width: 16, Layers: 2, Heads: 2, MLPRatio: 2, TimeFeatures: 8}
		net, err := nn.NewTransformer(cfg, r)
		if err != nil {
			t.Fatal(err)
		}
		randomize(net, r)
		checkParity(t, net, func(c []*expert.Condition) (expert.Field, error) { return net.BindBatch(c) }, r, 3, 6, 2, prefix)
	}
}
