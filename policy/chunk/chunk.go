package chunk

import (
	"errors"
	"fmt"
	"math"
)

// Chunk is H x D absolute joint targets whose row 0 is the action for tick Start. Its first
// Frozen rows are the previous plan's committed actions, repeated exactly (prefix and guided
// chunks; 0 for others): blend and prefix fade to the new chunk after them. Spread is the
// expert's own uncertainty about the chunk, as its Inferer reports it (policy.Expert: the spread
// of several samples from the same observation, in normalized units); 0 when not measured.
// Averaged is how many of those samples the chunk is the mean of (policy.Expert.SetAverage);
// 0 when it is one sample. StateOut is how far the observed state the chunk was sampled from
// lay beyond the range of the expert's training data, in standard deviations of the feature
// StateOutAt (policy.Expert with normalization statistics: norm.Stats.Outside); 0 when within
// or not measured, and StateOutAt then means nothing.
type Chunk struct {
	Start      int64
	H, D       int
	Frozen     int
	Data       []float64
	Spread     float64
	Averaged   int
	StateOut   float64
	StateOutAt int
}

// Row returns row i, aliasing c.Data.
func (c *Chunk) Row(i int) []float64 { return c.Data[i*c.D : (i+1)*c.D] }

// Strategy names a splicing strategy.
type Strategy string

const (
	Replace  Strategy = "replace"
	Ensemble Strategy = "ensemble"
	Blend    Strategy = "blend"
	Prefix   Strategy = "prefix"
	Guided   Strategy = "guided"
)

// Config selects and parameterizes a strategy. The zero value is a 10-tick blend.
type Config struct {
	// Strategy is replace, ensemble, blend, prefix or guided; "" means blend.
	Strategy Strategy `yaml:"strategy"`
	// BlendTicks is the cross-fade length K of blend, and the seam window is K+3 ticks for every
	// strategy (so seams are comparable); 0 means 10.
	BlendTicks int `yaml:"blend_ticks"`
	// EnsembleDecay is ACT's m in w_i = exp(-m i); 0 means ACT's 0.01.
	EnsembleDecay float64 `yaml:"ensemble_decay"`
	// EnsembleChunks bounds how many chunks the ensemble keeps; 0 means 8.
	EnsembleChunks int `yaml:"ensemble_chunks"`
	// GuidanceWeight is guided's largest guidance weight beta; 0 means the RTC paper's 5.
	GuidanceWeight float64 `yaml:"guidance_weight"`
	// GuidedPrefix makes guided also give the expert the committed rows as a prefix, as prefix
	// does (for a checkpoint trained with prefixes), except those its previous plan placed in
	// its last PrefixTail rows: the rows it planned farthest ahead, least sure of a moving
	// target, which fed back as the next chunk's prefix at a long delay make each chunk
	// continue the stale tail of the one before. The chunk is still steered onto all the
	// committed rows. The prefix carries the plan's direction (the side of an obstacle it has
	// begun to pass), which the observation alone shows only once the arm is well aside.
	GuidedPrefix bool `yaml:"guided_prefix"`
	// PrefixTail is how many rows at the end of a plan guided_prefix leaves out of the prefix;
	// 0 means 5, -1 none.
	PrefixTail int `yaml:"prefix_tail"`
}

// DefaultPrefixTail is Config.PrefixTail's default.
const DefaultPrefixTail = 5

// ErrConfig is wrapped by every configuration error.
var ErrConfig = errors.New("chunk: bad config")

// WithDefaults returns c with zero fields replaced by their defaults.
func (c Config) WithDefaults() Config {
	if c.Strategy == "" {
		c.Strategy = Blend
	}
	if c.BlendTicks == 0 {
		c.BlendTicks = 10
	}
	if c.EnsembleDecay == 0 {
		c.EnsembleDecay = 0.01
	}
	if c.EnsembleChunks == 0 {
		c.EnsembleChunks = 8
	}
	if c.GuidanceWeight == 0 {
		c.GuidanceWeight = 5
	}
	switch c.PrefixTail {
	case 0:
		c.PrefixTail = DefaultPrefixTail
	case -1:
		c.PrefixTail = 0
	}
	return c
}

