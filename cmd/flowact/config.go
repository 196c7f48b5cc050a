package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/flowact/flowact/calib"
	"github.com/flowact/flowact/configs"
	"github.com/flowact/flowact/fleet"
	"github.com/flowact/flowact/policy"
	"github.com/flowact/flowact/robot"
	"github.com/flowact/flowact/robot/urdf"
	"github.com/flowact/flowact/sim"
	"github.com/flowact/flowact/sim/episode"
	"github.com/flowact/flowact/sim/node"
	"github.com/flowact/flowact/sim/task"
)

// DefaultCheckpoint is the shipped checkpoint (configs.FS checkpoints/<name>) a policy file
// with no checkpoint uses.
const DefaultCheckpoint = "ur5-mlp"

// DefaultPolicy is the shipped policy file (configs.FS policies/<name>.yaml) eval and demo use
// when none is given.
const DefaultPolicy = "ur5-mlp"

// shippedPrefix marks a checkpoint inside the binary (configs.FS checkpoints/<name>) rather
// than a directory on disk.
const shippedPrefix = "shipped:"

// PolicyFile is a policy config file (configs/policies/*.yaml): which robot, which trained
// expert, how to sample it, and how the control loop runs it. Zero fields take the defaults
// their comments give.
type PolicyFile struct {
	// Robot is a shipped robot (a directory under configs/robots), or a robot directory on disk
	// holding robot.yaml and its URDF, given as a path with a slash (e.g. ./my_arm or /opt/arm),
	// relative to the working directory; required.
	Robot string `yaml:"robot"`
	// Checkpoint is the expert's checkpoint directory on disk, or "shipped:<name>" for one inside
	// the binary; "" means "shipped:" + DefaultCheckpoint.
	Checkpoint string `yaml:"checkpoint"`
	// Sampler integrates the expert's velocity field from noise to a chunk.
	Sampler policy.SamplerConfig `yaml:"sampler"`
	// Loop is the real-time loop: rate, horizon (0: the checkpoint's), threshold, splicing
	// strategy, watchdogs, limit tightenings (see policy.Config).
	Loop policy.Config `yaml:"loop"`
	// Expert is how the expert's network computes: weights f32 (default), f16 or bf16, threads 1
	// (default) or 2 (policy.NetConfig).
	Expert policy.NetConfig `yaml:"expert"`
	// Seed seeds the expert's noise (it overrides loop.seed when not zero).
	Seed uint64 `yaml:"seed"`
	// Fleet is the fleet link over NATS (package fleet): off unless fleet.url is set.
	Fleet fleet.Config `yaml:"fleet"`
}

// Validate checks every field that does not need the checkpoint or the robot model.
func (p *PolicyFile) Validate() error {
	if p.Robot == "" {
		return errors.New("robot: required (a shipped robot's name or a robot directory)")
	}
	if err := checkRobot(p.Robot); err != nil {
		return fmt.Errorf("robot: %w", err)
	}
	if name, ok := strings.CutPrefix(p.Checkpoint, shippedPrefix); ok && (name == "" || strings.ContainsAny(name, "/\\")) {
		return fmt.Errorf("checkpoint: %q: want shipped:<name>", p.Checkpoint)
	}
	if err := p.Sampler.Validate(); err != nil {
		return err
	}
	if err := p.Expert.Validate(); err != nil {
		return fmt.Errorf("expert: %w", err)
	}
	if err := p.Loop.Validate(); err != nil {
		return fmt.Errorf("loop: %w", err)
	}
	if err := p.Fleet.Validate(); err != nil {
		return fmt.Errorf("fleet: %w", err)
	}
	return nil
}

// setWeights overrides expert.weights with a --weights flag's value w, if not empty.
func (p *PolicyFile) setWeights(w string) error {
	if w == "" {
		return nil
	}
	if err := (policy.NetConfig{Weights: w}).Validate(); err != nil {
		return usagef("--weights: %v", err)
	}
	p.Expert.Weights = w
	return nil
}

// CheckpointRef returns where the checkpoint is: a file system and a directory in it.
func (p *PolicyFile) CheckpointRef() (fs.FS, string) {
	return checkpointRef(p.Checkpoint)
}

