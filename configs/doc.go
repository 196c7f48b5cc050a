// Package configs holds the configuration files that ship inside the flowact binary, and the
// strict YAML decoder every flowact config file goes through.
//
// FS is laid out as
//
//	robots/<name>/<name>.urdf   the robot's URDF (xacro already expanded)
//	robots/<name>/robot.yaml    robot.Config: ee_link, topics, limit overrides, motor map
//	policies/                   policy configs (see policies/README.md)
//	tasks/                      simulator task configs (see tasks/README.md)
//	checkpoints/<name>/         a shipped expert: model.safetensors, manifest.json, and a README
//	                            with the commands and seeds that reproduce it
//
// Load a robot with robot/urdf.LoadConfig(configs.FS, "robots/<name>"). This package imports
// nothing of flowact's, so that any package may read the shipped files; the Go types of the files
// live with their packages (robot.Config for robot.yaml).
//
// Decode is strict (SPEC: YAML 1.2 via gopkg.in/yaml.v3): a key that is not a field of the
// target struct, a repeated key, a value of the wrong type, more than one document, or an empty
// file is an error that names the file, the line and the dotted key path, e.g.
//
//	configs: robots/ur5/robot.yaml:12: limits.joints.elbow.velocity: cannot unmarshal !!str `fast` into float64
//
// After decoding, Decode calls v's Validate method when it has one.
package configs
