package nn

import (
	"fmt"
	"math/rand/v2"

	"github.com/flowact/flowact/expert"
	"github.com/flowact/flowact/expert/nn/internal/kern"
)

// TransformerConfig describes a transformer expert. Zero values of the optional fields take the
// defaults below.
type TransformerConfig struct {
	H int `json:"h"` // chunk steps: the action tokens
	D int `json:"d"` // action dimensions
	// Embed is the width of the condition's embedding tokens; State the length of its state
	// (at least 1: it makes the state token).
	Embed int `json:"embed"`
	State int `json:"state"`
	// Width is the model width (default 256), Layers the number of blocks (default 4), Heads the
	// attention heads (default 4; must divide Width), MLPRatio the MLP's hidden width over Width
	// (default 4), TimeFeatures the sinusoidal time features (even, default 64).
	Width        int `json:"width"`
	Layers       int `json:"layers"`
	Heads        int `json:"heads"`
	MLPRatio     int `json:"mlp_ratio"`
	TimeFeatures int `json:"time_features"`
	// Threads is 1 (default) or 2: the matrix products' threads. Not part of a checkpoint.
	Threads int `json:"-"`
}

// WithDefaults returns c with zero optional fields set to their defaults.
func (c TransformerConfig) WithDefaults() TransformerConfig {
	if c.Width == 0 {
		c.Width = 256
	}
	if c.Layers == 0 {
		c.Layers = 4
	}
	if c.Heads == 0 {
		c.Heads = 4
	}
	if c.MLPRatio == 0 {
		c.MLPRatio = 4
	}
	if c.TimeFeatures == 0 {
		c.TimeFeatures = 64
	}
	if c.Threads == 0 {
		c.Threads = 1
	}
	return c
}

// Validate reports whether the config (after defaults) describes a network.
func (c TransformerConfig) Validate() error {
	c = c.WithDefaults()
	switch {
	case c.H <= 0 || c.D <= 0:
		return fmt.Errorf("%w: transformer chunk %d x %d", ErrConfig, c.H, c.D)
	case c.Embed <= 0 || c.State <= 0:
		return fmt.Errorf("%w: transformer embed %d, state %d (both > 0)", ErrConfig, c.Embed, c.State)
	case c.Width < 0 || c.Layers < 0 || c.Heads < 0 || c.MLPRatio < 0:
		return fmt.Errorf("%w: transformer negative size", ErrConfig)
	case c.Width%c.Heads != 0:
		return fmt.Errorf("%w: transformer width %d not divisible by %d heads", ErrConfig, c.Width, c.Heads)
	case c.TimeFeatures <= 0 || c.TimeFeatures%2 != 0:
		return fmt.Errorf("%w: transformer time features %d, want even > 0", ErrConfig, c.TimeFeatures)
	case c.Threads < 1 || c.Threads > 2:
		return fmt.Errorf("%w: transformer threads %d, want 1 or 2", ErrConfig, c.Threads)
	}
	return nil
}

// AdaLN modulation vectors of a block, in order: shift, scale and gate of the self-attention,
// the cross-attention and the MLP.
var adaNames = [9]string{"shift1", "scale1", "gate1", "shift2", "scale2", "gate2", "shift3", "scale3", "gate3"}

// AdaNames lists the names of a transformer block's adaLN modulation maps, in order.
func AdaNames() [9]string { return adaNames }

const (
	shift1 = iota
	scale1
	gate1
	shift2
	scale2
	gate2
	shift3
	scale3
	gate3
)

type tBlock struct {
	ada            [9]dense
	q, k, v, o     dense
	cq, ck, cv, co dense
	fc1, fc2       dense
	qkv            *kern.Matrix // q, k and v side by side: [Width, 3·Width]
	qkvb           [][]float32  // their biases (aliasing the parameters)
}

// Transformer is the DiT-style transformer expert (see the package documentation).
type Transformer struct {
	core
	cfg TransformerConfig

	tfc1, tfc2          dense
	act, state          dense
	pos                 []float32
	blocks              []tBlock
	fshift, fscale, out dense
	// mods holds every modulation map side by side ([Width, (9 Layers + 2)·Width]): one
	// matrix-vector product gives all the modulation vectors of a time step.
	mods  *kern.Matrix
	modsb [][]float32 // their biases (aliasing the parameters)
	cat   []float32   // scratch for packing the side-by-side matrices

	field TransformerField
}