// checkpointRef resolves a checkpoint reference ("" the default, "shipped:<name>", or a
// directory on disk).
func checkpointRef(ref string) (fs.FS, string) {
	if ref == "" {
		ref = shippedPrefix + DefaultCheckpoint
	}
	if name, ok := strings.CutPrefix(ref, shippedPrefix); ok {
		return configs.FS, path.Join("checkpoints", name)
	}
	return os.DirFS(ref), "."
}

// TaskFile is a task config file (configs/tasks/*.yaml): the simulated world an episode runs
// in. The synthetic VLM's config (episode.vlm) is part of it: a checkpoint is trained for one
// VLM, so every task a checkpoint is evaluated on must use the VLM it was trained with.
type TaskFile struct {
	// Robot is a shipped robot (a directory under configs/robots); required.
	Robot string `yaml:"robot"`
	// Task names and configures the task (sim/task).
	Task task.Config `yaml:"task"`
	// Episode is the episode runner's config: control rate (0: 50 Hz), simulator, synthetic
	// VLM, scripted expert (sim/episode).
	Episode episode.Config `yaml:"episode"`
}

// Validate checks the file.
func (t *TaskFile) Validate() error {
	if t.Robot == "" {
		return errors.New("robot: required (a directory under configs/robots)")
	}
	if err := checkRobot(t.Robot); err != nil {
		return fmt.Errorf("robot: %w", err)
	}
	if err := t.Task.Validate(); err != nil {
		return keyed("task", err)
	}
	if err := t.Episode.Validate(); err != nil {
		return keyed("episode", err)
	}
	return nil
}

// keyed prefixes err with the config key it is about, unless its message already starts so
// (package errors name their package, which is often the key).
func keyed(key string, err error) error {
	if strings.HasPrefix(err.Error(), key+":") {
		return err
	}
	return fmt.Errorf("%s: %w", key, err)
}

func checkRobot(name string) error {
	if isRobotDir(name) {
		if _, err := os.Stat(filepath.Join(name, "robot.yaml")); err != nil {
			return fmt.Errorf("robot directory %s: %w", name, err)
		}
		return nil
	}
	names, err := configs.Robots()
	if err != nil {
		return err
	}
	for _, n := range names {
		if n == name {
			return nil
		}
	}
	return fmt.Errorf("%q is not a shipped robot (%s)", name, strings.Join(names, ", "))
}

// isRobotDir reports whether a robot reference names a directory on disk rather than a shipped
// robot: shipped names have no path separator.
func isRobotDir(ref string) bool { return strings.ContainsAny(ref, "/\\") }

// openRobot loads a robot reference: a robot directory on disk (see isRobotDir) or a shipped
// robot.
func openRobot(ref string) (*robot.Model, robot.Config, error) {
	if isRobotDir(ref) {
		return urdf.LoadConfig(os.DirFS(ref), ".")
	}
	return urdf.Shipped(ref)
}

// robotDescription is the robot_description parameter's text for a robot reference: its URDF
// when that has visual geometry, else one generated from its model (urdf.LoadDescription).
func robotDescription(ref string) (string, error) {
	if isRobotDir(ref) {
		return urdf.LoadDescription(os.DirFS(ref), ".")
	}
	return urdf.ShippedDescription(ref)
}

// readConfig reads a config file: a path on disk, or, when no such file exists, a shipped one
// ("policies/x.yaml", "tasks/reach.yaml", or a bare name looked up under dir in configs.FS).
func readConfig(name, dir string) (string, []byte, error) {
	if b, err := os.ReadFile(name); err == nil {
		return name, b, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return name, nil, err
	}
	candidates := []string{name, path.Join(dir, name), path.Join(dir, name+".yaml")}
	for _, c := range candidates {
		if !fs.ValidPath(c) {
			continue
		}
		if b, err := fs.ReadFile(configs.FS, c); err == nil {
			return c, b, nil
		}
	}
	kind := map[string]string{"policies": "policy", "tasks": "task"}[dir] // not TrimSuffix: "policie"
	return name, nil, fmt.Errorf("%s: no such file (nor a shipped %s config)", name, kind)
}

// loadPolicyFile reads and validates a policy file (a path, or a shipped policy's name).
func loadPolicyFile(name string) (*PolicyFile, error) {
	file, b, err := readConfig(name, "policies")
	if err != nil {
		return nil, usageError{err}
	}
	var p PolicyFile
	if err := configs.Decode(file, b, &p); err != nil {
		return nil, usageError{oneLine(err)}
	}
	return &p, nil
}

