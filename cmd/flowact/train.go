package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/flowact/flowact/calib/norm"
	"github.com/flowact/flowact/dataset"
	"github.com/flowact/flowact/expert/ckpt"
	"github.com/flowact/flowact/expert/nn"
	"github.com/flowact/flowact/expert/path"
	"github.com/flowact/flowact/expert/train"
	"github.com/flowact/flowact/policy"
)

// trainOptions are the flags of `flowact train`.
type trainOptions struct {
	data, out   string
	arch        string
	steps       int
	batch       int
	horizon     int
	hidden      int
	layers      int
	lr, minLR   float64
	warmup      int
	ema         float64
	maxPrefix   int
	coldPrefix  float64 // --cold-prefix: share of examples with no prefix (0: uniform 0..max)
	prefixDrift float64 // --prefix-drift: stale-prefix drift rate, normalized units per step
	recover     int     // --prefix-recover: steps a drifted prefix rejoins the data in
	valFraction float64
	seed        uint64
	all         bool
	asJSON      bool
	read        dataset.Config // topics, rate and action source of the bags
	actions     string         // --actions: command or next-state
	frame       string         // --frame: absolute or relative
	state       string         // --state: joints or joints+ee
	robot       string         // --robot: for joints+ee (default: the bags' metadata)
	dtype       string         // --weights-dtype: F32 or F16
	saveEvery   int            // --save-every: steps between checkpoints (0: only at the end)
	resume      string         // --resume: the checkpoint folder of the run to continue
	overwrite   bool           // --overwrite: replace what a former run left in --out
	skipBad     bool           // --skip-bad-bags: list and skip bags that fail to read
	objective   string         // --objective: flow-matching or regression
	threads     int            // --threads: matrix-product threads
}

// trainSummary is what train reports.
type trainSummary struct {
	Out      string  `json:"out"`
	Arch     string  `json:"arch"`
	Episodes int     `json:"episodes"`
	ValEps   int     `json:"val_episodes"`
	Samples  int     `json:"samples"`
	Steps    int     `json:"steps"`
	Seed     uint64  `json:"seed"`
	Loss     float64 `json:"loss"`
	ValLoss  float64 `json:"val_loss,omitempty"` // absent when there were no validation episodes
	DataHash string  `json:"data_hash"`
	Params   int     `json:"params"`
	Seconds  float64 `json:"elapsed_s"`
	// StepsPerSec is this run's optimizer steps per second of training (validation included,
	// data loading and saving not).
	StepsPerSec float64 `json:"steps_per_s"`
	Threads     int     `json:"threads"`
	WeightsMiB  float64 `json:"weights_mib"`
	// Interrupted: SIGINT or SIGTERM stopped the run after Steps steps; the checkpoint holds them.
	Interrupted bool `json:"interrupted,omitempty"`
}

