package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/flowact/flowact/configs"
	"github.com/flowact/flowact/robot"
	"github.com/flowact/flowact/robot/ros"
	"github.com/flowact/flowact/robot/urdf"
	"github.com/flowact/flowact/sim/node"
	"github.com/flowact/flowact/sim/task"
)

// simOptions are the flags of `flowact sim`.
type simOptions struct {
	robot, robotDir string
	rate            float64
	master, name    string
	simTime         bool
	speed           float64
	task            string
	seed            uint64
	embedding       bool
	embeddingType   string
	config          string
	wait            time.Duration
	logLevel        string
	debug           bool // --debug, the former --log-level debug
}

func newSimCmd() *cobra.Command { return simCommand(new(simOptions)) }

// simCommand is `flowact sim` with its flags bound to o.
func simCommand(o *simOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sim [from:=to ...] [__name:=NAME] [_param:=VALUE ...]",
		Short: "Run the kinematic simulator as a ROS node",
		Long: `Run flowact's kinematic simulator as a ROS 1 node that stands in for a ROS-controlled arm:
it publishes /joint_states, /tf, /tf_static, /diagnostics and visualization markers (the arm,
the task's targets and obstacles; add a MarkerArray display on /flowact/markers in rviz), sets
/robot_description from the robot's URDF unless it is set (a RobotModel display shows the arm),
and
accepts std_msgs/Float64MultiArray commands (one per control tick) and
trajectory_msgs/JointTrajectory chunks on the topics of the robot's robot.yaml. With --task and
--publish-embedding it also publishes the synthetic VLM's embedding of the scene on /flowact/embedding,
so that 'flowact run' can drive it. --task takes a task file or a shipped task's name
(configs/tasks) and builds the scene as 'flowact demo' does: the file's task, robot (unless
--robot is given), and its episode's synthetic VLM and simulator settings (unless
--config sets them), so a checkpoint trained for the task sees the VLM it was trained with.

It joins the master at --master, else $ROS_MASTER_URI, else http://127.0.0.1:11311/ (start one
with 'flowact master' or roscore), and exits with an error if none answers within
--connect-timeout.
With --sim-time it is the ROS clock: it publishes /clock, sets /use_sim_time, and may run
faster than real time (--speed 4, or --speed inf for as fast as possible).

ROS arguments may follow the flags, as with roscpp nodes: remaps (/joint_states:=/arm/joint_states),
__name:=, __ns:=, __master:=, and private parameters, each setting the flag of its name
(_rate:=10 is --rate 10; settable: _robot _rate _sim_time _speed _task _seed _publish_embedding
_embedding_type _config _connect_timeout _log_level); any other private parameter is an error.
Stops on SIGINT or SIGTERM, unregistering from the master.`,
		Example: `  flowact sim --robot ur5 --rate 100
  flowact sim --robot panda --task reach --seed 3 --publish-embedding --master http://10.0.0.2:11311/
  flowact sim --sim-time --speed inf /joint_states:=/arm/joint_states
  flowact sim _rate:=10 _task:=reach __name:=arm_sim`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := applyPrivateParams(cmd, args); err != nil {
				return err
			}
			return runSimCmd(cmd, *o, args)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.robot, "robot", "ur5", "shipped robot's name (configs/robots/NAME), or a robot directory on disk with robot.yaml and its URDF,\ngiven as a path with a slash (./my_arm); default: the --task file's, else ur5")
	f.StringVar(&o.robotDir, "robot-dir", "", "robot directory on disk (former name; --robot takes a directory)")
	f.Float64Var(&o.rate, "rate", node.DefaultRate, "simulation step and /joint_states rate, Hz")
	f.StringVar(&o.master, "master", "", "ROS master URI (default $ROS_MASTER_URI, else "+ros.DefaultMasterURI+")")
	f.StringVar(&o.name, "name", ros.DefaultSimName, "ROS node name")
	f.BoolVar(&o.simTime, "sim-time", false, "publish /clock and run on simulation time")
	f.Float64Var(&o.speed, "speed", 1, "with --sim-time: simulated seconds per wall second (inf: as fast as possible)")
	f.StringVar(&o.task, "task", "", "task file, or shipped task ("+strings.Join(task.Names(), ", ")+"), whose scene to show (default none)")
	f.Uint64Var(&o.seed, "seed", 1, "seed of the task's scene and the synthetic VLM's noise")
	f.BoolVar(&o.embedding, "publish-embedding", false, "publish the synthetic VLM's embedding of the task (needs --task)")
	f.StringVar(&o.embeddingType, "embedding-type", "", "embedding message: multiarray (std_msgs/Float32MultiArray, the default) or custom (flowact_msgs/Embedding,\nabout 250x cheaper for goroslib to encode and decode)")
	f.StringVar(&o.config, "config", "", "YAML file of node settings (keys of sim/node.Config: rate, sim_time, speed, tf_rate, marker_rate,\nsim {lag, sensor_period, faults, motors}, task, seed, embedding, vlm, ros {node, tf, tf_static, markers});\nflags given explicitly override it")
	f.DurationVar(&o.wait, "connect-timeout", defaultConnectTimeout, "how long to wait for the ROS master at start (0 or negative: as long as it takes)")
	f.StringVar(&o.logLevel, "log-level", "info", "log level on stderr: debug (goroslib's messages too), info, warn or error")
	f.BoolVar(&o.debug, "debug", false, "log at debug level (former name of --log-level debug)")
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	renameFlags(cmd, map[string]string{"embedding": "publish-embedding", "wait": "connect-timeout"})
	legacyFlag(cmd, "debug", "--log-level debug")
	legacyFlag(cmd, "robot-dir", "--robot DIR")
	return cmd
}

