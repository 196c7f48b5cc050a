package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/flowact/flowact/calib"
	"github.com/flowact/flowact/configs"
	"github.com/flowact/flowact/policy"
	"github.com/flowact/flowact/policy/safety"
	"github.com/flowact/flowact/robot"
	"github.com/flowact/flowact/robot/ros"
	"github.com/flowact/flowact/robot/urdf"
	"github.com/flowact/flowact/sim"
)

// calibOptions are the flags shared by `flowact calib motors` and `flowact calib latency`.
type calibOptions struct {
	robot, robotDir string
	simulate        bool
	simConfig       string
	master, name    string
	wait            time.Duration
	jsonOut         bool
	logLevel        string
	debug           bool // --debug, the former --log-level debug

	// motors
	out        string
	sweepSpeed float64

	// latency
	calibration string
	writeLag    bool
	policy      string
	rate        float64
	duration    time.Duration
	amplitude   float64
	joints      []string
	seed        uint64
	maxLag      time.Duration
	segments    int
}

func newCalibCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "calib",
		Short: "Calibrate a robot: joint <-> motor transmissions, and the command-to-state lag",
		Long: `Calibration procedures against a live robot over ROS or the in-process simulator (--sim):

  motors   measure each joint's motor offset and direction, check them against the robot's
           nominal transmissions (URDF <transmission>, robot.yaml motors), sweep each joint over
           its travel, and write a versioned calibration file
  latency  measure the lag from a position command to the joint state that reflects it, and
           write it into a policy file's loop.robot_lag

Conventions (units, signs, the wrap rule, which source wins) are in calib/doc.go.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usagef("calib: name a procedure: motors or latency")
		},
	}
	cmd.AddCommand(newCalibMotorsCmd(), newCalibLatencyCmd())
	return cmd
}

func (o *calibOptions) commonFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.robot, "robot", "ur5", "shipped robot's name (configs/robots/NAME), or a robot directory on disk with robot.yaml and its URDF,\ngiven as a path with a slash (./my_arm)")
	f.StringVar(&o.robotDir, "robot-dir", "", "robot directory on disk (former name; --robot takes a directory)")
	f.BoolVar(&o.simulate, "sim", false, "calibrate the in-process simulator (on its own clock) instead of a robot over ROS")
	f.StringVar(&o.simConfig, "sim-config", "", "with --sim: YAML file of the simulator's settings (sim.Config: lag, sensor_period, faults, motors, initial)")
	f.StringVar(&o.master, "master", "", "ROS master URI (default $ROS_MASTER_URI, else "+ros.DefaultMasterURI+")")
	f.StringVar(&o.name, "name", "flowact_calib", "ROS node name")
	f.DurationVar(&o.wait, "connect-timeout", 10*time.Second, "how long to wait for the ROS master and a first joint state")
	f.BoolVar(&o.jsonOut, "json", false, "print the result as JSON")
	f.StringVar(&o.logLevel, "log-level", "warn", "log level on stderr: debug, info, warn or error")
	f.BoolVar(&o.debug, "debug", false, "log at debug level (former name of --log-level debug)")
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	renameFlags(cmd, map[string]string{"wait": "connect-timeout"})
	legacyFlag(cmd, "debug", "--log-level debug")
	legacyFlag(cmd, "robot-dir", "--robot DIR")
}

func newCalibMotorsCmd() *cobra.Command {
	var o calibOptions
	cmd := &cobra.Command{
		Use:   "motors --out FILE [--robot NAME|DIR] [--sim [--sim-config FILE] | --master URI]",
		Short: "Measure motor offsets and directions; write a calibration file",
		Long: `Guided motor calibration of a robot whose joint states and commands are in motor units
