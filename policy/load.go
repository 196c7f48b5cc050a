package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"

	"github.com/flowact/flowact/calib/norm"
	"github.com/flowact/flowact/expert"
	"github.com/flowact/flowact/expert/ckpt"
	"github.com/flowact/flowact/expert/nn"
	"github.com/flowact/flowact/expert/ode"
	"github.com/flowact/flowact/robot"
)

// CheckpointError is an error of Load about the checkpoint itself or its fit to the robot: a
// missing or malformed file (wrapping expert/ckpt's sentinels), absent or inconsistent
// normalization statistics, another joint count or joint order.
type CheckpointError struct {
	Name string // the checkpoint's name: LoadConfig.Name, else its directory
	Err  error
}

func (e *CheckpointError) Error() string {
	return "policy: checkpoint " + e.Name + ": " + e.Err.Error()
}

func (e *CheckpointError) Unwrap() error { return e.Err }

// StateInput is what a network's state input holds, recorded in its checkpoint
// (NormArtifact.State).
type StateInput uint8

const (
	// Joints is the joint positions (rad, model order): D values.
	Joints StateInput = iota
	// JointsEE is the joint positions followed by the end effector's position (m, the robot's
	// root frame, by forward kinematics): D + EEStateDim values. An expert conditioned on a
	// Cartesian goal then compares it with a Cartesian position directly.
	JointsEE
)

// Names of the state inputs in a checkpoint's manifest.
const (
	stateJoints   = "joints"
	stateJointsEE = "joints+ee"
)

// String returns "joints" or "joints+ee".
func (s StateInput) String() string {
	switch s {
	case Joints:
		return stateJoints
	case JointsEE:
		return stateJointsEE
	}
	return fmt.Sprintf("StateInput(%d)", uint8(s))
}

// ParseStateInput parses "joints" or "joints+ee"; "" is Joints (checkpoints from before the
// end-effector input).
func ParseStateInput(s string) (StateInput, error) {
	switch s {
	case "", stateJoints:
		return Joints, nil
	case stateJointsEE:
		return JointsEE, nil
	}
	return 0, fmt.Errorf("policy: state input %q: want %s or %s", s, stateJoints, stateJointsEE)
}

// Dim returns the length of the state input for d joints.
func (s StateInput) Dim(d int) int {
	if s == JointsEE {
		return d + EEStateDim
	}
	return d
}

// NormArtifact is a checkpoint manifest's "norm" (ckpt.Manifest.Norm) as JSON: the statistics
// and the mode they are applied in (normalize -> expert -> unnormalize, package calib/norm),
// the actions' frame and what the state input holds. Training writes it (Normalization.Encode),
// Load reads it (DecodeNormalization).
type NormArtifact struct {
	Mode  norm.Mode       `json:"mode"`
	Stats json.RawMessage `json:"stats"`
	// Frame is the actions' frame: "relative" (offsets from the observed joint positions, what
	// the action statistics are of) or "absolute"; absent in checkpoints from before frames,
	// which are absolute.
	Frame string `json:"frame,omitempty"`
	// State is what the network's state input holds: "joints" (also when absent) or
	// "joints+ee" (StateInput).
	State string `json:"state,omitempty"`
}

// Normalization is a checkpoint's decoded norm artifact.
type Normalization struct {
	Set   *norm.Set
	Mode  norm.Mode
	Frame Frame
	State StateInput
}

// DecodeNormalization decodes a manifest's norm artifact strictly: unknown fields, an unknown
// frame or state input and invalid statistics are errors, and so is an empty artifact (a
// checkpoint without statistics cannot be run).
func DecodeNormalization(raw json.RawMessage) (*Normalization, error) {
	n, err := decodeNormalization(raw)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	return n, nil
}

