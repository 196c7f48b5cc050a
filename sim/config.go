package sim

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/flowact/flowact/robot"
)

func sortedNames[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Lag is the response of every joint to its reference.
type Lag struct {
	// Order is 1 (first-order lag) or 2 (second-order, mass-spring-damper); 0 means 1.
	Order int `yaml:"order"`
	// TimeConstant is tau of the first-order lag; 0 means 50 ms, a stiff position servo.
	TimeConstant time.Duration `yaml:"time_constant"`
	// Frequency is the natural frequency wn of the second-order lag in rad/s; 0 means 20 rad/s
	// (about 3 Hz, the bandwidth of a hobby servo under load).
	Frequency float64 `yaml:"frequency"`
	// Damping is the damping ratio zeta of the second-order lag; 0 means 1 (critically damped).
	Damping float64 `yaml:"damping"`
}

// Window is an interval of simulation time measured from the start of the run: off unless
// Enabled; then [At, At+For), or [At, end of run) when For is zero.
type Window struct {
	Enabled bool          `yaml:"enabled"`
	At      time.Duration `yaml:"at"`
	For     time.Duration `yaml:"for"`
}

// Active reports whether the window covers elapsed time t.
func (w Window) Active(t time.Duration) bool {
	return w.Enabled && t >= w.At && (w.For == 0 || t < w.At+w.For)
}

// Faults are the injected faults. The zero value injects none.
type Faults struct {
	// StateLatency delays the joint state: ReadState returns the newest sample measured at least
	// StateLatency ago (its Stamp is the measurement time).
	StateLatency time.Duration `yaml:"state_latency"`
	// StateDrop is the probability in [0, 1) that a sensor sample is lost; ReadState then keeps
	// returning the previous sample.
	StateDrop float64 `yaml:"state_drop"`
	// PositionNoise and VelocityNoise are standard deviations (rad or m, per s for velocity) of
	// independent Gaussian noise added to each sample.
	PositionNoise float64 `yaml:"position_noise"`
	VelocityNoise float64 `yaml:"velocity_noise"`
	// Freeze makes the sensor repeat the sample it took when the window opened, with fresh stamps.
	Freeze Window `yaml:"freeze"`
	// CommandDelay delays every command and trajectory: it reaches the joints this much later.
	CommandDelay time.Duration `yaml:"command_delay"`
	// CommandJitter adds to each command's delay a draw uniform in [0, CommandJitter), from the
	// seeded source; commands still arrive in the order they were written (a later command is
	// never due before an earlier one). 0 means none.
	CommandJitter time.Duration `yaml:"command_jitter"`
	// StuckJoint, when not empty, names a joint that holds its position (velocity zero) during
	// Stuck, whatever it is commanded.
	StuckJoint string `yaml:"stuck_joint"`
	Stuck      Window `yaml:"stuck"`
	// Seed seeds the PCG source of the random faults (drops and noise).
	Seed uint64 `yaml:"seed"`
}

// Config configures a Sim. The zero value is a first-order lag of 50 ms without faults.
type Config struct {
	Lag Lag `yaml:"lag"`
	// MaxStep is the longest integration substep; 0 means 1 ms.
	MaxStep time.Duration `yaml:"max_step"`
	// SensorPeriod is the sampling period of the joint-state sensor; 0 means one sample at the
	// end of every Step.
	SensorPeriod time.Duration `yaml:"sensor_period"`
	// Start is the simulation time at the start of the run; the zero value means the Unix epoch.
	Start time.Time `yaml:"start"`
	// Initial holds the initial joint positions in model order; nil means zero, clamped into the
	// position limits. The initial reference is the initial position.
	Initial []float64 `yaml:"initial"`
	Faults  Faults    `yaml:"faults"`
	// Motors, when not empty, makes the simulator speak motor units on its driver face (and so
	// on its ROS face): ReadState returns, and WriteCommand and WriteTrajectory take, motor
	// positions (encoder ticks, or motor rad without a resolution) and velocities, through
	// motor = direction·gear_ratio·(joint - offset), quantized to resolution ticks per motor turn
	// and wrapped at wrap ticks (the conventions of package calib, implemented here on their
	// own). It must name every actuated joint. The joints, the tasks, TrueStateTo, ReferenceTo
	// and WriteJointCommand stay in joint units. Empty means joint units throughout.
	Motors map[string]robot.Motor `yaml:"motors"`
}

// Defaults.
const (
	DefaultTimeConstant = 50 * time.Millisecond
	DefaultFrequency    = 20.0 // rad/s
	DefaultDamping      = 1.0
	DefaultMaxStep      = time.Millisecond
)

// ErrConfig is wrapped by every configuration error.
var ErrConfig = errors.New("sim: bad config")

func (c Config) withDefaults() Config {
	if c.Lag.Order == 0 {
		c.Lag.Order = 1
	}
	if c.Lag.TimeConstant == 0 {
		c.Lag.TimeConstant = DefaultTimeConstant
	}
	if c.Lag.Frequency == 0 {
		c.Lag.Frequency = DefaultFrequency
	}
	if c.Lag.Damping == 0 {
		c.Lag.Damping = DefaultDamping
	}
	if c.MaxStep == 0 {
		c.MaxStep = DefaultMaxStep
	}
	if c.Start.IsZero() {
		c.Start = time.Unix(0, 0).UTC()
	}
	return c
}

// Validate reports the first invalid field. Zero fields take their defaults first.
func (c Config) Validate() error {
	c = c.withDefaults()
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...)
	}
	finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	switch {
	case c.Lag.Order != 1 && c.Lag.Order != 2:
		return bad("lag.order %d, want 1 or 2", c.Lag.Order)
	case c.Lag.TimeConstant < 0:
		return bad("lag.time_constant %v is negative", c.Lag.TimeConstant)
	case !finite(c.Lag.Frequency) || c.Lag.Frequency < 0:
		return bad("lag.frequency %v is not a positive number", c.Lag.Frequency)
	case !finite(c.Lag.Damping) || c.Lag.Damping < 0:
		return bad("lag.damping %v is not a positive number", c.Lag.Damping)
	case c.MaxStep < 0:
		return bad("max_step %v is negative", c.MaxStep)
	case c.Lag.Order == 2 && c.Lag.Frequency*c.MaxStep.Seconds() > 0.5:
		// Semi-implicit Euler is stable for wn h < 2; 0.5 keeps its error small.
		return bad("lag.frequency %g rad/s is too high for max_step %v (need frequency*max_step <= 0.5)", c.Lag.Frequency, c.MaxStep)
	case c.SensorPeriod < 0:
		return bad("sensor_period %v is negative", c.SensorPeriod)
	}
	f := c.Faults
	switch {
	case f.StateLatency < 0:
		return bad("faults.state_latency %v is negative", f.StateLatency)
	case !(f.StateDrop >= 0 && f.StateDrop < 1):
		return bad("faults.state_drop %v is not in [0, 1)", f.StateDrop)
	case !finite(f.PositionNoise) || f.PositionNoise < 0:
		return bad("faults.position_noise %v is not a standard deviation", f.PositionNoise)
	case !finite(f.VelocityNoise) || f.VelocityNoise < 0:
		return bad("faults.velocity_noise %v is not a standard deviation", f.VelocityNoise)
	case f.CommandDelay < 0:
		return bad("faults.command_delay %v is negative", f.CommandDelay)
	case f.CommandJitter < 0:
		return bad("faults.command_jitter %v is negative", f.CommandJitter)
	case f.Freeze.At < 0 || f.Freeze.For < 0:
		return bad("faults.freeze window %v+%v is negative", f.Freeze.At, f.Freeze.For)
	case f.Stuck.At < 0 || f.Stuck.For < 0:
		return bad("faults.stuck window %v+%v is negative", f.Stuck.At, f.Stuck.For)
	case f.Stuck.Enabled && f.StuckJoint == "":
		return bad("faults.stuck is enabled but faults.stuck_joint names no joint")
	}
	for _, name := range sortedNames(c.Motors) {
		mo := c.Motors[name]
		switch {
		case mo.Direction != 0 && mo.Direction != 1 && mo.Direction != -1:
			return bad("motors.%s.direction %d, want 1 or -1", name, mo.Direction)
		case !finite(mo.Offset):
			return bad("motors.%s.offset %v is not finite", name, mo.Offset)
		case !finite(mo.GearRatio) || mo.GearRatio < 0:
			return bad("motors.%s.gear_ratio %v is not a positive number", name, mo.GearRatio)
		case mo.Resolution < 0 || mo.Wrap < 0 || mo.Wrap > 0 && mo.Resolution == 0:
			return bad("motors.%s: resolution %d and wrap %d: both >= 0, and a wrap needs a resolution", name, mo.Resolution, mo.Wrap)
		}
	}
	for i, v := range c.Initial {
		if !finite(v) {
			return bad("initial[%d] is %v", i, v)
		}
	}
	return nil
}