(encoder ticks, or motor rad), starting from its nominal transmissions (the URDF's
<transmission> elements, robot.yaml's motors block):

 1. hold: put every joint at the middle of its travel; the offsets follow from the ticks read;
 2. step: move every joint up (its URDF positive direction) by a fifth of its travel; this
    gives each motor's direction and checks its reduction;
 3. sweep: the robot moves each joint slowly over 90% of its travel through the new
    calibration while the motor positions are recorded from the joint states.

Over ROS, steps 1 and 2 are done by hand (torque off, or a teach mode): the command prints the
pose and waits for Enter. With --sim, the simulator's joints are moved for you. It refuses a
direction that disagrees with the model, an offset more than a quarter motor turn from the
nominal one, a counter that wraps inside a joint's travel, a reduction off by more than 5%, and
a joint that does not follow its sweep, naming each joint; otherwise it writes --out.`,
		Example: `  flowact calib motors --robot arm5 --sim --sim-config testdata/arm5-motors.yaml --out arm5-calib.yaml
  flowact calib motors --robot ./my_arm --master http://10.0.0.2:11311/ --out my_arm-calib.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runCalibMotors(cmd, &o) },
	}
	o.commonFlags(cmd)
	cmd.Flags().StringVar(&o.out, "out", "", "calibration file to write (required)")
	cmd.Flags().Float64Var(&o.sweepSpeed, "sweep-speed", 0.1, "sweep speed, as a fraction of each joint's velocity limit, in (0, 1]")
	return cmd
}

