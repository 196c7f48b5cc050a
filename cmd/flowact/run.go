package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/flowact/flowact/calib"
	"github.com/flowact/flowact/cmd/flowact/internal/onboard"
	"github.com/flowact/flowact/policy"
	"github.com/flowact/flowact/robot"
	"github.com/flowact/flowact/robot/ros"
)

// runOptions are the flags of `flowact run`.
type runOptions struct {
	policy         string
	checkpoint     string
	weights        string // overrides the policy file's expert.weights when not empty
	robot          string
	master         string
	embeddingType  string
	natsEmbedding  string
	embedding      string // --embedding, the former --embedding-type and --nats-embedding in one
	start          bool
	connectTimeout time.Duration
	logLevel       string
	nats, fleetID  string
	calib          string
	record         bool
	episodeMax     time.Duration
}

func newRunCmd() *cobra.Command { return runCommand(new(runOptions)) }

// runCommand is `flowact run` with its flags bound to o.
func runCommand(o *runOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "run [--policy FILE] [--robot NAME] [--master URL] [ROS args: from:=to __name:=n __ns:=/ns _param:=value]",
		Short: "Run the onboard runtime: the policy loop on a robot through a ROS master",
		Long: `Load the robot (URDF and robot.yaml: limits, controller topics) and the policy's checkpoint
(weights and normalization statistics, checked against the robot), then run the real-time
control loop as the ROS node /flowact:

  in   joint states (robot.yaml topics.joint_states, default /joint_states)
  in   the VLM embedding on /flowact/embedding, std_msgs/Float32MultiArray (--embedding-type
       multiarray) or flowact_msgs/Embedding (--embedding-type custom); or, with
       --nats-embedding SUBJECT, flowact_msgs/Embedding bytes over the fleet link
  out  std_msgs/Float64MultiArray on topics.command every tick, or, with loop.output:
       trajectory in the policy file, trajectory_msgs/JointTrajectory on topics.trajectory
       whenever the plan changes
  out  /diagnostics: the loop's telemetry every second (tick jitter, overruns, inference
       latency, clamps, watchdogs)
  srv  ~start ~stop ~hold ~reset (std_srvs/Trigger)

With --calib FILE (a calibration file, as flowact calib motors writes it) the robot speaks
motor units on those topics: joint states are read in encoder ticks (or motor rad) and mapped
to joint angles, and commands and trajectories are mapped back to motor units, by the file's
transmissions (calib/doc.go); the file must fit the robot (its name, every actuated joint, the
wrap rule against each joint's travel). Its lag (lag:, written by flowact calib latency
--write-lag) becomes the loop's robot_lag, unless the policy file sets a different one, which
is refused. Without --calib the robot must speak joint angles (rad, m).

With --nats (the fleet link), the loop's telemetry goes to NATS and what the policy does is
recorded as episodes in the robot's JetStream stream: an episode from each ~start (or --start)
to the next ~stop, fault or shutdown, cut at --episode-max; the joint states the loop read, its
embeddings, the commands the robot took, and metadata. The tick only copies into a bounded
queue (drops counted in the telemetry); a disk spool covers a link that is down.

ROS arguments work as with roscpp nodes: from:=to remaps a topic or service, __name:= and
__ns:= rename the node, __master:= (or --master, or ROS_MASTER_URI) picks the master, and
_key:=value sets a private parameter (~key) and the flag of its name (_log_level:=debug is
--log-level debug; settable: _policy _checkpoint _robot _calib _embedding_type _nats_embedding _nats
_fleet_id _record _episode_max _start _connect_timeout _log_level); any other private parameter is an error. The master must answer within --connect-timeout.
SIGINT or SIGTERM decelerates the robot to a stop within its limits, unregisters from the
master and exits 0.`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := applyPrivateParams(cmd, args); err != nil {
				return err
			}
			log, err := newLogger(cmd.ErrOrStderr(), o.logLevel)
			if err != nil {
				return err
			}
			var rc ros.Config
			rest, err := rc.ParseArgs(args)
			if err != nil {
				return usageError{err}
			}
			if len(rest) > 0 {
				return usagef("run: unexpected argument %q (ROS arguments look like from:=to, __name:=n, _key:=value)", rest[0])
			}
			if o.master != "" {
				rc.MasterURI = o.master
			}
			if err := o.legacyEmbedding(cmd.Flags()); err != nil {
				return err
			}
			remote := o.natsEmbedding != ""
			if rc.Embedding, err = embeddingKind("--embedding-type", o.embeddingType); err != nil {
				return err
			}
			pf, err := loadPolicyFile(o.policy)
			if err != nil {
				return err
			}
			if o.robot != "" {
				if err := checkRobot(o.robot); err != nil {
					return usagef("--robot: %v", err)
				}
				pf.Robot = o.robot
			}
			if err := pf.setWeights(o.weights); err != nil {
				return err
			}
			lp, err := loadPolicy(pf, o.checkpoint)
			if err != nil {
				return err
			}
			defer lp.Close()
			var set *calib.Set
			if o.calib != "" {
				h, _ := lp.ck.Shape()
				if set, err = readCalibration(o.calib, lp.rb.Model, &lp.file.Loop, h); err != nil {
					return err
				}
			}
			if o.nats != "" {
				pf.Fleet.URL = o.nats
			}
			if o.fleetID != "" {
				pf.Fleet.Robot = o.fleetID
			}
			if f := cmd.Flags(); f.Changed("record") {
				pf.Fleet.NoRecord = !o.record
			}
			if cmd.Flags().Changed("episode-max") {
				pf.Fleet.EpisodeMax = o.episodeMax
			}
			if remote {
				pf.Fleet.Embedding = o.natsEmbedding
			}
			if err := pf.Fleet.Validate(); err != nil {
				return usagef("fleet: %v", err)
			}
			var link *fleetLink
			if pf.Fleet.On() {
				if link, err = openFleetLink(pf.Fleet, remote, lp, log); err != nil {
					return err
				}
				defer link.Close()
			} else if remote {
				return usagef("--nats-embedding %s: the fleet link is off (set --nats or fleet.url)", o.natsEmbedding)
			}
			rt, err := newRuntime(lp, rc, set, o.start, o.connectTimeout, log, link)
			if err != nil {
				return err
			}
			if set != nil {
				lag := lp.file.Loop.RobotLag
				log.Info("run: the robot speaks motor units", "calib", o.calib, "robot_lag", lag,
					"shift_ticks", policy.LagShift(lag, 1/rt.Loop().Period().Seconds()))
			}
			if link != nil {
				return link.runWith(cmd.Context(), rt.Run)
			}
			// Debug: an unreachable master must stay one line on stderr at the default level.
			log.Debug("run: policy loaded", "policy", o.policy, "checkpoint", lp.ref, "robot", pf.Robot,
				"chunk", chunkShape(lp.ck), "rate_hz", 1/rt.Loop().Period().Seconds(), "start", o.start)
			if err := rt.Run(cmd.Context()); errors.Is(err, ros.ErrMaster) {
				return fmt.Errorf("%w; start roscore or `flowact master`, or point --master / ROS_MASTER_URI at a running one", err)
			} else if err != nil {
				return err
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.policy, "policy", DefaultPolicy, "policy file, or the name of a shipped policy")
	f.StringVar(&o.checkpoint, "checkpoint", "", "checkpoint directory (default: the policy file's)")
	f.StringVar(&o.weights, "weights", "", "precision of the expert's weight matrices, f32, f16 or bf16 (default: the policy file's expert.weights)")
	f.StringVar(&o.robot, "robot", "", "shipped robot's name or robot directory (default: the policy file's)")
	f.StringVar(&o.master, "master", "", "ROS master URI (default: __master:=, else $ROS_MASTER_URI, else "+ros.DefaultMasterURI+")")
	f.StringVar(&o.embeddingType, "embedding-type", "multiarray", "embedding message on ROS: multiarray (std_msgs/Float32MultiArray) or custom (flowact_msgs/Embedding)")
	f.StringVar(&o.natsEmbedding, "nats-embedding", "", "read embeddings from this NATS subject instead of ROS (flowact_msgs/Embedding bytes; needs the fleet link; default: the policy file's fleet.embedding)")
	f.StringVar(&o.embedding, "embedding", "", "former name of --embedding-type, and of --nats-embedding as nats:SUBJECT")
	f.StringVar(&o.nats, "nats", "", "fleet link: a NATS URL, or \"embedded\" for a nats-server in this process (default: the policy file's fleet.url; \"\": off)")
	f.StringVar(&o.fleetID, "fleet-id", "", "this robot's id in the fleet (default: the policy file's fleet.robot)")
	f.BoolVar(&o.record, "record", true, "with the fleet link, record episodes to the robot's stream: from each ~start (or --start) to the next ~stop or fault, cut at --episode-max (default: the policy file's fleet.no_record)")
	f.DurationVar(&o.episodeMax, "episode-max", 0, "the longest episode recorded; a longer run of the policy is cut into episodes of this length (default: the policy file's fleet.episode_max, else 5m)")
	f.BoolVar(&o.start, "start", true, "execute chunks as soon as joint states and an embedding arrive (false: stay idle until ~start is called)")
	f.DurationVar(&o.connectTimeout, "connect-timeout", defaultConnectTimeout, "how long to wait for the ROS master at start (0 or negative: as long as it takes)")
	f.StringVar(&o.logLevel, "log-level", "info", "log level on stderr: debug, info, warn or error")
	f.StringVar(&o.calib, "calib", "", "calibration file: the robot speaks motor units, mapped by its transmissions; its lag feeds the loop")
	legacyFlag(cmd, "embedding", "--embedding-type TYPE, or --nats-embedding SUBJECT for nats:SUBJECT")
	return cmd
}

