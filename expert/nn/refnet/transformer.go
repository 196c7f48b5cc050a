package refnet

import (
	"math/rand/v2"

	"github.com/flowact/flowact/expert/nn"
	"github.com/flowact/flowact/expert/nn/internal/kern"
)

// lnEps is the LayerNorm epsilon (PyTorch's default 1e-5).
const lnEps = 1e-5

// norm is a LayerNorm's affine part as kern.LayerNormMod takes it: shift β and scale γ - 1.
type norm struct{ shift, scale []float32 }

func newNorm(r *rand.Rand, n int) norm {
	s := norm{make([]float32, n), make([]float32, n)}
	for i := range s.shift {
		s.shift[i] = float32(0.1 * r.NormFloat64())
		s.scale[i] = float32(0.1 * r.NormFloat64())
	}
	return s
}

type layer struct {
	ln1, ln2, ln3  norm
	qkv, o         lin // self-attention: q, k, v side by side, output
	cq, ck, cv, co lin // cross-attention
	fc1, fc2       lin
}

// Transformer is reference network B.
type Transformer struct {
	pool         *kern.Pool
	arch         *kern.Arch
	tfc1, tfc2   lin
	act, cond    lin
	pos          []float32
	layers       []layer
	lnf          norm
	out          lin
	tf, t1, temb []float32
	ctok         []float32    // CondTok x Width
	ck, cv       [][]float32  // per layer, CondTok x Width
	x, u, q, a   []float32    // H x Width
	qkv          [2][]float32 // H x 3 Width: layer l's in qkv[l%2]
	hm           []float32
	part         [2]tPart // per thread of an evaluation
	ws           []float32
	// The evaluation that Phase works on: its output and input.
	dst, in []float32
}

// tPart is one thread's scratch of an evaluation.
type tPart struct {
	self, cross *kern.Attention
	ws          []float32
}

// NewTransformer returns network B with weights from seed, its weight matrices stored in
// precision p, on
// threads threads (1 or 2).
func NewTransformer(seed uint64, p nn.Precision, threads int) *Transformer {
	r := rand.New(rand.NewPCG(seed, 0xb))
	w := Width
	m := &Transformer{pool: kern.NewPool(threads), arch: kern.Best()}
	m.tfc1, m.tfc2 = newLin(r, TimeF, w, p), newLin(r, w, w, p)
	m.act = newLin(r, D, w, p)
	m.cond = newLin(r, Cond, CondTok*w, p)
	m.pos = Normal(seed^0x9, H*w)
	for i := range m.pos {
		m.pos[i] *= 0.02
	}
	for l := 0; l < Layers; l++ {
		m.layers = append(m.layers, layer{
			ln1: newNorm(r, w), ln2: newNorm(r, w), ln3: newNorm(r, w),
			qkv: newLin(r, w, 3*w, p), o: newLin(r, w, w, p),
			cq: newLin(r, w, w, p), ck: newLin(r, w, w, p), cv: newLin(r, w, w, p), co: newLin(r, w, w, p),
			fc1: newLin(r, w, Ratio*w, p), fc2: newLin(r, Ratio*w, w, p),
		})
		m.ck = append(m.ck, make([]float32, CondTok*w))
		m.cv = append(m.cv, make([]float32, CondTok*w))
	}
	m.lnf = newNorm(r, w)
	m.out = newLin(r, w, D, p)
	m.tf, m.t1, m.temb = make([]float32, TimeF), make([]float32, w), make([]float32, w)
	m.ctok = make([]float32, CondTok*w)
	m.x, m.u, m.q, m.a = make([]float32, H*w), make([]float32, H*w), make([]float32, H*w), make([]float32, H*w)
	m.qkv = [2][]float32{make([]float32, H*3*w), make([]float32, H*3*w)}
	m.hm = make([]float32, H*Ratio*w)
	l := m.layers[0]
	m.ws = make([]float32, max(m.cond.w.Scratch(1), l.ck.w.Scratch(CondTok), m.tfc2.w.Scratch(1)))
	for i := range m.part {
		m.part[i] = tPart{
			self:  m.arch.NewAttention(H, H, w/Heads),
			cross: m.arch.NewAttention(H, CondTok, w/Heads),
			ws: make([]float32, max(l.qkv.w.Scratch(H), l.fc1.w.Scratch(H), l.fc2.w.Scratch(H),
				m.act.w.Scratch(H), m.out.w.Scratch(H))),
		}
	}
	return m
}

// Bind projects the condition to its tokens and every layer's cross-attention keys and values.
func (m *Transformer) Bind(c []float32) {
	m.cond.apply(m.pool, m.ctok, c[:Cond], 1, m.ws)
	for l := range m.layers {
		ly := &m.layers[l]
		ly.ck.apply(m.pool, m.ck[l], m.ctok, CondTok, m.ws)
		ly.cv.apply(m.pool, m.cv[l], m.ctok, CondTok, m.ws)
	}
}

// rows computes rows [lo, hi) of y = x·W + b (x and y dense, all rows): the bias copied to
// every row, then the product accumulated onto it.
func (l *lin) rows(y, x []float32, lo, hi int, ws []float32) {
	y, x = y[lo*l.out:hi*l.out], x[lo*l.in:hi*l.in]
	kern.FillRows(y, l.b, hi-lo, l.out)
	l.w.MulTo(y, x, hi-lo, true, ws)
}