func runSimCmd(cmd *cobra.Command, o simOptions, args []string) error {
	log, err := newLogger(cmd.ErrOrStderr(), logLevel(cmd.Flags(), o.logLevel, o.debug))
	if err != nil {
		return err
	}

	m, rc, cfg, err := simNodeConfig(cmd.Flags(), o, args)
	if err != nil {
		return err
	}
	rn := &cfg.ROS.Node
	rn.Logger = log
	cfg.Logger = log
	rosCfg := *rn
	n, err := node.New(m, rc, cfg)
	if err != nil {
		return usageError{err}
	}

	ctx, cancel := context.WithCancel(cmd.Context())
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- n.Run(ctx) }()
	var timeout <-chan time.Time // nil: wait as long as it takes
	if o.wait > 0 {
		timer := time.NewTimer(o.wait)
		defer timer.Stop()
		timeout = timer.C
	}
	select {
	case <-n.Ready():
	case err := <-errc:
		return err
	case <-timeout:
		cancel()
		<-errc
		return fmt.Errorf("sim: no ROS master answered at %s within %v (start one with 'flowact master' or roscore, or pass --master)", masterURI(rosCfg), o.wait)
	}
	t := n.Topics()
	fmt.Fprintf(cmd.OutOrStdout(), "flowact sim: %s (%s, %d joints) at %g Hz on %s: %s out, %s and %s in\n",
		n.Name(), m.Name, m.DoF(), n.Rate(), masterURI(rosCfg), t.JointStates, t.Command, t.Trajectory)
	if ins := n.Instruction(); ins != "" {
		fmt.Fprintf(cmd.OutOrStdout(), "flowact sim: task %s, seed %d: %q\n", o.task, o.seed, ins)
	}
	if err := <-errc; err != nil {
		return err
	}
	// SIGINT or SIGTERM ended the node and it has unregistered.
	st := n.Stats()
	fmt.Fprintf(cmd.OutOrStdout(), "flowact sim: stopped after %d steps (%d late); %d joint states; %d commands (%d rejected), %d trajectories (%d rejected)\n",
		st.Steps, st.Late, st.JointStates, st.ROS.Commands, st.ROS.CommandsRejected, st.ROS.Trajectories, st.ROS.TrajectoriesRejected)
	return nil
}

