package dataset

import (
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
)

// DefaultResident is the number of episodes a Loader holds when LoaderConfig.Resident is zero.
const DefaultResident = 8

// LoaderConfig configures a Loader. Horizon and BatchSize are required.
type LoaderConfig struct {
	Read      Config
	Horizon   int // H, actions per chunk
	BatchSize int
	// Resident is how many aligned episodes are held at once (0 means DefaultResident). It bounds
	// memory: samples are drawn uniformly from all not-yet-drawn ticks of the resident episodes,
	// and an episode is replaced by the next one (in the epoch's shuffled order) once all its
	// ticks are drawn. With Resident >= the number of episodes, every epoch is a full shuffle.
	Resident int
	// Seed makes the order reproducible: epoch e shuffles with a PCG seeded by (Seed, e).
	Seed uint64
	// Sequential turns shuffling off: episodes in the given order, ticks in time order (for
	// validation).
	Sequential bool
	// DropLast drops an epoch's final batch when it has fewer than BatchSize samples.
	DropLast bool
	// Logger, if not nil, receives a warning for each bag that fails to load.
	Logger *slog.Logger
	// Keep, if not nil, selects episodes: one for which it returns false is skipped (not an
	// error), e.g. func(a *Aligned) bool { return a.Meta.Success } to train on successes only.
	Keep func(*Aligned) bool
}

// Validate checks the configuration.
func (c *LoaderConfig) Validate() error {
	if c.Horizon <= 0 || c.BatchSize <= 0 || c.Resident < 0 {
		return fmt.Errorf("dataset: loader: horizon %d, batch size %d, resident %d: %w", c.Horizon, c.BatchSize, c.Resident, ErrConfiguration)
	}
	return c.Read.Validate()
}

// Loader streams shuffled batches of samples from bags, reading each bag once per epoch and
// holding at most Resident aligned episodes. A bag that fails to load is skipped (and not tried
// again in later epochs) and reported by Errors. The first loaded episode fixes the shapes (D,
// Tokens, Width); an episode of another shape is a bad bag (ErrShape). A Loader is not safe for
// concurrent use; it starts no goroutines.
type Loader struct {
	cfg     LoaderConfig
	paths   []string
	bad     map[string]bool
	skipped map[string]bool // not kept by cfg.Keep
	errs    Errors

	epoch   int
	rng     *rand.Rand
	order   []string // this epoch's episode order
	next    int      // next index in order
	pool    []ref    // undrawn ticks of resident episodes
	left    map[*Aligned]int
	shaped  bool
	d, t, w int
}

type ref struct {
	a *Aligned
	k int32
}

// NewLoader returns a Loader over the bags at paths. It does no I/O.
func NewLoader(paths []string, cfg LoaderConfig) (*Loader, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("dataset: loader: no episodes: %w", ErrConfiguration)
	}
	if cfg.Resident == 0 {
		cfg.Resident = DefaultResident
	}
	l := &Loader{cfg: cfg, paths: slices.Clone(paths), bad: map[string]bool{}, skipped: map[string]bool{}, left: map[*Aligned]int{}}
	l.startEpoch()
	return l, nil
}

// Epoch returns the number of the epoch the next batch comes from, from 0.
func (l *Loader) Epoch() int { return l.epoch }

// Errors returns the bags that failed to load so far.
func (l *Loader) Errors() Errors { return slices.Clone(l.errs) }

func (l *Loader) startEpoch() {
	l.rng = rand.New(rand.NewPCG(l.cfg.Seed, uint64(l.epoch)))
	l.order = l.order[:0]
	for _, p := range l.paths {
		if !l.bad[p] && !l.skipped[p] {
			l.order = append(l.order, p)
		}
	}
	if !l.cfg.Sequential {
		l.rng.Shuffle(len(l.order), func(i, j int) { l.order[i], l.order[j] = l.order[j], l.order[i] })
	}
	l.next = 0
	l.pool = l.pool[:0]
	clear(l.left)
}

// refill loads episodes until Resident are held or the epoch's episodes run out.
func (l *Loader) refill() {
	for len(l.left) < l.cfg.Resident && l.next < len(l.order) {
		p := l.order[l.next]
		l.next++
		a, err := Load(p, l.cfg.Read)
		if err == nil && l.shaped && (a.D != l.d || a.Tokens != l.t || a.Width != l.w) {
			err = &BagError{Path: p, Offset: -1, Err: fmt.Errorf("%w: %d joints, %d x %d embedding; the dataset has %d, %d x %d",
				ErrShape, a.D, a.Tokens, a.Width, l.d, l.t, l.w)}
		}
		if err != nil {
			be := asBagError(p, err)
			l.bad[p] = true
			l.errs = append(l.errs, be)
			if l.cfg.Logger != nil {
				l.cfg.Logger.Warn("dataset: skipping bad bag", "path", p, "err", be)
			}
			continue
		}
		if l.cfg.Keep != nil && !l.cfg.Keep(a) {
			l.skipped[p] = true
			continue
		}
		if !l.shaped {
			l.shaped, l.d, l.t, l.w = true, a.D, a.Tokens, a.Width
		}
		l.left[a] = a.N
		for k := range a.N {
			l.pool = append(l.pool, ref{a, int32(k)})
		}
	}
}

// Next fills b with the next batch and returns nil, or returns io.EOF at the end of an epoch
// (b then holds nothing, and the next call starts the next epoch). When every bag is bad it
// returns the Errors instead of looping.
func (l *Loader) Next(b *Batch) error {
	l.refill()
	if len(l.pool) == 0 {
		if !l.shaped && len(l.bad)+len(l.skipped) == len(l.paths) {
			if len(l.bad) > 0 {
				return l.errs
			}
			return fmt.Errorf("dataset: loader: Keep rejected all %d episodes: %w", len(l.paths), ErrEmpty)
		}
		l.epoch++
		l.startEpoch()
		b.N = 0
		return io.EOF
	}
	b.reset(l.cfg.BatchSize, l.cfg.Horizon, l.d, l.t, l.w)
	for b.N < l.cfg.BatchSize {
		l.refill()
		if len(l.pool) == 0 {
			break
		}
		i := 0
		if !l.cfg.Sequential {
			i = l.rng.IntN(len(l.pool))
		}
		r := l.pool[i]
		if l.cfg.Sequential {
			l.pool = l.pool[1:]
		} else {
			l.pool[i] = l.pool[len(l.pool)-1]
			l.pool = l.pool[:len(l.pool)-1]
		}
		b.add(r.a, int(r.k))
		if l.left[r.a]--; l.left[r.a] == 0 {
			delete(l.left, r.a)
		}
	}
	if l.cfg.DropLast && b.N < l.cfg.BatchSize {
		l.epoch++
		l.startEpoch()
		b.N = 0
		return io.EOF
	}
	return nil
}
