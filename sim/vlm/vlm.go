package vlm

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// MaxObjects is how many objects besides the goal an Encoder sees; further ones are ignored.
const MaxObjects = 6

// Object is a scene object other than the goal: a distractor target or an obstacle.
type Object struct {
	Pos  [3]float64 // centre, m, robot root frame
	Size float64    // radius, m
}

// Scene is what the VLM is shown: the instruction and the grounded scene. Goal is where the
// instruction's object is (as a real VLM would locate it in the image).
type Scene struct {
	Instruction  string
	Goal         [3]float64 // m
	GoalVelocity [3]float64 // m/s
	Objects      []Object
}

// Config configures an Encoder and a Stream.
type Config struct {
	// Tokens and Width are the embedding shape; 0 means 16 and 256.
	Tokens int `yaml:"tokens"`
	Width  int `yaml:"width"`
	// Rate is how often the VLM produces an embedding, Hz; 0 means 10.
	Rate float64 `yaml:"rate"`
	// Latency is the delay from an observation to its embedding; 0 means 100 ms, negative none.
	Latency time.Duration `yaml:"latency"`
	// Noise is the standard deviation of Gaussian noise added to every embedding value; 0 means
	// 0.02, negative none.
	Noise float64 `yaml:"noise"`
	// Gain is the standard deviation of the random projection weights, in radians per feature
	// unit (positions count in units of 10 cm, velocities in 10 cm/s); 0 means 1.2, so moving the
	// goal 10 cm turns an average channel's phase by about 1.2 rad: smooth enough to learn, and
	// non-monotonic over a workspace.
	Gain float64 `yaml:"gain"`
	// Seed seeds the fixed projections: the same seed is the same "model".
	Seed uint64 `yaml:"seed"`
}

// Defaults.
const (
	DefaultTokens  = 16
	DefaultWidth   = 256
	DefaultRate    = 10.0
	DefaultLatency = 100 * time.Millisecond
	DefaultNoise   = 0.02
	DefaultGain    = 1.2
)

// MaxRate bounds Config.Rate, Hz: far above any VLM, and a period a time.Duration can hold.
const MaxRate = 1000.0

// ErrConfig is wrapped by configuration errors.
var ErrConfig = errors.New("vlm: bad config")

// WithDefaults returns c with its zero fields set to their defaults and its negative Latency
// and Noise set to zero.
func (c Config) WithDefaults() Config {
	if c.Tokens == 0 {
		c.Tokens = DefaultTokens
	}
	if c.Width == 0 {
		c.Width = DefaultWidth
	}
	if c.Rate == 0 {
		c.Rate = DefaultRate
	}
	switch {
	case c.Latency == 0:
		c.Latency = DefaultLatency
	case c.Latency < 0:
		c.Latency = 0
	}
	switch {
	case c.Noise == 0:
		c.Noise = DefaultNoise
	case c.Noise < 0:
		c.Noise = 0
	}
	if c.Gain == 0 {
		c.Gain = DefaultGain
	}
	return c
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	switch {
	case c.Tokens < 0 || c.Width < 0:
		return fmt.Errorf("%w: shape %d x %d", ErrConfig, c.Tokens, c.Width)
	case !(c.Rate >= 0 && c.Rate <= MaxRate):
		return fmt.Errorf("%w: rate %v Hz, want 0..%v", ErrConfig, c.Rate, MaxRate)
	case math.IsNaN(c.Noise) || math.IsInf(c.Noise, 0):
		return fmt.Errorf("%w: noise %v", ErrConfig, c.Noise)
	case !(c.Gain >= 0) || math.IsInf(c.Gain, 0):
		return fmt.Errorf("%w: gain %v", ErrConfig, c.Gain)
	}
	return nil
}

// Feature layout.
const (
	wordDim  = 16 // bag-of-words dimensions
	goalOff  = wordDim
	objOff   = goalOff + 6
	constOff = objOff + 4*MaxObjects
	features = constOff + 1
)

// Encoder maps a Scene to embedding tokens through fixed random features.
type Encoder struct {
	cfg  Config
	seed uint64
	w    []float32 // Tokens*Width x features, row-major
	b    []float32 // Tokens*Width
	f    [features]float32
}

// NewEncoder draws the projections from cfg.Seed.
func NewEncoder(cfg Config) (*Encoder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	n := cfg.Tokens * cfg.Width
	e := &Encoder{cfg: cfg, seed: cfg.Seed, w: make([]float32, n*features), b: make([]float32, n)}
	r := rand.New(rand.NewPCG(cfg.Seed, 0x7f4a7c15))
	for i := range e.w {
		e.w[i] = float32(cfg.Gain * r.NormFloat64())
	}
	for i := range e.b {
		e.b[i] = float32(2 * math.Pi * r.Float64()) // random phases (Rahimi and Recht 2007)
	}
	return e, nil
}

// Config returns the encoder's configuration with defaults applied.
func (e *Encoder) Config() Config { return e.cfg }

// Shape returns Tokens and Width.
func (e *Encoder) Shape() (tokens, width int) { return e.cfg.Tokens, e.cfg.Width }