// Validate checks c (zero fields are valid: they take defaults).
func (c *Config) Validate() error {
	switch c.Strategy {
	case "", Replace, Ensemble, Blend, Prefix, Guided:
	default:
		return fmt.Errorf("chunk: strategy %q is not replace, ensemble, blend, prefix or guided: %w", c.Strategy, ErrConfig)
	}
	if c.GuidanceWeight < 0 || math.IsNaN(c.GuidanceWeight) || math.IsInf(c.GuidanceWeight, 0) {
		return fmt.Errorf("chunk: guidance_weight %g must be finite and >= 0: %w", c.GuidanceWeight, ErrConfig)
	}
	if c.GuidedPrefix && c.Strategy != Guided {
		return fmt.Errorf("chunk: guided_prefix is an option of strategy guided, not %q: %w", c.Strategy, ErrConfig)
	}
	if c.PrefixTail < -1 {
		return fmt.Errorf("chunk: prefix_tail %d is below -1: %w", c.PrefixTail, ErrConfig)
	}
	if c.BlendTicks < 0 {
		return fmt.Errorf("chunk: blend_ticks %d is negative: %w", c.BlendTicks, ErrConfig)
	}
	if c.EnsembleDecay < 0 || math.IsNaN(c.EnsembleDecay) || math.IsInf(c.EnsembleDecay, 0) {
		return fmt.Errorf("chunk: ensemble_decay %g must be finite and >= 0: %w", c.EnsembleDecay, ErrConfig)
	}
	if c.EnsembleChunks < 0 || c.EnsembleChunks > 64 {
		return fmt.Errorf("chunk: ensemble_chunks %d not in [0, 64]: %w", c.EnsembleChunks, ErrConfig)
	}
	return nil
}

// Splicer turns the chunks it is given into one action per tick.
type Splicer interface {
	// Splice takes over chunk c at tick now (c.Start <= now); rows before now-c.Start are in the
	// past and never executed. c is copied. A chunk with no row at or after now is ignored.
	Splice(c *Chunk, now int64)
	// Action writes the target for tick k (k at or after the last splice) into dst and reports
	// whether the plan has one; it does not change the splicer.
	Action(dst []float64, k int64) bool
	// End is the first tick the plan has no action for; remaining actions at tick k are End-k.
	End() int64
	// Reset drops the plan.
	Reset()
}

// New returns the splicer cfg selects for chunks of h x d.
func New(cfg Config, h, d int) (Splicer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if h <= 0 || d <= 0 {
		return nil, fmt.Errorf("chunk: shape %d x %d: %w", h, d, ErrConfig)
	}
	cfg = cfg.WithDefaults()
	switch cfg.Strategy {
	case Replace, Guided:
		return &replacer{cur: newPlan(h, d)}, nil
	case Blend, Prefix:
		return &blender{cur: newPlan(h, d), old: newPlan(cfg.BlendTicks, d), next: newPlan(cfg.BlendTicks, d), k: cfg.BlendTicks}, nil
	case Ensemble:
		e := &ensembler{m: cfg.EnsembleDecay, d: d, tmp: make([]float64, d)}
		e.ring = make([]plan, cfg.EnsembleChunks)
		for i := range e.ring {
			e.ring[i] = newPlan(h, d)
		}
		return e, nil
	}
	panic("unreachable")
}

// Committed writes into dst (n x D) the actions s plans for the ticks [from, from+n), holding the
// plan's last action past its end (never zeros), and reports whether s had any plan.
func Committed(dst []float64, s Splicer, from int64, n, d int) bool {
	end := s.End()
	if n == 0 {
		return true
	}
	last := end - 1
	if last < from {
		return s.Action(dst[:d], last) && fill(dst, n, d)
	}
	for i := range n {
		k := min(from+int64(i), last)
		if !s.Action(dst[i*d:(i+1)*d], k) {
			return false
		}
	}
	return true
}

func fill(dst []float64, n, d int) bool {
	for i := 1; i < n; i++ {
		copy(dst[i*d:(i+1)*d], dst[:d])
	}
	return true
}

// plan is a run of rows for consecutive ticks from start.
type plan struct {
	start int64
	n, d  int
	data  []float64
}

func newPlan(h, d int) plan { return plan{d: d, data: make([]float64, h*d)} }

func (p *plan) end() int64 { return p.start + int64(p.n) }

// set copies the rows of c from tick now on.
func (p *plan) set(c *Chunk, now int64) bool {
	skip := now - c.Start
	if skip < 0 {
		skip = 0
	}
	if skip >= int64(c.H) {
		return false
	}
	p.start, p.n = c.Start+skip, c.H-int(skip)
	copy(p.data, c.Data[int(skip)*c.D:c.H*c.D])
	return true
}

// at returns the row for tick k, holding the last row past the end; nil when empty or before start.
func (p *plan) at(k int64) []float64 {
	if p.n == 0 || k < p.start {
		return nil
	}
	i := int(min(k-p.start, int64(p.n-1)))
	return p.data[i*p.d : (i+1)*p.d]
}

type replacer struct{ cur plan }

func (r *replacer) Splice(c *Chunk, now int64) { r.cur.set(c, now) }
func (r *replacer) End() int64 {
	if r.cur.n == 0 {
		return 0
	}
	return r.cur.end()
}
func (r *replacer) Reset() { r.cur.n = 0 }
func (r *replacer) Action(dst []float64, k int64) bool {
	if k >= r.End() {
		return false
	}
	row := r.cur.at(k)
	if row == nil {
		return false
	}
	copy(dst, row)
	return true
}

