package norm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
)

// Version is the JSON format version that Encode writes and Decode accepts.
const Version = 1

// Set is the normalization artifact of a policy: statistics of the joint state (the expert's
// proprioceptive input) and of the actions (its output). Its JSON form is
//
//	{"version": 1,
//	 "state":  {"count": n, "names": [...], "mean": [...], "std": [...], "q01": [...], "q99": [...], "min": [...], "max": [...]},
//	 "action": {...}}
type Set struct {
	Version int   `json:"version"`
	State   Stats `json:"state"`
	Action  Stats `json:"action"`
}

// SetOf returns the Set of the statistics of a state and an action accumulator, validated.
func SetOf(state, action *Accumulator) (*Set, error) {
	st, err := state.Stats()
	if err != nil {
		return nil, fmt.Errorf("norm: state: %w", err)
	}
	at, err := action.Stats()
	if err != nil {
		return nil, fmt.Errorf("norm: action: %w", err)
	}
	s := &Set{Version: Version, State: st, Action: at}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return s, nil
}

// Validate checks the version and both Stats.
func (s *Set) Validate() error {
	if s.Version != Version {
		return fmt.Errorf("%w %d (this build reads version %d)", ErrVersion, s.Version, Version)
	}
	if err := s.State.Validate(); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	if err := s.Action.Validate(); err != nil {
		return fmt.Errorf("action: %w", err)
	}
	return nil
}

// Check reports whether s fits a policy with the given state and action dimensions.
func (s *Set) Check(stateDim, actionDim int) error {
	if d := s.State.Dim(); d != stateDim {
		return fmt.Errorf("%w: state statistics have %d dimensions, the policy %d", ErrDim, d, stateDim)
	}
	if d := s.Action.Dim(); d != actionDim {
		return fmt.Errorf("%w: action statistics have %d dimensions, the policy %d", ErrDim, d, actionDim)
	}
	return nil
}

// CheckNames reports whether the dimension names recorded in s (when present) are names, in
// order, for both state and action: statistics of one joint order applied to another would
// normalize every joint with another joint's scale.
func (s *Set) CheckNames(names []string) error {
	for _, st := range []struct {
		what string
		s    *Stats
	}{{"state", &s.State}, {"action", &s.Action}} {
		if st.s.Names == nil {
			continue
		}
		if !slices.Equal(st.s.Names, names) {
			return fmt.Errorf("%w: %s statistics are for %v, the policy's joints are %v", ErrDim, st.what, st.s.Names, names)
		}
	}
	return nil
}

// Encode validates s and returns its indented JSON form, with Version set.
func (s *Set) Encode() ([]byte, error) {
	c := *s
	c.Version = Version
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return json.MarshalIndent(&c, "", "  ")
}

// Decode parses and validates a Set strictly: unknown fields, trailing data, a missing or unknown
// version, disagreeing lengths, non-finite or inconsistent values are errors.
func Decode(data []byte) (*Set, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var s Set
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("norm: decode: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("norm: decode: trailing data after the statistics")
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return &s, nil
}
