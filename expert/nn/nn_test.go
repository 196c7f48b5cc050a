package nn

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/flowact/flowact/expert"
	"github.com/flowact/flowact/expert/ckpt"
	"github.com/flowact/flowact/expert/ode"
)

func randVec(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.NormFloat64())
	}
	return s
}

// testNet is a network under test with its condition sizes.
type testNet struct {
	name               string
	make               func(threads int) (Net, error)
	tokens, width, dim int
}

func testNets() []testNet {
	return []testNet{
		{name: "mlp", tokens: 3, width: 8, dim: 5, make: func(th int) (Net, error) {
			return NewMLP(MLPConfig{H: 6, D: 3, Embed: 8, State: 5, Hidden: 32, Layers: 2, TimeFeatures: 8, TimeWidth: 16, Threads: th}, rand.New(rand.NewPCG(1, 2)))
		}},
		// Wide enough (M·K·N past kern's threshold) that two threads really split the products.
		{name: "transformer", tokens: 4, width: 12, dim: 3, make: func(th int) (Net, error) {
			return NewTransformer(TransformerConfig{H: 7, D: 2, Embed: 12, State: 3, Width: 64, Layers: 2, Heads: 4, MLPRatio: 2, TimeFeatures: 8, Threads: th}, rand.New(rand.NewPCG(1, 2)))
		}},
	}
}

func randomNet(t *testing.T, tn testNet, threads int) Net {
	t.Helper()
	n, err := tn.make(threads)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(7, 7))
	Init(n, r, 1)
	for _, p := range n.Params() {
		if len(p.Shape) == 1 {
			for i := range p.Data {
				p.Data[i] = float32(0.2 * r.NormFloat64())
			}
		}
	}
	n.Repack()
	return n
}

func cond(r *rand.Rand, tn testNet, prefix []float32) *expert.Condition {
	return &expert.Condition{Tokens: tn.tokens, Width: tn.width, Embedding: randVec(r, tn.tokens*tn.width), State: randVec(r, tn.dim), Prefix: prefix}
}

// bindBatch binds conds with the network's batched method.
func bindBatch(n Net, conds []*expert.Condition) (expert.Field, error) {
	switch m := n.(type) {
	case *MLP:
		return m.BindBatch(conds)
	case *Transformer:
		return m.BindBatch(conds)
	}
	panic("unknown net")
}

func TestBatchMatchesSingles(t *testing.T) {
	for _, tn := range testNets() {
		t.Run(tn.name, func(t *testing.T) {
			n := randomNet(t, tn, 1)
			defer n.Close()
			h, d := n.Shape()
			r := rand.New(rand.NewPCG(3, 3))
			conds := []*expert.Condition{cond(r, tn, nil), cond(r, tn, randVec(r, 2*d)), cond(r, tn, randVec(r, d))}
			x := randVec(r, len(conds)*h*d)
			f, err := bindBatch(n, conds)
			if err != nil {
				t.Fatal(err)
			}
			if f.Dim() != len(x) {
				t.Fatalf("Dim %d, want %d", f.Dim(), len(x))
			}
			vb := make([]float32, len(x))
			f.Velocity(vb, x, 0.3)
			for i, c := range conds {
				g, err := n.Bind(c)
				if err != nil {
					t.Fatal(err)
				}
				v := make([]float32, h*d)
				g.Velocity(v, x[i*h*d:(i+1)*h*d], 0.3)
				for k := range v {
					if diff := math.Abs(float64(v[k] - vb[i*h*d+k])); diff > 1e-5*(1+math.Abs(float64(v[k]))) {
						t.Fatalf("chunk %d value %d: single %v, batch %v", i, k, v[k], vb[i*h*d+k])
					}
				}
			}
		})
	}
}

func TestDeterministicThreadsAndNoAllocs(t *testing.T) {
	for _, tn := range testNets() {
		t.Run(tn.name, func(t *testing.T) {
			var outs [2][]float32
			for th := 1; th <= 2; th++ {
				n := randomNet(t, tn, th)
				h, d := n.Shape()
				r := rand.New(rand.NewPCG(4, 4))
				f, err := n.Bind(cond(r, tn, randVec(r, d)))
				if err != nil {
					t.Fatal(err)
				}
				x := randVec(r, h*d)
				v := make([]float32, h*d)
				if a := testing.AllocsPerRun(20, func() { f.Velocity(v, x, 0.5) }); a != 0 {
					t.Errorf("threads %d: Velocity allocates %v times", th, a)
				}
				outs[th-1] = append([]float32(nil), v...)
				// A second Bind of the same size reuses the workspace.
				c := cond(r, tn, nil)
				if a := testing.AllocsPerRun(5, func() { n.Bind(c) }); a != 0 {
					t.Errorf("threads %d: Bind allocates %v times", th, a)
				}
				n.Close()
				n.Close()
			}
			for i := range outs[0] {
				if math.Float32bits(outs[0][i]) != math.Float32bits(outs[1][i]) {
					t.Fatalf("1 and 2 threads differ at %d: %v vs %v", i, outs[0][i], outs[1][i])
				}
			}
		})
	}
}

