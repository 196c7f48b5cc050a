package ckpt

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"time"
)

// Errors returned (wrapped) by this package and by the network loaders that use it.
var (
	ErrFormat        = errors.New("malformed checkpoint")
	ErrTruncated     = errors.New("truncated file")
	ErrDType         = errors.New("unsupported dtype")
	ErrShape         = errors.New("wrong tensor shape")
	ErrMissingTensor = errors.New("missing tensor")
	ErrExtraTensor   = errors.New("unexpected tensor")
	ErrChecksum      = errors.New("checksum mismatch")
	ErrVersion       = errors.New("unknown format version")
	ErrArchitecture  = errors.New("unknown architecture")
	ErrConvention    = errors.New("unknown time convention")
)

// Version is the manifest format version this package writes and the only one it reads.
const Version = 1

// TimeConvention is the time convention of flowact checkpoints: flow time 0 is noise and 1 is
// data. Save always writes it.
const TimeConvention = "t0_noise"

// Objectives of a manifest (Manifest.Objective).
const (
	ObjectiveFlowMatching = "flow_matching"
	ObjectiveRegression   = "regression"
)

// ErrObjective reports a manifest objective this build does not know.
var ErrObjective = errors.New("unknown training objective")

// TimeConventionT1Noise is the opposite convention, openpi's and LeRobot's (tau = 1 is noise,
// tau = 0 data; the network predicts d x / d tau). A manifest may state it: the network loader
// (package nn) converts such a network as it loads it (nn.ReverseTime: t = 1 - tau, v = -v_tau),
// and `flowact import` writes it as a flowact checkpoint.
const TimeConventionT1Noise = "t1_noise"

// File names inside a checkpoint directory.
const (
	ManifestFile   = "manifest.json"
	WeightsFile    = "model.safetensors"
	TrainStateFile = "train_state.safetensors"
)

// Manifest describes a checkpoint.
type Manifest struct {
	Version int `json:"version"`
	// Architecture names the network ("mlp", "transformer"); Config holds its hyperparameters and
	// shapes as the network package encodes them.
	Architecture string          `json:"architecture"`
	Config       json.RawMessage `json:"config"`
	// Scheduler is the probability path the network was trained on; TimeDist the distribution of
	// training times.
	Scheduler Component `json:"scheduler"`
	TimeDist  Component `json:"time_dist"`
	// Objective is what the network was trained to output: ObjectiveFlowMatching (also when
	// absent), the velocity of the path, or ObjectiveRegression, the chunk itself from
	// x = 0 at t = 0 (the deterministic baseline; the scheduler and time distribution are then
	// unused).
	Objective string `json:"objective,omitempty"`
	// TimeConvention is TimeConvention, or TimeConventionT1Noise for a network trained with
	// time running the other way (converted by the loader).
	TimeConvention string `json:"time_convention"`
	// Norm holds the normalization statistics, opaque here (the policy decodes them); may be empty.
	Norm       json.RawMessage `json:"norm,omitempty"`
	Provenance Provenance      `json:"provenance"`
	// Weights names the weights file and its checksum; TrainState, if set, the optimizer state
	// a training run resumes from.
	Weights    FileRef  `json:"weights"`
	TrainState *FileRef `json:"train_state,omitempty"`
}

// Component names a scheduler or distribution and its parameters (JSON, possibly empty).
type Component struct {
	Name   string          `json:"name"`
	Params json.RawMessage `json:"params,omitempty"`
}

// Provenance records where a checkpoint came from.
type Provenance struct {
	DataHash string    `json:"data_hash,omitempty"` // hash of the training data, as its source reports it
	Seed     uint64    `json:"seed"`
	Steps    int       `json:"steps"`
	Date     time.Time `json:"date"`
	Note     string    `json:"note,omitempty"`
}

// FileRef names a file of the checkpoint directory and its SHA-256 (lowercase hex).
type FileRef struct {
	File   string `json:"file"`
	SHA256 string `json:"sha256"`
	// DType is what every tensor of the file is stored as: DTypeF32 (also when absent) or
	// DTypeF16. Loading converts to float32 either way.
	DType string `json:"dtype,omitempty"`
}