// loadTaskFile reads and validates a task file (a path, or a shipped task's name).
func loadTaskFile(name string) (*TaskFile, error) {
	file, b, err := readConfig(name, "tasks")
	if err != nil {
		return nil, usageError{err}
	}
	var t TaskFile
	if err := configs.Decode(file, b, &t); err != nil {
		return nil, usageError{oneLine(err)}
	}
	return &t, nil
}

// configKind is one kind of config file flowact reads: its name in messages, a value of the
// struct its YAML decodes into (the schema: its keys), and check, which decodes a file of the
// kind strictly and validates it, as deeply as the kind's command would before running.
type configKind struct {
	name   string // in messages: "policy file"
	use    string // what reads it, for messages
	schema any
	check  func(src configSource) error
}

// configSource is a config file as read: its name in messages, its bytes, and where it lives
// (fsys and path in it), for kinds whose check reads files beside it.
type configSource struct {
	file string
	data []byte
	fsys fs.FS
	path string
}

// configKinds are the kinds --check-config tells apart, in the order that breaks ties.
var configKinds = []configKind{
	{"policy file", "flowact run, eval, demo --policy", PolicyFile{}, func(src configSource) error {
		var p PolicyFile
		if err := configs.Decode(src.file, src.data, &p); err != nil {
			return err
		}
		// The checkpoint is part of the policy: it must load and fit the robot.
		lp, err := loadPolicy(&p, "")
		if err != nil {
			return fmt.Errorf("%s: %w", src.file, err)
		}
		lp.Close()
		return nil
	}},
	{"task file", "flowact eval --task, demo --tasks, collect --task", TaskFile{}, func(src configSource) error {
		var t TaskFile
		return configs.Decode(src.file, src.data, &t)
	}},
	{"calibration file", "written by flowact calib motors", calib.File{}, func(src configSource) error {
		_, err := calib.ParseFile(src.file, src.data)
		return err
	}},
	{"robot config", "robot.yaml in a robot directory", robot.Config{}, func(src configSource) error {
		var c robot.Config
		if err := configs.Decode(src.file, src.data, &c); err != nil {
			return err
		}
		// With its URDF: the overrides may only tighten the URDF's limits, the joints named
		// must exist.
		dir, base := path.Split(src.path)
		dir = strings.TrimSuffix(dir, "/")
		fsys := src.fsys
		if dir == "" || dir == "." {
			// A file at the root of fsys: its directory's name is the URDF's default name.
			abs, err := filepath.Abs(filepath.Dir(src.file))
			if err != nil {
				return err
			}
			fsys, dir = os.DirFS(filepath.Dir(abs)), filepath.Base(abs)
		}
		if _, _, err := urdf.LoadConfigFile(fsys, dir, base); err != nil {
			if !strings.Contains(err.Error(), src.file) {
				return fmt.Errorf("%s: %w", src.file, err)
			}
			return err
		}
		return nil
	}},
	{"simulator node config", "flowact sim --config", node.Config{}, func(src configSource) error {
		var c node.Config
		return configs.Decode(src.file, src.data, &c)
	}},
	{"simulator config", "flowact calib --sim-config", sim.Config{}, func(src configSource) error {
		var c sim.Config
		return configs.Decode(src.file, src.data, &c)
	}},
	{"fleet auth file", "flowact hub --auth", fleet.Auth{}, func(src configSource) error {
		var a fleet.Auth
		return configs.Decode(src.file, src.data, &a)
	}},
}

