package nn

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/flowact/flowact/expert"
)

// The reference implementation: both networks written out in float64 from the parameters by
// name, one chunk at a time, with no packing, fusion or vectorized function. The networks must
// match it within 1e-5 of the largest velocity.

type refNet struct{ p map[string]Param }

func newRef(n Net) refNet {
	r := refNet{p: map[string]Param{}}
	for _, p := range n.Params() {
		r.p[p.Name] = p
	}
	return r
}

// lin returns x·W + b for the rows of x, W the parameter name+".w" ([in, out]).
func (r refNet) lin(x [][]float64, name string) [][]float64 {
	w, b := r.p[name+".w"], r.p[name+".b"]
	return r.mat(x, w, b.Data)
}

func (r refNet) mat(x [][]float64, w Param, b []float32) [][]float64 {
	in, out := w.Shape[0], w.Shape[1]
	y := make([][]float64, len(x))
	for i, row := range x {
		y[i] = make([]float64, out)
		for j := 0; j < out; j++ {
			s := 0.0
			if b != nil {
				s = float64(b[j])
			}
			for p := 0; p < in; p++ {
				s += row[p] * float64(w.Data[p*out+j])
			}
			y[i][j] = s
		}
	}
	return y
}

func refSiLU(x [][]float64) [][]float64 {
	for _, r := range x {
		for j, v := range r {
			r[j] = v / (1 + math.Exp(-v))
		}
	}
	return x
}

func refLN(x []float64) []float64 {
	var m, q float64
	for _, v := range x {
		m += v
	}
	m /= float64(len(x))
	for _, v := range x {
		q += (v - m) * (v - m)
	}
	rs := 1 / math.Sqrt(q/float64(len(x))+lnEps)
	y := make([]float64, len(x))
	for i, v := range x {
		y[i] = (v - m) * rs
	}
	return y
}

func f64(x []float32) []float64 {
	y := make([]float64, len(x))
	for i, v := range x {
		y[i] = float64(v)
	}
	return y
}

func refTime(n int, t float64) []float64 {
	tf := make([]float32, n)
	TimeFeatures(tf, t)
	return f64(tf)
}

func refPrefix(v []float64, x, p []float32, t float64) {
	for i, pv := range p {
		if t >= 1 {
			v[i] = 0
		} else {
			v[i] = float64(pv-x[i]) / (1 - t)
		}
	}
}

func (r refNet) mlp(cfg MLPConfig, c *expert.Condition, x []float32, t float64) []float64 {
	cin := make([]float64, cfg.Embed+cfg.State)
	for k := 0; k < c.Tokens; k++ {
		for j := 0; j < cfg.Embed; j++ {
			cin[j] += float64(c.Embedding[k*c.Width+j]) / float64(c.Tokens)
		}
	}
	copy(cin[cfg.Embed:], f64(c.State))
	ce := refSiLU(r.lin([][]float64{cin}, "cond"))
	t2 := refSiLU(r.lin(refSiLU(r.lin([][]float64{refTime(cfg.TimeFeatures, t)}, "time.fc1")), "time.fc2"))
	hd := cfg.H * cfg.D
	xin := make([]float64, hd+cfg.H)
	copy(xin, f64(x))
	copy(xin, f64(c.Prefix))
	for i := 0; i < len(c.Prefix)/cfg.D; i++ {
		xin[hd+i] = 1
	}
	h := r.lin([][]float64{xin}, "in")[0]
	for l := 0; l < cfg.Layers; l++ {
		pre := "blocks." + string(rune('0'+l)) + "."
		film := func(kind string) []float64 {
			a := r.mat(t2, r.p[pre+kind+".wt"], nil)[0]
			b := r.mat(ce, r.p[pre+kind+".wc"], r.p[pre+kind+".b"].Data)[0]
			for j := range a {
				a[j] += b[j]
			}
			return a
		}
		sc, sh := film("scale"), film("shift")
		u := refLN(h)
		for j := range u {
			u[j] = u[j]*(1+sc[j]) + sh[j]
		}
		v := r.lin(refSiLU([][]float64{u}), pre+"fc")[0]
		for j := range h {
			h[j] += v[j]
		}
	}
	out := r.lin([][]float64{refLN(h)}, "out")[0]
	refPrefix(out, x, c.Prefix, t)
	return out
}