// TestPrefixHeld checks the committed prefix with expert/ode's samplers: from any noise, Euler
// and midpoint (which never evaluate at t = 1) land exactly on the committed actions along the
// straight path; when the noise's committed rows already hold the prefix, every sampler keeps
// them there exactly (their velocity is 0).
func TestPrefixHeld(t *testing.T) {
	for _, tn := range testNets() {
		t.Run(tn.name, func(t *testing.T) {
			n := randomNet(t, tn, 1)
			defer n.Close()
			h, d := n.Shape()
			r := rand.New(rand.NewPCG(5, 5))
			prefix := randVec(r, 2*d)
			f, err := n.Bind(cond(r, tn, prefix))
			if err != nil {
				t.Fatal(err)
			}
			for _, tc := range []struct {
				name     string
				s        expert.Sampler
				anyNoise bool
			}{
				{"euler 1", &ode.Fixed{Steps: 1}, true},
				{"euler 10", &ode.Fixed{}, true},
				{"midpoint 5", &ode.Fixed{Method: ode.Midpoint, Steps: 5}, true},
				{"heun 5", &ode.Fixed{Method: ode.Heun, Steps: 5}, false},
				{"rk4 4", &ode.Fixed{Method: ode.RK4, Steps: 4}, false},
				{"dopri", &ode.DormandPrince{}, false},
			} {
				x0 := randVec(r, h*d)
				if !tc.anyNoise {
					copy(x0, prefix)
				}
				x := make([]float32, h*d)
				if err := tc.s.Sample(x, x0, f); err != nil {
					t.Fatalf("%s: %v", tc.name, err)
				}
				for i, p := range prefix {
					if math.Abs(float64(x[i]-p)) > 1e-6 {
						t.Fatalf("%s: committed value %d is %v, want %v", tc.name, i, x[i], p)
					}
				}
			}
			// At t = 1 the committed rows have velocity 0.
			v := make([]float32, h*d)
			f.Velocity(v, randVec(r, h*d), 1)
			for i := range prefix {
				if v[i] != 0 {
					t.Fatalf("velocity of committed value %d at t = 1 is %v", i, v[i])
				}
			}
		})
	}
}

func TestBindErrors(t *testing.T) {
	tn := testNets()[0]
	n := randomNet(t, tn, 1)
	defer n.Close()
	r := rand.New(rand.NewPCG(6, 6))
	_, d := n.Shape()
	for name, c := range map[string]*expert.Condition{
		"nil":         nil,
		"width":       {Tokens: 1, Width: tn.width + 1, Embedding: make([]float32, tn.width+1), State: make([]float32, tn.dim)},
		"no tokens":   {Tokens: 0, Width: tn.width, State: make([]float32, tn.dim)},
		"short embed": {Tokens: 2, Width: tn.width, Embedding: make([]float32, tn.width), State: make([]float32, tn.dim)},
		"state":       {Tokens: 1, Width: tn.width, Embedding: make([]float32, tn.width), State: make([]float32, tn.dim+1)},
		"prefix":      cond(r, tn, make([]float32, d+1)),
		"long prefix": cond(r, tn, make([]float32, 100*d)),
	} {
		if _, err := n.Bind(c); !errors.Is(err, ErrCondition) {
			t.Errorf("%s: error %v", name, err)
		}
	}
}