var _ Net = (*Transformer)(nil)

// NewTransformer returns a transformer expert with its training initialization drawn from r:
// weight matrices normal with std 1/sqrt(fan in), biases zero, position embeddings normal with
// std 0.02, and, as in DiT's adaLN-zero, the modulation maps and the output layer zero.
func NewTransformer(cfg TransformerConfig, r *rand.Rand) (*Transformer, error) {
	return newTransformer(cfg, r, false)
}

// newTransformer builds the network; dry builds only its parameter list (names and shapes).
func newTransformer(cfg TransformerConfig, r *rand.Rand, dry bool) (*Transformer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	m := &Transformer{cfg: cfg}
	w, F := cfg.Width, cfg.TimeFeatures
	p := &m.ps
	p.dry = dry
	lin := func(name string, in, out int) dense {
		return dense{w: p.add(name+".w", in, out), b: p.add(name+".b", out), in: in, out: out}
	}
	m.tfc1, m.tfc2 = lin("time.fc1", F, w), lin("time.fc2", w, w)
	m.act, m.state = lin("act", cfg.D, w), lin("state", cfg.State, w)
	m.pos = p.add("pos", cfg.H+1, w)
	for l := 0; l < cfg.Layers; l++ {
		pre := fmt.Sprintf("blocks.%d.", l)
		var b tBlock
		for k, n := range adaNames {
			b.ada[k] = lin(pre+"ada."+n, w, w)
		}
		b.q, b.k, b.v, b.o = lin(pre+"attn.q", w, w), lin(pre+"attn.k", w, w), lin(pre+"attn.v", w, w), lin(pre+"attn.o", w, w)
		b.cq, b.ck, b.cv, b.co = lin(pre+"cross.q", w, w), lin(pre+"cross.k", cfg.Embed, w), lin(pre+"cross.v", cfg.Embed, w), lin(pre+"cross.o", w, w)
		b.fc1, b.fc2 = lin(pre+"mlp.fc1", w, cfg.MLPRatio*w), lin(pre+"mlp.fc2", cfg.MLPRatio*w, w)
		m.blocks = append(m.blocks, b)
	}
	m.fshift, m.fscale = lin("final.shift", w, w), lin("final.scale", w, w)
	m.out = lin("out", w, cfg.D)
	if dry {
		return m, nil
	}
	m.arch = kern.Best()
	Init(m, r, 1)
	// pos is a matrix for Init's purposes; give it DiT's small scale instead.
	for i := range m.pos {
		m.pos[i] = float32(0.02 * r.NormFloat64())
	}
	for _, b := range m.blocks {
		for _, a := range b.ada {
			clear(a.w)
		}
	}
	clear(m.fshift.w)
	clear(m.fscale.w)
	clear(m.out.w)
	m.Repack()
	m.pool = kern.NewPool(cfg.Threads)
	m.field.m = m
	return m, nil
}

// Repack rebuilds the packed weights from Params (see Net).
func (m *Transformer) Repack() {
	if m.arch == nil {
		return // a layout-only network
	}
	w := m.cfg.Width
	nm := 9*m.cfg.Layers + 2
	if m.mods == nil || m.mods.Precision() != m.prec {
		m.mods = m.arch.NewMatrix(w, nm*w, m.prec)
		m.modsb = m.modsb[:0]
		m.cat = make([]float32, w*max(nm, 3)*w)
		for i := range m.blocks {
			b := &m.blocks[i]
			b.qkv = m.arch.NewMatrix(w, 3*w, m.prec)
			b.qkvb = [][]float32{b.q.b, b.k.b, b.v.b}
			for _, a := range b.ada {
				m.modsb = append(m.modsb, a.b)
			}
		}
		m.modsb = append(m.modsb, m.fshift.b, m.fscale.b)
	}
	var mods []*dense
	for i := range m.blocks {
		b := &m.blocks[i]
		for k := range b.ada {
			mods = append(mods, &b.ada[k])
		}
		for _, d := range []*dense{&b.o, &b.cq, &b.ck, &b.cv, &b.co, &b.fc1, &b.fc2} {
			d.pack(m.arch, m.prec)
		}
		catTo(b.qkv, m.cat, []*dense{&b.q, &b.k, &b.v})
	}
	mods = append(mods, &m.fshift, &m.fscale)
	catTo(m.mods, m.cat, mods)
	for _, d := range []*dense{&m.tfc1, &m.tfc2, &m.act, &m.state, &m.out} {
		d.pack(m.arch, m.prec)
	}
}

