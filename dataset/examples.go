package dataset

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
)

// LoadEpisodes reads and aligns the bags at paths (Load with cfg), in order. A bag that fails to
// load is an error naming it; an episode for which keep (when not nil) returns false is
// skipped; an episode whose shape (joints, embedding, rate) differs from the first kept one is
// an error (ErrShape) naming both bags.
func LoadEpisodes(paths []string, cfg Config, keep func(*Aligned) bool) ([]*Aligned, error) {
	var eps []*Aligned
	for _, p := range paths {
		a, err := Load(p, cfg)
		if err != nil {
			return nil, err
		}
		if keep != nil && !keep(a) {
			continue
		}
		if len(eps) > 0 {
			if err := sameShape(eps[0], a); err != nil {
				return nil, err
			}
		}
		eps = append(eps, a)
	}
	return eps, nil
}

// sameShape reports whether b has a's joints, embedding shape and rate.
func sameShape(a, b *Aligned) error {
	if b.D != a.D || b.Width != a.Width || b.Tokens != a.Tokens || b.Rate != a.Rate {
		return &BagError{Path: b.Path, Offset: -1, Err: fmt.Errorf("%w: %d joints, %d x %d embedding at %g Hz; %s has %d, %d x %d at %g Hz",
			ErrShape, b.D, b.Tokens, b.Width, b.Rate, a.Path, a.D, a.Tokens, a.Width, a.Rate)}
	}
	return nil
}

// Successful is a keep function for LoadEpisodes: failed episodes are dropped; a bag without
// episode metadata (a user's rosbag record: its task is empty) is a demonstration and kept.
func Successful(a *Aligned) bool { return a.Meta.Task == "" || a.Meta.Success }

// Hash is the SHA-256 of the bags at paths, each as its base name, a NUL and its bytes, in the
// given order: "sha256:<hex>", a checkpoint's provenance.
func Hash(paths []string) (string, error) {
	h := sha256.New()
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return "", fmt.Errorf("dataset: %w", err)
		}
		fmt.Fprintf(h, "%s\x00", filepath.Base(p))
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return "", fmt.Errorf("dataset: %w", err)
		}
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// ExamplesConfig says what a training example holds.
type ExamplesConfig struct {
	// Horizon is H, the actions per example (required).
	Horizon int
	// Relative makes the actions offsets from the example's joint positions (rad): row i is
	// action(k+i) - position(k). Otherwise they are the recorded joint targets.
	Relative bool
	// EndEffector, if not nil, appends the end effector's position at the joint positions (m,
	// EEDim values) to the state: the state is then D + EEDim values. It must not keep q.
	EndEffector func(q []float64) [3]float64
}

// EEDim is the number of state values ExamplesConfig.EndEffector adds (StateNames calls them
// ee_x, ee_y, ee_z).
const EEDim = 3

// Examples draws training examples, in physical units (rad, m), from aligned episodes held in
// memory: an episode uniformly, then a tick of it uniformly, so that every episode weighs the
// same (a task with short episodes is not drowned by one with long ones). AccumulateTo feeds
// the same states and actions to normalization statistics. An Examples reuses its scratch: it
// is not safe for concurrent use.
type Examples struct {
	eps    []*Aligned
	cfg    ExamplesConfig
	sample Sample
}

// NewExamples returns the examples of eps, which must be non-empty and of one shape. It does
// no I/O.
func NewExamples(eps []*Aligned, cfg ExamplesConfig) (*Examples, error) {
	if len(eps) == 0 {
		return nil, fmt.Errorf("dataset: examples: no episodes: %w", ErrEmpty)
	}
	if cfg.Horizon <= 0 {
		return nil, fmt.Errorf("dataset: examples: horizon %d: %w", cfg.Horizon, ErrConfiguration)
	}
	for _, a := range eps {
		if a.N <= 0 {
			return nil, fmt.Errorf("dataset: examples: %s has no ticks: %w", a.Path, ErrEmpty)
		}
		if err := sameShape(eps[0], a); err != nil {
			return nil, err
		}
	}
	return &Examples{eps: slices.Clone(eps), cfg: cfg}, nil
}