func decodeNormalization(raw json.RawMessage) (*Normalization, error) {
	if len(raw) == 0 {
		return nil, errors.New("the checkpoint has no normalization statistics")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var a NormArtifact
	if err := dec.Decode(&a); err != nil {
		return nil, fmt.Errorf("norm: %w", err)
	}
	frame, err := ParseFrame(a.Frame)
	if err != nil {
		return nil, err
	}
	state, err := ParseStateInput(a.State)
	if err != nil {
		return nil, err
	}
	set, err := norm.Decode(a.Stats)
	if err != nil {
		return nil, fmt.Errorf("norm: %w", err)
	}
	return &Normalization{Set: set, Mode: a.Mode, Frame: frame, State: state}, nil
}

// Encode returns the norm artifact's JSON, as a checkpoint manifest holds it.
func (n *Normalization) Encode() (json.RawMessage, error) {
	stats, err := n.Set.Encode()
	if err != nil {
		return nil, err
	}
	return json.Marshal(NormArtifact{Mode: n.Mode, Stats: stats, Frame: n.Frame.String(), State: n.State.String()})
}

// SamplerConfig selects a fixed-step ODE solver (package expert/ode) for an expert. The zero
// value is Euler with 10 steps.
type SamplerConfig struct {
	// Solver is euler, midpoint, heun or rk4 (any case); "" means euler.
	Solver string `yaml:"solver"`
	// Steps is the number of uniform steps on [0, 1]; 0 means 10 (openpi's pi0).
	Steps int `yaml:"steps"`
}

// method returns the solver's method, or false for an unknown name.
func (c SamplerConfig) method() (ode.Method, bool) {
	switch strings.ToLower(c.Solver) {
	case "", "euler":
		return ode.Euler, true
	case "midpoint":
		return ode.Midpoint, true
	case "heun":
		return ode.Heun, true
	case "rk4":
		return ode.RK4, true
	}
	return 0, false
}

// Validate checks the solver's name and the steps.
func (c SamplerConfig) Validate() error {
	if _, ok := c.method(); !ok {
		return fmt.Errorf("sampler.solver: %q is not one of euler, midpoint, heun, rk4", c.Solver)
	}
	if c.Steps < 0 || c.Steps > 1000 {
		return fmt.Errorf("sampler.steps: %d not in [0, 1000]", c.Steps)
	}
	return nil
}

// Sampler returns a new sampler of the configured solver (Euler for an unknown name: Validate
// first). A sampler holds a workspace: one per expert.
func (c SamplerConfig) Sampler() *ode.Fixed {
	m, _ := c.method()
	return &ode.Fixed{Method: m, Steps: c.Steps}
}

// LoadConfig configures Load. The zero value loads a checkpoint whose state input is the joint
// positions.
type LoadConfig struct {
	// Name names the checkpoint in errors (CheckpointError.Name); "" means its directory.
	Name string
	// EELink is the robot's end-effector link (robot.Config.EELink): a JointsEE checkpoint's
	// state holds its position. Required for such checkpoints, unused otherwise.
	EELink string
	// Threads is the number of goroutines the network computes on; 0 means 1.
	Threads int
	// Weights is the precision of the network's weight matrices while it computes: "f32" or
	// "" (float32), "f16" (IEEE half precision) or "bf16" (bfloat16, rounded to nearest even);
	// the 16-bit ones are widened inside the matrix products with float32 accumulation
	// (nn.Net.SetPrecision), half the bytes read per evaluation.
	Weights string
}

// NetConfig is how a policy's network computes; cmd/flowact's policy files hold it under
// "expert". The zero value is float32 weights on one thread.
type NetConfig struct {
	// Weights is "f32" (float32 weight matrices), "f16" (half precision) or "bf16"
	// (bfloat16), both with float32 accumulation (docs/benchmarks.md has their speed, accuracy
	// and closed-loop cost), or "" (f32).
	Weights string `yaml:"weights"`
	// Threads is 1 or 2 matrix-product threads; 0 means 1.
	Threads int `yaml:"threads"`
}

// Validate checks the precision's name and the thread count.
func (c NetConfig) Validate() error {
	if _, err := parseWeights(c.Weights); err != nil {
		return err
	}
	if c.Threads < 0 || c.Threads > 2 {
		return fmt.Errorf("threads: %d not in [0, 2] (0 means 1)", c.Threads)
	}
	return nil
}

// parseWeights parses a weights precision ("" is f32).
func parseWeights(w string) (nn.Precision, error) {
	if w == "" {
		return nn.F32, nil
	}
	p, err := nn.ParsePrecision(w)
	if err != nil {
		return 0, fmt.Errorf("weights: %q is not f32, f16 or bf16", w)
	}
	return p, nil
}

// Checkpoint is a loaded checkpoint, checked against a robot: the network, its manifest and its
// normalization. Expert turns it into the loop's Inferer. It owns the network: Close it.
type Checkpoint struct {
	// Manifest is the checkpoint's manifest (architecture, path, provenance).
	Manifest ckpt.Manifest
	// Norm is its normalization: statistics, mode, action frame and state input.
	Norm Normalization

	net  nn.Net
	prec nn.Precision
	h, d int
	fk   func(q []float64) [3]float64 // the end effector's position, for JointsEE
}

// LoadDir is Load of a checkpoint directory on disk.
func LoadDir(dir string, model *robot.Model, cfg LoadConfig) (*Checkpoint, error) {
	if cfg.Name == "" {
		cfg.Name = dir
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return nil, &CheckpointError{Name: cfg.Name, Err: errors.New("no such directory")}
	}
	return Load(os.DirFS(dir), ".", model, cfg)
}

// Load reads the checkpoint in directory dir of fsys (ckpt.LoadFS: manifest, weights and their
// checksum), builds its network (expert/nn) and decodes its normalization, then checks that
// they fit each other and model: the statistics have the network's state and action
// dimensions, the network acts on model's joints, in model's order when the statistics name
// them, and a JointsEE checkpoint gets the end effector from cfg.EELink. Its errors are
// *CheckpointError (or wrap ErrConfig for a bad cfg or a nil model).
func Load(fsys fs.FS, dir string, model *robot.Model, cfg LoadConfig) (*Checkpoint, error) {
	if model == nil {
		return nil, fmt.Errorf("%w: Load needs a robot model", ErrConfig)
	}
	if cfg.Threads < 0 {
		return nil, fmt.Errorf("%w: %d threads", ErrConfig, cfg.Threads)
	}
	prec, err := parseWeights(cfg.Weights)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if cfg.Name == "" {
		cfg.Name = dir
	}
	c, err := ckpt.LoadFS(fsys, dir)
	if err != nil {
		return nil, &CheckpointError{Name: cfg.Name, Err: err}
	}
	net, err := nn.Load(c, max(cfg.Threads, 1))
	if err != nil {
		return nil, &CheckpointError{Name: cfg.Name, Err: err}
	}
	if prec != nn.F32 {
		net.SetPrecision(prec)
	}
	ck := &Checkpoint{Manifest: c.Manifest, net: net, prec: prec}
	if err := ck.init(model, cfg); err != nil {
		net.Close()
		return nil, &CheckpointError{Name: cfg.Name, Err: err}
	}
	return ck, nil
}

// init decodes and checks the normalization and the fit to model.
func (ck *Checkpoint) init(model *robot.Model, cfg LoadConfig) error {
	ck.h, ck.d = ck.net.Shape()
	nz, err := decodeNormalization(ck.Manifest.Norm)
	if err != nil {
		return err
	}
	ck.Norm = *nz
	sd := nz.State.Dim(ck.d)
	if err := nz.Set.Check(sd, ck.d); err != nil {
		return fmt.Errorf("norm: %w", err)
	}
	if _, n := ck.net.CondShape(); n != sd {
		return fmt.Errorf("the network takes a state of %d values, a %s input has %d", n, nz.State, sd)
	}
	if n := model.DoF(); n != ck.d {
		return fmt.Errorf("acts on %d joints, robot %q has %d", ck.d, model.Name, n)
	}
	if names := model.Names(); nz.Set.Action.Names != nil && !slices.Equal(names, nz.Set.Action.Names) {
		return fmt.Errorf("was trained on joints %v, robot %q has %v", nz.Set.Action.Names, model.Name, names)
	}
	if nz.State == JointsEE {
		if cfg.EELink == "" {
			return fmt.Errorf("its state holds the end effector's position: name the end-effector link (LoadConfig.EELink)")
		}
		if ck.fk, err = EndEffector(model, cfg.EELink); err != nil {
			return err
		}
	}
	return nil
}

// EndEffector returns the forward kinematics of model's link: its position (m, in the root
// frame) at joint positions q, allocating nothing. It is what a JointsEE expert appends to its
// state; training appends the same (dataset.ExamplesConfig.EndEffector).
func EndEffector(model *robot.Model, link string) (func(q []float64) [3]float64, error) {
	chain, err := model.Chain(link)
	if err != nil {
		return nil, err
	}
	return func(q []float64) [3]float64 {
		var p robot.Pose
		chain.Pose(&p, q)
		return p.Pos
	}, nil
}

// Regressor reports whether the checkpoint is a regressor's (its manifest's objective is
// regression): its Experts evaluate the network once at x = 0, t = 0 instead of sampling.
func (ck *Checkpoint) Regressor() bool { return ck.Manifest.Objective == ckpt.ObjectiveRegression }

// Shape returns the chunk shape: H actions of D joints.
func (ck *Checkpoint) Shape() (h, d int) { return ck.h, ck.d }

// CondShape returns the embedding width and the state length the network is conditioned on.
func (ck *Checkpoint) CondShape() (width, state int) { return ck.net.CondShape() }

// Weights returns the precision the network's weight matrices compute in: "f32", "f16" or
// "bf16".
func (ck *Checkpoint) Weights() string { return ck.prec.String() }

// Model returns the network (shared by every Expert of the checkpoint).
func (ck *Checkpoint) Model() expert.Model { return ck.net }

// Expert returns an Inferer of the checkpoint: normalize with its statistics -> sampler (nil:
// SamplerConfig{}.Sampler(), Euler in 10 steps) from noise seeded by seed -> unnormalize, in
// its action frame and with its state input (a regressor's evaluates the network once instead,
// Expert.SetRegressor). Each Expert has its own normalizer scratch and
// sampler workspace but all share the checkpoint's network: use one at a time.
func (ck *Checkpoint) Expert(sampler expert.Sampler, seed uint64) (*Expert, error) {
	if sampler == nil {
		sampler = SamplerConfig{}.Sampler()
	}
	nrm, err := NewNorm(ck.Norm.Set, ck.Norm.Mode, ck.h, ck.d)
	if err != nil {
		return nil, err
	}
	e := NewExpert(ck.net, sampler, nrm, seed)
	e.SetFrame(ck.Norm.Frame)
	e.SetRegressor(ck.Regressor())
	if ck.fk != nil {
		e.SetEndEffector(ck.fk)
	}
	return e, nil
}

// Close stops the network's goroutines. It is idempotent.
func (ck *Checkpoint) Close() { ck.net.Close() }
