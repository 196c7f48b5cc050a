package urdf

import (
	"fmt"
	"io/fs"
	"path"

	"github.com/flowact/flowact/configs"
	"github.com/flowact/flowact/robot"
)

// ConfigFile is the name of a robot's configuration file in its directory.
const ConfigFile = "robot.yaml"

// LoadConfig loads the robot described in the directory dir of fsys: it decodes dir/robot.yaml
// strictly into a robot.Config, parses the URDF that it names, tightens the model's limits by the
// config's overrides, and checks the config against the model. The config comes back with its
// defaults filled in (Config.EnsureDefaults). Errors name the file.
func LoadConfig(fsys fs.FS, dir string) (*robot.Model, robot.Config, error) {
	return LoadConfigFile(fsys, dir, ConfigFile)
}

// LoadConfigFile is LoadConfig with the robot's configuration in dir/file rather than
// dir/robot.yaml; the URDF is found as LoadConfig finds it (the config's urdf key, else
// <dir>.urdf, relative to dir).
func LoadConfigFile(fsys fs.FS, dir, file string) (*robot.Model, robot.Config, error) {
	var cfg robot.Config
	name := path.Join(dir, file)
	data, err := fs.ReadFile(fsys, name)
	if err != nil {
		return nil, cfg, fmt.Errorf("urdf: %w", err)
	}
	if err := configs.Decode(name, data, &cfg); err != nil {
		return nil, cfg, err
	}
	cfg.EnsureDefaults()
	file = cfg.URDF
	if file == "" {
		file = path.Base(dir) + ".urdf"
	}
	file = path.Join(dir, file)
	data, err = fs.ReadFile(fsys, file)
	if err != nil {
		return nil, cfg, fmt.Errorf("urdf: %s: %w", name, err)
	}
	m, err := parse(data)
	if err != nil {
		return nil, cfg, fmt.Errorf("urdf: %s: %w", file, err)
	}
	if err := m.Apply(cfg.Limits); err != nil {
		return nil, cfg, fmt.Errorf("urdf: %s: %w", name, err)
	}
	if err := m.Validate(); err != nil {
		return nil, cfg, fmt.Errorf("urdf: %s: %w", name, err)
	}
	if err := cfg.CheckModel(m); err != nil {
		return nil, cfg, fmt.Errorf("urdf: %s: %w", name, err)
	}
	return m, cfg, nil
}

// Shipped loads one of the robots shipped in the binary (configs.Robots lists them): the
// directory robots/<name> of configs.FS.
func Shipped(name string) (*robot.Model, robot.Config, error) {
	if !fs.ValidPath(name) || path.Base(name) != name {
		return nil, robot.Config{}, fmt.Errorf("urdf: %q is not a robot name", name)
	}
	return LoadConfig(configs.FS, path.Join("robots", name))
}