// checkConfig validates a config file without running anything and returns its name and
// kind. The kind comes from the file's top-level keys, never its name: every kind whose schema
// takes all of them is tried (strict decoding, then the kind's checks), and the file is valid
// when one of them accepts it. A file whose keys fit no kind is refused naming the keys that
// fit none and the closest kind (the one that takes most of its keys), with that kind's error.
func checkConfig(name string) (string, string, error) {
	src, err := readConfigSource(name)
	if err != nil {
		return "", "", usageError{err}
	}
	keys, lines, err := configs.TopKeys(src.file, src.data)
	if err != nil {
		return "", "", usageError{err}
	}
	type fit struct {
		kind    configKind
		matched int
		unknown []string // keys the kind does not take, with their lines
	}
	var fits, all []fit
	for _, k := range configKinds {
		f := fit{kind: k}
		known := map[string]bool{}
		for _, key := range configs.Keys(k.schema) {
			known[key] = true
		}
		for i, key := range keys {
			if known[key] {
				f.matched++
			} else {
				f.unknown = append(f.unknown, fmt.Sprintf("%q (line %d)", key, lines[i]))
			}
		}
		all = append(all, f)
		if len(f.unknown) == 0 {
			fits = append(fits, f)
		}
	}
	if len(fits) == 0 {
		closest := all[0]
		for _, f := range all[1:] {
			if f.matched > closest.matched {
				closest = f
			}
		}
		// Keys no kind takes.
		var none []string
		for i, key := range keys {
			taken := false
			for _, k := range configKinds {
				if slices.Contains(configs.Keys(k.schema), key) {
					taken = true
					break
				}
			}
			if !taken {
				none = append(none, fmt.Sprintf("%q (line %d)", key, lines[i]))
			}
		}
		why := fmt.Sprintf("%s: no kind of flowact config takes all its keys", src.file)
		if len(none) > 0 {
			why += fmt.Sprintf(" (%s fit%s none)", strings.Join(none, ", "), map[bool]string{true: "s", false: ""}[len(none) == 1])
		}
		why += fmt.Sprintf("; closest: a %s (%s)", closest.kind.name, closest.kind.use)
		if cerr := closest.kind.check(src); cerr != nil {
			return "", "", usagef("%s: %v", why, oneLine(cerr))
		}
		return "", "", usagef("%s", why)
	}
	var errs []error
	for _, f := range fits {
		if err := f.kind.check(src); err != nil {
			errs = append(errs, err)
			continue
		}
		return src.file, f.kind.name, nil
	}
	// No kind accepts it: the first kind's error (the order breaks ties), naming the others
	// whose keys also fit.
	err = oneLine(errs[0])
	if len(fits) > 1 {
		var others []string
		for _, f := range fits[1:] {
			others = append(others, f.kind.name)
		}
		return "", "", usagef("%v (read as a %s; its keys also fit: %s, which refuse it too)", err, fits[0].kind.name, strings.Join(others, ", "))
	}
	return "", "", usageError{err}
}

// readConfigSource reads a config file for --check-config: a path on disk, or a file of the
// shipped configs ("policies/ur5-mlp.yaml", "robots/ur5/robot.yaml", or a bare policy or task
// name).
func readConfigSource(name string) (configSource, error) {
	if b, err := os.ReadFile(name); err == nil {
		abs, err := filepath.Abs(name)
		if err != nil {
			return configSource{}, err
		}
		return configSource{file: name, data: b, fsys: os.DirFS(filepath.Dir(abs)), path: filepath.Base(abs)}, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return configSource{}, err
	}
	for _, c := range []string{name, path.Join("policies", name), path.Join("policies", name+".yaml"),
		path.Join("tasks", name), path.Join("tasks", name+".yaml")} {
		if !fs.ValidPath(c) {
			continue
		}
		if b, err := fs.ReadFile(configs.FS, c); err == nil {
			return configSource{file: c, data: b, fsys: configs.FS, path: c}, nil
		}
	}
	return configSource{}, fmt.Errorf("%s: no such file (nor a shipped config)", name)
}

// oneLine joins a multi-line error (errors.Join of several problems) into one line.
func oneLine(err error) error {
	msg := err.Error()
	if !strings.Contains(msg, "\n") {
		return err
	}
	return lineError{msg: strings.Join(strings.Fields(strings.ReplaceAll(msg, "\n", " ; ")), " "), err: err}
}

type lineError struct {
	msg string
	err error
}

func (e lineError) Error() string { return e.msg }
func (e lineError) Unwrap() error { return e.err }

// addCheckConfig gives root the --check-config FILE flag: validate a policy or task file (a
// path, or a shipped config's name) without running anything, like nats-server -t. Without the
// flag, root prints its help.
func addCheckConfig(root *cobra.Command) {
	var file string
	root.Flags().StringVar(&file, "check-config", "", "validate a config file (policy, task, calibration, robot.yaml, simulator, fleet auth: told by its keys) and exit (0: valid; 2 and one error line: not)")
	root.Args = cobra.NoArgs
	root.RunE = func(cmd *cobra.Command, _ []string) error {
		if file == "" {
			return cmd.Help()
		}
		name, kind, err := checkConfig(file)
		if err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "%s: ok (%s)\n", name, kind)
		return nil
	}
}