// SetPrecision switches the weight matrices' precision (see Net).
func (m *Transformer) SetPrecision(p Precision) {
	m.prec = p
	m.Repack()
}

// catTo packs the weights of the layers ds (same input width) side by side into p; scratch
// holds the row-major concatenation on the way.
func catTo(p *kern.Matrix, scratch []float32, ds []*dense) {
	in, n := ds[0].in, 0
	for _, d := range ds {
		n += d.out
	}
	cat := scratch[:in*n]
	o := 0
	for _, d := range ds {
		for r := 0; r < in; r++ {
			copy(cat[r*n+o:r*n+o+d.out], d.w[r*d.out:(r+1)*d.out])
		}
		o += d.out
	}
	p.Set(cat, n, 1)
}

// linearCat computes y = x·W + b for side-by-side layers: W packed by catTo, b their biases.
func linearCat(p *kern.Pool, y []float32, w *kern.Matrix, b [][]float32, x []float32, rows int, ws []float32) {
	_, n := w.Dims()
	for i := 0; i < rows; i++ {
		r := y[i*n : (i+1)*n]
		o := 0
		for _, bb := range b {
			o += copy(r[o:], bb)
		}
	}
	p.MulTo(w, y, x, rows, true, ws)
}

// Config returns the network's config with defaults applied.
func (m *Transformer) Config() TransformerConfig { return m.cfg }

// Arch returns "transformer".
func (m *Transformer) Arch() string { return ArchTransformer }

// Shape returns the chunk shape H x D.
func (m *Transformer) Shape() (h, d int) { return m.cfg.H, m.cfg.D }

// CondShape returns the embedding width and the state length.
func (m *Transformer) CondShape() (width, state int) { return m.cfg.Embed, m.cfg.State }

// Bind binds one condition; see BindBatch.
func (m *Transformer) Bind(c *expert.Condition) (expert.Field, error) {
	m.field.one[0] = c
	f, err := m.BindBatch(m.field.one[:])
	m.field.one[0] = nil
	if err != nil {
		return nil, err
	}
	return f, nil
}

// timeCond writes the time conditioning vector SiLU(MLP(features(t))) to dst (Width) and every
// modulation vector for it to mods: 9 per block then the final shift and scale, each Width long.
func (m *Transformer) timeCond(f *TransformerField, mods []float32, t float64) {
	TimeFeatures(f.tf, t)
	m.tfc1.apply(m.pool, f.t1, f.tf, 1, f.ws)
	m.arch.SiLU(f.t1)
	m.tfc2.apply(m.pool, f.c, f.t1, 1, f.ws)
	m.arch.SiLU(f.c)
	linearCat(m.pool, mods, m.mods, m.modsb, f.c, 1, f.ws)
}

// BindBatch binds B conditions, one per chunk, and returns a field over B chunks
// (Dim = B·H·D). It computes once per chunk the state token, the cross-attention keys and values
// of every block, and the modulation of the committed (t = 1) tokens. The field keeps
// references to the conditions' prefixes until the next Bind.
func (m *Transformer) BindBatch(conds []*expert.Condition) (*TransformerField, error) {
	cfg := m.cfg
	if len(conds) == 0 {
		return nil, fmt.Errorf("%w: empty batch", ErrCondition)
	}
	tk, maxTk := 0, 0
	for i, c := range conds {
		if err := checkCond(c, cfg.H, cfg.D, cfg.Embed, cfg.State); err != nil {
			return nil, fmt.Errorf("chunk %d: %w", i, err)
		}
		tk += c.Tokens
		maxTk = max(maxTk, c.Tokens)
	}
	f := &m.field
	f.alloc(len(conds), tk, maxTk)
	w := cfg.Width
	off := 0
	for b, c := range conds {
		f.prefix[b] = c.Prefix
		f.tkOff[b] = off
		off += c.Tokens
		m.state.apply(m.pool, f.stateTok[b*w:(b+1)*w], c.State, 1, f.ws)
		kern.Add(f.stateTok[b*w:(b+1)*w], m.pos[cfg.H*w:])
	}
	f.tkOff[len(conds)] = off
	for l, blk := range m.blocks {
		for b, c := range conds {
			o := f.tkOff[b] * w
			blk.ck.apply(m.pool, f.ck[l][o:o+c.Tokens*w], c.Embedding, c.Tokens, f.ws)
			blk.cv.apply(m.pool, f.cv[l][o:o+c.Tokens*w], c.Embedding, c.Tokens, f.ws)
		}
	}
	m.timeCond(f, f.mod1, 1)
	return f, nil
}