func newCalibLatencyCmd() *cobra.Command {
	var o calibOptions
	cmd := &cobra.Command{
		Use:   "latency [--policy FILE] [--robot NAME|DIR] [--sim [--sim-config FILE] | --master URI]",
		Short: "Measure the command-to-state lag; write it into a policy file",
		Long: `Measure the robot's command-to-state lag: hold the current pose, excite the joints around it
with small seeded random targets shaped by the safety filter (the robot's limits, tightened by
the policy's loop.limits), record commanded and measured positions every control tick, and
cross-correlate them (calib/doc.go). Reports the lag in seconds and in control ticks at --rate
with a 95% confidence interval. With --policy FILE it writes the lag into that file's
loop.robot_lag (policy.Config.RobotLag): the loop then starts each chunk that many ticks
before its request, since the state it read reflects the commands sent then, and conditions
it on the commands sent since; the rest of the file is kept as it is. docs/calibration.md
shows what that does to closed-loop success in the simulator.

The robot must be in joint units, or given a calibration file (--calibration) that maps its
motor units; a simulator with a motor face (--sim-config with motors) without --calibration
uses the nominal transmissions. With --write-lag the lag is written into the --calibration
file (its lag: key; the rest is rewritten as it was read), where flowact run --calib reads it:
the lag is the robot's, not the policy's.`,
		Example: `  flowact calib latency --sim --sim-config lag.yaml --rate 50 --policy my-policy.yaml
  flowact calib latency --robot arm5 --master http://10.0.0.2:11311/ --calibration arm5.yaml --write-lag
  flowact calib latency --robot ur5 --master http://10.0.0.2:11311/ --rate 125 --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runCalibLatency(cmd, &o) },
	}
	o.commonFlags(cmd)
	f := cmd.Flags()
	f.StringVar(&o.calibration, "calibration", "", "calibration file mapping the robot's motor units to joints")
	f.BoolVar(&o.writeLag, "write-lag", false, "write the measured lag into the --calibration file (lag:)")
	f.StringVar(&o.policy, "policy", "", "policy file on disk: its loop rate and limits are used, and loop.robot_lag is written")
	f.Float64Var(&o.rate, "rate", 0, "control rate, Hz (default: the policy's loop.rate, else 100)")
	f.DurationVar(&o.duration, "duration", 20*time.Second, "length of the excitation")
	f.Float64Var(&o.amplitude, "amplitude", 0.05, "peak excitation around the hold pose, rad or m (at most a tenth of each joint's travel)")
	f.StringSliceVar(&o.joints, "joints", nil, "joints to excite (default all)")
	f.Uint64Var(&o.seed, "seed", 1, "seed of the excitation")
	f.DurationVar(&o.maxLag, "max-lag", 500*time.Millisecond, "largest lag searched (each of the segments must last 4 times this)")
	f.IntVar(&o.segments, "segments", 8, "segments the record is cut into for the confidence interval (at least 3)")
	return cmd
}

// target is what a procedure runs against: a driver in the robot's own units, its clock, and
// the simulator when in-process.
type target struct {
	m     *robot.Model
	rc    robot.Config
	tr    []urdf.Transmission
	d     robot.Driver
	clk   robot.Clock
	sim   *sim.Sim
	close func()
}

// openCalibTarget loads the robot and connects to it: the simulator (motors: give it the
// nominal motors when its config has none) or a ROS node.
func openCalibTarget(cmd *cobra.Command, o *calibOptions, motors bool) (*target, error) {
	var (
		m    *robot.Model
		rc   robot.Config
		fsys fs.FS
		dir  string
		err  error
	)
	robotDir := o.robotDir
	if robotDir != "" && cmd.Flags().Changed("robot") {
		return nil, usagef("calib: give --robot or --robot-dir, not both")
	}
	if robotDir == "" && isRobotDir(o.robot) {
		robotDir = o.robot
	}
	if robotDir != "" {
		fsys, dir = os.DirFS(robotDir), "."
		m, rc, err = urdf.LoadConfig(fsys, dir)
	} else {
		fsys, dir = configs.FS, path.Join("robots", o.robot)
		m, rc, err = urdf.Shipped(o.robot)
	}
	if err != nil {
		return nil, usageError{err}
	}
	tr, err := urdf.LoadTransmissions(fsys, dir, rc)
	if err != nil {
		return nil, usageError{err}
	}
	t := &target{m: m, rc: rc, tr: tr}
	if o.simulate {
		var cfg sim.Config
		if o.simConfig != "" {
			data, err := os.ReadFile(o.simConfig)
			if err != nil {
				return nil, usagef("calib: %v", err)
			}
			if err := configs.Decode(o.simConfig, data, &cfg); err != nil {
				return nil, usageError{oneLine(err)}
			}
		}
		if cfg.Initial == nil {
			cfg.Initial = rc.HomePosition(m)
		}
		if motors && cfg.Motors == nil {
			cfg.Motors = rc.Motors
		}
		s, err := sim.New(m, cfg)
		if err != nil {
			return nil, usageError{err}
		}
		s.Step(cfg.Faults.StateLatency + 100*time.Millisecond) // a first visible state
		t.d, t.clk, t.sim, t.close = s, s.Clock(), s, func() {}
		return t, nil
	}
	log, err := newLogger(cmd.ErrOrStderr(), logLevel(cmd.Flags(), o.logLevel, o.debug))
	if err != nil {
		return nil, err
	}
	rc.EnsureDefaults()
	// One node, no command connection: the procedure does not stop on a shutdown request from
	// outside, so that would only keep it commanding after a rosnode kill.
	n, err := ros.New(ros.Config{Name: o.name, MasterURI: o.master, Logger: log, MotorUnits: true, SingleNode: true,
		Topics: ros.Topics{JointStates: rc.Topics.JointStates, Command: rc.Topics.Command, Trajectory: rc.Topics.Trajectory}}, m, ros.Handlers{})
	if err != nil {
		return nil, usageError{err}
	}
	ctx, cancel := context.WithCancel(cmd.Context())
	errc := make(chan error, 1)
	go func() { errc <- n.Run(ctx) }()
	t.close = func() { cancel(); <-errc }
	timer := time.NewTimer(o.wait)
	defer timer.Stop()
	select {
	case <-n.Ready():
	case err := <-errc:
		cancel()
		return nil, fmt.Errorf("calib: %w", err)
	case <-timer.C:
		t.close()
		return nil, fmt.Errorf("calib: no ROS master answered within %v (start one with 'flowact master' or roscore, or pass --master)", o.wait)
	}
	st := robot.NewState(m.DoF())
	for n.Driver().ReadState(&st) != nil {
		select {
		case <-timer.C:
			t.close()
			return nil, fmt.Errorf("calib: no joint state on %s within %v", n.Topics().JointStates, o.wait)
		case <-ctx.Done():
			t.close()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.d, t.clk = n.Driver(), n.Clock()
	return t, nil
}

// simHand moves the simulator's joints in joint units and lets 3 s of simulated time pass.
func simHand(s *sim.Sim) calib.Operator {
	return calib.OperatorFunc(func(ctx context.Context, _ string, q []float64) error {
		if err := s.WriteJointCommand(&robot.Command{Position: q}); err != nil {
			return err
		}
		return s.Clock().SleepUntil(ctx, s.Now().Add(3*time.Second))
	})
}

// promptOperator asks a person to pose the arm and waits for Enter.
type promptOperator struct {
	m   *robot.Model
	nom *calib.Set
	in  *bufio.Reader
	out io.Writer
}

func (p *promptOperator) Pose(ctx context.Context, step string, q []float64) error {
	fmt.Fprintf(p.out, "\n%s:\n", step)
	u := make([]float64, len(q))
	p.nom.PositionToMotor(u, q)
	tw := tabwriter.NewWriter(p.out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "  joint\ttarget\tnominal motor\n")
	for i, j := range p.m.Joints {
		fmt.Fprintf(tw, "  %s\t%.4f\t%.1f\n", j.Name, q[i], u[i])
	}
	tw.Flush()
	fmt.Fprintf(p.out, "press Enter when the arm is there and still ")
	line := make(chan error, 1)
	go func() { _, err := p.in.ReadString('\n'); line <- err }()
	select {
	case err := <-line:
		if err != nil {
			return fmt.Errorf("calib: waiting for Enter: %w", err)
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func runCalibMotors(cmd *cobra.Command, o *calibOptions) error {
	if o.out == "" {
		return usagef("calib motors: --out FILE is required")
	}
	if err := (calib.MotorsConfig{Speed: o.sweepSpeed}).Validate(); err != nil {
		return usagef("calib motors: --sweep-speed: %v", err)
	}
	t, err := openCalibTarget(cmd, o, true)
	if err != nil {
		return err
	}
	defer t.close()
	nominal, err := calib.Nominal(t.m, t.rc.Motors, t.tr)
	if err != nil {
		return usageError{err}
	}
	if nominal == nil {
		return usagef("calib motors: robot %q has no nominal transmissions: give robot.yaml a motors block or the URDF <transmission> elements", t.m.Name)
	}
	var op calib.Operator
	if t.sim != nil {
		op = simHand(t.sim)
	} else {
		nom, err := calib.NewSet(t.m, nominal)
		if err != nil {
			return usageError{err}
		}
		op = &promptOperator{m: t.m, nom: nom, in: bufio.NewReader(cmd.InOrStdin()), out: cmd.ErrOrStderr()}
	}
	f, rep, err := calib.CalibrateMotors(cmd.Context(), t.d, t.clk, op, nominal, calib.MotorsConfig{Speed: o.sweepSpeed})
	printMotorsReport(cmd.OutOrStdout(), o.jsonOut, t.m, rep, f, err)
	if err != nil {
		return err
	}
	where := "ROS"
	if t.sim != nil {
		where = "the simulator"
	}
	f.Source = fmt.Sprintf("flowact calib motors, robot %s over %s, %s", t.m.Name, where, t.clk.Now().UTC().Format(time.RFC3339))
	data, err := f.Marshal()
	if err != nil {
		return err
	}
	if err := os.WriteFile(o.out, data, 0o644); err != nil {
		return fmt.Errorf("calib motors: %w", err)
	}
	if !o.jsonOut {
		fmt.Fprintf(cmd.OutOrStdout(), "flowact calib motors: wrote %s\n", o.out)
	}
	return nil
}

func printMotorsReport(w io.Writer, asJSON bool, m *robot.Model, rep []calib.JointReport, f *calib.File, err error) {
	if asJSON {
		type joint struct {
			Joint     string     `json:"joint"`
			Hold      float64    `json:"hold_motor"`
			Stepped   float64    `json:"stepped_motor"`
			Direction int        `json:"direction"`
			Reduction float64    `json:"reduction_ratio"`
			Offset    float64    `json:"offset"`
			Range     [2]float64 `json:"range_motor"`
		}
		out := struct {
			Robot  string  `json:"robot"`
			OK     bool    `json:"ok"`
			Error  string  `json:"error,omitempty"`
			Joints []joint `json:"joints"`
		}{Robot: m.Name, OK: err == nil && f != nil}
		if err != nil {
			out.Error = err.Error()
		}
		for _, r := range rep {
			out.Joints = append(out.Joints, joint{r.Joint, r.Hold, r.Stepped, r.Direction, r.Reduction, r.Offset, r.Range})
		}
		b, _ := json.MarshalIndent(out, "", "  ")
		fmt.Fprintf(w, "%s\n", b)
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "joint\thold\tstepped\tdirection\treduction/nominal\toffset\trange\n")
	for _, r := range rep {
		fmt.Fprintf(tw, "%s\t%.1f\t%.1f\t%+d\t%.4f\t%.6f\t[%.0f, %.0f]\n", r.Joint, r.Hold, r.Stepped, r.Direction, r.Reduction, r.Offset, r.Range[0], r.Range[1])
	}
	tw.Flush()
}

// latencyResult is `flowact calib latency --json`.
type latencyResult struct {
	Robot    string    `json:"robot"`
	Rate     float64   `json:"rate_hz"`
	Seconds  float64   `json:"lag_s"`
	Ticks    float64   `json:"lag_ticks"`
	Low      float64   `json:"ci95_low_ticks"`
	High     float64   `json:"ci95_high_ticks"`
	Segments []float64 `json:"segments_ticks"`
	Peak     float64   `json:"correlation_peak"`
	Shift    int       `json:"shift_ticks"` // policy.LagShift: the ticks a chunk starts before its request
	Late     int       `json:"late_ticks"`  // ticks taken a period or more late (calib.Latency.Late)
	Policy   string    `json:"policy,omitempty"`
	// Calibration is the calibration file the lag was written into (--write-lag).
	Calibration string `json:"calibration,omitempty"`
}

func runCalibLatency(cmd *cobra.Command, o *calibOptions) error {
	if o.writeLag && o.calibration == "" {
		return usagef("calib latency: --write-lag writes into the --calibration file: give one")
	}
	var pf *PolicyFile
	if o.policy != "" {
		if _, err := os.Stat(o.policy); err != nil {
			return usagef("calib latency: --policy must be a file on disk: %v", err)
		}
		var err error
		if pf, err = loadPolicyFile(o.policy); err != nil {
			return err
		}
	}
	rate := o.rate
	if rate == 0 && pf != nil {
		rate = pf.Loop.Rate
	}
	if rate == 0 {
		rate = 100
	}
	t, err := openCalibTarget(cmd, o, false)
	if err != nil {
		return err
	}
	defer t.close()
	if pf != nil && pf.Robot != t.m.Name && !isRobotDir(pf.Robot) {
		return usagef("calib latency: the policy drives robot %q, not %q", pf.Robot, t.m.Name)
	}
	d := t.d
	var file *calib.File
	if o.calibration != "" {
		if file, err = calib.ReadFile(o.calibration); err != nil {
			return usageError{err}
		}
	}
	if file != nil || t.sim != nil && t.sim.MotorFace() {
		set, _, err := calib.Resolve(t.m, file, t.rc.Motors, t.tr)
		if err != nil {
			return usageError{err}
		}
		if set != nil {
			if d, err = calib.Wrap(d, set); err != nil {
				return err
			}
		}
	}
	var limits safety.Config
	if pf != nil {
		limits = pf.Loop.Limits
	}
	lim, err := safety.Resolve(t.m, &limits)
	if err != nil {
		return usageError{err}
	}
	cfg := calib.LatencyConfig{Rate: rate, Duration: o.duration, Amplitude: o.amplitude, Joints: o.joints, Seed: o.seed,
		MaxLag: o.maxLag, Segments: o.segments}
	if err := cfg.Validate(); err != nil {
		return usageError{err}
	}
	lat, err := calib.MeasureLatency(cmd.Context(), d, t.clk, safety.NewFilter(lim, 1/rate), cfg)
	if err != nil {
		return err
	}
	lag := time.Duration(math.Round(lat.Seconds*1e6)) * time.Microsecond
	res := latencyResult{Robot: t.m.Name, Rate: rate, Seconds: lat.Seconds, Ticks: lat.Ticks, Low: lat.Low, High: lat.High,
		Segments: lat.Segments, Peak: lat.Peak, Shift: policy.LagShift(lag, rate), Late: lat.Late}
	if pf != nil {
		if err := writeRobotLag(o.policy, lag); err != nil {
			return err
		}
		res.Policy = o.policy
	}
	if o.writeLag {
		file.Lag = lag
		data, err := file.Marshal()
		if err != nil {
			return err
		}
		if err := os.WriteFile(o.calibration, data, 0o644); err != nil {
			return fmt.Errorf("calib latency: %w", err)
		}
		res.Calibration = o.calibration
	}
	out := cmd.OutOrStdout()
	if o.jsonOut {
		b, _ := json.MarshalIndent(res, "", "  ")
		fmt.Fprintf(out, "%s\n", b)
		return nil
	}
	fmt.Fprintf(out, "flowact calib latency: %s at %g Hz: lag %.1f ms = %.2f ticks (95%% CI [%.2f, %.2f] ticks, correlation %.3f, %d segments)\n",
		t.m.Name, rate, 1e3*lat.Seconds, lat.Ticks, lat.Low, lat.High, lat.Peak, len(lat.Segments))
	if lat.Late > 0 {
		fmt.Fprintf(out, "flowact calib latency: %d ticks were taken a period or more late (a starved process): the estimate assumes even ticks and is less accurate than its interval says\n", lat.Late)
	}
	if pf != nil {
		fmt.Fprintf(out, "flowact calib latency: wrote loop.robot_lag: %v to %s (chunks start %d ticks before their request)\n", lag, o.policy, res.Shift)
	}
	if o.writeLag {
		fmt.Fprintf(out, "flowact calib latency: wrote lag: %v to %s (flowact run --calib reads it)\n", lag, o.calibration)
	}
	return nil
}

// writeRobotLag sets loop.robot_lag in the policy file at name, editing that one line (or
// adding it under loop:, or adding a loop: block) so that comments and layout stay; the result
// is decoded strictly before it replaces the file.
func writeRobotLag(name string, lag time.Duration) error {
	data, err := os.ReadFile(name)
	if err != nil {
		return fmt.Errorf("calib latency: %w", err)
	}
	edited, err := setRobotLag(string(data), lag)
	if err != nil {
		return fmt.Errorf("calib latency: %s: %w", name, err)
	}
	var p PolicyFile
	if err := configs.Decode(name, []byte(edited), &p); err != nil {
		return fmt.Errorf("calib latency: the edited %s does not decode: %w", name, err)
	}
	if p.Loop.RobotLag != lag {
		return fmt.Errorf("calib latency: the edited %s reads loop.robot_lag %v, want %v", name, p.Loop.RobotLag, lag)
	}
	fi, err := os.Stat(name)
	if err != nil {
		return fmt.Errorf("calib latency: %w", err)
	}
	if err := os.WriteFile(name, []byte(edited), fi.Mode().Perm()); err != nil {
		return fmt.Errorf("calib latency: %w", err)
	}
	return nil
}

// setRobotLag edits YAML text (block style at the top level) to hold loop.robot_lag = lag.
func setRobotLag(text string, lag time.Duration) (string, error) {
	value := fmt.Sprintf("robot_lag: %v  # measured by flowact calib latency", lag)
	lines := strings.SplitAfter(text, "\n")
	loop := -1
	for i, l := range lines {
		if strings.HasPrefix(l, "loop:") {
			rest := strings.TrimSpace(strings.TrimPrefix(l, "loop:"))
			if rest != "" && !strings.HasPrefix(rest, "#") {
				return "", errors.New("loop: is written in flow style: set loop.robot_lag by hand")
			}
			loop = i
			break
		}
	}
	if loop < 0 {
		if text != "" && !strings.HasSuffix(text, "\n") {
			text += "\n"
		}
		return text + "loop:\n  " + value + "\n", nil
	}
	// The block under loop: ends at the next line that starts in column 0 (not a comment).
	indent := ""
	for i := loop + 1; i < len(lines); i++ {
		l := strings.TrimSuffix(lines[i], "\n")
		trimmed := strings.TrimLeft(l, " ")
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		if len(trimmed) == len(l) {
			break
		}
		if indent == "" {
			indent = l[:len(l)-len(trimmed)]
		}
		if strings.HasPrefix(l, indent+"robot_lag:") {
			lines[i] = indent + value + "\n"
			return strings.Join(lines, ""), nil
		}
	}
	if indent == "" {
		indent = "  "
	}
	out := append([]string(nil), lines[:loop+1]...)
	if !strings.HasSuffix(out[loop], "\n") {
		out[loop] += "\n"
	}
	out = append(out, indent+value+"\n")
	out = append(out, lines[loop+1:]...)
	return strings.Join(out, ""), nil
}
