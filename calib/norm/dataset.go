package norm

import (
	"errors"
	"fmt"
	"slices"

	"github.com/flowact/flowact/dataset"
)

// Compute computes a Set over the episodes at paths in one streaming pass: each bag is read and
// aligned at the control rate once (dataset.Load with cfg), every tick's joint positions go into
// the state statistics and its action into the action statistics, and the episode is dropped
// before the next is read, so memory is one episode plus the accumulators. Statistics are per
// tick, not per action chunk (openpi computes them over chunks, where end-of-episode padding
// repeats the last action; per tick weighs every recorded action once). bins is as in
// NewAccumulator.
//
// The first good episode fixes the joint names; an episode with other joints is a bad bag. Bad
// bags are skipped: Compute returns the Set of the good ones together with a dataset.Errors
// listing the bad ones, and fails outright only when no episode is good.
func Compute(paths []string, cfg dataset.Config, bins int) (*Set, error) {
	var state, action *Accumulator
	var joints []string
	var errs dataset.Errors
	for _, p := range paths {
		a, err := dataset.Load(p, cfg)
		if err == nil && joints != nil && !slices.Equal(a.Meta.Joints, joints) {
			err = &dataset.BagError{Path: p, Offset: -1, Err: fmt.Errorf("%w: joints %v, the first episode's %v", dataset.ErrShape, a.Meta.Joints, joints)}
		}
		if err == nil && joints == nil {
			joints = slices.Clone(a.Meta.Joints)
			state = NewAccumulator(a.D, bins, joints)
			action = NewAccumulator(a.D, bins, joints)
		}
		if err == nil {
			err = addAligned(state, action, a)
		}
		if err != nil {
			var be *dataset.BagError
			if !errors.As(err, &be) {
				be = &dataset.BagError{Path: p, Offset: -1, Err: err}
			}
			errs = append(errs, be)
		}
	}
	if state == nil {
		if errs != nil {
			return nil, fmt.Errorf("norm: no usable episode: %w", errs)
		}
		return nil, fmt.Errorf("norm: no episodes")
	}
	s := &Set{Version: Version}
	var err error
	if s.State, err = state.Stats(); err != nil {
		return nil, err
	}
	if s.Action, err = action.Stats(); err != nil {
		return nil, err
	}
	if errs != nil {
		return s, errs
	}
	return s, nil
}

// addAligned adds every tick of a; the accumulators are untouched when a has a bad value, so a
// bad episode does not leave half its ticks behind.
func addAligned(state, action *Accumulator, a *dataset.Aligned) error {
	for _, v := range [][]float64{a.State, a.Action} {
		for i, x := range v {
			if x != x || x > 1e300 || x < -1e300 {
				return &dataset.BagError{Path: a.Path, Offset: -1, Err: fmt.Errorf("%w: tick %d joint %d is %v", ErrNotFinite, i/a.D, i%a.D, x)}
			}
		}
	}
	for k := range a.N {
		if err := state.Add(a.StateAt(k)); err != nil {
			return err
		}
		if err := action.Add(a.ActionAt(k)); err != nil {
			return err
		}
	}
	return nil
}
