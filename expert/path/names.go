package path

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// ErrUnknown is wrapped by the error for an unknown scheduler or distribution name.
var ErrUnknown = errors.New("unknown name")

// NewScheduler returns the scheduler named by its Go type name (CondOT, Polynomial, Cosine,
// LinearVP, VP, VE) with its exported fields decoded from params, a JSON object (empty or nil for
// the zero value). This is how a checkpoint manifest stores it (expert/ckpt.Component). Unknown
// names and fields are errors; the result is validated.
func NewScheduler(name string, params []byte) (Scheduler, error) {
	var s Scheduler
	switch name {
	case "CondOT":
		s = CondOT{}
	case "Cosine":
		s = Cosine{}
	case "LinearVP":
		s = LinearVP{}
	case "Polynomial":
		var p Polynomial
		if err := decode(name, params, &p); err != nil {
			return nil, err
		}
		s = p
	case "VP":
		var p VP
		if err := decode(name, params, &p); err != nil {
			return nil, err
		}
		s = p
	case "VE":
		var p VE
		if err := decode(name, params, &p); err != nil {
			return nil, err
		}
		s = p
	default:
		return nil, fmt.Errorf("path: scheduler %q: %w", name, ErrUnknown)
	}
	if name == "CondOT" || name == "Cosine" || name == "LinearVP" {
		if err := decode(name, params, &struct{}{}); err != nil {
			return nil, err
		}
	}
	if v, ok := s.(interface{ Validate() error }); ok {
		if err := v.Validate(); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// NewTimeDist is NewScheduler for training-time distributions (Uniform, LogitNormal, Beta).
func NewTimeDist(name string, params []byte) (TimeDist, error) {
	switch name {
	case "Uniform":
		if err := decode(name, params, &struct{}{}); err != nil {
			return nil, err
		}
		return Uniform{}, nil
	case "LogitNormal":
		var d LogitNormal
		if err := decode(name, params, &d); err != nil {
			return nil, err
		}
		if err := d.Validate(); err != nil {
			return nil, err
		}
		return d, nil
	case "Beta":
		var d Beta
		if err := decode(name, params, &d); err != nil {
			return nil, err
		}
		if err := d.Validate(); err != nil {
			return nil, err
		}
		return d, nil
	}
	return nil, fmt.Errorf("path: time distribution %q: %w", name, ErrUnknown)
}

// decode strictly decodes a JSON object into v; nil, empty or "null" params leave v as it is.
func decode(name string, params []byte, v any) error {
	p := bytes.TrimSpace(params)
	if len(p) == 0 || string(p) == "null" {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(p))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("path: %s params %s: %w: %w", name, p, ErrConfig, err)
	}
	if dec.More() {
		return fmt.Errorf("path: %s params %s: trailing data: %w", name, p, ErrConfig)
	}
	return nil
}