func TestCheckpointRoundTrip(t *testing.T) {
	for _, tn := range testNets() {
		t.Run(tn.name, func(t *testing.T) {
			n := randomNet(t, tn, 1)
			defer n.Close()
			cfg, err := ConfigJSON(n)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			m := ckpt.Manifest{Architecture: n.Arch(), Config: cfg, Scheduler: ckpt.Component{Name: "CondOT"}, TimeDist: ckpt.Component{Name: "Uniform"}}
			if err := ckpt.Save(dir, m, Tensors(n), nil); err != nil {
				t.Fatal(err)
			}
			back, man, err := LoadDir(dir, 2)
			if err != nil {
				t.Fatal(err)
			}
			defer back.Close()
			if man.Architecture != n.Arch() {
				t.Fatalf("architecture %q", man.Architecture)
			}
			ps, qs := n.Params(), back.Params()
			for i := range ps {
				for j := range ps[i].Data {
					if math.Float32bits(ps[i].Data[j]) != math.Float32bits(qs[i].Data[j]) {
						t.Fatalf("%s[%d] changed", ps[i].Name, j)
					}
				}
			}
			// The loaded network computes the same velocities bit for bit.
			r := rand.New(rand.NewPCG(8, 8))
			c := cond(r, tn, nil)
			h, d := n.Shape()
			x := randVec(r, h*d)
			v1, v2 := make([]float32, h*d), make([]float32, h*d)
			f1, _ := n.Bind(c)
			f1.Velocity(v1, x, 0.25)
			f2, _ := back.Bind(c)
			f2.Velocity(v2, x, 0.25)
			for i := range v1 {
				if math.Float32bits(v1[i]) != math.Float32bits(v2[i]) {
					t.Fatalf("velocity %d: %v vs %v", i, v1[i], v2[i])
				}
			}

			// Precise errors for tensors that do not fit.
			c0, err := ckpt.Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			first := n.Params()[0]
			for _, tc := range []struct {
				edit func(map[string]ckpt.Tensor)
				want error
			}{
				{func(ts map[string]ckpt.Tensor) { delete(ts, first.Name) }, ckpt.ErrMissingTensor},
				{func(ts map[string]ckpt.Tensor) {
					ts[first.Name] = ckpt.Tensor{Name: first.Name, Shape: []int{len(first.Data)}, Data: first.Data}
				}, ckpt.ErrShape},
				{func(ts map[string]ckpt.Tensor) {
					ts["extra"] = ckpt.Tensor{Name: "extra", Shape: []int{1}, Data: []float32{1}}
				}, ckpt.ErrExtraTensor},
				{func(ts map[string]ckpt.Tensor) {
					bad := slices.Clone(first.Data)
					bad[len(bad)/2] = float32(math.NaN())
					ts[first.Name] = ckpt.Tensor{Name: first.Name, Shape: ts[first.Name].Shape, Data: bad}
				}, ErrNotFinite},
				{func(ts map[string]ckpt.Tensor) {
					bad := slices.Clone(first.Data)
					bad[0] = float32(math.Inf(-1))
					ts[first.Name] = ckpt.Tensor{Name: first.Name, Shape: ts[first.Name].Shape, Data: bad}
				}, ErrNotFinite},
			} {
				cc := *c0
				cc.Tensors = map[string]ckpt.Tensor{}
				for k, v := range c0.Tensors {
					cc.Tensors[k] = v
				}
				tc.edit(cc.Tensors)
				if _, err := Load(&cc, 1); !errors.Is(err, tc.want) {
					t.Errorf("error %v, want %v", err, tc.want)
				}
			}
			cc := *c0
			cc.Manifest.Architecture = "rnn"
			if _, err := Load(&cc, 1); !errors.Is(err, ckpt.ErrArchitecture) {
				t.Errorf("unknown architecture: %v", err)
			}
			cc = *c0
			cc.Manifest.Config = []byte(`{"h": 1, "bogus": 2}`)
			if _, err := Load(&cc, 1); !errors.Is(err, ckpt.ErrFormat) {
				t.Errorf("bad config: %v", err)
			}
		})
	}
}

// FuzzLoad feeds arbitrary architectures and configs with the tensors of a small MLP: Load
// either fails with an error or returns a network that runs; it never panics or allocates
// what the config alone asks for.
func FuzzLoad(f *testing.F) {
	tn := testNets()[0]
	n, err := tn.make(1)
	if err != nil {
		f.Fatal(err)
	}
	cfg, _ := ConfigJSON(n)
	ts := map[string]ckpt.Tensor{}
	for _, t := range Tensors(n) {
		ts[t.Name] = t
	}
	f.Add("mlp", []byte(cfg))
	f.Add("mlp", []byte(`{"h":1000000000,"d":1000000000,"embed":8,"state":5,"hidden":1000000000}`))
	f.Add("transformer", []byte(`{"h":6,"d":3,"embed":8,"state":5}`))
	f.Add("mlp", []byte(`{"h":-1}`))
	f.Fuzz(func(t *testing.T, arch string, config []byte) {
		c := &ckpt.Checkpoint{Manifest: ckpt.Manifest{Architecture: arch, Config: config}, Tensors: ts}
		net, err := Load(c, 1)
		if err != nil {
			return
		}
		defer net.Close()
		h, d := net.Shape()
		w, s := net.CondShape()
		fl, err := net.Bind(&expert.Condition{Tokens: 1, Width: w, Embedding: make([]float32, w), State: make([]float32, s)})
		if err != nil {
			t.Fatalf("loaded net refuses a fitting condition: %v", err)
		}
		v := make([]float32, h*d)
		fl.Velocity(v, make([]float32, h*d), 0.5)
	})
}

