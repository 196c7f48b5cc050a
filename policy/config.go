package policy

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/flowact/flowact/policy/chunk"
	"github.com/flowact/flowact/policy/safety"
)

// Config configures a Loop. The zero value is valid: every zero field has the default its
// comment gives.
type Config struct {
	// Rate is the control and action rate in Hz, in [50, 1000]; 0 means 100.
	Rate float64 `yaml:"rate"`
	// Horizon is the chunk length H in ticks; 0 means the inferer's (the model's) H. A non-zero
	// value must equal it.
	Horizon int `yaml:"horizon"`
	// Threshold asks for a new chunk when at most this many actions are left in the plan, in
	// [0, H); 0 means H/2.
	Threshold int `yaml:"threshold"`
	// Chunk selects the splicing strategy and its parameters (default: a 10-tick blend).
	Chunk chunk.Config `yaml:"chunk"`
	// Watchdog sets the staleness limits (defaults: embedding 1 s, joint state 100 ms).
	Watchdog safety.WatchdogConfig `yaml:"watchdog"`
	// Limits tightens the robot model's limits (default: the model's own).
	Limits safety.Config `yaml:"limits"`
	// Seed seeds the expert's noise: request n uses the PCG stream (Seed, n). 0 is a valid seed.
	Seed uint64 `yaml:"seed"`
	// DelayWindow is how many recent chunk delays the prefix length is the maximum of; 0 means 8.
	DelayWindow int `yaml:"delay_window"`
	// DelayMargin adds ticks to the prefix length, to cover jitter of the delay and to give the
	// expert at least two committed actions (the velocity at the seam) even when a chunk
	// arrives at the next tick; 0 means 1, -1 means none.
	DelayMargin int `yaml:"delay_margin"`
	// RobotLag is the robot's command-to-state lag as `flowact calib latency` measured it (in
	// its convention: the transport and servo lag plus the half tick a command is held). The
	// state read at tick k reflects the commands of tick k - L, L = LagShift(RobotLag, Rate),
	// so a chunk asked for at k starts at k - L: its first L rows are the commands already sent
	// since then, which the expert is given as committed actions (prefix and guided), and rows
	// before the arrival are never executed (a slow expert gets a smaller shift: see the package
	// documentation). 0 means no lag; L must be below the horizon; at most 10 s.
	RobotLag time.Duration `yaml:"robot_lag"`
	// TelemetryPeriod is how often a Recorder is given a snapshot; 0 means 1 s.
	TelemetryPeriod time.Duration `yaml:"telemetry_period"`
	// Output is how commands reach the robot: "command", a position command every tick (a group
	// position controller), or "trajectory", the filtered plan as one trajectory whenever it
	// changes (a joint_trajectory_controller; the driver must be a robot.TrajectoryWriter);
	// "" means command.
	Output string `yaml:"output"`
	// Gate is the out-of-distribution gate: the expert's spread over several samples of each
	// chunk, reported in the telemetry, and a threshold above which the loop holds instead of
	// executing the chunk. Off by default.
	Gate GateConfig `yaml:"gate"`
	// Average executes the consensus of several samples of each chunk instead of one (the
	// expert's regression answer where it sees one way to go, one group's where it sees two).
	// Off by default.
	Average AverageConfig `yaml:"average"`
	// IsolateTick runs the control tick on a CPU of its own: Run binds the tick's OS thread to
	// the last CPU the process may run on and the inference worker's (with the network's own
	// worker threads, see Expert.WorkerThreads) to every other one (sched_setaffinity), so
	// that inference never takes the tick's core. Other goroutines of the process still run
	// anywhere. Linux only; Run refuses it elsewhere, on fewer than two CPUs and with GOMAXPROCS
	// below 2. false (the default) leaves every thread to the OS.
	IsolateTick bool `yaml:"isolate_tick"`
}

