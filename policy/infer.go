package policy

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/flowact/flowact/calib/norm"
	"github.com/flowact/flowact/expert"
	"github.com/flowact/flowact/expert/nn"
	"github.com/flowact/flowact/policy/chunk"
	"github.com/flowact/flowact/robot"
)

// Embedding is the VLM embedding the loop conditions on: robot.Embedding, the one type the ROS
// adapter, the loop and recorded episodes share (Tokens x Width float32 values, row-major,
// taken at Stamp; Data is shared, never copied: once handed to a Loop it must not be modified).
// The alias keeps the loop's signatures short.
type Embedding = robot.Embedding

// EmbeddingSource is a latest-value mailbox the tick reads the embedding from: robot/ros's
// Embeddings is one as it is. Latest must not block or allocate and returns an error (any)
// while there is none.
type EmbeddingSource interface {
	Latest() (robot.Embedding, error)
}

// Request is one observation for the inference worker. The loop owns it; it is valid until the
// worker's result is delivered.
type Request struct {
	Seq  uint64 // 1, 2, ...: seeds the noise
	Tick int64  // the tick the observation was taken at
	// Start is the tick row 0 of the chunk is for: Tick minus the robot's lag in ticks
	// (Config.RobotLag), since the state read at Tick reflects the commands of tick Start; Tick
	// without a lag.
	Start     int64
	Stamp     time.Time // the joint state's measurement time
	Position  []float64 // joint positions (rad, model order)
	Embedding Embedding // the latest embedding at Tick (Data nil: none)
	// Prefix holds the committed actions for ticks [Start, Start+len(Prefix)/D), absolute joint
	// targets (rad): the commands sent for the ticks before Tick, then the plan's; empty unless
	// the strategy is prefix, or guided with chunk.Config.GuidedPrefix (then the first rows of
	// Guide, and the committed rows are Guide's Frozen).
	Prefix []float64
	// Guide (guided strategy; empty otherwise) is the previous plan for ticks [Start, Start+H),
	// H x D absolute targets padded by holding its last action, GuideWeights its per-row soft
	// mask (chunk.GuideWeights), Frozen the number of leading rows that are committed (written
	// back exactly) and GuidanceWeight the largest guidance weight beta.
	Guide          []float64
	GuideWeights   []float64
	Frozen         int
	GuidanceWeight float64
}

// Inferer computes a chunk for a request: H x D absolute joint targets (rad, model order) whose
// row 0 is the action for req.Start, written into dst.Data (len H*D, owned by the loop) with
// dst.H and dst.D set. It runs on the worker goroutine, one call at a time.
type Inferer interface {
	Shape() (h, d int)
	Infer(dst *chunk.Chunk, req *Request) error
}

// Normalizer maps robot-side float64 values to the expert's normalized float32 values and back.
// Methods work on one state (len D) or on rows of actions (a multiple of D) and allocate nothing.
type Normalizer interface {
	NormalizeState(dst []float32, src []float64)
	NormalizeActions(dst []float32, src []float64)
	UnnormalizeActions(dst []float64, src []float32)
}

// stateOutsider is a Normalizer that knows the range of the training data's states (Norm).
type stateOutsider interface {
	StateOutside(src []float64) (sd float64, feature int)
}

// Identity is the Normalizer that only converts precision.
type Identity struct{}

func (Identity) NormalizeState(dst []float32, src []float64) {
	for i, v := range src {
		dst[i] = float32(v)
	}
}
func (Identity) NormalizeActions(dst []float32, src []float64) {
	for i, v := range src {
		dst[i] = float32(v)
	}
}
func (Identity) UnnormalizeActions(dst []float64, src []float32) {
	for i, v := range src {
		dst[i] = float64(v)
	}
}

// Norm normalizes with calib/norm statistics, in float64 before rounding to float32. It keeps a
// scratch buffer: one Norm per worker.
type Norm struct {
	set     *norm.Set
	mode    norm.Mode
	scratch []float64
}