// residual computes rows [lo, hi) of x += y·W + b: the bias onto x, then the product
// accumulated onto it.
func (m *Transformer) residual(l *lin, y []float32, lo, hi int, ws []float32) {
	x := m.x[lo*Width : hi*Width]
	kern.AddRow(x, l.b, hi-lo, Width)
	l.w.MulTo(x, y[lo*l.in:hi*l.in], hi-lo, true, ws)
}

// Velocity evaluates the transformer: the time embedding on the calling thread, then the
// tokens in a region of the pool (Phase), each thread owning a block of token rows.
func (m *Transformer) Velocity(dst, x []float32, t float64) {
	nn.TimeFeatures(m.tf, t)
	m.tfc1.apply(m.pool, m.t1, m.tf, 1, m.ws)
	m.arch.SiLU(m.t1)
	m.tfc2.apply(m.pool, m.temb, m.t1, 1, m.ws)
	kern.Add(m.temb, m.act.b)
	m.dst, m.in = dst, x
	m.pool.Run(m, Layers+1)
	m.dst, m.in = nil, nil
}

// Phase computes phase ph of an evaluation for the token rows of part part (kern.Arch.Split:
// cut at the products' tiles, so that the bits do not depend on the number of parts). Phase 0:
// the tokens, then layer 0 up to its q, k and v; phase l: the rest of layer l-1 (its
// self-attention needs every row's keys and values: the barrier before the phase), then layer
// l up to its q, k and v, or after the last layer the final LayerNorm and output. Layer l's q,
// k, v go to qkv[l%2], so a part's next layer never overwrites the keys that the other part
// may still be reading.
func (m *Transformer) Phase(part, parts, ph int) {
	w := Width
	lo, hi := m.arch.Split(H, part, parts)
	n := hi - lo
	if n == 0 {
		return
	}
	pt := &m.part[part]
	ws := pt.ws
	if ph == 0 {
		// Tokens: position + time + bias, then the actions' product accumulated onto them.
		x := m.x[lo*w : hi*w]
		copy(x, m.pos[lo*w:hi*w])
		kern.AddRow(x, m.temb, n, w)
		m.act.w.MulTo(x, m.in[lo*D:hi*D], n, true, ws)
	} else {
		l := ph - 1
		ly := &m.layers[l]
		qkv := m.qkv[l%2]
		pt.self.Run(m.a[lo*w:], w, qkv[lo*3*w:], 3*w, qkv[w:], 3*w, qkv[2*w:], 3*w, n, H, Heads)
		m.residual(&ly.o, m.a, lo, hi, ws)
		kern.LayerNormMod(m.u[lo*w:hi*w], m.x[lo*w:hi*w], ly.ln2.shift, ly.ln2.scale, n, w, 0, lnEps)
		ly.cq.rows(m.q, m.u, lo, hi, ws)
		pt.cross.Run(m.a[lo*w:], w, m.q[lo*w:], w, m.ck[l], w, m.cv[l], w, n, CondTok, Heads)
		m.residual(&ly.co, m.a, lo, hi, ws)
		kern.LayerNormMod(m.u[lo*w:hi*w], m.x[lo*w:hi*w], ly.ln3.shift, ly.ln3.scale, n, w, 0, lnEps)
		ly.fc1.rows(m.hm, m.u, lo, hi, ws)
		m.arch.GELU(m.hm[lo*Ratio*w : hi*Ratio*w])
		m.residual(&ly.fc2, m.hm, lo, hi, ws)
	}
	if ph < Layers {
		ly := &m.layers[ph]
		kern.LayerNormMod(m.u[lo*w:hi*w], m.x[lo*w:hi*w], ly.ln1.shift, ly.ln1.scale, n, w, 0, lnEps)
		ly.qkv.rows(m.qkv[ph%2], m.u, lo, hi, ws)
		return
	}
	kern.LayerNormMod(m.u[lo*w:hi*w], m.x[lo*w:hi*w], m.lnf.shift, m.lnf.scale, n, w, 0, lnEps)
	m.out.rows(m.dst, m.u, lo, hi, ws)
}

// FLOPs counts the products and attention of Bind and of one evaluation.
func (m *Transformer) FLOPs() (bind, velocity int64) {
	w, h, tk := int64(Width), int64(H), int64(CondTok)
	bind = 2*Cond*tk*w + Layers*2*2*tk*w*w
	perLayer := 2*h*w*3*w + 2*2*h*h*w + 2*h*w*w + // self-attention
		2*h*w*w + 2*2*h*tk*w + 2*h*w*w + // cross-attention
		2*2*h*w*Ratio*w // MLP
	velocity = 2*(TimeF*w+w*w) + 2*h*D*w + Layers*perLayer + 2*h*w*D
	return bind, velocity
}

// Params returns the number of weights.
func (m *Transformer) Params() int {
	n := len(m.pos) + 2*Width
	ls := []*lin{&m.tfc1, &m.tfc2, &m.act, &m.cond, &m.out}
	for i := range m.layers {
		ly := &m.layers[i]
		ls = append(ls, &ly.qkv, &ly.o, &ly.cq, &ly.ck, &ly.cv, &ly.co, &ly.fc1, &ly.fc2)
		n += 6 * Width
	}
	for _, l := range ls {
		n += l.in*l.out + l.out
	}
	return n
}

// Close stops the worker.
func (m *Transformer) Close() { m.pool.Close() }
