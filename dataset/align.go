package dataset

import (
	"fmt"
	"math"
	"time"
)

// Aligned is an episode sampled at the control rate: N ticks, tick k at Start + k/Rate. Every
// stream is sample-and-hold: at a tick, each stream's value is its latest message at or before
// the tick, which is what the runtime's latest-value mailboxes see. Tick 0 is the first instant
// at which every stream has a value; the last tick is the last one at which the joint states and
// the actions still have messages of their own (the embedding, at VLM rate, is held to the end).
// With ActionsFromNextState the action of tick k is the joint position at tick k+1, so the
// episode ends one tick before its last held state.
type Aligned struct {
	Path  string
	Meta  Meta
	Start time.Time
	Rate  float64 // Hz
	N, D  int     // ticks, joints

	Tokens, Width int
	State         []float64   // N x D joint positions, rad
	Action        []float64   // N x D position targets, rad
	EmbeddingOf   []int32     // N: index into Embeddings of each tick's embedding
	Embeddings    [][]float32 // distinct embeddings, Tokens x Width each (shared with the Episode)
}

// StateAt returns tick k's state, aliasing a.State.
func (a *Aligned) StateAt(k int) []float64 { return a.State[k*a.D : (k+1)*a.D] }

// ActionAt returns tick k's action, aliasing a.Action.
func (a *Aligned) ActionAt(k int) []float64 { return a.Action[k*a.D : (k+1)*a.D] }

// EmbeddingAt returns tick k's embedding, aliasing the episode's.
func (a *Aligned) EmbeddingAt(k int) []float32 { return a.Embeddings[a.EmbeddingOf[k]] }

// MaxTicks bounds an aligned episode: 2^22 ticks is 11.6 hours at 100 Hz. A longer span is
// almost surely a wrong stamp, and would otherwise allocate without bound.
const MaxTicks = 1 << 22

// Align samples ep at rate Hz (0 means ep.Meta.Rate). actions says how ep was read: with
// ActionsFromNextState, ep.Actions is ignored and actions come from the next tick's state.
func Align(ep *Episode, rate float64, actions ActionSource) (*Aligned, error) {
	if rate == 0 {
		rate = ep.Meta.Rate
	}
	if !(rate > 0) || math.IsInf(rate, 0) {
		return nil, alignErr(ep.Path, "%w (%v Hz): a bag without episode metadata needs the rate to sample it at: %w", ErrNoRate, rate, ErrConfiguration)
	}
	d := len(ep.Meta.Joints)
	if len(ep.States) == 0 || len(ep.Embeddings) == 0 || (actions == ActionsFromCommand && len(ep.Actions) == 0) {
		return nil, alignErr(ep.Path, "a stream is empty: %w", ErrEmpty)
	}
	start := maxTime(ep.States[0].Stamp, ep.Embeddings[0].Stamp)
	end := ep.States[len(ep.States)-1].Stamp
	if actions == ActionsFromCommand {
		start = maxTime(start, ep.Actions[0].Stamp)
		end = minTime(end, ep.Actions[len(ep.Actions)-1].Stamp)
	}
	period := 1e9 / rate // ns
	tick := func(k int) time.Time { return start.Add(time.Duration(math.Round(float64(k) * period))) }
	if end.Before(start) {
		return nil, alignErr(ep.Path, "streams do not overlap in time: %w", ErrEmpty)
	}
	span := float64(end.Sub(start)) / period
	if span > MaxTicks {
		return nil, alignErr(ep.Path, "streams span %v, %.0f ticks at %g Hz, above MaxTicks: %w", end.Sub(start), span, rate, ErrShape)
	}
	n := int(math.Floor(span+1e-9)) + 1
	for n > 0 && tick(n-1).After(end) { // guard the rounding of the floor above
		n--
	}
	if actions == ActionsFromNextState {
		n-- // tick n-1 needs tick n's state
	}
	if n > MaxTicks {
		return nil, alignErr(ep.Path, "streams span %v, %d ticks at %g Hz, above MaxTicks: %w", end.Sub(start), n, rate, ErrShape)
	}
	if n <= 0 {
		return nil, alignErr(ep.Path, "episode shorter than one control period: %w", ErrEmpty)
	}
	e0 := &ep.Embeddings[0]
	a := &Aligned{Path: ep.Path, Meta: ep.Meta, Start: start, Rate: rate, N: n, D: d,
		Tokens: e0.Tokens, Width: e0.Width,
		State: make([]float64, n*d), Action: make([]float64, n*d), EmbeddingOf: make([]int32, n),
		Embeddings: make([][]float32, len(ep.Embeddings))}
	for i := range ep.Embeddings {
		e := &ep.Embeddings[i]
		if e.Tokens != a.Tokens || e.Width != a.Width || len(e.Data) != e.Tokens*e.Width {
			return nil, alignErr(ep.Path, "embedding %d is %d x %d, the first %d x %d: %w", i, e.Tokens, e.Width, a.Tokens, a.Width, ErrShape)
		}
		a.Embeddings[i] = e.Data
	}
	var si, ei, ai int // latest message at or before the current tick, per stream
	for k := range n {
		t := tick(k)
		for si+1 < len(ep.States) && !ep.States[si+1].Stamp.After(t) {
			si++
		}
		for ei+1 < len(ep.Embeddings) && !ep.Embeddings[ei+1].Stamp.After(t) {
			ei++
		}
		if len(ep.States[si].Position) != d {
			return nil, alignErr(ep.Path, "state %d has %d values for %d joints: %w", si, len(ep.States[si].Position), d, ErrShape)
		}
		copy(a.State[k*d:], ep.States[si].Position)
		a.EmbeddingOf[k] = int32(ei)
		if actions == ActionsFromCommand {
			for ai+1 < len(ep.Actions) && !ep.Actions[ai+1].Stamp.After(t) {
				ai++
			}
			if len(ep.Actions[ai].Position) != d {
				return nil, alignErr(ep.Path, "action %d has %d values for %d joints: %w", ai, len(ep.Actions[ai].Position), d, ErrShape)
			}
			copy(a.Action[k*d:], ep.Actions[ai].Position)
		}
	}
	if actions == ActionsFromNextState {
		t := tick(n)
		for si+1 < len(ep.States) && !ep.States[si+1].Stamp.After(t) {
			si++
		}
		copy(a.Action, a.State[d:])
		copy(a.Action[(n-1)*d:], ep.States[si].Position)
	}
	return a, nil
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// Load reads the bag at path and aligns it at the control rate (cfg.Rate, else the metadata's).
func Load(path string, cfg Config) (*Aligned, error) {
	ep, err := Read(path, cfg)
	if err != nil {
		return nil, err
	}
	return Align(ep, cfg.Rate, cfg.Actions)
}

// alignErr is a BagError about the whole file; format ends in ": %w" with a sentinel.
func alignErr(path, format string, args ...any) error {
	return &BagError{Path: path, Offset: -1, Err: fmt.Errorf(format, args...)}
}