// NewNorm returns a Normalizer for set in mode, for chunks of up to h x d actions and a state of
// d joint positions, or d + 3 with the end effector's position (Expert.SetEndEffector); set
// must match (norm.Set.Check).
func NewNorm(set *norm.Set, mode norm.Mode, h, d int) (*Norm, error) {
	sd := d
	if set.State.Dim() == d+EEStateDim {
		sd = d + EEStateDim
	}
	if err := set.Check(sd, d); err != nil {
		return nil, fmt.Errorf("policy: normalization: %w", err)
	}
	return &Norm{set: set, mode: mode, scratch: make([]float64, max(h*d, sd))}, nil
}

// EEStateDim is the number of state values the end effector's position adds.
const EEStateDim = 3

func (n *Norm) NormalizeState(dst []float32, src []float64) {
	s := n.scratch[:len(src)]
	copy(s, src)
	n.set.State.Normalize(s, n.mode)
	for i, v := range s {
		dst[i] = float32(v)
	}
}

// StateOutside is norm.Stats.Outside of the state statistics: how far the state src (joint
// positions, and the end effector's position when the statistics have it) lies beyond the
// training data's range, in standard deviations, and the farthest feature.
func (n *Norm) StateOutside(src []float64) (sd float64, feature int) {
	return n.set.State.Outside(src)
}

func (n *Norm) NormalizeActions(dst []float32, src []float64) {
	s := n.scratch[:len(src)]
	copy(s, src)
	n.set.Action.Normalize(s, n.mode)
	for i, v := range s {
		dst[i] = float32(v)
	}
}

func (n *Norm) UnnormalizeActions(dst []float64, src []float32) {
	d := dst[:len(src)]
	for i, v := range src {
		d[i] = float64(v)
	}
	n.set.Action.Unnormalize(d, n.mode)
}

// Frame is how an expert's actions are expressed: what its Normalizer's action statistics are of.
type Frame uint8

const (
	// Absolute actions are joint targets (rad).
	Absolute Frame = iota
	// Relative actions are offsets of the joint targets from the joint positions of the
	// observation (rad): row k of a chunk is target(Tick+k) - Position. Small motions, the
	// start of a move and the last millimetres to a goal, then span the network's output range
	// instead of a sliver of the workspace, so they are resolved far more finely.
	Relative
)

// String returns "absolute" or "relative".
func (f Frame) String() string {
	switch f {
	case Absolute:
		return "absolute"
	case Relative:
		return "relative"
	}
	return fmt.Sprintf("Frame(%d)", uint8(f))
}

// ParseFrame parses "absolute" or "relative"; "" is Absolute (checkpoints from before frames).
func ParseFrame(s string) (Frame, error) {
	switch s {
	case "", "absolute":
		return Absolute, nil
	case "relative":
		return Relative, nil
	}
	return 0, fmt.Errorf("policy: action frame %q: want absolute or relative", s)
}

// Expert is the Inferer of a flow-matching action expert: normalize the observation, bind the
// condition (embedding, state, committed prefix), sample from seeded noise, unnormalize. The
// committed prefix rows are written back exactly after sampling. It allocates nothing per
// request once the model and sampler have warmed up.
type Expert struct {
	model   expert.Model
	sampler expert.Sampler
	norm    Normalizer
	seed    uint64
	h, d    int
	frame   Frame
	rel     []float64 // H x D: prefix or guide rows as offsets (Relative)

	pcg   *rand.PCG
	rng   *rand.Rand
	cond  expert.Condition
	fk    func(q []float64) [3]float64 // SetEndEffector
	q     []float64                    // the state before normalization: positions [, end effector]
	state []float32
	pre   []float32
	x     []float32
	gf    guided
	// regress: the model is a regressor (SetRegressor): one evaluation at x = 0, t = 0.
	regress bool
	zero    []float32 // H x D zeros: the regressor's input
	// k chunks are drawn per request when k > 1 (SetSpreadSamples), in one batched field;
	// xs holds them (K x H x D), mean the per-element mean, conds K references to cond.
	k     int
	rows  int // the spread's rows after the committed ones; 0: all
	batch func([]*expert.Condition) (expert.Field, error)
	xs    []float32
	mean  []float64
	conds []*expert.Condition
	// within > 0: the chunk executed is the consensus of the K samples (SetAverage); dist is
	// consensus's scratch (K·K pairwise distances and K nearest-neighbour ones).
	within float64
	dist   []float64
}