// simNodeConfig builds the simulator node's robot and config from the flags of `flowact sim`
// (fl tells which were given), its --config and --task files and the ROS arguments args.
// Precedence: flags given explicitly, then --config, then the --task file, then the flags'
// defaults. With --task the node gets the scene 'flowact demo' would run for that task and seed
// (taskNodeConfig): the task file's task, and its episode's VLM and simulator settings where
// --config leaves those sections empty.
func simNodeConfig(fl *pflag.FlagSet, o simOptions, args []string) (*robot.Model, robot.Config, node.Config, error) {
	var cfg node.Config
	fail := func(err error) (*robot.Model, robot.Config, node.Config, error) {
		return nil, robot.Config{}, cfg, err
	}
	// ROS arguments (from:=to, __name:=, __ns:=, __master:=, _param:=) after the flags.
	var rosArgs ros.Config
	rest, err := rosArgs.ParseArgs(args)
	if err != nil {
		return fail(usageError{err})
	}
	if len(rest) > 0 {
		return fail(usagef("sim: unexpected argument %q (ROS arguments look like from:=to)", rest[0]))
	}
	if o.config != "" {
		data, err := os.ReadFile(o.config)
		if err != nil {
			return fail(usagef("sim: %v", err))
		}
		if err := configs.Decode(o.config, data, &cfg); err != nil {
			return fail(usageError{err})
		}
	}
	// Flags given explicitly override the file; the others fill in what it leaves at zero.
	use := func(flag string, fileZero bool) bool { return fl.Changed(flag) || fileZero }
	robotName, robotNamed := o.robot, fl.Changed("robot")
	if use("task", cfg.Task.Name == "") && o.task != "" {
		tf, err := loadTaskFile(o.task)
		if err != nil {
			return fail(err)
		}
		tc := taskNodeConfig(tf, 0)
		cfg.Task = tc.Task
		if reflect.ValueOf(cfg.VLM).IsZero() {
			cfg.VLM = tc.VLM
		}
		if reflect.ValueOf(cfg.Sim).IsZero() {
			cfg.Sim = tc.Sim
		}
		if !robotNamed && o.robotDir == "" {
			robotName = tf.Robot
		}
	}
	m, rc, err := loadRobot(robotName, o.robotDir, robotNamed)
	if err != nil {
		return fail(usageError{err})
	}
	robotRef := ""
	if robotRef = o.robotDir; robotRef == "" {
		robotRef = robotName
	} else if !isRobotDir(robotRef) {
		robotRef = "./" + robotRef // a path, as isRobotDir tells
	}
	if use("rate", cfg.Rate == 0) {
		cfg.Rate = o.rate
	}
	if use("sim-time", !cfg.SimTime) {
		cfg.SimTime = o.simTime
	}
	if use("speed", cfg.Speed == 0) {
		cfg.Speed = o.speed
	}
	if use("seed", cfg.Seed == 0) {
		cfg.Seed = o.seed
	}
	if use("publish-embedding", !cfg.Embedding) {
		cfg.Embedding = o.embedding
	}
	// ROS settings: the ROS arguments first, then --name and --master, then the file.
	rn := &cfg.ROS.Node
	if use("name", rn.Name == "") {
		rn.Name = o.name
	}
	if o.master != "" {
		rn.MasterURI = o.master
	}
	for _, f := range []struct {
		dst *string
		src string
	}{
		{&rn.Name, rosArgs.Name}, {&rn.Namespace, rosArgs.Namespace}, {&rn.MasterURI, rosArgs.MasterURI}, {&rn.Host, rosArgs.Host},
	} {
		if f.src != "" {
			*f.dst = f.src
		}
	}
	for _, kv := range []struct {
		dst *map[string]string
		src map[string]string
	}{{&rn.Remaps, rosArgs.Remaps}, {&rn.Params, rosArgs.Params}} {
		for k, v := range kv.src {
			if *kv.dst == nil {
				*kv.dst = map[string]string{}
			}
			(*kv.dst)[k] = v
		}
	}
	if o.embeddingType != "" {
		if rn.Embedding, err = embeddingKind("--embedding-type", o.embeddingType); err != nil {
			return fail(err)
		}
	}
	// The simulated robot's URDF for rviz (robot_description, unless one is set already).
	if rn.RobotDescription, err = robotDescription(robotRef); err != nil {
		return fail(usageError{err})
	}
	return m, rc, cfg, nil
}

// loadRobot loads a robot reference (a shipped robot's name, or a directory on disk: see
// isRobotDir), or dir, given by the former --robot-dir. A directory and an explicitly named
// robot together are ambiguous.
func loadRobot(name, dir string, named bool) (*robot.Model, robot.Config, error) {
	if dir != "" {
		if named {
			return nil, robot.Config{}, errors.New("sim: give --robot or --robot-dir, not both")
		}
		return urdf.LoadConfig(os.DirFS(dir), ".")
	}
	return openRobot(name)
}

// masterURI is the master the node joins: the configured one, else ROS_MASTER_URI, else the
// default.
func masterURI(c ros.Config) string {
	switch {
	case c.MasterURI != "":
		return c.MasterURI
	case os.Getenv("ROS_MASTER_URI") != "":
		return os.Getenv("ROS_MASTER_URI")
	}
	return ros.DefaultMasterURI
}