// ParseManifest decodes and validates a manifest. Unknown fields are errors.
func ParseManifest(b []byte) (*Manifest, error) {
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("ckpt: manifest: %v: %w", err, ErrFormat)
	}
	if dec.More() {
		return nil, fmt.Errorf("ckpt: manifest: trailing data after the JSON object: %w", ErrFormat)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// Validate checks the manifest's fields (not the files it names).
func (m *Manifest) Validate() error {
	switch {
	case m.Version != Version:
		return fmt.Errorf("ckpt: manifest version %d, this build reads %d: %w", m.Version, Version, ErrVersion)
	case m.TimeConvention != TimeConvention && m.TimeConvention != TimeConventionT1Noise:
		return fmt.Errorf("ckpt: manifest time convention %q, want %q (or %q, converted at load): %w", m.TimeConvention, TimeConvention, TimeConventionT1Noise, ErrConvention)
	case m.Architecture == "":
		return fmt.Errorf("ckpt: manifest has no architecture: %w", ErrArchitecture)
	case len(m.Config) == 0:
		return fmt.Errorf("ckpt: manifest has no config: %w", ErrFormat)
	case m.Scheduler.Name == "":
		return fmt.Errorf("ckpt: manifest has no scheduler name: %w", ErrFormat)
	case m.TimeDist.Name == "":
		return fmt.Errorf("ckpt: manifest has no time distribution name: %w", ErrFormat)
	case m.Objective != "" && m.Objective != ObjectiveFlowMatching && m.Objective != ObjectiveRegression:
		return fmt.Errorf("ckpt: manifest objective %q, want %s or %s: %w", m.Objective, ObjectiveFlowMatching, ObjectiveRegression, ErrObjective)
	case m.Objective == ObjectiveRegression && m.TimeConvention != TimeConvention:
		// A regressor has no flow time: the conversion at load would turn its output around.
		return fmt.Errorf("ckpt: manifest objective %s with time convention %q: a regressor has no flow time to convert: %w", m.Objective, m.TimeConvention, ErrConvention)
	}
	if err := m.Weights.validate("weights"); err != nil {
		return err
	}
	if m.TrainState != nil {
		if err := m.TrainState.validate("train_state"); err != nil {
			return err
		}
	}
	return nil
}

func (r FileRef) validate(what string) error {
	if r.File == "" || !fs.ValidPath(r.File) || path.Base(r.File) != r.File {
		return fmt.Errorf("ckpt: manifest %s file %q is not a plain file name: %w", what, r.File, ErrFormat)
	}
	if b, err := hex.DecodeString(r.SHA256); err != nil || len(b) != sha256.Size {
		return fmt.Errorf("ckpt: manifest %s sha256 %q is not 64 hex digits: %w", what, r.SHA256, ErrFormat)
	}
	if dtypeSize(r.DType) == 0 {
		return fmt.Errorf("ckpt: manifest %s dtype %q, want %s or %s: %w", what, r.DType, DTypeF32, DTypeF16, ErrDType)
	}
	return nil
}

// Checkpoint is a loaded checkpoint: its manifest and its tensors by name.
type Checkpoint struct {
	Manifest Manifest
	Tensors  map[string]Tensor
	// Train holds the optimizer state tensors if the checkpoint has them (else nil).
	Train map[string]Tensor
}

// Tensor returns the data of tensor name, checking its shape.
func (c *Checkpoint) Tensor(name string, shape ...int) ([]float32, error) {
	return lookup(c.Tensors, WeightsFile, name, shape)
}

func lookup(ts map[string]Tensor, file, name string, shape []int) ([]float32, error) {
	t, ok := ts[name]
	if !ok {
		return nil, fmt.Errorf("ckpt: %s: tensor %q: %w", file, name, ErrMissingTensor)
	}
	if !equalShape(t.Shape, shape) {
		return nil, fmt.Errorf("ckpt: %s: tensor %q has shape %v, want %v: %w", file, name, t.Shape, shape, ErrShape)
	}
	return t.Data, nil
}

// TrainTensor returns the data of optimizer-state tensor name, checking its shape.
func (c *Checkpoint) TrainTensor(name string, shape ...int) ([]float32, error) {
	if c.Train == nil {
		return nil, fmt.Errorf("ckpt: no %s: tensor %q: %w", TrainStateFile, name, ErrMissingTensor)
	}
	return lookup(c.Train, TrainStateFile, name, shape)
}

func equalShape(a, b []int) bool {
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

// Save writes a checkpoint to directory dir (created if missing): the weights, stored as
// m.Weights.DType (F32 when unset), the optional train state (F32, so that a resumed run
// continues bit for bit), and the manifest with their checksums filled in. m's Version,
// TimeConvention and file names and checksums are set by Save.
func Save(dir string, m Manifest, weights, train []Tensor) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("ckpt: save: %w", err)
	}
	if dtypeSize(m.Weights.DType) == 0 {
		return fmt.Errorf("ckpt: save: weights dtype %q, want %s or %s: %w", m.Weights.DType, DTypeF32, DTypeF16, ErrDType)
	}
	m.Version = Version
	m.TimeConvention = TimeConvention
	ref, err := writeTensors(filepath.Join(dir, WeightsFile), weights, m.Weights.DType)
	if err != nil {
		return err
	}
	m.Weights = ref
	m.TrainState = nil
	if train != nil {
		ref, err := writeTensors(filepath.Join(dir, TrainStateFile), train, "")
		if err != nil {
			return err
		}
		m.TrainState = &ref
	}
	if err := m.Validate(); err != nil {
		return fmt.Errorf("ckpt: save: %w", err)
	}
	b, err := json.MarshalIndent(&m, "", "  ")
	if err != nil {
		return fmt.Errorf("ckpt: save: manifest: %w", err)
	}
	return writeFile(filepath.Join(dir, ManifestFile), append(b, '\n'))
}