// NewExpert returns an Inferer for model with sampler and normalizer n (nil: Identity). The
// noise of request seq is the PCG stream (seed, seq), so a run is reproducible from the seed.
func NewExpert(model expert.Model, sampler expert.Sampler, n Normalizer, seed uint64) *Expert {
	if n == nil {
		n = Identity{}
	}
	h, d := model.Shape()
	pcg := rand.NewPCG(seed, 0)
	return &Expert{model: model, sampler: sampler, norm: n, seed: seed, h: h, d: d,
		pcg: pcg, rng: rand.New(pcg),
		q: make([]float64, d), state: make([]float32, d), pre: make([]float32, h*d), x: make([]float32, h*d),
		gf: guided{d: d, y: make([]float32, h*d)}}
}

// SetFrame sets the frame the model's actions are in (default Absolute); call it before the
// first Infer. Requests and chunks stay absolute either way: the Expert converts.
func (e *Expert) SetFrame(f Frame) {
	e.frame = f
	if f == Relative && e.rel == nil {
		e.rel = make([]float64, e.h*e.d)
	}
}

// SetRegressor makes the expert a regressor's (a checkpoint trained with the regression
// objective, expert/train.Regression): its chunk is one evaluation of the model at x = 0,
// t = 0, and the sampler, the noise and the committed prefix are not used (the network was
// trained without a prefix; the committed rows are still written back and handed over by the
// strategy's fade). Call it before the first Infer.
func (e *Expert) SetRegressor(on bool) {
	e.regress = on
	if on && e.zero == nil {
		e.zero = make([]float32, e.h*e.d)
	}
}

// ErrNoBatch is returned by SetSpreadSamples for a model that cannot bind a batch of conditions.
var ErrNoBatch = errors.New("policy: the model has no batched binding")

// SetSpreadSamples makes the expert draw k chunks from the same observation per request (k >= 2;
// 0 or 1: one, the default), in one batched evaluation of the network (expert/nn's BindBatch:
// the condition is encoded once, the K chunks share each matrix product), and report their
// spread as the chunk's Spread: the root mean square, over the elements of the first rows rows
// after the committed ones (0: every uncommitted row), of the samples' standard deviation, in
// normalized action units (the training data's standard deviation is 1). The chunk executed is the first sample, drawn from the same noise as with one
// sample, so the plan does not change with k. A regressor draws nothing and reports no spread.
// The model must be an expert/nn network (else ErrNoBatch). Call it before the first Infer.
func (e *Expert) SetSpreadSamples(k, rows int) error {
	if k < 0 || k > MaxSpreadSamples {
		return fmt.Errorf("policy: %d spread samples not in [0, %d]: %w", k, MaxSpreadSamples, ErrConfig)
	}
	if rows < 0 {
		return fmt.Errorf("policy: spread over %d rows: %w", rows, ErrConfig)
	}
	e.rows = rows
	if k <= 1 {
		e.k, e.within = 0, 0 // one sample: nothing to average
		return nil
	}
	switch m := e.model.(type) {
	case *nn.MLP:
		e.batch = func(c []*expert.Condition) (expert.Field, error) { return bindOrNil(m.BindBatch(c)) }
	case *nn.Transformer:
		e.batch = func(c []*expert.Condition) (expert.Field, error) { return bindOrNil(m.BindBatch(c)) }
	default:
		return fmt.Errorf("%w: %T", ErrNoBatch, e.model)
	}
	e.k = k
	if e.within > 0 { // averaging on: its scratch follows k
		e.dist = make([]float64, k*k+k)
	}
	e.xs = make([]float32, k*e.h*e.d)
	e.mean = make([]float64, e.h*e.d)
	e.conds = make([]*expert.Condition, k)
	for i := range e.conds {
		e.conds[i] = &e.cond
	}
	return nil
}