// TransformerField is a transformer bound to a batch of conditions. It implements expert.Field
// over the concatenated batch.
type TransformerField struct {
	m      *Transformer
	b      int
	one    [1]*expert.Condition
	prefix [][]float32
	tkOff  []int

	stateTok   []float32   // B x Width: state token with its position embedding
	ck, cv     [][]float32 // per block, (sum of tokens) x Width
	mod1, modT []float32   // (9 Layers + 2) x Width modulation vectors at t = 1 and at t
	tf, t1, c  []float32

	x, u, q, a, o []float32    // (B·T) x Width
	qkv           [2][]float32 // (B·T) x 3·Width: block l's in qkv[l%2]
	hm            []float32    // (B·T) x MLPRatio·Width
	ws            []float32    // the kernels' scratch (Bind and the time conditioning)
	part          [2]tPart     // per thread of an evaluation
	// The evaluation Phase works on.
	dst, in []float32
}

// tPart is one thread's scratch of an evaluation.
type tPart struct {
	self, cross *kern.Attention
	ws          []float32 // the kernels' scratch
	in          []float32 // H x D: a chunk's input rows
}

func (f *TransformerField) alloc(batch, tokens, maxTk int) {
	m := f.m
	cfg := m.cfg
	w, T := cfg.Width, cfg.H+1
	f.b = batch
	if cap(f.prefix) < batch {
		f.prefix = make([][]float32, batch)
		f.tkOff = make([]int, batch+1)
	}
	f.prefix, f.tkOff = f.prefix[:batch], f.tkOff[:batch+1]
	f.stateTok = grow(f.stateTok, batch*w)
	if f.ck == nil {
		f.ck = make([][]float32, cfg.Layers)
		f.cv = make([][]float32, cfg.Layers)
	}
	for l := range f.ck {
		f.ck[l] = grow(f.ck[l], tokens*w)
		f.cv[l] = grow(f.cv[l], tokens*w)
	}
	nm := (9*cfg.Layers + 2) * w
	f.mod1, f.modT = grow(f.mod1, nm), grow(f.modT, nm)
	f.tf, f.t1, f.c = grow(f.tf, cfg.TimeFeatures), grow(f.t1, w), grow(f.c, w)
	M := batch * T
	f.x, f.u, f.q = grow(f.x, M*w), grow(f.u, M*w), grow(f.q, M*w)
	f.a, f.o = grow(f.a, M*w), grow(f.o, M*w)
	f.qkv[0], f.qkv[1] = grow(f.qkv[0], M*3*w), grow(f.qkv[1], M*3*w)
	f.hm = grow(f.hm, M*cfg.MLPRatio*w)
	dh := w / cfg.Heads
	b := m.blocks[0]
	f.ws = grow(f.ws, max(m.mods.Scratch(1), b.ck.scratch(maxTk), m.state.scratch(1), m.tfc1.scratch(1), m.tfc2.scratch(1)))
	n := max(b.qkv.Scratch(M), b.fc1.scratch(M), b.fc2.scratch(M), b.o.scratch(M), b.cq.scratch(M),
		m.act.scratch(cfg.H), m.out.scratch(cfg.H))
	for i := range f.part {
		pt := &f.part[i]
		if pt.self == nil {
			pt.self = m.arch.NewAttention(T, T, dh)
		}
		if pt.cross == nil || pt.cross.MaxKeys() < maxTk {
			pt.cross = m.arch.NewAttention(T, maxTk, dh)
		}
		pt.ws = grow(pt.ws, n)
		pt.in = grow(pt.in, cfg.H*cfg.D)
	}
}

