package train

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/flowact/flowact/expert/ckpt"
	"github.com/flowact/flowact/expert/nn"
	"github.com/flowact/flowact/expert/path"
)

// sameJSON reports whether two JSON values are equal after compaction (empty counts as {}).
func sameJSON(a, b []byte) bool {
	norm := func(x []byte) string {
		var buf bytes.Buffer
		if len(bytes.TrimSpace(x)) == 0 || json.Compact(&buf, x) != nil {
			return "{}"
		}
		return buf.String()
	}
	return norm(a) == norm(b)
}

// SaveInfo is what a checkpoint records beyond the trainer's own state.
type SaveInfo struct {
	Norm     json.RawMessage // normalization statistics (opaque; the policy decodes them)
	DataHash string          // hash of the training data, as the data source reports it
	Note     string
}

// Train-state tensor name prefixes: the raw weights, and AdamW's first and second moments.
const (
	rawPrefix = "raw/"
	mPrefix   = "adam.m/"
	vPrefix   = "adam.v/"
)

// Save writes a checkpoint to dir: the weights for inference (the moving average when EMA is on,
// else the raw weights) and the train state a run resumes from (raw weights and AdamW moments).
func (t *Trainer) Save(dir string, info SaveInfo) error {
	cfgJSON, err := nn.ConfigJSON(t.net)
	if err != nil {
		return err
	}
	weights := nn.Tensors(t.net)
	var state []ckpt.Tensor
	for i, w := range weights {
		state = append(state,
			ckpt.Tensor{Name: rawPrefix + w.Name, Shape: w.Shape, Data: w.Data},
			ckpt.Tensor{Name: mPrefix + w.Name, Shape: w.Shape, Data: t.m[i]},
			ckpt.Tensor{Name: vPrefix + w.Name, Shape: w.Shape, Data: t.v[i]})
		if t.ema != nil {
			weights[i].Data = t.ema[i]
		}
	}
	m := ckpt.Manifest{
		Architecture: t.net.Arch(),
		Config:       cfgJSON,
		Scheduler:    component(t.cfg.Scheduler),
		TimeDist:     component(t.cfg.TimeDist),
		Norm:         info.Norm,
		Provenance: ckpt.Provenance{
			DataHash: info.DataHash, Seed: t.cfg.Seed, Steps: t.step,
			Date: t.cfg.Now().UTC(), Note: info.Note,
		},
	}
	return ckpt.Save(dir, m, weights, state)
}

// Resume loads a checkpoint written by Save and returns its network and a trainer continuing
// from its step with cfg (which should be the run's original config: the run then repeats an
// uninterrupted one bit for bit). A nil cfg.Scheduler or cfg.TimeDist is taken from the
// manifest (path.NewScheduler, path.NewTimeDist); a given one must match it.
func Resume(dir string, cfg Config) (*Trainer, nn.Net, error) {
	c, err := ckpt.Load(dir)
	if err != nil {
		return nil, nil, err
	}
	if c.Train == nil {
		return nil, nil, fmt.Errorf("train: resume %s: no train state: %w", dir, ckpt.ErrMissingTensor)
	}
	net, err := nn.Load(c, 1)
	if err != nil {
		return nil, nil, err
	}
	fail := func(err error) (*Trainer, nn.Net, error) {
		net.Close()
		return nil, nil, err
	}
	man := c.Manifest
	if cfg.Scheduler == nil {
		if cfg.Scheduler, err = path.NewScheduler(man.Scheduler.Name, man.Scheduler.Params); err != nil {
			return fail(fmt.Errorf("train: resume: %w", err))
		}
	}
	if cfg.TimeDist == nil {
		if cfg.TimeDist, err = path.NewTimeDist(man.TimeDist.Name, man.TimeDist.Params); err != nil {
			return fail(fmt.Errorf("train: resume: %w", err))
		}
	}
	t, err := New(net, cfg)
	if err != nil {
		return fail(err)
	}
	for _, x := range []struct {
		what      string
		got, want ckpt.Component
	}{{"scheduler", component(t.cfg.Scheduler), man.Scheduler}, {"time distribution", component(t.cfg.TimeDist), man.TimeDist}} {
		if x.got.Name != x.want.Name || !sameJSON(x.got.Params, x.want.Params) {
			return fail(fmt.Errorf("train: resume: %s %s%s, checkpoint trained with %s%s: %w", x.what, x.got.Name, x.got.Params, x.want.Name, x.want.Params, ErrConfig))
		}
	}
	for i, p := range net.Params() {
		if t.ema != nil {
			copy(t.ema[i], p.Data) // the weights file holds the moving average
		}
		for _, s := range []struct {
			prefix string
			dst    []float32
		}{{rawPrefix, p.Data}, {mPrefix, t.m[i]}, {vPrefix, t.v[i]}} {
			d, err := c.TrainTensor(s.prefix+p.Name, p.Shape...)
			if err != nil {
				return fail(err)
			}
			copy(s.dst, d)
		}
	}
	net.Repack()
	t.step = c.Manifest.Provenance.Steps
	if t.step > t.cfg.Steps {
		return fail(fmt.Errorf("train: resume at step %d past the run's %d steps: %w", t.step, t.cfg.Steps, ErrConfig))
	}
	return t, net, nil
}