// SetAverage makes the chunk executed the consensus of the samples SetSpreadSamples draws
// (call it after that, with k >= 2): the element-wise mean of the first sample and of every
// other whose distance from the first is at most within times the samples' typical distance
// from their nearest neighbour (the median over the samples); within >= 1, 0 turns it off (the
// first sample is executed). Distances are Euclidean over the rows after the committed ones,
// in normalized units. The samples share the observation and the committed prefix, so where
// the expert sees one way to go they differ by its uncertainty about the future (a moving
// target, a stale prefix at a long inference delay) and their mean is the better estimate,
// the regression answer; where it sees two (left or right of an obstacle) the samples fall
// into groups far apart compared with the distances within a group, and only the first
// sample's group is averaged (the first alone if it has none), so the plan never runs between
// them. In high dimension the distances within one group are nearly equal (their relative
// spread shrinks as 1/sqrt(H·D)), so a factor of 2 to 3 keeps a group whole.
// chunk.Chunk.Averaged reports how many were averaged.
func (e *Expert) SetAverage(within float64) error {
	switch {
	case within == 0:
		e.within = 0
		return nil
	case !(within >= 1) || math.IsInf(within, 0):
		return fmt.Errorf("policy: average within %g: want 0 (off) or a finite factor of at least 1: %w", within, ErrConfig)
	case e.k < 2:
		return fmt.Errorf("policy: average within %g of %d samples: want 2 or more samples (SetSpreadSamples first): %w", within, e.k, ErrConfig)
	}
	e.within = within
	e.dist = make([]float64, e.k*e.k+e.k)
	return nil
}

// consensus writes to dst (H·D) the mean of the first of the k samples xs (k × H·D) and of
// every other within the factor within of the median nearest-neighbour distance from it, the
// distances taken over the elements from lo on (after the committed rows), and returns how many
// it averaged. scratch holds k·k + k values.
func consensus(dst, xs []float32, k, lo int, within float64, scratch []float64) int {
	hd := len(dst)
	dist, nearest := scratch[:k*k], scratch[k*k:k*k+k]
	for s := range k {
		nearest[s] = math.Inf(1)
	}
	for s := range k {
		for u := s + 1; u < k; u++ {
			a, b := xs[s*hd+lo:(s+1)*hd], xs[u*hd+lo:(u+1)*hd]
			var ss float64
			for i, v := range a {
				d := float64(v - b[i])
				ss += d * d
			}
			d := math.Sqrt(ss)
			dist[s*k+u], dist[u*k+s] = d, d
			nearest[s], nearest[u] = min(nearest[s], d), min(nearest[u], d)
		}
	}
	slices.Sort(nearest)
	typical := nearest[k/2]
	if k%2 == 0 {
		typical = (nearest[k/2-1] + nearest[k/2]) / 2
	}
	copy(dst, xs[:hd])
	n := 1
	for s := 1; s < k; s++ {
		if !(dist[s] <= within*typical) {
			continue
		}
		n++
		for i, v := range xs[s*hd : (s+1)*hd] {
			dst[i] += v
		}
	}
	inv := 1 / float32(n)
	for i := range dst {
		dst[i] *= inv
	}
	return n
}

// MaxSpreadSamples is the most chunks SetSpreadSamples draws per request.
const MaxSpreadSamples = 64

// bindOrNil returns a concrete field as an expert.Field, nil (not a typed nil) on error.
func bindOrNil[F expert.Field](f F, err error) (expert.Field, error) {
	if err != nil {
		return nil, err
	}
	return f, nil
}

// SetEndEffector makes the model's state the joint positions followed by the end effector's
// position fk(q) (m, the robot's root frame; EEStateDim values), for a checkpoint trained so.
// An expert conditioned on a Cartesian goal (a VLM embedding) then compares it with a Cartesian
// position directly, instead of learning the forward kinematics as well. fk must not allocate.
// Call it before the first Infer.
func (e *Expert) SetEndEffector(fk func(q []float64) [3]float64) {
	e.fk = fk
	n := e.d
	if fk != nil {
		n += EEStateDim
	}
	e.q, e.state = make([]float64, n), make([]float32, n)
}

// normalizeActions normalizes absolute rows src into dst, as offsets from pos when the frame is
// Relative.
func (e *Expert) normalizeActions(dst []float32, src, pos []float64) {
	if e.frame != Relative {
		e.norm.NormalizeActions(dst, src)
		return
	}
	r := e.rel[:len(src)]
	for i, v := range src {
		r[i] = v - pos[i%e.d]
	}
	e.norm.NormalizeActions(dst, r)
}

// Shape returns the model's chunk shape.
func (e *Expert) Shape() (h, d int) { return e.h, e.d }