func newTrainCmd() *cobra.Command {
	var o trainOptions
	cmd := &cobra.Command{
		Use:   "train --data DIR --out CKPTDIR",
		Short: "Train the flow-matching action expert on recorded episodes",
		Long: `Read the episodes (ROS bags) in --data, compute normalization statistics (calib/norm, mean/std of
joint states and actions), train the action expert with conditional flow matching (expert/train)
and write a checkpoint to --out: model.safetensors and manifest.json (architecture, path,
normalization statistics, provenance: the data's hash, the seed, the steps), with train.jsonl
(one JSON line per logged step) and loss.png beside them. Episodes are split into training and
validation sets by episode, from --seed. Only successful episodes are used unless --all.

With --save-every N a resumable checkpoint (the weights, the optimizer's moments, the moving
average and the step) replaces the one in --out every N steps, written completely before it
replaces the last; SIGINT or SIGTERM writes one at the step reached (exit 130). Continue the run
with the same flags and --resume: flowact train --data data --out ck --resume ck ... gives the
weights the uninterrupted run would have, bit for bit. A non-empty --out is refused unless
--resume names it or --overwrite replaces what a former run left there. A bag that fails to
read stops the run unless --skip-bad-bags lists it and trains without it.

--data nats://HOST:PORT/STREAM reads the complete episodes of a fleet stream (the hub's
flowact_episodes or a robot's flowact_<robot>_episodes; ?robot=R keeps one robot's, ?domain=D
names the stream's JetStream domain, ?creds=FILE logs in, user:password@ too): they are exported
as flowact export writes them, to a temporary directory, and trained on as those bags would be,
with the same samples for the same --seed.

Bags recorded with rosbag record work too: name their topics with --joint-states-topic,
--embedding-topic and --command-topic (or --actions next-state when no command was recorded:
the action at each tick is then the next tick's joint positions), and give the control rate
with --rate. Such bags have no episode metadata; each one counts as a successful
demonstration.

The defaults train a smaller expert for fewer steps than the shipped one (4000 steps, 3 blocks,
--state joints). The
shipped checkpoint, configs/checkpoints/ur5-mlp, was trained with (its README.md has the
collect commands for the data and the figures):

  ` + shippedRecipe,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.resume != "" && o.out == "" {
				o.out = o.resume
			}
			if o.data == "" || o.out == "" {
				return usagef("train: --data and --out (or --resume) are required")
			}
			sum, err := trainRun(cmd.Context(), o, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if o.asJSON {
				if err := json.NewEncoder(w).Encode(sum); err != nil {
					return err
				}
				if sum.Interrupted {
					return fmt.Errorf("train: %w at step %d of %d", errInterrupted, sum.Steps, o.steps)
				}
				return nil
			}
			if sum.Interrupted {
				fmt.Fprintf(w, "interrupted at step %d of %d: the checkpoint holds the weights trained so far\n", sum.Steps, o.steps)
			}
			val := fmt.Sprintf("validation loss %.4f", sum.ValLoss)
			if sum.ValEps == 0 {
				val = fmt.Sprintf("no validation set (--val %g held out no episode)", o.valFraction)
			}
			fmt.Fprintf(w, "trained %s (%d parameters) on %d episodes (%d samples; %d for validation) for %d steps in %s (%.2f steps/s on %d thread(s)): loss %.4f, %s; checkpoint in %s (%.2f MiB)\n",
				sum.Arch, sum.Params, sum.Episodes, sum.Samples, sum.ValEps, sum.Steps,
				time.Duration(sum.Seconds*float64(time.Second)).Round(time.Second), sum.StepsPerSec, sum.Threads, sum.Loss, val, sum.Out, sum.WeightsMiB)
			if sum.Interrupted {
				return fmt.Errorf("train: %w at step %d of %d", errInterrupted, sum.Steps, o.steps)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.data, "data", "", "directory of episode bags (from flowact collect or rosbag record), or a JetStream episode stream: nats://HOST:PORT/STREAM[?robot=R&domain=D&creds=FILE]")
	f.StringVar(&o.out, "out", "", "checkpoint directory to write")
	f.StringVar(&o.arch, "arch", nn.ArchMLP, "network: mlp or transformer")
	f.IntVar(&o.steps, "steps", 4000, "optimizer steps")
	f.IntVar(&o.batch, "batch", 128, "examples per step")
	f.IntVar(&o.horizon, "horizon", 32, "chunk length H, ticks")
	f.IntVar(&o.hidden, "hidden", 256, "hidden width")
	f.IntVar(&o.layers, "layers", 3, "residual blocks (mlp) or transformer blocks")
	f.Float64Var(&o.lr, "lr", 1e-3, "peak learning rate (AdamW, cosine decay)")
	f.Float64Var(&o.minLR, "min-lr", 1e-5, "learning rate at the end of the decay")
	f.IntVar(&o.warmup, "warmup", 200, "linear warmup steps")
	f.Float64Var(&o.ema, "ema", 0.999, "decay of the weights' moving average written to the checkpoint, warmed up as min(ema, (1+step)/(10+step)) (0: raw weights)")
	f.StringVar(&o.frame, "frame", "relative", "actions as absolute joint targets or relative to the observed joint positions (finer at small motions)")
	f.StringVar(&o.state, "state", policy.Joints.String(), "the network's state input: joints (positions) or joints+ee (and the end effector's position, by forward kinematics)")
	f.StringVar(&o.robot, "robot", "", "robot whose kinematics give the end effector's position for --state joints+ee (default: the bags' metadata)")
	f.StringVar(&o.dtype, "weights-dtype", ckpt.DTypeF32, "how model.safetensors stores the weights: F32, or F16 (half the size; each weight rounded to the nearest half-precision value)")
	f.IntVar(&o.threads, "threads", 1, "matrix-product threads, 1 or 2 (the results do not depend on it)")
	f.IntVar(&o.maxPrefix, "max-prefix", 20, "largest committed prefix trained for (real-time chunking); 0 for none")
	f.Float64Var(&o.prefixDrift, "prefix-drift", 0, "train on stale prefixes: each prefixed example's committed steps drift from the data at a rate drawn from N(0, s^2) per joint (normalized units per step) and the steps after rejoin the data within --prefix-recover steps (0: prefixes are the data's own future)")
	f.IntVar(&o.recover, "prefix-recover", 10, "steps a drifted prefix (--prefix-drift) rejoins the data in")
	f.Float64Var(&o.coldPrefix, "cold-prefix", 0, "share of examples trained with no prefix (the cold start), the others with 1..--max-prefix (0: every length 0..--max-prefix alike)")
	f.Float64Var(&o.valFraction, "val", 0.1, "fraction of episodes held out for validation")
	f.Uint64Var(&o.seed, "seed", 1, "seed of the initialization, the split and every batch")
	f.BoolVar(&o.all, "all", false, "train on failed episodes too")
	f.BoolVar(&o.asJSON, "json", false, "print the summary as JSON")
	f.StringVar(&o.read.Topics.JointStates, "joint-states-topic", dataset.DefaultJointStatesTopic, "sensor_msgs/JointState topic in the bags")
	f.StringVar(&o.read.Topics.Embedding, "embedding-topic", dataset.DefaultEmbeddingTopic, "embedding topic in the bags (flowact_msgs/Embedding or std_msgs/Float32MultiArray)")
	f.StringVar(&o.read.Topics.Command, "command-topic", dataset.DefaultCommandTopic, "std_msgs/Float64MultiArray command topic in the bags (the actions)")
	f.Float64Var(&o.read.Rate, "rate", 0, "control rate in Hz at which episodes are sampled (0: the bags' metadata; required for bags without)")
	f.IntVar(&o.saveEvery, "save-every", 0, "write a resumable checkpoint to --out every N steps (0: only at the end)")
	f.StringVar(&o.resume, "resume", "", "continue the run whose checkpoint is in this folder (the --out folder; give the run's other flags too)")
	f.BoolVar(&o.overwrite, "overwrite", false, "replace the checkpoint, log and plot a former run left in --out")
	f.BoolVar(&o.skipBad, "skip-bad-bags", false, "list bags that fail to read (on stderr) and train without them (default: such a bag stops the run)")
	f.StringVar(&o.objective, "objective", "flow-matching", "what the network learns: flow-matching (the velocity field; chunks are sampled) or regression (the chunk itself, the mean of the demonstrations: the deterministic baseline; --max-prefix is then unused)")
	f.StringVar(&o.actions, "actions", "command", "where actions come from: command (the command topic) or next-state (the next tick's joint positions)")
	return cmd
}

// shippedRecipe is the command that trained the shipped checkpoint, as
// configs/checkpoints/ur5-mlp/README.md gives it (TestTrainHelp keeps the two equal).
const shippedRecipe = "flowact train --data data --out ur5-mlp --steps 40000 --horizon 32 --max-prefix 26 --cold-prefix 0.2 --prefix-drift 0.02 --prefix-recover 4 --state joints+ee --layers 6 --weights-dtype F16 --seed 1"

func trainRun(ctx context.Context, o trainOptions, progress io.Writer) (*trainSummary, error) {
	for _, f := range []struct {
		name string
		v    int
	}{{"steps", o.steps}, {"batch", o.batch}, {"horizon", o.horizon}, {"hidden", o.hidden}, {"layers", o.layers}} {
		if f.v <= 0 {
			return nil, usagef("train: --%s %d: want a positive number", f.name, f.v)
		}
	}
	switch {
	case !(o.lr > 0) || math.IsInf(o.lr, 0):
		return nil, usagef("train: --lr %g: want a positive learning rate", o.lr)
	case !(o.minLR >= 0) || o.minLR > o.lr:
		return nil, usagef("train: --min-lr %g: want 0 <= --min-lr <= --lr (%g)", o.minLR, o.lr)
	case o.warmup < 0:
		return nil, usagef("train: --warmup %d: want 0 (none) or more steps", o.warmup)
	case o.threads != 1 && o.threads != 2:
		return nil, usagef("train: --threads %d: want 1 or 2", o.threads)
	case !(o.ema >= 0 && o.ema < 1):
		return nil, usagef("train: --ema %g: want 0 (raw weights) or a decay in (0, 1)", o.ema)
	case o.maxPrefix < 0:
		return nil, usagef("train: --max-prefix %d: want 0 (none) or more steps", o.maxPrefix)
	case !(o.coldPrefix >= 0 && o.coldPrefix < 1):
		return nil, usagef("train: --cold-prefix %g: want a share in [0, 1)", o.coldPrefix)
	case !(o.prefixDrift >= 0 && o.prefixDrift <= 1):
		return nil, usagef("train: --prefix-drift %g: want a rate in [0, 1] (normalized units per step)", o.prefixDrift)
	case o.prefixDrift > 0 && o.maxPrefix == 0:
		return nil, usagef("train: --prefix-drift %g needs --max-prefix above 0", o.prefixDrift)
	case o.recover < 1:
		return nil, usagef("train: --prefix-recover %d: want at least 1 step", o.recover)
	case o.coldPrefix > 0 && o.maxPrefix == 0:
		return nil, usagef("train: --cold-prefix %g needs --max-prefix above 0 (without prefixes every example is a cold start)", o.coldPrefix)
	case o.saveEvery < 0:
		return nil, usagef("train: --save-every %d: want 0 (only at the end) or more steps", o.saveEvery)
	}
	if err := checkTrainOut(o); err != nil {
		return nil, err
	}
	if o.valFraction < 0 || o.valFraction >= 1 {
		return nil, usagef("train: --val %g not in [0, 1)", o.valFraction)
	}
	if o.arch != nn.ArchMLP && o.arch != nn.ArchTransformer {
		return nil, usagef("train: --arch %q: want mlp or transformer", o.arch)
	}
	frame, err := policy.ParseFrame(o.frame)
	if err != nil || o.frame == "" {
		return nil, usagef("train: --frame %q: want absolute or relative", o.frame)
	}
	stateIn, err := policy.ParseStateInput(o.state)
	if err != nil || o.state == "" {
		return nil, usagef("train: --state %q: want %s or %s", o.state, policy.Joints, policy.JointsEE)
	}
	switch o.dtype = strings.ToUpper(o.dtype); o.dtype {
	case ckpt.DTypeF32, ckpt.DTypeF16:
	default:
		return nil, usagef("train: --weights-dtype %q: want %s or %s", o.dtype, ckpt.DTypeF32, ckpt.DTypeF16)
	}
	var objective train.Objective
	switch o.objective {
	case "", "flow-matching":
		objective = train.FlowMatching
	case "regression":
		objective = train.Regression
	default:
		return nil, usagef("train: --objective %q: want flow-matching or regression", o.objective)
	}
	switch o.actions {
	case "", "command":
		o.read.Actions = dataset.ActionsFromCommand
	case "next-state":
		o.read.Actions = dataset.ActionsFromNextState
	default:
		return nil, usagef("train: --actions %q: want command or next-state", o.actions)
	}
	if err := o.read.Validate(); err != nil {
		return nil, usageError{fmt.Errorf("train: %w", err)}
	}
	dataDir := o.data
	if isStreamData(o.data) {
		sd, err := parseStreamData(o.data)
		if err != nil {
			return nil, err
		}
		if dataDir, err = sd.export(ctx, progress); err != nil {
			return nil, err
		}
		defer os.RemoveAll(dataDir)
	}
	paths, err := dataset.List(dataDir)
	if err != nil {
		return nil, usageError{fmt.Errorf("train: --data: %w", err)}
	}
	if len(paths) == 0 {
		return nil, usagef("train: --data %s: no .bag files", o.data)
	}
	if o.skipBad {
		paths = readableBags(paths, o.read, progress)
		if len(paths) == 0 {
			return nil, usagef("train: --data %s: no bag reads (--skip-bad-bags skipped them all)", o.data)
		}
	}
	start := time.Now()
	trainPaths, valPaths := dataset.Split(paths, o.valFraction, o.seed)
	keep := dataset.Successful
	if o.all {
		keep = nil
	}
	trainEps, err := dataset.LoadEpisodes(trainPaths, o.read, keep)
	if err != nil {
		return nil, bagHint(err, o.read)
	}
	if len(trainEps) == 0 {
		return nil, fmt.Errorf("train: no usable training episodes in %s", o.data)
	}
	valEps, err := dataset.LoadEpisodes(valPaths, o.read, keep)
	if err != nil {
		return nil, bagHint(err, o.read)
	}
	ep0 := trainEps[0]
	xcfg := dataset.ExamplesConfig{Horizon: o.horizon, Relative: frame == policy.Relative}
	if stateIn == policy.JointsEE {
		name := o.robot
		if name == "" {
			name = ep0.Meta.Robot
		}
		if name == "" {
			return nil, usagef("train: --state %s: the bags name no robot; give --robot", policy.JointsEE)
		}
		m, rc, err := openRobot(name)
		if err != nil {
			return nil, usagef("train: --robot: %v", err)
		}
		if got, want := m.Names(), ep0.Meta.Joints; want != nil && !slices.Equal(got, want) {
			return nil, usagef("train: robot %q has joints %v, the bags %v", name, got, want)
		}
		if xcfg.EndEffector, err = policy.EndEffector(m, rc.EELink); err != nil {
			return nil, usagef("train: --robot %s: %v", name, err)
		}
	}
	examples, err := dataset.NewExamples(trainEps, xcfg)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	set, err := statsOf(examples)
	if err != nil {
		return nil, err
	}
	hash, err := dataset.Hash(trainPaths)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	_, d, _, _, stateDim := examples.Shape()
	var cfgJSON []byte
	switch o.arch {
	case nn.ArchMLP:
		cfgJSON, err = json.Marshal(nn.MLPConfig{H: o.horizon, D: d, Embed: ep0.Width, State: stateDim, Hidden: o.hidden, Layers: o.layers})
	default:
		cfgJSON, err = json.Marshal(nn.TransformerConfig{H: o.horizon, D: d, Embed: ep0.Width, State: stateDim, Width: o.hidden, Layers: o.layers})
	}
	if err != nil {
		return nil, err
	}
	threads := 1
	net, err := nn.New(o.arch, cfgJSON, threads, rand.New(rand.NewPCG(o.seed, 0)))
	if err != nil {
		return nil, usageError{fmt.Errorf("train: %w", err)}
	}
	defer func() { net.Close() }()
	normJSON, err := (&policy.Normalization{Set: set, Mode: norm.MeanStd, Frame: frame, State: stateIn}).Encode()
	if err != nil {
		return nil, err
	}
	command := fmt.Sprintf("flowact train --data %s --arch %s --steps %d --batch %d --horizon %d --hidden %d --layers %d --lr %g --min-lr %g --warmup %d --ema %g --max-prefix %d --frame %s --state %s --val %g --seed %d --weights-dtype %s",
		filepath.Base(o.data), o.arch, o.steps, o.batch, o.horizon, o.hidden, o.layers, o.lr, o.minLR, o.warmup, o.ema, o.maxPrefix, frame, o.state, o.valFraction, o.seed, o.dtype)
	if o.coldPrefix > 0 {
		command += fmt.Sprintf(" --cold-prefix %g", o.coldPrefix)
	}
	if o.prefixDrift > 0 {
		command += fmt.Sprintf(" --prefix-drift %g --prefix-recover %d", o.prefixDrift, o.recover)
	}
	if objective != train.FlowMatching {
		command += " --objective regression"
	}
	info := train.SaveInfo{Norm: normJSON, DataHash: hash, DType: o.dtype,
		Note: fmt.Sprintf("%s; %d training episodes, robot %s", command, len(trainEps), ep0.Meta.Robot)}

	sched, tdist := path.CondOT{}, path.Uniform{}
	tcfg := train.Config{
		Steps: o.steps, BatchSize: o.batch, LR: o.lr, MinLR: o.minLR, Warmup: min(o.warmup, o.steps),
		Clip: 1, EMA: o.ema, Seed: o.seed, Scheduler: sched, TimeDist: tdist, Objective: objective,
		MaxPrefix: min(o.maxPrefix, o.horizon-1), ColdPrefix: o.coldPrefix,
		PrefixDrift: o.prefixDrift, PrefixRecover: o.recover, ValEvery: max(o.steps/10, 1),
		Progress: progress, LogEvery: max(o.steps/50, 1), Threads: o.threads,
	}
	if len(valEps) == 0 {
		tcfg.ValEvery = 0
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return nil, fmt.Errorf("train: --out: %w", err)
	}
	var tr *train.Trainer
	var history []train.Point
	var logf *os.File // opened once the run is known to start: a refused --resume keeps the log
	tcfg.Log = writerFunc(func(b []byte) (int, error) { return logf.Write(b) })
	if o.saveEvery > 0 {
		tcfg.CheckpointEvery = o.saveEvery
		tcfg.Checkpoint = func(step int) error {
			if err := tr.Save(o.out, info); err != nil {
				return fmt.Errorf("--save-every %d: %w", o.saveEvery, err)
			}
			return nil
		}
	}
	if o.resume != "" {
		var rnet nn.Net
		if tr, rnet, err = resumeRun(o, tcfg, net, info); err != nil {
			return nil, err
		}
		net.Close()
		net = rnet
		if history, err = keptLog(filepath.Join(o.out, "train.jsonl"), tr.Step()); err != nil {
			return nil, err
		}
	}
	if tr == nil {
		if tr, err = train.New(net, tcfg); err != nil {
			return nil, usageError{err}
		}
	}
	defer tr.Close()
	tr.History = history
	// The log starts with the kept points of a resumed run, written beside it and renamed over
	// it: a crash here leaves the old log whole.
	logName := filepath.Join(o.out, "train.jsonl")
	logf, err = os.Create(logName + ".tmp")
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	defer logf.Close()
	enc := json.NewEncoder(logf)
	for _, p := range history {
		if err := enc.Encode(p); err != nil {
			return nil, fmt.Errorf("train: %w", err)
		}
	}
	if err := os.Rename(logName+".tmp", logName); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	src, err := exampleSource(examples, set, o.horizon)
	if err != nil {
		return nil, err
	}
	var val train.Source
	if len(valEps) > 0 {
		vx, err := dataset.NewExamples(valEps, xcfg)
		if err != nil {
			return nil, fmt.Errorf("train: %w", err)
		}
		if val, err = exampleSource(vx, set, o.horizon); err != nil {
			return nil, err
		}
	}
	// SIGINT or SIGTERM: the steps done are kept, written as the checkpoint like a finished
	// run's (its provenance says where it stopped), and the command exits 130.
	interrupted := false
	step0, t0 := tr.Step(), time.Now()
	err = tr.Run(ctx, src, val)
	trainSecs := time.Since(t0).Seconds()
	if err != nil {
		if ctx.Err() == nil || tr.Step() == 0 {
			return nil, fmt.Errorf("train: %w", err)
		}
		interrupted = true
	}
	sum := &trainSummary{Out: o.out, Arch: o.arch, Episodes: len(trainEps), ValEps: len(valEps), Steps: tr.Step(), Seed: o.seed, DataHash: hash, Interrupted: interrupted, Threads: max(o.threads, 1)}
	if trainSecs > 0 {
		sum.StepsPerSec = float64(tr.Step()-step0) / trainSecs
	}
	sum.Samples = examples.Samples()
	for _, p := range net.Params() {
		sum.Params += len(p.Data)
	}
	if h := tr.History; len(h) > 0 {
		sum.Loss = h[len(h)-1].Loss
	}
	if val != nil {
		if sum.ValLoss, err = tr.Validate(val); err != nil {
			return nil, err
		}
	}
	info.Note += interruptedNote(interrupted, tr.Step(), o.steps)
	if err := tr.Save(o.out, info); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	if fi, err := os.Stat(filepath.Join(o.out, ckpt.WeightsFile)); err == nil {
		sum.WeightsMiB = float64(fi.Size()) / (1 << 20)
	}
	png, err := os.Create(filepath.Join(o.out, "loss.png"))
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	if err := train.PlotLoss(png, tr.History); err != nil {
		png.Close()
		return nil, err
	}
	if err := png.Close(); err != nil {
		return nil, err
	}
	sum.Seconds = time.Since(start).Seconds()
	return sum, nil
}

// statsOf computes the normalization statistics of the examples' states and actions (in their
// frame: relative actions are the offsets a chunk holds from its tick's joint positions).
func statsOf(x *dataset.Examples) (*norm.Set, error) {
	_, d, _, _, sd := x.Shape()
	sa := norm.NewAccumulator(sd, 0, x.StateNames())
	aa := norm.NewAccumulator(d, 0, x.Joints())
	if err := x.AccumulateTo(sa, aa); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	return norm.SetOf(sa, aa)
}

// bagHint returns a bag's error with the flag that addresses it, when a flag does: --rate for
// bags without metadata, the topic flags (and --actions next-state) for a missing topic.
func bagHint(err error, cfg dataset.Config) error {
	var be *dataset.BagError
	switch {
	case errors.Is(err, dataset.ErrNoRate):
		return usagef("train: %v; give the rate with --rate HZ", err)
	case errors.Is(err, dataset.ErrMissingTopic) && errors.As(err, &be):
		flag, ok := map[string]string{cfg.Topics.JointStates: "--joint-states-topic", cfg.Topics.Embedding: "--embedding-topic",
			cfg.Topics.Command: "--command-topic"}[be.Topic]
		if !ok {
			break
		}
		hint := flag + " names it"
		if be.Topic == cfg.Topics.Command && cfg.Actions == dataset.ActionsFromCommand {
			hint += ", --actions next-state does without it"
		}
		return usagef("train: %v; %s", err, hint)
	}
	return fmt.Errorf("train: %w", err)
}

// exampleSource is the training source of x normalized with set, by the normalizer the
// policy applies at inference.
func exampleSource(x *dataset.Examples, set *norm.Set, h int) (*train.ExampleSource, error) {
	_, d, _, _, _ := x.Shape()
	nrm, err := policy.NewNorm(set, norm.MeanStd, h, d)
	if err != nil {
		return nil, err
	}
	return train.NewExampleSource(x, nrm)
}

// interruptedNote is the provenance note's end for a run a signal stopped.
func interruptedNote(interrupted bool, step, steps int) string {
	if !interrupted {
		return ""
	}
	return fmt.Sprintf("; interrupted at step %d of %d", step, steps)
}

// writerFunc is an io.Writer calling itself.
type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

// trainOutputs are the files train writes into --out (with the temporary folders of a save in
// progress): what --overwrite removes.
var trainOutputs = []string{ckpt.ManifestFile, ckpt.WeightsFile, ckpt.TrainStateFile, "train.jsonl", "train.jsonl.tmp", "loss.png", ".save.new", ".save.done"}

// checkTrainOut refuses an --out folder that holds files unless --resume names it or
// --overwrite is given; with --overwrite it removes what a former run wrote there.
func checkTrainOut(o trainOptions) error {
	if o.resume != "" {
		if filepath.Clean(o.resume) != filepath.Clean(o.out) {
			return usagef("train: --resume %s and --out %s: a run continues in its own folder; give the same folder (or leave out --out)", o.resume, o.out)
		}
		if o.overwrite {
			return usagef("train: --resume and --overwrite: continue the run in %s or replace it, not both", o.out)
		}
		return nil
	}
	ents, err := os.ReadDir(o.out)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && len(ents) == 0) {
		return nil
	}
	if err != nil {
		return usagef("train: --out: %v", err)
	}
	if !o.overwrite {
		return usagef("train: --out %s is not empty (%d entries, %s first); give --resume %s to continue the run it holds, --overwrite to replace it, or another --out", o.out, len(ents), ents[0].Name(), o.out)
	}
	for _, name := range trainOutputs {
		if err := os.RemoveAll(filepath.Join(o.out, name)); err != nil {
			return fmt.Errorf("train: --overwrite: %w", err)
		}
	}
	return nil
}

// readableBags returns the bags of paths that read with cfg, and lists the others with their
// errors on w (--skip-bad-bags).
func readableBags(paths []string, cfg dataset.Config, w io.Writer) []string {
	var ok []string
	for _, p := range paths {
		if _, err := dataset.Load(p, cfg); err != nil {
			fmt.Fprintf(w, "train: --skip-bad-bags: skipping %s: %v\n", p, err)
			continue
		}
		ok = append(ok, p)
	}
	return ok
}

// resumeRun continues the run whose checkpoint is in o.out (--resume): it must be a run of the
// same command on the same data (net is the network the flags describe).
func resumeRun(o trainOptions, cfg train.Config, net nn.Net, info train.SaveInfo) (*train.Trainer, nn.Net, error) {
	tr, rnet, err := train.Resume(o.out, cfg)
	if err != nil {
		return nil, nil, usagef("train: --resume %s: %v", o.out, err)
	}
	mb, err := os.ReadFile(filepath.Join(o.out, ckpt.ManifestFile))
	if err != nil {
		tr.Close()
		rnet.Close()
		return nil, nil, fmt.Errorf("train: --resume: %w", err)
	}
	m, err := ckpt.ParseManifest(mb)
	if err != nil {
		tr.Close()
		rnet.Close()
		return nil, nil, usagef("train: --resume %s: %v", o.out, err)
	}
	command := func(note string) string { c, _, _ := strings.Cut(note, ";"); return c }
	a, _ := nn.ConfigJSON(net)
	b, _ := nn.ConfigJSON(rnet)
	var why string
	switch {
	case m.Provenance.DataHash != info.DataHash:
		why = fmt.Sprintf("its data hash is %s, --data %s gives %s", m.Provenance.DataHash, o.data, info.DataHash)
	case command(m.Provenance.Note) != command(info.Note):
		why = fmt.Sprintf("it was trained with %q, these flags are %q", command(m.Provenance.Note), command(info.Note))
	case string(a) != string(b):
		why = fmt.Sprintf("its network is %s, the flags give %s", b, a)
	}
	if why != "" {
		tr.Close()
		rnet.Close()
		return nil, nil, usagef("train: --resume %s: not this run: %s; give the run's flags", o.out, why)
	}
	return tr, rnet, nil
}

// keptLog reads the points of train.jsonl up to step (a run resumed there logs the rest again).
func keptLog(name string, step int) ([]train.Point, error) {
	b, err := os.ReadFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("train: --resume: %w", err)
	}
	var out []train.Point
	for _, line := range strings.Split(string(b), "\n") {
		var p train.Point
		if json.Unmarshal([]byte(line), &p) != nil || p.Step > step { // a line cut by a crash, or past the checkpoint
			continue
		}
		out = append(out, p)
	}
	return out, nil
}
