package nn

import (
	"fmt"
	"math/rand/v2"

	"github.com/flowact/flowact/expert"
	"github.com/flowact/flowact/expert/nn/internal/kern"
)

// MLPConfig describes an MLP expert. Zero values of the optional fields take the defaults below.
type MLPConfig struct {
	H int `json:"h"` // chunk steps
	D int `json:"d"` // action dimensions
	// Embed is the width of the condition's embedding tokens; State the length of its state.
	Embed int `json:"embed"`
	State int `json:"state"`
	// Hidden is the residual stream width (default 256); Layers the number of residual blocks
	// (default 3).
	Hidden int `json:"hidden"`
	Layers int `json:"layers"`
	// TimeFeatures is the number of sinusoidal time features (even, default 64); TimeWidth the
	// width of the time MLP (default 128); CondWidth the width of the condition features (default
	// Hidden).
	TimeFeatures int `json:"time_features"`
	TimeWidth    int `json:"time_width"`
	CondWidth    int `json:"cond_width"`
	// Threads is 1 (default) or 2: the matrix products' threads. Not part of a checkpoint.
	Threads int `json:"-"`
}

// WithDefaults returns c with zero optional fields set to their defaults.
func (c MLPConfig) WithDefaults() MLPConfig {
	if c.Hidden == 0 {
		c.Hidden = 256
	}
	if c.Layers == 0 {
		c.Layers = 3
	}
	if c.TimeFeatures == 0 {
		c.TimeFeatures = 64
	}
	if c.TimeWidth == 0 {
		c.TimeWidth = 128
	}
	if c.CondWidth == 0 {
		c.CondWidth = c.Hidden
	}
	if c.Threads == 0 {
		c.Threads = 1
	}
	return c
}

// Validate reports whether the config (after defaults) describes a network.
func (c MLPConfig) Validate() error {
	c = c.WithDefaults()
	switch {
	case c.H <= 0 || c.D <= 0:
		return fmt.Errorf("%w: mlp chunk %d x %d", ErrConfig, c.H, c.D)
	case c.Embed <= 0 || c.State < 0:
		return fmt.Errorf("%w: mlp embed %d, state %d", ErrConfig, c.Embed, c.State)
	case c.Hidden < 0 || c.Layers < 0 || c.TimeWidth < 0 || c.CondWidth < 0:
		return fmt.Errorf("%w: mlp negative size", ErrConfig)
	case c.TimeFeatures <= 0 || c.TimeFeatures%2 != 0:
		return fmt.Errorf("%w: mlp time features %d, want even > 0", ErrConfig, c.TimeFeatures)
	case c.Threads < 1 || c.Threads > 2:
		return fmt.Errorf("%w: mlp threads %d, want 1 or 2", ErrConfig, c.Threads)
	}
	return nil
}

// MLP is the MLP expert (see the package documentation).
type MLP struct {
	core
	cfg MLPConfig

	// weights, aliasing ps
	tfc1, tfc2, cond, in dense
	blocks               []mlpBlock
	out                  dense
	all                  []*dense // every layer above

	field MLPField
}

// mlpBlock is a residual block: its FiLM scale and shift are linear in the time features (the
// T maps, no bias) and the condition features (the C maps with the bias).
type mlpBlock struct {
	scaleT, scaleC, shiftT, shiftC dense
	fc                             dense
}

var _ Net = (*MLP)(nil)

// NewMLP returns an MLP expert with its training initialization drawn from r: weight matrices
// normal with std 1/sqrt(fan in), biases zero, and the FiLM maps zero (blocks start unmodulated).
func NewMLP(cfg MLPConfig, r *rand.Rand) (*MLP, error) { return newMLP(cfg, r, false) }

// newMLP builds the network; dry builds only its parameter list (names and shapes).
func newMLP(cfg MLPConfig, r *rand.Rand, dry bool) (*MLP, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	m := &MLP{cfg: cfg}
	hd, w, tw, cw := cfg.H*cfg.D, cfg.Hidden, cfg.TimeWidth, cfg.CondWidth
	p := &m.ps
	p.dry = dry
	lin := func(name string, in, out int) dense {
		return dense{w: p.add(name+".w", in, out), b: p.add(name+".b", out), in: in, out: out}
	}
	m.tfc1, m.tfc2 = lin("time.fc1", cfg.TimeFeatures, tw), lin("time.fc2", tw, tw)
	m.cond = lin("cond", cfg.Embed+cfg.State, cw)
	m.in = lin("in", hd+cfg.H, w)
	for l := 0; l < cfg.Layers; l++ {
		pre := fmt.Sprintf("blocks.%d.", l)
		var b mlpBlock
		b.scaleT = dense{w: p.add(pre+"scale.wt", tw, w), in: tw, out: w}
		b.scaleC = dense{w: p.add(pre+"scale.wc", cw, w), in: cw, out: w}
		b.scaleC.b = p.add(pre+"scale.b", w)
		b.shiftT = dense{w: p.add(pre+"shift.wt", tw, w), in: tw, out: w}
		b.shiftC = dense{w: p.add(pre+"shift.wc", cw, w), in: cw, out: w}
		b.shiftC.b = p.add(pre+"shift.b", w)
		b.fc = lin(pre+"fc", w, w)
		m.blocks = append(m.blocks, b)
	}
	m.out = lin("out", w, hd)
	if dry {
		return m, nil
	}
	m.arch = kern.Best()
	Init(m, r, 1)
	for _, b := range m.blocks {
		clear(b.scaleT.w)
		clear(b.scaleC.w)
		clear(b.shiftT.w)
		clear(b.shiftC.w)
	}
	m.Repack()
	m.pool = kern.NewPool(cfg.Threads)
	m.field.m = m
	return m, nil
}

