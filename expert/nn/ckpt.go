package nn

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/flowact/flowact/expert/ckpt"
)

// Tensors returns net's weights as checkpoint tensors; their data aliases the network.
func Tensors(net Net) []ckpt.Tensor {
	ps := net.Params()
	ts := make([]ckpt.Tensor, len(ps))
	for i, p := range ps {
		ts[i] = ckpt.Tensor{Name: p.Name, Shape: p.Shape, Data: p.Data}
	}
	return ts
}

// ConfigJSON returns the JSON of net's config, as a checkpoint manifest stores it.
func ConfigJSON(net Net) (json.RawMessage, error) {
	switch n := net.(type) {
	case *MLP:
		return json.Marshal(n.Config())
	case *Transformer:
		return json.Marshal(n.Config())
	}
	return nil, fmt.Errorf("nn: config of %T: %w", net, ckpt.ErrArchitecture)
}

// New builds an untrained network of the given architecture from its config JSON (strict:
// unknown fields are errors), with threads threads. r drives the initialization.
func New(arch string, config json.RawMessage, threads int, r *rand.Rand) (Net, error) {
	return build(arch, config, threads, r, false)
}

// build is New; dry builds only the parameter list (names and shapes, no data, no goroutine).
func build(arch string, config json.RawMessage, threads int, r *rand.Rand, dry bool) (Net, error) {
	dec := json.NewDecoder(bytes.NewReader(config))
	dec.DisallowUnknownFields()
	switch arch {
	case ArchMLP:
		var c MLPConfig
		if err := dec.Decode(&c); err != nil {
			return nil, fmt.Errorf("nn: mlp config: %v: %w", err, ckpt.ErrFormat)
		}
		c.Threads = threads
		return newMLP(c, r, dry)
	case ArchTransformer:
		var c TransformerConfig
		if err := dec.Decode(&c); err != nil {
			return nil, fmt.Errorf("nn: transformer config: %v: %w", err, ckpt.ErrFormat)
		}
		c.Threads = threads
		return newTransformer(c, r, dry)
	}
	return nil, fmt.Errorf("nn: architecture %q: %w", arch, ckpt.ErrArchitecture)
}

// Load builds the network a checkpoint describes and sets its weights; a checkpoint in the t = 1
// noise convention (ckpt.TimeConventionT1Noise) is converted to flowact's (ReverseTime), so the
// network returned always has t = 0 as noise. Every tensor the
// architecture needs must be present with its shape, and no other tensor may be: errors wrap
// ckpt.ErrMissingTensor, ckpt.ErrShape, ckpt.ErrExtraTensor or ckpt.ErrArchitecture.
func Load(c *ckpt.Checkpoint, threads int) (Net, error) {
	// Check the layout against the tensors before allocating anything: a config is data, and
	// one with absurd sizes must fail here, not exhaust memory.
	layout, err := build(c.Manifest.Architecture, c.Manifest.Config, threads, nil, true)
	if err != nil {
		return nil, err
	}
	if err := checkLayout(layout, c.Tensors); err != nil {
		return nil, err
	}
	if err := checkFinite(c.Tensors); err != nil {
		return nil, err
	}
	net, err := New(c.Manifest.Architecture, c.Manifest.Config, threads, rand.New(rand.NewPCG(0, 0)))
	if err != nil {
		return nil, err
	}
	if err := SetWeights(net, c.Tensors); err != nil {
		net.Close()
		return nil, err
	}
	if c.Manifest.TimeConvention == ckpt.TimeConventionT1Noise {
		// Trained with tau = 1 as noise: flowact's field is v(x, t) = -v_tau(x, 1 - t).
		if err := ReverseTime(net); err != nil {
			net.Close()
			return nil, err
		}
	}
	return net, nil
}

// SetWeights copies the tensors into net's weights, requiring exactly net's names and shapes.
func SetWeights(net Net, ts map[string]ckpt.Tensor) error {
	if err := checkLayout(net, ts); err != nil {
		return err
	}
	for _, p := range net.Params() {
		copy(p.Data, ts[p.Name].Data)
	}
	net.Repack()
	return nil
}

// checkFinite requires every weight to be finite; the error names the first bad one (in name
// order) and its index.
func checkFinite(ts map[string]ckpt.Tensor) error {
	for _, name := range slices.Sorted(maps.Keys(ts)) {
		for i, v := range ts[name].Data {
			if f := float64(v); math.IsNaN(f) || math.IsInf(f, 0) {
				return fmt.Errorf("%w: tensor %q value %d is %v", ErrNotFinite, name, i, v)
			}
		}
	}
	return nil
}

// checkLayout requires ts to hold exactly net's tensor names with their shapes.
func checkLayout(net Net, ts map[string]ckpt.Tensor) error {
	ps := net.Params()
	for _, p := range ps {
		t, ok := ts[p.Name]
		if !ok {
			return fmt.Errorf("nn: %s: tensor %q: %w", net.Arch(), p.Name, ckpt.ErrMissingTensor)
		}
		if !sameShape(t.Shape, p.Shape) {
			return fmt.Errorf("nn: %s: tensor %q has shape %v, want %v: %w", net.Arch(), p.Name, t.Shape, p.Shape, ckpt.ErrShape)
		}
	}
	if len(ts) != len(ps) {
		known := make(map[string]bool, len(ps))
		for _, p := range ps {
			known[p.Name] = true
		}
		for name := range ts {
			if !known[name] {
				return fmt.Errorf("nn: %s: tensor %q: %w", net.Arch(), name, ckpt.ErrExtraTensor)
			}
		}
	}
	return nil
}

// LoadDir loads the checkpoint in directory dir (see ckpt.Load and Load).
func LoadDir(dir string, threads int) (Net, *ckpt.Manifest, error) {
	c, err := ckpt.Load(dir)
	if err != nil {
		return nil, nil, err
	}
	net, err := Load(c, threads)
	if err != nil {
		return nil, nil, err
	}
	return net, &c.Manifest, nil
}

func sameShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