// Batch returns the number of chunks B.
func (f *TransformerField) Batch() int { return f.b }

// Dim returns B·H·D.
func (f *TransformerField) Dim() int { return f.b * f.m.cfg.H * f.m.cfg.D }

// mod returns modulation vector k (block l; l = Layers means the final pair) for a token that is
// committed (t = 1) or not.
func (f *TransformerField) mod(l, k int, committed bool) []float32 {
	w := f.m.cfg.Width
	i := (9*l + k) * w
	if committed {
		return f.mod1[i : i+w]
	}
	return f.modT[i : i+w]
}

// modulateRows writes to u the LayerNorm of x with the modulation (shift k, scale k+1) of block
// l, fused, for the token rows [lo, hi) of the batch: committed tokens take the t = 1 vectors.
func (f *TransformerField) modulateRows(l, k, lo, hi int) {
	cfg := f.m.cfg
	w, T := cfg.Width, cfg.H+1
	for b := lo / T; b < f.b && b*T < hi; b++ {
		d := len(f.prefix[b]) / cfg.D
		// Committed rows [b·T, b·T+d), the others [b·T+d, (b+1)·T), within [lo, hi).
		for i, r := range [2][2]int{{b * T, b*T + d}, {b*T + d, (b + 1) * T}} {
			r0, r1 := max(r[0], lo), min(r[1], hi)
			if r1 > r0 {
				kern.LayerNormMod(f.u[r0*w:], f.x[r0*w:], f.mod(l, k, i == 0), f.mod(l, k+1, i == 0), r1-r0, w, 0, lnEps)
			}
		}
	}
}

// gateAdd adds gate k of block l times o to the residual stream x, rows [lo, hi).
func (f *TransformerField) gateAdd(l, k, lo, hi int) {
	cfg := f.m.cfg
	w, T := cfg.Width, cfg.H+1
	for r := lo; r < hi; r++ {
		b := r / T
		d := len(f.prefix[b]) / cfg.D
		kern.MulAdd(f.x[r*w:(r+1)*w], f.mod(l, k, r-b*T < d), f.o[r*w:(r+1)*w])
	}
}

// Velocity writes the velocity of the B chunks x at flow time t to dst (both B·H·D): the time
// conditioning on the calling thread (its matrix-vector product split over the pool's
// threads), then the tokens in a region of the pool (Phase), each thread owning a block of
// token rows.
func (f *TransformerField) Velocity(dst, x []float32, t float64) {
	m, cfg := f.m, f.m.cfg
	n := f.Dim()
	if len(dst) != n || len(x) != n {
		panic(fmt.Sprintf("nn: transformer velocity: dst %d, x %d, want %d", len(dst), len(x), n))
	}
	m.timeCond(f, f.modT, t)
	f.dst, f.in = dst, x
	m.pool.Run(f, cfg.Layers+1)
	f.dst, f.in = nil, nil
	hd := cfg.H * cfg.D
	for b := 0; b < f.b; b++ {
		if p := f.prefix[b]; len(p) > 0 {
			prefixVelocity(dst[b*hd:], x[b*hd:], p, t)
		}
	}
}