// denses lists the network's linear layers.
func (m *MLP) denses() []*dense {
	if m.all == nil {
		m.all = []*dense{&m.tfc1, &m.tfc2, &m.cond, &m.in, &m.out}
		for i := range m.blocks {
			b := &m.blocks[i]
			m.all = append(m.all, &b.scaleT, &b.scaleC, &b.shiftT, &b.shiftC, &b.fc)
		}
	}
	return m.all
}

// Repack rebuilds the packed weights from Params (see Net).
func (m *MLP) Repack() {
	if m.arch == nil {
		return // a layout-only network
	}
	for _, d := range m.denses() {
		d.pack(m.arch, m.prec)
	}
}

// SetPrecision switches the weight matrices' precision (see Net).
func (m *MLP) SetPrecision(p Precision) {
	m.prec = p
	m.Repack()
}

// Config returns the network's config with defaults applied.
func (m *MLP) Config() MLPConfig { return m.cfg }

// Arch returns "mlp".
func (m *MLP) Arch() string { return ArchMLP }

// Architecture names, as written in checkpoints.
const (
	ArchMLP         = "mlp"
	ArchTransformer = "transformer"
)

// Shape returns the chunk shape H x D.
func (m *MLP) Shape() (h, d int) { return m.cfg.H, m.cfg.D }

// CondShape returns the embedding width and the state length.
func (m *MLP) CondShape() (width, state int) { return m.cfg.Embed, m.cfg.State }

// Bind binds one condition; see BindBatch.
func (m *MLP) Bind(c *expert.Condition) (expert.Field, error) {
	m.field.one[0] = c
	f, err := m.BindBatch(m.field.one[:])
	m.field.one[0] = nil
	if err != nil {
		return nil, err
	}
	return f, nil
}

// BindBatch binds B conditions, one per chunk, and returns a field over B chunks
// (Dim = B·H·D). It pools the embeddings and computes the condition's FiLM contribution once.
// The field keeps references to the conditions' prefixes until the next Bind.
func (m *MLP) BindBatch(conds []*expert.Condition) (*MLPField, error) {
	cfg := m.cfg
	if len(conds) == 0 {
		return nil, fmt.Errorf("%w: empty batch", ErrCondition)
	}
	for i, c := range conds {
		if err := checkCond(c, cfg.H, cfg.D, cfg.Embed, cfg.State); err != nil {
			return nil, fmt.Errorf("chunk %d: %w", i, err)
		}
	}
	f := &m.field
	f.alloc(len(conds))
	B, w, cw := len(conds), cfg.Hidden, cfg.CondWidth
	in := cfg.Embed + cfg.State
	for b, c := range conds {
		row := f.cin[b*in : (b+1)*in]
		clear(row[:cfg.Embed])
		for k := 0; k < c.Tokens; k++ {
			for j, v := range c.Embedding[k*c.Width : (k+1)*c.Width] {
				row[j] += v
			}
		}
		inv := 1 / float32(c.Tokens)
		for j := range row[:cfg.Embed] {
			row[j] *= inv
		}
		copy(row[cfg.Embed:], c.State)
		f.prefix[b] = c.Prefix
	}
	_, _ = w, cw
	m.cond.apply(m.pool, f.ce, f.cin, B, f.ws)
	m.arch.SiLU(f.ce)
	for l, blk := range m.blocks {
		blk.scaleC.apply(m.pool, f.scaleC[l], f.ce, B, f.ws)
		blk.shiftC.apply(m.pool, f.shiftC[l], f.ce, B, f.ws)
	}
	return f, nil
}