func (r refNet) transformer(cfg TransformerConfig, c *expert.Condition, x []float32, t float64) []float64 {
	w, H, T := cfg.Width, cfg.H, cfg.H+1
	d := len(c.Prefix) / cfg.D
	mods := func(t float64) map[string][]float64 {
		cv := refSiLU(r.lin(refSiLU(r.lin([][]float64{refTime(cfg.TimeFeatures, t)}, "time.fc1")), "time.fc2"))
		m := map[string][]float64{}
		for name := range r.p {
			if len(name) > 2 && name[len(name)-2:] == ".w" && (contains(name, ".ada.") || contains(name, "final.")) {
				m[name[:len(name)-2]] = r.lin(cv, name[:len(name)-2])[0]
			}
		}
		return m
	}
	mt, m1 := mods(t), mods(1)
	mod := func(i int, name string) []float64 {
		if i < d {
			return m1[name]
		}
		return mt[name]
	}
	xs := make([][]float64, T)
	in := append([]float32(nil), x...)
	copy(in, c.Prefix)
	for i := 0; i < H; i++ {
		xs[i] = r.lin([][]float64{f64(in[i*cfg.D : (i+1)*cfg.D])}, "act")[0]
	}
	xs[H] = r.lin([][]float64{f64(c.State)}, "state")[0]
	pos := r.p["pos"].Data
	for i := range xs {
		for j := range xs[i] {
			xs[i][j] += float64(pos[i*w+j])
		}
	}
	modulate := func(shift, scale string) [][]float64 {
		u := make([][]float64, T)
		for i := range xs {
			u[i] = refLN(xs[i])
			sh, sc := mod(i, shift), mod(i, scale)
			for j := range u[i] {
				u[i][j] = u[i][j]*(1+sc[j]) + sh[j]
			}
		}
		return u
	}
	gate := func(g string, o [][]float64) {
		for i := range xs {
			gv := mod(i, g)
			for j := range xs[i] {
				xs[i][j] += gv[j] * o[i][j]
			}
		}
	}
	emb := make([][]float64, c.Tokens)
	for k := range emb {
		emb[k] = f64(c.Embedding[k*c.Width : (k+1)*c.Width])
	}
	dh := w / cfg.Heads
	attend := func(q, k, v [][]float64) [][]float64 {
		out := make([][]float64, len(q))
		for i := range q {
			out[i] = make([]float64, w)
			for h := 0; h < cfg.Heads; h++ {
				s := make([]float64, len(k))
				mx := math.Inf(-1)
				for j := range k {
					for c := h * dh; c < (h+1)*dh; c++ {
						s[j] += q[i][c] * k[j][c]
					}
					s[j] /= math.Sqrt(float64(dh))
					mx = math.Max(mx, s[j])
				}
				sum := 0.0
				for j := range s {
					s[j] = math.Exp(s[j] - mx)
					sum += s[j]
				}
				for j := range s {
					for c := h * dh; c < (h+1)*dh; c++ {
						out[i][c] += s[j] / sum * v[j][c]
					}
				}
			}
		}
		return out
	}
	for l := 0; l < cfg.Layers; l++ {
		pre := "blocks." + string(rune('0'+l)) + "."
		a := pre + "ada."
		u := modulate(a+"shift1", a+"scale1")
		gate(a+"gate1", r.lin(attend(r.lin(u, pre+"attn.q"), r.lin(u, pre+"attn.k"), r.lin(u, pre+"attn.v")), pre+"attn.o"))
		u = modulate(a+"shift2", a+"scale2")
		gate(a+"gate2", r.lin(attend(r.lin(u, pre+"cross.q"), r.lin(emb, pre+"cross.k"), r.lin(emb, pre+"cross.v")), pre+"cross.o"))
		u = modulate(a+"shift3", a+"scale3")
		hm := r.lin(u, pre+"mlp.fc1")
		for _, row := range hm {
			for j, v := range row {
				row[j] = 0.5 * v * (1 + math.Tanh(0.7978845608028654*(v+0.044715*v*v*v)))
			}
		}
		gate(a+"gate3", r.lin(hm, pre+"mlp.fc2"))
	}
	u := modulate("final.shift", "final.scale")
	out := make([]float64, 0, H*cfg.D)
	for _, row := range r.lin(u[:H], "out") {
		out = append(out, row...)
	}
	refPrefix(out, x, c.Prefix, t)
	return out
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// TestMatchesReference holds both networks (every weight random, biases too) to the float64
// reference within 1e-5 of the largest velocity, with and without a committed prefix, on one
// and two threads.
func TestMatchesReference(t *testing.T) {
	for _, tn := range testNets() {
		for th := 1; th <= 2; th++ {
			n := randomNet(t, tn, th)
			ref := newRef(n)
			h, d := n.Shape()
			r := rand.New(rand.NewPCG(9, uint64(th)))
			for _, prefix := range [][]float32{nil, randVec(r, 2*d)} {
				c := cond(r, tn, prefix)
				f, err := n.Bind(c)
				if err != nil {
					t.Fatal(err)
				}
				for _, tt := range []float64{0, 0.37, 0.9} {
					x := randVec(r, h*d)
					v := make([]float32, h*d)
					f.Velocity(v, x, tt)
					var want []float64
					switch m := n.(type) {
					case *MLP:
						want = ref.mlp(m.Config(), c, x, tt)
					case *Transformer:
						want = ref.transformer(m.Config(), c, x, tt)
					}
					scale := 0.0
					for _, w := range want {
						scale = math.Max(scale, math.Abs(w))
					}
					for i := range v {
						if diff := math.Abs(float64(v[i]) - want[i]); !(diff <= 1e-5*scale) {
							t.Fatalf("%s threads %d t %v: v[%d] = %v, reference %v (scale %v)", tn.name, th, tt, i, v[i], want[i], scale)
						}
					}
				}
			}
			n.Close()
		}
	}
}
