package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/flowact/flowact/calib"
	"github.com/flowact/flowact/configs"
	"github.com/flowact/flowact/fleet"
	"github.com/flowact/flowact/policy"
	"github.com/flowact/flowact/robot"
	"github.com/flowact/flowact/robot/urdf"
	"github.com/flowact/flowact/sim/episode"
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
	if err := p.Loop.Validate(); err != nil {
		return fmt.Errorf("loop: %w", err)
	}
	if err := p.Fleet.Validate(); err != nil {
		return fmt.Errorf("fleet: %w", err)
	}
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

// ConfigKind is the kind of a config file, told by its top-level keys' owner.
type configKind int

const (
	kindPolicy configKind = iota
	kindTask
	kindCalibration // a calibration file (package calib)
)

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

// checkConfig validates a config file without running anything; a policy file's checkpoint
// must load and fit its robot. The kind of file comes from where it lives (policies/ or
// tasks/), else from its keys.
func checkConfig(name string) (string, error) {
	file, b, err := readConfig(name, "policies")
	if err != nil {
		if file, b, err = readConfig(name, "tasks"); err != nil {
			return "", usagef("%s: no such file (nor a shipped policy or task config)", name)
		}
	}
	kind := guessKind(file, b)
	switch kind {
	case kindTask:
		var t TaskFile
		err = configs.Decode(file, b, &t)
	case kindCalibration:
		_, err = calib.ParseFile(file, b)
	default:
		var p PolicyFile
		if err = configs.Decode(file, b, &p); err == nil {
			// The checkpoint is part of the policy: it must load and fit the robot.
			lp, lerr := loadPolicy(&p, "")
			if lerr != nil {
				return "", usagef("%s: %v", file, lerr)
			}
			lp.Close()
		}
	}
	if err != nil {
		return "", usageError{oneLine(err)}
	}
	return file, nil
}

// guessKind tells a task file from a policy file and a calibration file: by directory, else by
// a "task:" or "episode:" key (task) or a "joints:" key (calibration).
func guessKind(file string, b []byte) configKind {
	dir := path.Base(path.Dir(strings.ReplaceAll(file, "\\", "/")))
	switch dir {
	case "tasks":
		return kindTask
	case "policies":
		return kindPolicy
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "task:") || strings.HasPrefix(line, "episode:") {
			return kindTask
		}
		if strings.HasPrefix(line, "joints:") {
			return kindCalibration
		}
	}
	return kindPolicy
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
	root.Flags().StringVar(&file, "check-config", "", "validate a policy, task or calibration file and exit (0: valid; 2 and one error line: not)")
	root.Args = cobra.NoArgs
	root.RunE = func(cmd *cobra.Command, _ []string) error {
		if file == "" {
			return cmd.Help()
		}
		name, err := checkConfig(file)
		if err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "%s: ok\n", name)
		return nil
	}
}
