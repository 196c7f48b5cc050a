package calib

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/flowact/flowact/configs"
	"github.com/flowact/flowact/robot"
	"github.com/flowact/flowact/robot/urdf"
)

// FileVersion is the version of the calibration file format this package reads and writes.
const FileVersion = 1

// File is a calibration file: the measured transmissions of every actuated joint of one robot,
// as `flowact calib motors` writes it. YAML, decoded strictly (unknown keys are errors naming
// the file and key). When a File is given it is the whole truth for the robot's joint <-> motor
// map: nothing from the URDF or robot.yaml is merged into it.
type File struct {
	// Version must be FileVersion (1). 0 is refused: a file must say its version.
	Version int `yaml:"version"`
	// Robot is the model's name (the URDF's <robot name>); required, checked against the model.
	Robot string `yaml:"robot"`
	// Joints are the transmissions by joint name; every actuated joint must be listed.
	Joints map[string]Transmission `yaml:"joints"`
	// Ranges are the motor positions (ticks or motor rad) seen at the ends of each joint's
	// sweep, [at the lower joint limit side, at the upper], for the record; optional.
	Ranges map[string][2]float64 `yaml:"ranges,omitempty"`
	// Lag is the robot's command-to-state lag as `flowact calib latency --write-lag` measured
	// it (in its convention: transport, servo and the half tick a command is held; see
	// policy.Config.RobotLag), in [0, 10s]; 0 or absent: not measured. `flowact run --calib`
	// gives it to the loop.
	Lag time.Duration `yaml:"lag,omitempty"`
	// Source says how the file was made (command, robot, time); free text, optional.
	Source string `yaml:"source,omitempty"`
}

// MaxLag is the largest lag a file may hold, as policy.Config.RobotLag's.
const MaxLag = 10 * time.Second

// ErrFile is wrapped by the errors of File.Validate about the file as a whole.
var ErrFile = errors.New("calib: bad calibration file")

// Validate checks the file on its own: version, robot name, and each transmission's values.
func (f *File) Validate() error {
	switch {
	case f.Version != FileVersion:
		return fmt.Errorf("%w: version: %d, want %d", ErrFile, f.Version, FileVersion)
	case f.Robot == "":
		return fmt.Errorf("%w: robot: missing", ErrFile)
	case len(f.Joints) == 0:
		return fmt.Errorf("%w: joints: none", ErrFile)
	case f.Lag < 0 || f.Lag > MaxLag:
		return fmt.Errorf("%w: lag: %v not in [0, %v]", ErrFile, f.Lag, MaxLag)
	}
	for _, name := range sortedKeys(f.Joints) {
		if err := f.Joints[name].Check(name); err != nil {
			return err
		}
	}
	for _, name := range sortedKeys(f.Ranges) {
		if _, ok := f.Joints[name]; !ok {
			return fmt.Errorf("%w: ranges.%s: not a joint of the file", ErrFile, name)
		}
	}
	return nil
}

// ParseFile decodes a calibration file strictly; name is used in messages. Errors name the file,
// and the key or joint and field.
func ParseFile(name string, data []byte) (*File, error) {
	var f File
	if err := configs.Decode(name, data, &f); err != nil {
		return nil, fmt.Errorf("calib: %w", err)
	}
	return &f, nil
}

// ReadFile reads and decodes the calibration file at path.
func ReadFile(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("calib: %w", err)
	}
	return ParseFile(path, data)
}

// Marshal encodes f as YAML with a header comment; ParseFile reads it back to an equal File.
func (f *File) Marshal() ([]byte, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteString("# flowact calibration file (package calib): joint <-> motor transmissions.\n")
	b.WriteString("# motor = reduction * (joint - offset), in ticks (resolution per motor turn, wrapping at wrap)\n")
	b.WriteString("# or in motor rad when resolution is 0. Written by `flowact calib motors`.\n")
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(f); err != nil {
		return nil, fmt.Errorf("calib: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("calib: %w", err)
	}
	return b.Bytes(), nil
}

// Source names where a robot's transmissions came from.
type Source string

const (
	// FromFile: a calibration file.
	FromFile Source = "calibration file"
	// FromNominal: the URDF's <transmission> elements and robot.yaml's motors block.
	FromNominal Source = "URDF <transmission> and robot.yaml motors"
	// FromNone: neither: the robot speaks joint units.
	FromNone Source = "none"
)

// Nominal returns the design transmissions of model m: for each joint, the URDF's
// SimpleTransmission when it has one (ID -1: the URDF names the actuator instead; no encoder:
// motor rad), else
// robot.yaml's motors entry (Reduction = Direction·GearRatio, its Offset, ID, Resolution and
// Wrap). A joint in both is refused (one source per joint). It returns nil and no error when
// neither source names any joint; a partial cover is refused.
func Nominal(m *robot.Model, motors map[string]robot.Motor, tr []urdf.Transmission) (map[string]Transmission, error) {
	out := make(map[string]Transmission, m.DoF())
	for _, t := range tr {
		if m.Index(t.Joint) < 0 {
			return nil, fieldErr(t.Joint, "", "URDF <transmission %q>: not an actuated joint of model %q", t.Name, m.Name)
		}
		if _, dup := motors[t.Joint]; dup {
			return nil, fieldErr(t.Joint, "", "given by both URDF <transmission %q> and robot.yaml motors.%s: keep one", t.Name, t.Joint)
		}
		out[t.Joint] = Transmission{ID: -1, Reduction: t.Reduction, Offset: t.Offset}
	}
	for _, name := range sortedKeys(motors) {
		mo := motors[name]
		g := mo.GearRatio
		if g == 0 {
			g = 1
		}
		if mo.Direction < 0 {
			g = -g
		}
		out[name] = Transmission{ID: mo.ID, Reduction: g, Offset: mo.Offset, Resolution: mo.Resolution, Wrap: mo.Wrap}
	}
	if len(out) == 0 {
		return nil, nil
	}
	for _, j := range m.Joints {
		if _, ok := out[j.Name]; !ok {
			return nil, fieldErr(j.Name, "", "no transmission in the URDF nor in robot.yaml motors, while other joints have one")
		}
	}
	return out, nil
}

// Resolve returns the transmissions the runtime uses for model m: the calibration file f when
// it is not nil (its robot must be m), else Nominal; and where they came from. A nil Set means
// none (FromNone): the driver already speaks joint units.
func Resolve(m *robot.Model, f *File, motors map[string]robot.Motor, tr []urdf.Transmission) (*Set, Source, error) {
	if f != nil {
		if f.Robot != m.Name {
			return nil, FromFile, fmt.Errorf("%w: robot: %q, but the model is %q", ErrFile, f.Robot, m.Name)
		}
		s, err := NewSet(m, f.Joints)
		return s, FromFile, err
	}
	nom, err := Nominal(m, motors, tr)
	if err != nil || nom == nil {
		return nil, FromNone, err
	}
	s, err := NewSet(m, nom)
	return s, FromNominal, err
}