// GateConfig configures the out-of-distribution gate. The zero value is off: one sample per
// chunk, no spread, no gate.
type GateConfig struct {
	// Samples is the number of chunks the expert draws from each observation, in one batched
	// call, to measure their spread (Expert.SetSpreadSamples; the first is executed): 0 means
	// none (no spread is measured), else in [2, MaxSpreadSamples]. New configures the Inferer,
	// which must then implement SpreadSampler.
	Samples int `yaml:"samples"`
	// Rows is how many rows after the committed ones the spread is measured over (the near
	// future the robot executes first); 0 means every uncommitted row of the chunk.
	Rows int `yaml:"rows"`
	// MaxSpread is the spread (normalized action units, chunk.Chunk.Spread) above which a chunk
	// is not executed: the loop drops the plan and decelerates to a stop within the limits, as
	// when no chunk comes, and keeps asking; a chunk within it starts the robot again. 0 means
	// off (the spread is still reported when Samples is set); a positive value needs Samples.
	MaxSpread float64 `yaml:"max_spread"`
	// MaxStateOut is how far, in standard deviations of the training data, a feature of the
	// observed state (a joint position, or the end effector's position) may lie beyond the
	// range the expert's training data spanned (chunk.Chunk.StateOut; the checkpoint's
	// normalization statistics' min and max): a chunk sampled from a state farther out is not
	// executed, as with MaxSpread. It catches what the spread cannot, a pose the expert never
	// saw, about which its samples agree while they are wrong. 0 means off; it needs an Inferer
	// that measures it (Expert with normalization statistics), not Samples.
	MaxStateOut float64 `yaml:"max_state_out"`
}

// AverageConfig configures sample averaging (Expert.SetAverage). The zero value is off.
type AverageConfig struct {
	// Samples is the number of chunks drawn from each observation in one batched call: 0 means
	// off, else in [2, MaxSpreadSamples]; with Gate.Samples also set the two must be equal (one
	// batch serves both).
	Samples int `yaml:"samples"`
	// Within is the grouping factor: the first sample and every other whose distance from it is
	// at most Within times the nearest one's are averaged; at least 1 (2 to 3 keeps one group of
	// samples whole); 0 means 2.
	Within float64 `yaml:"within"`
}

// DefaultAverageWithin is AverageConfig.Within's default.
const DefaultAverageWithin = 2

// Validate checks the averaging fields against the gate's.
func (a AverageConfig) Validate(g GateConfig) error {
	switch {
	case a.Samples != 0 && (a.Samples < 2 || a.Samples > MaxSpreadSamples):
		return fmt.Errorf("policy: average.samples %d: want 0 (off) or 2 to %d: %w", a.Samples, MaxSpreadSamples, ErrConfig)
	case a.Within != 0 && (!(a.Within >= 1) || math.IsInf(a.Within, 0)):
		return fmt.Errorf("policy: average.within %g: want a finite factor of at least 1 (0: %d): %w", a.Within, DefaultAverageWithin, ErrConfig)
	case a.Within != 0 && a.Samples == 0:
		return fmt.Errorf("policy: average.within %g needs average.samples: %w", a.Within, ErrConfig)
	case a.Samples != 0 && g.Samples != 0 && a.Samples != g.Samples:
		return fmt.Errorf("policy: average.samples %d and gate.samples %d differ: the expert draws one batch of samples for both: %w", a.Samples, g.Samples, ErrConfig)
	}
	return nil
}

// Validate checks the gate's fields.
func (g GateConfig) Validate() error {
	switch {
	case g.Samples != 0 && (g.Samples < 2 || g.Samples > MaxSpreadSamples):
		return fmt.Errorf("policy: gate.samples %d: want 0 (off) or 2 to %d: %w", g.Samples, MaxSpreadSamples, ErrConfig)
	case g.Rows < 0 || g.Rows > 1000:
		return fmt.Errorf("policy: gate.rows %d: want 0 (every uncommitted row) to 1000: %w", g.Rows, ErrConfig)
	case g.Rows > 0 && g.Samples == 0:
		return fmt.Errorf("policy: gate.rows %d needs gate.samples: %w", g.Rows, ErrConfig)
	case !(g.MaxSpread >= 0) || math.IsInf(g.MaxSpread, 0):
		return fmt.Errorf("policy: gate.max_spread %g: want 0 (off) or a positive spread: %w", g.MaxSpread, ErrConfig)
	case g.MaxSpread > 0 && g.Samples == 0:
		return fmt.Errorf("policy: gate.max_spread %g needs gate.samples (2 or more chunks per observation to measure a spread): %w", g.MaxSpread, ErrConfig)
	case !(g.MaxStateOut >= 0) || math.IsInf(g.MaxStateOut, 0):
		return fmt.Errorf("policy: gate.max_state_out %g: want 0 (off) or a positive number of standard deviations: %w", g.MaxStateOut, ErrConfig)
	}
	return nil
}