type blender struct {
	cur, old plan  // old: the previous output, materialized for the fade from the arrival tick on
	next     plan  // scratch for the next old
	k        int   // fade ticks
	fade     int64 // arrival tick of cur
	n        int   // this fade's length: k, or fewer when the old plan ends sooner
}

func (b *blender) End() int64 {
	if b.cur.n == 0 {
		return 0
	}
	return b.cur.end()
}

func (b *blender) Reset() { b.cur.n, b.old.n = 0, 0 }

func (b *blender) Splice(c *Chunk, now int64) {
	if now-c.Start >= int64(c.H) {
		return
	}
	// The fade starts at arrival, or after the committed rows (the plan's own actions, so
	// there is nothing to fade over them). Materialize what the plan would have done from then
	// on (it may itself be mid-fade) for the fade window, then take c.
	from := max(now, c.Start+int64(max(c.Frozen, 0)))
	nx := &b.next
	nx.n = 0
	fade := 0
	if end := b.End(); end > from {
		n := min(int(end-from), b.k)
		for i := range n {
			b.Action(nx.data[i*nx.d:(i+1)*nx.d], from+int64(i))
		}
		nx.start, nx.n = from, n
		fade = n
	} else if end > 0 && end <= now {
		// The plan ran out before the arrival (the robot holds its last action): fade from it.
		b.Action(nx.data[:nx.d], end-1)
		nx.start, nx.n = from, 1
		fade = b.k
	}
	// Otherwise the committed rows reach the plan's end: the chunk continues them, unfaded.
	b.old, b.next = b.next, b.old
	b.n = fade
	b.cur.set(c, now)
	b.fade = from
}

func (b *blender) Action(dst []float64, k int64) bool {
	if k >= b.End() {
		return false
	}
	row := b.cur.at(k)
	if row == nil {
		return false
	}
	i := k - b.fade
	old := b.old.at(k)
	if old == nil || i >= int64(b.n) {
		copy(dst, row)
		return true
	}
	w := 0.5 * (1 - math.Cos(math.Pi*float64(i+1)/float64(b.n+1)))
	for j := range dst {
		dst[j] = (1-w)*old[j] + w*row[j]
	}
	return true
}

type ensembler struct {
	ring []plan // ring[(head+i)%len] is the i-th oldest of count
	head int
	cnt  int
	m    float64
	d    int
	tmp  []float64
}

func (e *ensembler) Reset() { e.head, e.cnt = 0, 0 }

func (e *ensembler) newest() *plan {
	if e.cnt == 0 {
		return nil
	}
	return &e.ring[(e.head+e.cnt-1)%len(e.ring)]
}

func (e *ensembler) End() int64 {
	p := e.newest()
	if p == nil {
		return 0
	}
	return p.end()
}

func (e *ensembler) Splice(c *Chunk, now int64) {
	if now-c.Start >= int64(c.H) {
		return
	}
	// Drop chunks that have nothing left at or after now, then the oldest if full.
	for e.cnt > 0 && e.ring[e.head].end() <= now {
		e.head, e.cnt = (e.head+1)%len(e.ring), e.cnt-1
	}
	if e.cnt == len(e.ring) {
		e.head, e.cnt = (e.head+1)%len(e.ring), e.cnt-1
	}
	p := &e.ring[(e.head+e.cnt)%len(e.ring)]
	p.set(c, now)
	e.cnt++
}

func (e *ensembler) Action(dst []float64, k int64) bool {
	if k >= e.End() {
		return false
	}
	for j := range dst {
		dst[j] = 0
	}
	sum, i := 0.0, 0
	for n := range e.cnt {
		p := &e.ring[(e.head+n)%len(e.ring)]
		if k < p.start || k >= p.end() {
			continue
		}
		w := math.Exp(-e.m * float64(i)) // i = 0 the oldest chunk covering k
		i++
		row := p.at(k)
		for j := range dst {
			dst[j] += w * row[j]
		}
		sum += w
	}
	if sum == 0 {
		return false
	}
	for j := range dst {
		dst[j] /= sum
	}
	return true
}

// GuideWeights writes into w (len H) the soft-masking weights of guided real-time chunking
// (Black et al. 2025, eq. 5): 1 for the frozen rows i < d, then
// c_i (e^c_i - 1)/(e - 1) with c_i = (r - i)/(r - d + 1) for d <= i < r, and 0 from r on, where
// r is the number of rows the previous plan covers.
func GuideWeights(w []float64, d, r int) {
	for i := range w {
		switch {
		case i < d:
			w[i] = 1
		case i < r:
			c := float64(r-i) / float64(r-d+1)
			w[i] = c * math.Expm1(c) / (math.E - 1)
		default:
			w[i] = 0
		}
	}
}