// Shape returns the examples' horizon H, joints D, embedding tokens x width and state length.
func (x *Examples) Shape() (h, d, tokens, width, state int) {
	e := x.eps[0]
	return x.cfg.Horizon, e.D, e.Tokens, e.Width, x.stateDim()
}

func (x *Examples) stateDim() int {
	if x.cfg.EndEffector != nil {
		return x.eps[0].D + EEDim
	}
	return x.eps[0].D
}

// Joints returns the joint names of the first episode (nil for an episode built without).
func (x *Examples) Joints() []string { return slices.Clone(x.eps[0].Meta.Joints) }

// StateNames returns the names of the state values: the joints, then ee_x, ee_y, ee_z with an
// end effector; nil when the episodes name no joints.
func (x *Examples) StateNames() []string {
	names := x.Joints()
	if names != nil && x.cfg.EndEffector != nil {
		names = append(names, "ee_x", "ee_y", "ee_z")
	}
	return names
}

// Samples returns the number of ticks of all episodes.
func (x *Examples) Samples() int {
	n := 0
	for _, e := range x.eps {
		n += e.N
	}
	return n
}

// stateTo writes the state of joint positions q into dst[:0] and returns it.
func (x *Examples) stateTo(dst, q []float64) []float64 {
	dst = append(dst[:0], q...)
	if x.cfg.EndEffector != nil {
		p := x.cfg.EndEffector(q)
		dst = append(dst, p[:]...)
	}
	return dst
}

// Adder takes one row of values: *norm.Accumulator (package calib/norm) is one.
type Adder interface {
	Add(row []float64) error
}

// AccumulateTo adds every tick's state to state and its actions to action, as the examples
// hold them: with Relative, the offsets of the Horizon actions from each tick (where the
// episode has them; a chunk's padding is not data), otherwise each tick's action once.
func (x *Examples) AccumulateTo(state, action Adder) error {
	d := x.eps[0].D
	off := make([]float64, d)
	var row []float64
	for _, ep := range x.eps {
		for k := range ep.N {
			row = x.stateTo(row, ep.StateAt(k))
			if err := state.Add(row); err != nil {
				return fmt.Errorf("dataset: %s: %w", ep.Path, err)
			}
			if !x.cfg.Relative {
				if err := action.Add(ep.ActionAt(k)); err != nil {
					return fmt.Errorf("dataset: %s: %w", ep.Path, err)
				}
				continue
			}
			q := ep.StateAt(k)
			for i := k; i < min(k+x.cfg.Horizon, ep.N); i++ {
				for j, a := range ep.ActionAt(i) {
					off[j] = a - q[j]
				}
				if err := action.Add(off); err != nil {
					return fmt.Errorf("dataset: %s: %w", ep.Path, err)
				}
			}
		}
	}
	return nil
}

// DrawTo draws one example with r (an episode, then a tick of it) into emb (Tokens x Width),
// state (the state length) and action (H x D, in the configured frame; past the episode's end
// the last action is held) and returns its number of recorded action rows (at least 1). The
// slices must have the lengths Shape gives. It allocates nothing once warmed up.
func (x *Examples) DrawTo(r *rand.Rand, emb []float32, state, action []float64) int {
	ep := x.eps[r.IntN(len(x.eps))]
	k := r.IntN(ep.N)
	h, d := x.cfg.Horizon, ep.D
	ep.SampleTo(&x.sample, k, h)
	s := &x.sample
	copy(emb, s.Embedding)
	q := s.State
	if x.cfg.EndEffector != nil {
		p := x.cfg.EndEffector(q)
		copy(state[d:], p[:])
	}
	copy(state, q)
	copy(action, s.Action)
	if x.cfg.Relative {
		for j := range action[:h*d] {
			action[j] -= q[j%d]
		}
	}
	n := 0
	for _, m := range s.Mask {
		if m != 0 {
			n++
		}
	}
	return max(n, 1)
}