// MLPField is an MLP bound to a batch of conditions. It implements expert.Field over the
// concatenated batch.
type MLPField struct {
	m      *MLP
	b      int
	one    [1]*expert.Condition
	prefix [][]float32

	cin, ce        []float32
	scaleC, shiftC [][]float32 // per block, B x Hidden: condition part of FiLM including bias
	tf, t1, t2     []float32
	sc, sh         []float32 // Hidden: time part of FiLM
	scb, shb       []float32 // B x Hidden: a block's whole FiLM scale and shift
	xin, h, u      []float32
	ws             []float32 // the kernels' scratch
}

func (f *MLPField) alloc(batch int) {
	cfg := f.m.cfg
	f.b = batch
	w := cfg.Hidden
	if cap(f.prefix) < batch {
		f.prefix = make([][]float32, batch)
	}
	f.prefix = f.prefix[:batch]
	f.cin = grow(f.cin, batch*(cfg.Embed+cfg.State))
	f.ce = grow(f.ce, batch*cfg.CondWidth)
	if f.scaleC == nil {
		f.scaleC = make([][]float32, cfg.Layers)
		f.shiftC = make([][]float32, cfg.Layers)
	}
	for l := range f.scaleC {
		f.scaleC[l] = grow(f.scaleC[l], batch*w)
		f.shiftC[l] = grow(f.shiftC[l], batch*w)
	}
	f.tf = grow(f.tf, cfg.TimeFeatures)
	f.t1 = grow(f.t1, cfg.TimeWidth)
	f.t2 = grow(f.t2, cfg.TimeWidth)
	f.sc = grow(f.sc, w)
	f.sh = grow(f.sh, w)
	f.xin = grow(f.xin, batch*(cfg.H*cfg.D+cfg.H))
	f.h = grow(f.h, batch*w)
	f.u = grow(f.u, batch*w)
	f.scb = grow(f.scb, batch*w)
	f.shb = grow(f.shb, batch*w)
	n := 0
	for _, d := range f.m.denses() {
		n = max(n, d.scratch(batch))
	}
	f.ws = grow(f.ws, n)
}

// Batch returns the number of chunks B.
func (f *MLPField) Batch() int { return f.b }

// Dim returns B·H·D.
func (f *MLPField) Dim() int { return f.b * f.m.cfg.H * f.m.cfg.D }

// Velocity writes the velocity of the B chunks x at flow time t to dst (both B·H·D).
func (f *MLPField) Velocity(dst, x []float32, t float64) {
	m, cfg := f.m, f.m.cfg
	n := f.Dim()
	if len(dst) != n || len(x) != n {
		panic(fmt.Sprintf("nn: mlp velocity: dst %d, x %d, want %d", len(dst), len(x), n))
	}
	B, w, hd := f.b, cfg.Hidden, cfg.H*cfg.D
	// Time features, shared by the batch.
	TimeFeatures(f.tf, t)
	m.tfc1.apply(m.pool, f.t1, f.tf, 1, f.ws)
	m.arch.SiLU(f.t1)
	m.tfc2.apply(m.pool, f.t2, f.t1, 1, f.ws)
	m.arch.SiLU(f.t2)
	// Input: noisy chunk with committed rows replaced by the prefix, then the mask channel.
	xw := hd + cfg.H
	for b := 0; b < B; b++ {
		row := f.xin[b*xw : (b+1)*xw]
		copy(row, x[b*hd:(b+1)*hd])
		p := f.prefix[b]
		copy(row, p)
		mask := row[hd:]
		d := len(p) / cfg.D
		for i := range mask {
			mask[i] = 0
			if i < d {
				mask[i] = 1
			}
		}
	}
	m.in.apply(m.pool, f.h, f.xin, B, f.ws)
	for l, blk := range m.blocks {
		blk.scaleT.apply(m.pool, f.sc, f.t2, 1, f.ws)
		blk.shiftT.apply(m.pool, f.sh, f.t2, 1, f.ws)
		copy(f.scb, f.scaleC[l])
		copy(f.shb, f.shiftC[l])
		for b := 0; b < B; b++ {
			kern.Add(f.scb[b*w:(b+1)*w], f.sc)
			kern.Add(f.shb[b*w:(b+1)*w], f.sh)
		}
		kern.LayerNormMod(f.u, f.h, f.shb, f.scb, B, w, w, lnEps)
		m.arch.SiLU(f.u)
		// h += u·W + b: the bias onto h, then the product accumulated onto it.
		kern.AddRow(f.h, blk.fc.b, B, w)
		m.pool.MulTo(blk.fc.packed, f.h, f.u, B, true, f.ws)
	}
	kern.LayerNorm(f.u, f.h, B, w, lnEps)
	m.out.apply(m.pool, dst, f.u, B, f.ws)
	for b := 0; b < B; b++ {
		if p := f.prefix[b]; len(p) > 0 {
			prefixVelocity(dst[b*hd:], x[b*hd:], p, t)
		}
	}
}