// Phase computes phase ph of an evaluation for the token rows of part part of the batch's B·T
// (kern.Arch.Split: cut at the products' tiles). Phase 0: the tokens, then block 0 up to its q,
// k and v; phase l: the rest of block l-1 (its self-attention needs every token's keys and
// values: the barrier before the phase; each part takes its own rows' queries), then block l up
// to its q, k, v, or after the last block the final modulation and output. Block l's q, k, v go
// to qkv[l%2], so that a part's next block never overwrites keys the other part may still read.
// With one part the rows of every product are those of one thread's product over the batch, so
// the results are the same bits; with two, at batch 1 too (the cut is at a tile of the chunk's
// own attention); at larger batches a cut inside a chunk other than the first can fall inside
// one of its attention tiles, whose sums then round differently (see TestTransformerBatchThreads).
func (f *TransformerField) Phase(part, parts, ph int) {
	m, cfg := f.m, f.m.cfg
	w, H, T, D := cfg.Width, cfg.H, cfg.H+1, cfg.D
	lo, hi := m.arch.Split(f.b*T, part, parts)
	if hi == lo {
		return
	}
	pt := &f.part[part]
	ws := pt.ws
	// chunks calls fn for every chunk b with rows [r0, r1) of [lo, hi), both within
	// [b·T, b·T+n).
	chunks := func(n int, fn func(b, r0, r1 int)) {
		for b := lo / T; b < f.b && b*T < hi; b++ {
			if r0, r1 := max(b*T, lo), min(b*T+n, hi); r1 > r0 {
				fn(b, r0, r1)
			}
		}
	}
	if ph == 0 {
		// Tokens: actions (committed rows clean), then the state token.
		hd := H * D
		for b := lo / T; b < f.b && b*T < hi; b++ {
			if r0, r1 := max(b*T, lo), min(b*T+H, hi); r1 > r0 {
				in := pt.in
				copy(in, f.in[b*hd:(b+1)*hd])
				copy(in, f.prefix[b])
				tok := f.x[r0*w : r1*w]
				copy(tok, m.pos[(r0-b*T)*w:(r1-b*T)*w])
				m.act.packed.MulTo(tok, in[(r0-b*T)*D:], r1-r0, true, ws)
				kern.AddRow(tok, m.act.b, r1-r0, w)
			}
			if r := b*T + H; r >= lo && r < hi {
				copy(f.x[r*w:(r+1)*w], f.stateTok[b*w:(b+1)*w])
			}
		}
	} else {
		l := ph - 1
		blk := &m.blocks[l]
		qkv := f.qkv[l%2]
		chunks(T, func(b, r0, r1 int) {
			o := b * T * 3 * w
			pt.self.Run(f.a[r0*w:], w, qkv[r0*3*w:], 3*w, qkv[o+w:], 3*w, qkv[o+2*w:], 3*w, r1-r0, T, cfg.Heads)
		})
		blk.o.apply(nil, f.o[lo*w:hi*w], f.a[lo*w:hi*w], hi-lo, ws)
		f.gateAdd(l, gate1, lo, hi)
		// Cross-attention to the condition's embedding tokens.
		f.modulateRows(l, shift2, lo, hi)
		blk.cq.apply(nil, f.q[lo*w:hi*w], f.u[lo*w:hi*w], hi-lo, ws)
		chunks(T, func(b, r0, r1 int) {
			k0, k1 := f.tkOff[b]*w, f.tkOff[b+1]*w
			pt.cross.Run(f.a[r0*w:], w, f.q[r0*w:], w, f.ck[l][k0:k1], w, f.cv[l][k0:k1], w, r1-r0, f.tkOff[b+1]-f.tkOff[b], cfg.Heads)
		})
		blk.co.apply(nil, f.o[lo*w:hi*w], f.a[lo*w:hi*w], hi-lo, ws)
		f.gateAdd(l, gate2, lo, hi)
		// MLP.
		f.modulateRows(l, shift3, lo, hi)
		R := cfg.MLPRatio * w
		blk.fc1.apply(nil, f.hm[lo*R:hi*R], f.u[lo*w:hi*w], hi-lo, ws)
		m.arch.GELU(f.hm[lo*R : hi*R])
		blk.fc2.apply(nil, f.o[lo*w:hi*w], f.hm[lo*R:hi*R], hi-lo, ws)
		f.gateAdd(l, gate3, lo, hi)
	}
	if ph < cfg.Layers {
		// Self-attention's q, k and v in one product.
		blk := &m.blocks[ph]
		f.modulateRows(ph, shift1, lo, hi)
		linearCat(nil, f.qkv[ph%2][lo*3*w:hi*3*w], blk.qkv, blk.qkvb, f.u[lo*w:hi*w], hi-lo, ws)
		return
	}
	f.modulateRows(cfg.Layers, 0, lo, hi)
	hd := H * D
	chunks(H, func(b, r0, r1 int) {
		i0 := r0 - b*T
		m.out.apply(nil, f.dst[b*hd+i0*D:b*hd+(i0+r1-r0)*D], f.u[r0*w:r1*w], r1-r0, ws)
	})
}