// legacyEmbedding applies the former --embedding (TYPE or nats:SUBJECT) unless the flag that
// replaced it is given too.
func (o *runOptions) legacyEmbedding(f *pflag.FlagSet) error {
	if !f.Changed("embedding") {
		return nil
	}
	if subj, ok := strings.CutPrefix(o.embedding, "nats:"); ok {
		if f.Changed("nats-embedding") && o.natsEmbedding != subj {
			return usagef("--embedding %s and --nats-embedding %s disagree", o.embedding, o.natsEmbedding)
		}
		o.natsEmbedding = subj
		return nil
	}
	if f.Changed("embedding-type") && o.embeddingType != o.embedding {
		return usagef("--embedding %s and --embedding-type %s disagree", o.embedding, o.embeddingType)
	}
	o.embeddingType = o.embedding
	return nil
}

// logLevel is the level a command logs at: --log-level, or debug for the former --debug flag
// unless --log-level is given.
func logLevel(f *pflag.FlagSet, level string, debug bool) string {
	if debug && !f.Changed("log-level") {
		return "debug"
	}
	return level
}

// readCalibration reads the calibration file at name for `run --calib`: its transmissions bound
// to model m, and its lag, which it writes into loop.RobotLag (a policy that sets another lag,
// or a lag of h ticks or more at the loop's rate, the model's horizon h, is refused). Errors
// name the file, and the joint and field or key.
func readCalibration(name string, m *robot.Model, loop *policy.Config, h int) (*calib.Set, error) {
	f, err := calib.ReadFile(name)
	if err != nil {
		return nil, usagef("run: --calib: %v", oneLine(err))
	}
	set, _, err := calib.Resolve(m, f, nil, nil)
	if err != nil {
		return nil, usagef("run: --calib %s: %v", name, err)
	}
	if f.Lag > 0 {
		if loop.RobotLag > 0 && loop.RobotLag != f.Lag {
			return nil, usagef("run: --calib %s: lag: %v, but the policy's loop.robot_lag is %v: keep one", name, f.Lag, loop.RobotLag)
		}
		rate := loop.Rate
		if rate == 0 {
			rate = 100 // policy.Config's default
		}
		if n := policy.LagShift(f.Lag, rate); n >= h {
			return nil, usagef("run: --calib %s: lag: %v is %d ticks at %g Hz, not below the model's horizon %d", name, f.Lag, n, rate, h)
		}
		loop.RobotLag = f.Lag
	}
	return set, nil
}