// TestF16Weights: half-precision and bfloat16 weight matrices change the velocity by about
// their rounding (unit roundoff u = 2^-11 and 2^-8 relative per weight), not more than 20u of
// the largest velocity (the half-precision difference logged here is about u/2 of it), allocate
// nothing per evaluation, and switching back restores the float32 velocity bit for bit.
func TestF16Weights(t *testing.T) {
	for _, tn := range testNets() {
		for _, pc := range []struct {
			p Precision
			u float64
		}{{F16, 0x1p-11}, {BF16, 0x1p-8}} {
			t.Run(tn.name+"/"+pc.p.String(), func(t *testing.T) {
				n := randomNet(t, tn, 1)
				defer n.Close()
				h, d := n.Shape()
				r := rand.New(rand.NewPCG(11, 11))
				c := cond(r, tn, randVec(r, d))
				x := randVec(r, h*d)
				eval := func() []float32 {
					f, err := n.Bind(c)
					if err != nil {
						t.Fatal(err)
					}
					v := make([]float32, h*d)
					f.Velocity(v, x, 0.4)
					if a := testing.AllocsPerRun(5, func() { f.Velocity(v, x, 0.4) }); a != 0 {
						t.Errorf("Velocity allocates %v times", a)
					}
					return v
				}
				v32 := eval()
				n.SetPrecision(pc.p)
				if n.Precision() != pc.p {
					t.Fatalf("precision %v after SetPrecision(%v)", n.Precision(), pc.p)
				}
				v16 := eval()
				n.SetPrecision(F32)
				back := eval()
				var diff, scale float64
				for i := range v32 {
					diff = math.Max(diff, math.Abs(float64(v16[i]-v32[i])))
					scale = math.Max(scale, math.Abs(float64(v32[i])))
					if math.Float32bits(back[i]) != math.Float32bits(v32[i]) {
						t.Fatalf("float32 again differs at %d", i)
					}
				}
				t.Logf("max |v_%v - v32| = %.3g, max |v32| = %.3g", pc.p, diff, scale)
				if !(diff > 0 && diff < 20*pc.u*scale) {
					t.Fatalf("%v weights change the velocity by %v (scale %v)", pc.p, diff, scale)
				}
			})
		}
	}
}

// TestTransformerBatchThreads: with two threads each owns a block of the batch's token rows
// (cut at the kernels' tiles). A chunk long enough to be cut (31 tokens) gives the same bits as
// one thread at batch 1; at batch 3, with prefixes, the cut falls inside the second chunk, whose
// attention tiles then sum in another order: within 1e-5 relative.
func TestTransformerBatchThreads(t *testing.T) {
	tn := testNet{name: "transformer30", tokens: 5, width: 12, dim: 3, make: func(th int) (Net, error) {
		return NewTransformer(TransformerConfig{H: 30, D: 2, Embed: 12, State: 3, Width: 64, Layers: 2, Heads: 4, MLPRatio: 2, TimeFeatures: 8, Threads: th}, rand.New(rand.NewPCG(1, 2)))
	}}
	for _, batch := range []int{1, 3} {
		var outs [2][]float32
		for th := 1; th <= 2; th++ {
			n := randomNet(t, tn, th)
			h, d := n.Shape()
			r := rand.New(rand.NewPCG(8, 8))
			var conds []*expert.Condition
			for i := 0; i < batch; i++ {
				conds = append(conds, cond(r, tn, randVec(r, i*3*d)))
			}
			f, err := bindBatch(n, conds)
			if err != nil {
				t.Fatal(err)
			}
			x, v := randVec(r, batch*h*d), make([]float32, batch*h*d)
			f.Velocity(v, x, 0.4)
			if a := testing.AllocsPerRun(10, func() { f.Velocity(v, x, 0.4) }); a != 0 {
				t.Errorf("batch %d, threads %d: Velocity allocates %v times", batch, th, a)
			}
			outs[th-1] = v
			n.Close()
		}
		for i := range outs[0] {
			a, b := float64(outs[0][i]), float64(outs[1][i])
			if batch == 1 && a != b || math.Abs(a-b) > 1e-5*(1+math.Abs(a)) {
				t.Fatalf("batch %d: 1 and 2 threads differ at %d: %v vs %v", batch, i, a, b)
			}
		}
	}
}
