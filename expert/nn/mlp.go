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
	cfg  MLPConfig
	ps   params
	pool *kern.Pool

	// weights, aliasing ps
	tfc1w, tfc1b, tfc2w, tfc2b []float32
	condw, condb               []float32
	inw, inb                   []float32
	blocks                     []mlpBlock
	outw, outb                 []float32

	field MLPField
}

type mlpBlock struct {
	scaleT, scaleC, scaleB []float32
	shiftT, shiftC, shiftB []float32
	fcw, fcb               []float32
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
	m.tfc1w, m.tfc1b = p.add("time.fc1.w", cfg.TimeFeatures, tw), p.add("time.fc1.b", tw)
	m.tfc2w, m.tfc2b = p.add("time.fc2.w", tw, tw), p.add("time.fc2.b", tw)
	m.condw, m.condb = p.add("cond.w", cfg.Embed+cfg.State, cw), p.add("cond.b", cw)
	m.inw, m.inb = p.add("in.w", hd+cfg.H, w), p.add("in.b", w)
	for l := 0; l < cfg.Layers; l++ {
		pre := fmt.Sprintf("blocks.%d.", l)
		var b mlpBlock
		b.scaleT, b.scaleC, b.scaleB = p.add(pre+"scale.wt", tw, w), p.add(pre+"scale.wc", cw, w), p.add(pre+"scale.b", w)
		b.shiftT, b.shiftC, b.shiftB = p.add(pre+"shift.wt", tw, w), p.add(pre+"shift.wc", cw, w), p.add(pre+"shift.b", w)
		b.fcw, b.fcb = p.add(pre+"fc.w", w, w), p.add(pre+"fc.b", w)
		m.blocks = append(m.blocks, b)
	}
	m.outw, m.outb = p.add("out.w", w, hd), p.add("out.b", hd)
	if dry {
		return m, nil
	}
	Init(m, r, 1)
	for _, b := range m.blocks {
		clear(b.scaleT)
		clear(b.scaleC)
		clear(b.shiftT)
		clear(b.shiftC)
	}
	m.pool = kern.NewPool(cfg.Threads)
	m.field.m = m
	return m, nil
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

// Params lists the weights (see Net).
func (m *MLP) Params() []Param { return m.ps.list }

// Shape returns the chunk shape H x D.
func (m *MLP) Shape() (h, d int) { return m.cfg.H, m.cfg.D }

// CondShape returns the embedding width and the state length.
func (m *MLP) CondShape() (width, state int) { return m.cfg.Embed, m.cfg.State }

// Close stops the worker goroutine (Threads = 2).
func (m *MLP) Close() { m.pool.Close() }

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
	m.pool.Linear(f.ce, f.cin, m.condw, m.condb, B, in, cw)
	kern.SiLU(f.ce)
	for l, blk := range m.blocks {
		m.pool.Linear(f.scaleC[l], f.ce, blk.scaleC, blk.scaleB, B, cw, w)
		m.pool.Linear(f.shiftC[l], f.ce, blk.shiftC, blk.shiftB, B, cw, w)
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
	xin, h, u, v   []float32
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
	f.v = grow(f.v, batch*w)
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
	B, w, tw, hd := f.b, cfg.Hidden, cfg.TimeWidth, cfg.H*cfg.D
	// Time features, shared by the batch.
	TimeFeatures(f.tf, t)
	m.pool.Linear(f.t1, f.tf, m.tfc1w, m.tfc1b, 1, cfg.TimeFeatures, tw)
	kern.SiLU(f.t1)
	m.pool.Linear(f.t2, f.t1, m.tfc2w, m.tfc2b, 1, tw, tw)
	kern.SiLU(f.t2)
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
	m.pool.Linear(f.h, f.xin, m.inw, m.inb, B, xw, w)
	for l, blk := range m.blocks {
		m.pool.Gemm(f.sc, f.t2, blk.scaleT, 1, tw, w, false)
		m.pool.Gemm(f.sh, f.t2, blk.shiftT, 1, tw, w, false)
		kern.LayerNorm(f.u, f.h, B, w, lnEps)
		sc, sh := f.scaleC[l], f.shiftC[l]
		for b := 0; b < B; b++ {
			u := f.u[b*w : (b+1)*w]
			scb, shb := sc[b*w:(b+1)*w], sh[b*w:(b+1)*w]
			for j := range u {
				u[j] = u[j]*(1+scb[j]+f.sc[j]) + shb[j] + f.sh[j]
			}
		}
		kern.SiLU(f.u)
		m.pool.Linear(f.v, f.u, blk.fcw, blk.fcb, B, w, w)
		for j, v := range f.v {
			f.h[j] += v
		}
	}
	kern.LayerNorm(f.u, f.h, B, w, lnEps)
	m.pool.Linear(dst, f.u, m.outw, m.outb, B, w, hd)
	for b := 0; b < B; b++ {
		if p := f.prefix[b]; len(p) > 0 {
			prefixVelocity(dst[b*hd:], x[b*hd:], p, t)
		}
	}
}