// writeTensors writes ts, each stored as dtype ("" is F32), to file name.
func writeTensors(name string, ts []Tensor, dtype string) (FileRef, error) {
	ts = slices.Clone(ts)
	for i := range ts {
		ts[i].DType = dtype
	}
	var buf bytes.Buffer
	if err := WriteSafetensors(&buf, ts, map[string]string{"format": "pt"}); err != nil {
		return FileRef{}, err
	}
	sum := sha256.Sum256(buf.Bytes())
	if err := writeFile(name, buf.Bytes()); err != nil {
		return FileRef{}, err
	}
	return FileRef{File: filepath.Base(name), SHA256: hex.EncodeToString(sum[:]), DType: dtype}, nil
}

// writeFile writes through a temporary file and a rename, so a reader never sees half a file.
func writeFile(name string, b []byte) error {
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("ckpt: save: %w", err)
	}
	if err := os.Rename(tmp, name); err != nil {
		return fmt.Errorf("ckpt: save: %w", err)
	}
	return nil
}

// Load reads the checkpoint in directory dir.
func Load(dir string) (*Checkpoint, error) { return LoadFS(os.DirFS(dir), ".") }

// LoadFS reads the checkpoint in directory dir of fsys (for example an embedded file system). It
// checks the manifest, each file's SHA-256 and the safetensors structure.
func LoadFS(fsys fs.FS, dir string) (*Checkpoint, error) {
	mb, err := fs.ReadFile(fsys, path.Join(dir, ManifestFile))
	if err != nil {
		return nil, fmt.Errorf("ckpt: %w", err)
	}
	m, err := ParseManifest(mb)
	if err != nil {
		return nil, err
	}
	c := &Checkpoint{Manifest: *m}
	if c.Tensors, err = readRef(fsys, dir, m.Weights); err != nil {
		return nil, err
	}
	if m.TrainState != nil {
		if c.Train, err = readRef(fsys, dir, *m.TrainState); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func readRef(fsys fs.FS, dir string, ref FileRef) (map[string]Tensor, error) {
	b, err := fs.ReadFile(fsys, path.Join(dir, ref.File))
	if err != nil {
		return nil, fmt.Errorf("ckpt: %w", err)
	}
	sum := sha256.Sum256(b)
	if got := hex.EncodeToString(sum[:]); got != ref.SHA256 {
		return nil, fmt.Errorf("ckpt: %s: sha256 %s, manifest says %s: %w", ref.File, got, ref.SHA256, ErrChecksum)
	}
	ts, _, err := ReadSafetensors(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ref.File, err)
	}
	out := make(map[string]Tensor, len(ts))
	for _, t := range ts {
		if want := orF32(ref.DType); t.DType != want {
			return nil, fmt.Errorf("ckpt: %s: tensor %q is stored as %s, the manifest says %s: %w", ref.File, t.Name, t.DType, want, ErrDType)
		}
		out[t.Name] = t
	}
	return out, nil
}