// EmbeddingWidth returns the embedding width the model takes, 0 when the model does not say
// (it has no CondShape() (width, state int) method, as expert/nn's networks have). The loop
// refuses embeddings of another width before asking for a chunk.
func (e *Expert) EmbeddingWidth() int {
	if m, ok := e.model.(interface{ CondShape() (width, state int) }); ok {
		w, _ := m.CondShape()
		return w
	}
	return 0
}

// MeasuresStateOut implements StateOutMeter: the expert reports chunk.Chunk.StateOut when its
// normalizer has the training data's state statistics (Norm).
func (e *Expert) MeasuresStateOut() bool {
	_, ok := e.norm.(stateOutsider)
	return ok
}

// Infer implements Inferer.
func (e *Expert) Infer(dst *chunk.Chunk, req *Request) error {
	if len(req.Position) != e.d {
		return fmt.Errorf("policy: state has %d joints, the model %d: %w", len(req.Position), e.d, expert.ErrShape)
	}
	if len(req.Prefix)%e.d != 0 || len(req.Prefix) > e.h*e.d {
		return fmt.Errorf("policy: prefix of %d values for %d x %d chunks: %w", len(req.Prefix), e.h, e.d, expert.ErrShape)
	}
	copy(e.q, req.Position)
	if e.fk != nil {
		p := e.fk(req.Position)
		copy(e.q[e.d:], p[:])
	}
	e.norm.NormalizeState(e.state, e.q)
	dst.StateOut, dst.StateOutAt = 0, -1
	if o, ok := e.norm.(stateOutsider); ok {
		dst.StateOut, dst.StateOutAt = o.StateOutside(e.q[:len(e.state)])
	}
	e.cond.State = e.state
	e.cond.Tokens, e.cond.Width, e.cond.Embedding = 0, 0, nil
	if emb := &req.Embedding; emb.Data != nil {
		e.cond.Tokens, e.cond.Width, e.cond.Embedding = emb.Tokens, emb.Width, emb.Data
	}
	e.cond.Prefix = nil
	if n := len(req.Prefix); n > 0 && !e.regress {
		e.normalizeActions(e.pre[:n], req.Prefix, req.Position)
		e.cond.Prefix = e.pre[:n]
	}
	k := 1
	if e.k > 1 && !e.regress {
		k = e.k
	}
	var f expert.Field
	var err error
	if k > 1 {
		f, err = e.batch(e.conds)
	} else {
		f, err = e.model.Bind(&e.cond)
	}
	if err != nil {
		return fmt.Errorf("policy: bind: %w", err)
	}
	if f.Dim() != k*e.h*e.d {
		return fmt.Errorf("policy: field dim %d, want %d: %w", f.Dim(), k*e.h*e.d, expert.ErrShape)
	}
	dst.Spread, dst.Averaged = 0, 0
	frozen := req.Prefix
	if e.regress {
		if len(req.Guide) > 0 {
			if req.Frozen < 0 || req.Frozen > e.h || len(req.Guide) < req.Frozen*e.d {
				return fmt.Errorf("policy: guide of %d values, %d frozen rows for %d x %d chunks: %w", len(req.Guide), req.Frozen, e.h, e.d, expert.ErrShape)
			}
			frozen = req.Guide[:req.Frozen*e.d]
		}
		f.Velocity(e.x, e.zero, 0)
	} else if k > 1 {
		if err := e.sample(f, e.xs, req, &frozen); err != nil {
			return err
		}
		dst.Spread = e.spread(len(frozen) / e.d)
		if e.within > 0 {
			dst.Averaged = consensus(e.x, e.xs, e.k, len(frozen), e.within, e.dist)
		} else {
			copy(e.x, e.xs)
		}
	} else if err := e.sample(f, e.x, req, &frozen); err != nil {
		return err
	}
	dst.H, dst.D, dst.Start = e.h, e.d, req.Start
	dst.Data = dst.Data[:e.h*e.d]
	e.norm.UnnormalizeActions(dst.Data, e.x)
	if e.frame == Relative {
		for i := range dst.Data {
			dst.Data[i] += req.Position[i%e.d]
		}
	}
	copy(dst.Data, frozen)
	return nil
}