// newLogger returns a text logger writing to w at the named level.
func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, usagef("--log-level %q: want debug, info, warn or error", level)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}

// embeddingKind parses the embedding message type given to flag (--embedding-type).
func embeddingKind(flag, s string) (ros.EmbeddingKind, error) {
	switch strings.ToLower(s) {
	case "multiarray", "float32multiarray", "std_msgs/float32multiarray":
		return ros.EmbeddingMultiArray, nil
	case "custom", "embedding", "flowact_msgs/embedding":
		return ros.EmbeddingCustom, nil
	}
	return 0, usagef("%s %q: want multiarray (std_msgs/Float32MultiArray) or custom (flowact_msgs/Embedding)", flag, s)
}

// defaultConnectTimeout is how long run and demo wait for the ROS master at start: roslaunch
// waits 10 s for a master it did not start.
const defaultConnectTimeout = 10 * time.Second

// newRuntime wires a loaded policy into the onboard runtime: the robot's controller topics from
// its robot.yaml (unless rc names them), the expert (normalize -> sampler -> unnormalize,
// seeded by the policy file), the loop config, and the transmissions when the robot speaks motor
// units (set; nil: joint units). `run` and `demo` both build their runtime here.
func newRuntime(lp *loadedPolicy, rc ros.Config, set *calib.Set, start bool, connectTimeout time.Duration, log *slog.Logger, link *fleetLink) (*onboard.Runtime, error) {
	_, robotCfg, err := openRobot(lp.file.Robot)
	if err != nil {
		return nil, err
	}
	applyTopics(&rc.Topics, &robotCfg)
	// The robot's URDF for rviz, unless someone (the robot's own bringup) has set one.
	if rc.RobotDescription, err = robotDescription(lp.file.Robot); err != nil {
		return nil, err
	}
	rc.Logger = log
	rc.ConnectTimeout = max(connectTimeout, 0) // negative: wait as long as it takes
	loopCfg := lp.file.Loop
	if lp.file.Seed != 0 {
		loopCfg.Seed = lp.file.Seed
	}
	expert, err := lp.expert(loopCfg.Seed)
	if err != nil {
		return nil, err
	}
	var inf policy.Inferer = expert
	oc := onboard.Config{ROS: rc, Loop: loopCfg, Start: start, Logger: log, EELink: robotCfg.EELink, Transmissions: set}
	if link != nil {
		inf = link.wire(&oc, inf, loopCfg.Seed)
	}
	rt, err := onboard.New(oc, lp.rb.Model, inf)
	if err != nil {
		if errors.Is(err, ros.ErrConfig) || errors.Is(err, policy.ErrConfig) || errors.Is(err, onboard.ErrConfig) {
			return nil, usageError{err}
		}
		return nil, err
	}
	if link != nil {
		var emb policy.EmbeddingSource = rt.Node().Embeddings()
		if oc.Embeddings != nil {
			emb = oc.Embeddings
		}
		link.attach(rt.Loop(), emb, loopCfg.Seed)
	}
	return rt, nil
}

// applyTopics fills the controller topics rc does not name from the robot's config.
func applyTopics(t *ros.Topics, rc *robot.Config) {
	rc.EnsureDefaults()
	for _, f := range []struct {
		dst *string
		src string
	}{{&t.JointStates, rc.Topics.JointStates}, {&t.Command, rc.Topics.Command}, {&t.Trajectory, rc.Topics.Trajectory}} {
		if *f.dst == "" {
			*f.dst = f.src
		}
	}
}

// chunkShape formats a checkpoint's chunk shape, H x D.
func chunkShape(ck *policy.Checkpoint) string {
	h, d := ck.Shape()
	return fmt.Sprintf("%dx%d", h, d)
}