// EncodeTo writes the embedding of sc into dst (length Tokens*Width). Noise, when the config
// has any, is drawn from noise; a nil noise gives the noiseless embedding.
func (e *Encoder) EncodeTo(dst []float32, sc *Scene, noise *rand.Rand) {
	if len(dst) != e.cfg.Tokens*e.cfg.Width {
		panic(fmt.Sprintf("vlm: EncodeTo: dst has %d values for %d x %d", len(dst), e.cfg.Tokens, e.cfg.Width))
	}
	e.features(sc)
	f := &e.f
	for i := range dst {
		w := e.w[i*features : (i+1)*features : (i+1)*features]
		s := e.b[i]
		for k, fk := range f {
			s += w[k] * fk
		}
		dst[i] = float32(math.Cos(float64(s)))
	}
	if noise != nil && e.cfg.Noise > 0 {
		for i := range dst {
			dst[i] += float32(e.cfg.Noise * noise.NormFloat64())
		}
	}
}

// features fills e.f from sc.
func (e *Encoder) features(sc *Scene) {
	f := &e.f
	*f = [features]float32{}
	words := 0
	var h uint64
	flush := func() {
		if h == 0 {
			return
		}
		var p rand.PCG
		p.Seed(e.seed^h, 0x9e3779b97f4a7c15)
		for k := range wordDim {
			f[k] += float32(int64(p.Uint64())>>11) / (1 << 52) // uniform in [-1, 1)
		}
		words++
		h = 0
	}
	const offset, prime = 14695981039346656037, 1099511628211 // FNV-1a 64
	s := sc.Instruction
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if ('a' <= c && c <= 'z') || ('0' <= c && c <= '9') || c >= 0x80 {
			if h == 0 {
				h = offset
			}
			h = (h ^ uint64(c)) * prime
			continue
		}
		flush()
	}
	flush()
	if words > 0 {
		inv := float32(1 / math.Sqrt(float64(words)))
		for k := range wordDim {
			f[k] *= inv
		}
	}
	const unit = 10 // features count positions in units of 10 cm
	for k := range 3 {
		f[goalOff+k] = float32(unit * sc.Goal[k])
		f[goalOff+3+k] = float32(unit * sc.GoalVelocity[k])
	}
	for i, o := range sc.Objects {
		if i == MaxObjects {
			break
		}
		for k := range 3 {
			f[objOff+4*i+k] = float32(unit * o.Pos[k])
		}
		f[objOff+4*i+3] = float32(unit * o.Size)
	}
	f[constOff] = 1
}

// Stream runs an Encoder at the VLM's rate and latency on simulation time.
type Stream struct {
	enc     *Encoder
	period  time.Duration
	latency time.Duration
	noise   *rand.Rand
	next    time.Duration // next observation
	slots   []frame       // ring of frames in observation order
	head, n int
}

type frame struct {
	at  time.Duration // observation time
	emb []float32
}

// NewStream returns a stream over enc whose noise is drawn from a PCG seeded by seed (one per
// episode). Its first observation is due at time 0.
func NewStream(enc *Encoder, seed uint64) *Stream {
	c := enc.cfg
	period := time.Duration(float64(time.Second) / c.Rate)
	// Frames in flight: observed but not yet ready, plus the newest ready one.
	k := int(c.Latency/period) + 2
	s := &Stream{enc: enc, period: period, latency: c.Latency, noise: rand.New(rand.NewPCG(seed, 0xa11ce)), slots: make([]frame, k)}
	for i := range s.slots {
		s.slots[i].emb = make([]float32, c.Tokens*c.Width)
	}
	return s
}

// Period returns the time between observations.
func (s *Stream) Period() time.Duration { return s.period }

// Due reports whether an observation is due at time t.
func (s *Stream) Due(t time.Duration) bool { return t >= s.next }

// Observe encodes sc as observed at time t and schedules the next observation one period after
// the one that was due (so the rate does not drift with the caller's tick).
func (s *Stream) Observe(t time.Duration, sc *Scene) {
	// Drop ready frames older than the newest ready one; the ring then has room.
	s.forget(t)
	if s.n == len(s.slots) { // more in flight than the latency allows: overwrite the oldest
		s.head = (s.head + 1) % len(s.slots)
		s.n--
	}
	fr := &s.slots[(s.head+s.n)%len(s.slots)]
	s.n++
	fr.at = t
	s.enc.EncodeTo(fr.emb, sc, s.noise)
	for s.next <= t {
		s.next += s.period
	}
}

// forget drops the ready frames before the newest ready one at t.
func (s *Stream) forget(t time.Duration) {
	for s.n > 1 && s.slots[(s.head+1)%len(s.slots)].at+s.latency <= t {
		s.head = (s.head + 1) % len(s.slots)
		s.n--
	}
}

// Latest returns the newest embedding ready at time t (observed at least Latency before t) and
// its observation time; ok is false before the first is ready. The slice is the Stream's, valid
// until the next Observe.
func (s *Stream) Latest(t time.Duration) (emb []float32, observed time.Duration, ok bool) {
	s.forget(t)
	if s.n == 0 || s.slots[s.head].at+s.latency > t {
		return nil, 0, false
	}
	fr := &s.slots[s.head]
	return fr.emb, fr.at, true
}