// sample draws the chunks of request req from the bound field f into x (one chunk, or the
// batch's K): seeded noise, then the sampler, steered by req's guide if it has one (frozen is
// then set to the guide's committed rows).
func (e *Expert) sample(f expert.Field, x []float32, req *Request, frozen *[]float64) error {
	if len(req.Guide) > 0 {
		if len(req.Guide) != e.h*e.d || len(req.GuideWeights) != e.h || req.Frozen < 0 || req.Frozen > e.h {
			return fmt.Errorf("policy: guide of %d values, %d weights, %d frozen rows for %d x %d chunks: %w",
				len(req.Guide), len(req.GuideWeights), req.Frozen, e.h, e.d, expert.ErrShape)
		}
		e.normalizeActions(e.gf.y, req.Guide, req.Position)
		e.gf.inner, e.gf.w, e.gf.beta = f, req.GuideWeights, req.GuidanceWeight
		f = &e.gf
		*frozen = req.Guide[:req.Frozen*e.d]
	}
	e.pcg.Seed(e.seed, req.Seq)
	expert.Noise(x, e.rng)
	err := e.sampler.Sample(x, x, f)
	e.gf.inner = nil
	if err != nil {
		return fmt.Errorf("policy: sample: %w", err)
	}
	return nil
}

// spread returns the root mean square, over the elements of rows [p, p+rows) (rows 0: [p, H)),
// of the standard deviation of the K samples in e.xs (normalized units; the population
// deviation, over K).
func (e *Expert) spread(p int) float64 {
	hd := e.h * e.d
	lo, hi := min(p, e.h)*e.d, hd
	if e.rows > 0 {
		hi = min(p+e.rows, e.h) * e.d
	}
	if lo >= hi {
		return 0
	}
	m := e.mean[lo:hi]
	clear(m)
	for s := range e.k {
		for i, v := range e.xs[s*hd+lo : s*hd+hi] {
			m[i] += float64(v)
		}
	}
	inv := 1 / float64(e.k)
	for i := range m {
		m[i] *= inv
	}
	var ss float64
	for s := range e.k {
		for i, v := range e.xs[s*hd+lo : s*hd+hi] {
			d := float64(v) - m[i]
			ss += d * d
		}
	}
	return math.Sqrt(ss * inv / float64(hi-lo))
}

// guided is a field steered toward a target chunk y with row weights w: inference-time real-time
// chunking (Black et al. 2025, after Pokle et al.'s pseudo-inverse guidance, 2023), with the
// denoiser's Jacobian taken as the identity (plain-Go inference has no vector-Jacobian
// product):
//
//	x1_hat = x + (1 - t) v(x, t),   v_g = v + min(beta, (1 - t) / (t r_t^2)) W (y - x1_hat),
//	r_t^2 = (1 - t)^2 / (t^2 + (1 - t)^2),
//
// the CondOT estimate of the clean chunk and the paper's guidance weight (t = 0 noise).
type guided struct {
	inner expert.Field
	d     int
	y     []float32 // H x D, normalized
	w     []float64 // H
	beta  float64
}

func (g *guided) Dim() int { return g.inner.Dim() }

func (g *guided) Velocity(dst, x []float32, t float64) {
	g.inner.Velocity(dst, x, t)
	k := g.beta
	if t > 0 && t < 1 {
		k = math.Min(g.beta, (t*t+(1-t)*(1-t))/(t*(1-t)))
	}
	hd := len(g.y) // a batch of chunks (SetSpreadSamples) is guided chunk by chunk
	for i := range dst {
		j := i % hd
		w := g.w[j/g.d]
		if w == 0 {
			continue
		}
		x1 := float64(x[i]) + (1-t)*float64(dst[i])
		dst[i] += float32(k * w * (float64(g.y[j]) - x1))
	}
}

// WorkerThreads returns the OS thread ids the expert's network computes on besides the caller's
// (expert/nn's matrix-product worker), so that Run with Config.IsolateTick keeps them off the
// control tick's CPU; none for a network without such threads.
func (e *Expert) WorkerThreads() []int {
	if w, ok := e.model.(interface{ WorkerThreads() []int }); ok {
		return w.WorkerThreads()
	}
	return nil
}