// ErrConfig is wrapped by every configuration error.
var ErrConfig = errors.New("policy: bad config")

// Validate checks the fields that do not depend on the robot or the model.
func (c *Config) Validate() error {
	if c.Rate != 0 && !(c.Rate >= 50 && c.Rate <= 1000) {
		return fmt.Errorf("policy: rate %g Hz not in [50, 1000]: %w", c.Rate, ErrConfig)
	}
	if c.Horizon < 0 {
		return fmt.Errorf("policy: horizon %d is negative: %w", c.Horizon, ErrConfig)
	}
	if c.Threshold < 0 {
		return fmt.Errorf("policy: threshold %d is negative: %w", c.Threshold, ErrConfig)
	}
	if c.Horizon > 0 && c.Threshold >= c.Horizon {
		return fmt.Errorf("policy: threshold %d must be below the horizon %d: %w", c.Threshold, c.Horizon, ErrConfig)
	}
	if c.DelayWindow < 0 || c.DelayWindow > 1024 {
		return fmt.Errorf("policy: delay_window %d not in [0, 1024]: %w", c.DelayWindow, ErrConfig)
	}
	if c.DelayMargin < -1 {
		return fmt.Errorf("policy: delay_margin %d is below -1: %w", c.DelayMargin, ErrConfig)
	}
	if c.RobotLag < 0 || c.RobotLag > 10*time.Second {
		return fmt.Errorf("policy: robot_lag %v not in [0, 10s]: %w", c.RobotLag, ErrConfig)
	}
	switch c.Output {
	case "", "command", "trajectory":
	default:
		return fmt.Errorf("policy: output %q is not command or trajectory: %w", c.Output, ErrConfig)
	}
	if c.TelemetryPeriod < 0 {
		return fmt.Errorf("policy: telemetry_period %v is negative: %w", c.TelemetryPeriod, ErrConfig)
	}
	if err := c.Average.Validate(c.Gate); err != nil {
		return err
	}
	if err := c.Gate.Validate(); err != nil {
		return err
	}
	if err := c.Chunk.Validate(); err != nil {
		return fmt.Errorf("policy: %w", err)
	}
	if err := c.Watchdog.Validate(); err != nil {
		return fmt.Errorf("policy: %w", err)
	}
	if err := c.Limits.Validate(); err != nil {
		return fmt.Errorf("policy: limits: %w", err)
	}
	return nil
}

// withDefaults fills the zero fields; h is the model's horizon.
func (c Config) withDefaults(h int) Config {
	if c.Rate == 0 {
		c.Rate = 100
	}
	if c.Horizon == 0 {
		c.Horizon = h
	}
	if c.Threshold == 0 {
		c.Threshold = c.Horizon / 2
	}
	if c.DelayWindow == 0 {
		c.DelayWindow = 8
	}
	switch c.DelayMargin {
	case 0:
		c.DelayMargin = 1
	case -1:
		c.DelayMargin = 0
	}
	if c.TelemetryPeriod == 0 {
		c.TelemetryPeriod = time.Second
	}
	c.Chunk = c.Chunk.WithDefaults()
	c.Watchdog = c.Watchdog.WithDefaults()
	return c
}

// LagShift returns the ticks L at rate Hz by which a measured command-to-state lag puts the
// state read at tick k behind the commands: the state reflects the command of tick k - L. A
// command is held for a period, so a pure delay of D reaches back ceil(D rate) ticks, while
// `flowact calib latency` measures D rate + 1/2 (the hold's half tick, calib/doc.go): L is the
// measurement rounded half down, ceil(lag rate - 1/2), the nanosecond below forgiven (a lag of
// exactly k + 1/2 periods, as written to a file in whole nanoseconds, is k ticks). 0 for no lag.
func LagShift(lag time.Duration, rate float64) int {
	if lag <= 0 || !(rate > 0) {
		return 0
	}
	return max(int(math.Ceil(lag.Seconds()*rate-0.5-1e-6)), 0)
}

// Period returns the control period for rate Hz.
func period(rate float64) time.Duration {
	return time.Duration(math.Round(float64(time.Second) / rate))
}
