package train

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

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
	// DType is how the weights file stores the weights: ckpt.DTypeF32 ("" too) or
	// ckpt.DTypeF16. The train state is always F32 and holds the moving average itself, so a
	// run resumed from an F16 checkpoint still repeats the uninterrupted one bit for bit.
	DType string
}

// Train-state tensor name prefixes: the raw weights, and AdamW's first and second moments.
const (
	rawPrefix = "raw/"
	mPrefix   = "adam.m/"
	vPrefix   = "adam.v/"
	emaPrefix = "ema/"
)

// Temporary directories inside a checkpoint directory while Save replaces its files: saveNew
// holds a checkpoint being written, saveDone one completely written whose files are being
// moved over the directory's.
const (
	saveNew  = ".save.new"
	saveDone = ".save.done"
)

// Save writes a checkpoint to dir: the weights for inference (the moving average when EMA is on,
// else the raw weights) and the train state a run resumes from (raw weights, AdamW moments and
// the moving average).
//
// It replaces the checkpoint already in dir as a unit: the new one is written completely (and
// synced) into dir/.save.new, which is then renamed dir/.save.done; only then are its files moved
// over dir's. An error or a full disk while writing leaves the last checkpoint as it was; a crash
// while moving leaves dir/.save.done, whose files Resume (and the next Save) move in first.
func (t *Trainer) Save(dir string, info SaveInfo) error {
	if err := finishSave(dir); err != nil {
		return err
	}
	tmp := filepath.Join(dir, saveNew)
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("train: save: %w", err)
	}
	if err := t.save(tmp, info); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	if err := syncDir(tmp, true); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, saveDone)); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("train: save: %w", err)
	}
	return finishSave(dir)
}

// finishSave moves the files of a completely written checkpoint, dir/.save.done, over dir's
// (the manifest last) and removes it; without one it does nothing.
func finishSave(dir string) error {
	done := filepath.Join(dir, saveDone)
	if _, err := os.Stat(done); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	for _, name := range []string{ckpt.TrainStateFile, ckpt.WeightsFile, ckpt.ManifestFile} {
		err := os.Rename(filepath.Join(done, name), filepath.Join(dir, name))
		if err != nil && !errors.Is(err, fs.ErrNotExist) { // moved before a crash
			return fmt.Errorf("train: save: %w", err)
		}
	}
	if err := syncDir(dir, false); err != nil {
		return err
	}
	if err := os.RemoveAll(done); err != nil {
		return fmt.Errorf("train: save: %w", err)
	}
	return nil
}

// syncDir flushes dir's entries (and, with files, its regular files) to the disk.
func syncDir(dir string, files bool) error {
	if files {
		ents, err := os.ReadDir(dir)
		if err != nil {
			return fmt.Errorf("train: save: %w", err)
		}
		for _, e := range ents {
			if e.Type().IsRegular() {
				if err := syncFile(filepath.Join(dir, e.Name())); err != nil {
					return err
				}
			}
		}
	}
	return syncFile(dir)
}

func syncFile(name string) error {
	f, err := os.Open(name)
	if err != nil {
		return fmt.Errorf("train: save: %w", err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("train: save: %w", err)
	}
	return nil
}

// save writes the checkpoint's files into dir.
func (t *Trainer) save(dir string, info SaveInfo) error {
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
			state = append(state, ckpt.Tensor{Name: emaPrefix + w.Name, Shape: w.Shape, Data: t.ema[i]})
		}
	}
	m := ckpt.Manifest{
		Architecture: t.net.Arch(),
		Config:       cfgJSON,
		Scheduler:    component(t.cfg.Scheduler),
		TimeDist:     component(t.cfg.TimeDist),
		Norm:         info.Norm,
		Objective:    t.cfg.Objective.String(),
		Provenance: ckpt.Provenance{
			DataHash: info.DataHash, Seed: t.cfg.Seed, Steps: t.step,
			Date: t.cfg.Now().UTC(), Note: info.Note,
		},
		Weights: ckpt.FileRef{DType: info.DType},
	}
	if m.Weights.DType == "" {
		m.Weights.DType = ckpt.DTypeF32
	}
	return ckpt.Save(dir, m, weights, state)
}

// Resume loads a checkpoint written by Save and returns its network and a trainer continuing
// from its step with cfg (which should be the run's original config: the run then repeats an
// uninterrupted one bit for bit). A nil cfg.Scheduler or cfg.TimeDist is taken from the
// manifest (path.NewScheduler, path.NewTimeDist); a given one must match it, and so must
// cfg.Objective. A save that a
// crash interrupted after its checkpoint was completely written is finished first (see Save).
func Resume(dir string, cfg Config) (*Trainer, nn.Net, error) {
	if err := finishSave(dir); err != nil {
		return nil, nil, err
	}
	c, err := ckpt.Load(dir)
	if err != nil {
		return nil, nil, err
	}
	if c.Train == nil {
		return nil, nil, fmt.Errorf("train: resume %s: no train state: %w", dir, ckpt.ErrMissingTensor)
	}
	if c.Manifest.TimeConvention != ckpt.TimeConvention {
		// The optimizer's moments belong to the weights before conversion: a run in the other
		// convention cannot continue here bit for bit.
		return nil, nil, fmt.Errorf("train: resume %s: time convention %q: only a %q run resumes (import it and train anew): %w",
			dir, c.Manifest.TimeConvention, ckpt.TimeConvention, ckpt.ErrConvention)
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
	if obj, err := ParseObjective(man.Objective); err != nil {
		return fail(fmt.Errorf("train: resume: %w", err))
	} else if obj != cfg.Objective {
		return fail(fmt.Errorf("train: resume: objective %s, checkpoint trained with %s: %w", cfg.Objective, obj, ErrConfig))
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
			// The train state holds the moving average (checkpoints before it did hold it
			// only in the weights file, then always F32).
			d, err := c.TrainTensor(emaPrefix+p.Name, p.Shape...)
			switch {
			case err == nil:
				copy(t.ema[i], d)
			case errors.Is(err, ckpt.ErrMissingTensor):
				copy(t.ema[i], p.Data)
			default:
				return fail(err)
			}
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
