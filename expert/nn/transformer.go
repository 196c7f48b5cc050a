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

type linear struct{ w, b []float32 }

type tBlock struct {
	ada            [9]linear
	q, k, v, o     linear
	cq, ck, cv, co linear
	fc1, fc2       linear
}

// Transformer is the DiT-style transformer expert (see the package documentation).
type Transformer struct {
	cfg  TransformerConfig
	ps   params
	pool *kern.Pool

	tfc1, tfc2          linear
	act, state          linear
	pos                 []float32
	blocks              []tBlock
	fshift, fscale, out linear

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
	lin := func(name string, in, out int) linear {
		return linear{p.add(name+".w", in, out), p.add(name+".b", out)}
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
	m.pool = kern.NewPool(cfg.Threads)
	m.field.m = m
	return m, nil
}

// Config returns the network's config with defaults applied.
func (m *Transformer) Config() TransformerConfig { return m.cfg }

// Arch returns "transformer".
func (m *Transformer) Arch() string { return ArchTransformer }

// Params lists the weights (see Net).
func (m *Transformer) Params() []Param { return m.ps.list }

// Shape returns the chunk shape H x D.
func (m *Transformer) Shape() (h, d int) { return m.cfg.H, m.cfg.D }

// CondShape returns the embedding width and the state length.
func (m *Transformer) CondShape() (width, state int) { return m.cfg.Embed, m.cfg.State }

// Close stops the worker goroutine (Threads = 2).
func (m *Transformer) Close() { m.pool.Close() }

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

// timeCond writes the time conditioning vector SiLU(MLP(features(t))) to dst (Width).
func (m *Transformer) timeCond(f *TransformerField, dst []float32, t float64) {
	cfg := m.cfg
	TimeFeatures(f.tf, t)
	m.pool.Linear(f.t1, f.tf, m.tfc1.w, m.tfc1.b, 1, cfg.TimeFeatures, cfg.Width)
	kern.SiLU(f.t1)
	m.pool.Linear(dst, f.t1, m.tfc2.w, m.tfc2.b, 1, cfg.Width, cfg.Width)
	kern.SiLU(dst)
}

// mods writes every modulation vector for conditioning vector c: 9 per block then the final
// shift and scale, each Width long, to dst.
func (m *Transformer) mods(dst, c []float32) {
	w := m.cfg.Width
	i := 0
	for _, b := range m.blocks {
		for _, a := range b.ada {
			m.pool.Linear(dst[i*w:(i+1)*w], c, a.w, a.b, 1, w, w)
			i++
		}
	}
	m.pool.Linear(dst[i*w:(i+1)*w], c, m.fshift.w, m.fshift.b, 1, w, w)
	m.pool.Linear(dst[(i+1)*w:(i+2)*w], c, m.fscale.w, m.fscale.b, 1, w, w)
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
	tk := 0
	for i, c := range conds {
		if err := checkCond(c, cfg.H, cfg.D, cfg.Embed, cfg.State); err != nil {
			return nil, fmt.Errorf("chunk %d: %w", i, err)
		}
		tk += c.Tokens
	}
	f := &m.field
	f.alloc(len(conds), tk)
	w := cfg.Width
	off := 0
	for b, c := range conds {
		f.prefix[b] = c.Prefix
		f.tkOff[b] = off
		off += c.Tokens
		m.pool.Linear(f.stateTok[b*w:(b+1)*w], c.State, m.state.w, m.state.b, 1, cfg.State, w)
		kern.AddRow(f.stateTok[b*w:(b+1)*w], m.pos[cfg.H*w:], 1, w)
	}
	f.tkOff[len(conds)] = off
	for l, blk := range m.blocks {
		for b, c := range conds {
			o := f.tkOff[b] * w
			m.pool.Linear(f.ck[l][o:o+c.Tokens*w], c.Embedding, blk.ck.w, blk.ck.b, c.Tokens, cfg.Embed, w)
			m.pool.Linear(f.cv[l][o:o+c.Tokens*w], c.Embedding, blk.cv.w, blk.cv.b, c.Tokens, cfg.Embed, w)
		}
	}
	m.timeCond(f, f.c, 1)
	m.mods(f.mod1, f.c)
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

	x, u, q, k, v, a, o []float32 // (B·T) x Width
	hm                  []float32 // (B·T) x MLPRatio·Width
	scores              []float32
}

func (f *TransformerField) alloc(batch, tokens int) {
	cfg := f.m.cfg
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
	f.x, f.u, f.q, f.k = grow(f.x, M*w), grow(f.u, M*w), grow(f.q, M*w), grow(f.k, M*w)
	f.v, f.a, f.o = grow(f.v, M*w), grow(f.a, M*w), grow(f.o, M*w)
	f.hm = grow(f.hm, M*cfg.MLPRatio*w)
	maxTk := T
	for b := 0; b < batch; b++ {
		maxTk = max(maxTk, f.tkOff[b+1]-f.tkOff[b])
	}
	f.scores = grow(f.scores, max(maxTk, tokens))
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

// modulateRows applies LN then the modulation (shift k, scale k+1) of block l to every token.
func (f *TransformerField) modulateRows(l, k int) {
	cfg := f.m.cfg
	w, T := cfg.Width, cfg.H+1
	kern.LayerNorm(f.u, f.x, f.b*T, w, lnEps)
	for b := 0; b < f.b; b++ {
		d := len(f.prefix[b]) / cfg.D
		for i := 0; i < T; i++ {
			r := (b*T + i) * w
			one := i < d
			kern.Modulate(f.u[r:r+w], f.mod(l, k, one), f.mod(l, k+1, one), 1, w, 0)
		}
	}
}

// gateAdd adds gate k of block l times o to the residual stream x.
func (f *TransformerField) gateAdd(l, k int) {
	cfg := f.m.cfg
	w, T := cfg.Width, cfg.H+1
	for b := 0; b < f.b; b++ {
		d := len(f.prefix[b]) / cfg.D
		for i := 0; i < T; i++ {
			r := (b*T + i) * w
			g := f.mod(l, k, i < d)
			x, o := f.x[r:r+w], f.o[r:r+w]
			for j, gv := range g {
				x[j] += gv * o[j]
			}
		}
	}
}

// Velocity writes the velocity of the B chunks x at flow time t to dst (both B·H·D).
func (f *TransformerField) Velocity(dst, x []float32, t float64) {
	m, cfg := f.m, f.m.cfg
	n := f.Dim()
	if len(dst) != n || len(x) != n {
		panic(fmt.Sprintf("nn: transformer velocity: dst %d, x %d, want %d", len(dst), len(x), n))
	}
	B, w, H, D := f.b, cfg.Width, cfg.H, cfg.D
	T, M, hd := H+1, f.b*(H+1), H*D
	dh := w / cfg.Heads
	m.timeCond(f, f.c, t)
	m.mods(f.modT, f.c)
	// Tokens: actions (committed rows clean), then the state token.
	for b := 0; b < B; b++ {
		xb := x[b*hd : (b+1)*hd]
		// Stage the chunk's input rows in u (free until the first LayerNorm).
		in := f.u[b*hd : (b+1)*hd]
		copy(in, xb)
		copy(in, f.prefix[b])
		m.pool.Linear(f.x[b*T*w:(b*T+H)*w], in, m.act.w, m.act.b, H, D, w)
		for i := 0; i < H; i++ {
			row := f.x[(b*T+i)*w : (b*T+i+1)*w]
			for j, p := range m.pos[i*w : (i+1)*w] {
				row[j] += p
			}
		}
		copy(f.x[(b*T+H)*w:(b*T+T)*w], f.stateTok[b*w:(b+1)*w])
	}
	for l, blk := range m.blocks {
		// Self-attention over the chunk's tokens.
		f.modulateRows(l, shift1)
		m.pool.Linear(f.q, f.u, blk.q.w, blk.q.b, M, w, w)
		m.pool.Linear(f.k, f.u, blk.k.w, blk.k.b, M, w, w)
		m.pool.Linear(f.v, f.u, blk.v.w, blk.v.b, M, w, w)
		for b := 0; b < B; b++ {
			o := b * T * w
			kern.Attention(f.a[o:o+T*w], f.q[o:o+T*w], f.k[o:o+T*w], f.v[o:o+T*w], T, T, cfg.Heads, dh, f.scores)
		}
		m.pool.Linear(f.o, f.a, blk.o.w, blk.o.b, M, w, w)
		f.gateAdd(l, gate1)
		// Cross-attention to the condition's embedding tokens.
		f.modulateRows(l, shift2)
		m.pool.Linear(f.q, f.u, blk.cq.w, blk.cq.b, M, w, w)
		for b := 0; b < B; b++ {
			o := b * T * w
			k0, k1 := f.tkOff[b]*w, f.tkOff[b+1]*w
			kern.Attention(f.a[o:o+T*w], f.q[o:o+T*w], f.ck[l][k0:k1], f.cv[l][k0:k1], T, f.tkOff[b+1]-f.tkOff[b], cfg.Heads, dh, f.scores)
		}
		m.pool.Linear(f.o, f.a, blk.co.w, blk.co.b, M, w, w)
		f.gateAdd(l, gate2)
		// MLP.
		f.modulateRows(l, shift3)
		rw := cfg.MLPRatio * w
		m.pool.Linear(f.hm, f.u, blk.fc1.w, blk.fc1.b, M, w, rw)
		kern.GELU(f.hm)
		m.pool.Linear(f.o, f.hm, blk.fc2.w, blk.fc2.b, M, rw, w)
		f.gateAdd(l, gate3)
	}
	f.modulateRows(cfg.Layers, 0)
	for b := 0; b < B; b++ {
		m.pool.Linear(dst[b*hd:(b+1)*hd], f.u[b*T*w:(b*T+H)*w], m.out.w, m.out.b, H, w, D)
		if p := f.prefix[b]; len(p) > 0 {
			prefixVelocity(dst[b*hd:], x[b*hd:], p, t)
		}
	}
}
