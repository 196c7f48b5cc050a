package node

import (
	"errors"
	"fmt"
	"log/slog"
	"math"

	"github.com/flowact/flowact/robot"
	"github.com/flowact/flowact/robot/ros"
	"github.com/flowact/flowact/sim"
	"github.com/flowact/flowact/sim/task"
	"github.com/flowact/flowact/sim/vlm"
)

// Config configures a Node. The zero value steps at 100 Hz in real time with no task. The yaml
// tags name the keys of a configuration file (`flowact sim --config`; durations as "50ms").
type Config struct {
	// Rate is the simulation step and /joint_states rate, Hz; 0 means DefaultRate.
	Rate float64 `yaml:"rate"`
	// SimTime makes the node the ROS clock (see the package documentation); the default is real
	// time.
	SimTime bool `yaml:"sim_time"`
	// Speed is simulated seconds per wall second with SimTime; 0 means 1 and +Inf means as fast
	// as possible. Without SimTime it must be 0 or 1.
	Speed float64 `yaml:"speed"`
	// TFRate is the /tf rate, Hz; 0 means min(Rate, DefaultTFRate). It is rounded to a whole
	// number of steps.
	TFRate float64 `yaml:"tf_rate"`
	// MarkerRate is the marker rate, Hz; 0 means min(Rate, DefaultMarkerRate). It is rounded to a
	// whole number of steps.
	MarkerRate float64 `yaml:"marker_rate"`

	// Sim configures the simulator; a nil Sim.Initial means the robot config's home.
	Sim sim.Config `yaml:"sim"`
	// Task is the task whose scene the node shows; an empty Task.Name means none.
	Task task.Config `yaml:"task"`
	// Seed draws the task's scene and seeds the VLM's noise, as sim/episode does for the episode
	// with this seed (the same scene and instruction).
	Seed uint64 `yaml:"seed"`
	// Embedding publishes the synthetic VLM's embedding (needs a task).
	Embedding bool `yaml:"embedding"`
	// VLM configures the synthetic VLM.
	VLM vlm.Config `yaml:"vlm"`

	// ROS configures the node's ROS side. Empty joint-state, command and trajectory topics take
	// the robot config's (robot.yaml topics); the node name defaults to ros.DefaultSimName.
	// ROS.SimTime and ROS.Embedding are set from SimTime and Embedding.
	ROS ros.SimSideConfig `yaml:"ros"`

	// Clock paces the steps; nil means robot.WallClock. Tests inject a fake.
	Clock robot.Clock `yaml:"-"`
	// Logger receives the node's log; nil means slog.Default().
	Logger *slog.Logger `yaml:"-"`
}

// Defaults.
const (
	DefaultRate       = 100.0 // Hz: a typical ros_control loop for a hobby or research arm
	DefaultTFRate     = 50.0  // Hz: robot_state_publisher's default publish_frequency
	DefaultMarkerRate = 10.0  // Hz: enough for rviz to follow a moving target
	// MaxRate bounds Rate: the simulator integrates in 1 ms substeps by default, and ROS 1
	// tools do not keep up with much more than 1 kHz per topic.
	MaxRate = 2000.0
)

// ErrConfig is wrapped by every configuration error.
var ErrConfig = errors.New("node: bad config")

func (c Config) withDefaults() Config {
	if c.Rate == 0 {
		c.Rate = DefaultRate
	}
	if c.Speed == 0 {
		c.Speed = 1
	}
	if c.TFRate == 0 {
		c.TFRate = min(c.Rate, DefaultTFRate)
	}
	if c.MarkerRate == 0 {
		c.MarkerRate = min(c.Rate, DefaultMarkerRate)
	}
	if c.Clock == nil {
		c.Clock = robot.WallClock{}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	c.ROS.SimTime = c.SimTime
	c.ROS.Embedding = c.Embedding
	return c
}

// Validate reports the first invalid field; zero fields take their defaults first. It checks
// the simulator, task and VLM sections too.
func (c Config) Validate() error {
	c = c.withDefaults()
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...)
	}
	rate := func(name string, v float64) error {
		if math.IsNaN(v) || v <= 0 || v > MaxRate {
			return bad("%s %v Hz is not in (0, %v]", name, v, MaxRate)
		}
		return nil
	}
	for _, r := range []struct {
		name string
		v    float64
	}{{"rate", c.Rate}, {"tf rate", c.TFRate}, {"marker rate", c.MarkerRate}} {
		if err := rate(r.name, r.v); err != nil {
			return err
		}
	}
	switch {
	case math.IsNaN(c.Speed) || c.Speed <= 0:
		return bad("speed %v is not positive", c.Speed)
	case !c.SimTime && c.Speed != 1:
		return bad("speed %v needs sim time (real time runs at speed 1)", c.Speed)
	case c.TFRate > c.Rate || c.MarkerRate > c.Rate:
		return bad("tf rate %v Hz and marker rate %v Hz may not exceed the step rate %v Hz", c.TFRate, c.MarkerRate, c.Rate)
	case c.Embedding && c.Task.Name == "":
		return bad("embedding needs a task for the synthetic VLM to observe")
	}
	if err := c.Sim.Validate(); err != nil {
		return fmt.Errorf("node: %w", err)
	}
	if c.Task.Name != "" {
		if _, err := task.New(c.Task); err != nil {
			return fmt.Errorf("node: %w", err)
		}
	}
	if c.Embedding {
		if err := c.VLM.Validate(); err != nil {
			return fmt.Errorf("node: %w", err)
		}
	}
	return nil
}
