package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/flowact/flowact/cmd/flowact/internal/report"
	"github.com/flowact/flowact/policy"
	"github.com/flowact/flowact/policy/safety"
	"github.com/flowact/flowact/robot"
	"github.com/flowact/flowact/sim/episode"
	"github.com/flowact/flowact/sim/task"
)

// DefaultTasks are the shipped tasks eval runs when none is named.
var defaultTasks = []string{"reach", "detour", "track"}

// evalOptions are the flags of `flowact eval`.
type evalOptions struct {
	policy     string
	checkpoint string
	weights    string // overrides the policy file's expert.weights when not empty
	tasks      []string
	episodes   int
	seed       uint64
	latency    time.Duration
	asJSON     bool
	out        string // --out: the report directory ("" none)
	overwrite  bool   // --overwrite: replace the report in --out
}

// taskResult is one task's evaluation.
type taskResult struct {
	Task      string  `json:"task"`
	Episodes  int     `json:"episodes"`
	Successes int     `json:"successes"`
	Success   float64 `json:"success_rate"`
	// Distance is the mean final distance from the end effector to the goal, m.
	Distance float64 `json:"mean_final_distance_m"`
	// Collisions counts detour episodes that touched the obstacle; Tracked is track's mean
	// fraction of ticks within tolerance.
	Collisions int      `json:"collisions,omitempty"`
	Tracked    float64  `json:"mean_tracked,omitempty"`
	Failed     []uint64 `json:"failed_seeds,omitempty"`
	// With the policy's loop.gate.samples set: EpisodeSpread is the distribution over episodes
	// of each episode's largest chunk spread, Gated the chunks the gate held (loop.gate.max_spread)
	// and GatedEpisodes the episodes in which it held at least one.
	// With loop.gate.max_state_out set: EpisodeStateOut is the distribution over episodes of
	// how far each episode's state lay at most beyond the training data's range (standard
	// deviations; 0: within), and Gated and GatedEpisodes count its holds too.
	EpisodeSpread   *episodeMaxima `json:"episode_max_spread,omitempty"`
	EpisodeStateOut *episodeMaxima `json:"episode_max_state_out,omitempty"`
	Gated           uint64         `json:"gated_chunks,omitempty"`
	GatedEpisodes   int            `json:"gated_episodes,omitempty"`
}

// episodeMaxima summarize a value's largest per episode over the episodes (chunk spreads in
// normalized units, or states' distances outside the training data in standard deviations).
type episodeMaxima struct {
	Min float64 `json:"min"`
	P10 float64 `json:"p10"`
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	Max float64 `json:"max"`
}

// quantiles are p50 and p99 of a histogram.
type quantiles struct {
	P50  float64 `json:"p50"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
	N    uint64  `json:"n"`
}

// evalReport is what eval prints.
type evalReport struct {
	Policy     string       `json:"policy"`
	Checkpoint string       `json:"checkpoint"`
	Weights    string       `json:"weights"` // the expert's weight matrices: f32, f16 or bf16
	Strategy   string       `json:"strategy"`
	Rate       float64      `json:"rate_hz"`
	Seed       uint64       `json:"seed"`
	Tasks      []taskResult `json:"tasks"`
	Episodes   int          `json:"episodes"`
	Successes  int          `json:"successes"`
	Success    float64      `json:"success_rate"`
	// TickJitter is on the simulator's clock (the loop's deadlines are exact there: 0 unless a
	// tick overran); TickCost, Inference are wall-clock times of this machine.
	TickJitter quantiles `json:"tick_jitter_s"`
	TickCost   quantiles `json:"tick_cost_s"`
	Inference  quantiles `json:"inference_s"`
	Delay      quantiles `json:"chunk_delay_ticks"`
	SeamJump   quantiles `json:"seam_jump_rad"`
	SeamJerk   quantiles `json:"seam_jerk_rad_s3"`
	// Spread is each chunk's spread over loop.gate.samples samples (absent without it); Gated
	// the chunks the gate held.
	Spread    *quantiles `json:"spread,omitempty"`
	Gated     uint64     `json:"gated_chunks,omitempty"`
	Chunks    uint64     `json:"chunks"`
	HoldTicks uint64     `json:"hold_ticks"`
	Late      uint64     `json:"late_chunks"`
	Clamps    uint64     `json:"clamps"`
	// ClampsByKind splits Clamps by the safety filter's kind (position, velocity, ...).
	ClampsByKind map[string]uint64 `json:"clamps_by_kind"`
	SimSeconds   float64           `json:"simulated_s"`
	Seconds      float64           `json:"elapsed_s"`
	// Interrupted: a signal ended the run; the figures cover the episodes that finished.
	Interrupted bool `json:"interrupted,omitempty"`
}

func newEvalCmd() *cobra.Command {
	var o evalOptions
	cmd := &cobra.Command{
		Use:   "eval [--policy FILE | --checkpoint DIR] [--task T]... --episodes N",
		Short: "Measure a policy's closed-loop success rate in the simulator",
		Long: `Run the real control loop (policy.Loop: normalize -> expert sampler -> unnormalize, chunk
splicing, safety filter) against the in-process simulator and the synthetic VLM, on the
simulator's clock: faster than real time and reproducible from --seed (episode i of a task
uses seed S+i). The loop is stepped in simulated time (policy.Loop.Simulate): each inference
runs between two ticks and its chunk is held for --latency of simulated time (0: it arrives at
the next tick). Prints the success rate per task, tick jitter and cost, inference latency,
chunk delay and seam jerk (and, with the policy's loop.gate, each chunk's spread, each
episode's largest and the chunks the gate held); --json for scripts. SIGINT or SIGTERM ends the run within an
episode's braking: the report covers the episodes that finished (marked interrupted) and the
exit status is 130.

--policy is a policy file or the name of a shipped one (default ` + DefaultPolicy + `);
--checkpoint DIR evaluates another checkpoint with that policy's settings.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.episodes <= 0 {
				return usagef("eval: --episodes %d: want at least 1", o.episodes)
			}
			if o.latency < 0 {
				return usagef("eval: --latency %v is negative", o.latency)
			}
			if err := prepareOut("eval", o.out, o.overwrite); err != nil {
				return err
			}
			rec := newEvalRecord(o.out != "")
			rep, err := evaluate(cmd.Context(), o, cmd.ErrOrStderr(), rec)
			if err != nil {
				return err
			}
			text, err := writeSummary(cmd.OutOrStdout(), o.asJSON, rep, func(w io.Writer) { printReport(w, rep) })
			if err != nil {
				return err
			}
			if o.out != "" {
				run := &report.Run{Title: "flowact eval", Command: commandLine(cmd),
					Robot: rec.robot, Episodes: rec.episodes, Traces: rec.traces, Summary: rep, SummaryText: text}
				if err := writeRun("eval", o.out, run, cmd.ErrOrStderr()); err != nil {
					return err
				}
			}
			if rep.Interrupted {
				return fmt.Errorf("eval: %w after %d of %d episodes", errInterrupted, rep.Episodes, o.episodes*len(o.tasks))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.policy, "policy", DefaultPolicy, "policy file, or the name of a shipped policy")
	f.StringVar(&o.checkpoint, "checkpoint", "", "checkpoint directory (default: the policy file's)")
	f.StringVar(&o.weights, "weights", "", "precision of the expert's weight matrices, f32, f16 or bf16 (default: the policy file's expert.weights)")
	f.StringSliceVar(&o.tasks, "task", defaultTasks, "task files or shipped task names (repeat or comma-separate)")
	f.IntVar(&o.episodes, "episodes", 50, "episodes per task")
	f.Uint64Var(&o.seed, "seed", 1_000_000, "seed of each task's first episode (keep clear of the training seeds)")
	f.DurationVar(&o.latency, "latency", 0, "simulated inference latency (0: the chunk arrives at the next tick)")
	f.BoolVar(&o.asJSON, "json", false, "print the report as JSON")
	f.StringVar(&o.out, "out", "", "also write a report to this directory: episodes.jsonl (one line per episode), per task a plot of the end-effector paths, per failed episode a plot of its joints, index.html linking them")
	f.BoolVar(&o.overwrite, "overwrite", false, "replace the report a former run left in --out")
	return cmd
}

func printReport(w io.Writer, r *evalReport) {
	fmt.Fprintf(w, "policy %s, checkpoint %s (%s weights), %s splicing at %g Hz, seeds from %d\n", r.Policy, r.Checkpoint, r.Weights, r.Strategy, r.Rate, r.Seed)
	for _, t := range r.Tasks {
		extra := ""
		switch {
		case t.Task == "detour":
			extra = fmt.Sprintf(", %d collisions", t.Collisions)
		case t.Task == "track":
			extra = fmt.Sprintf(", mean tracked %.1f%%", 100*t.Tracked)
		}
		if q := t.EpisodeSpread; q != nil {
			extra += fmt.Sprintf("; episode max spread p10 %.3g p50 %.3g p90 %.3g max %.3g", q.P10, q.P50, q.P90, q.Max)
		}
		if q := t.EpisodeStateOut; q != nil {
			extra += fmt.Sprintf("; episode max state outside p10 %.3g p50 %.3g p90 %.3g max %.3g sd", q.P10, q.P50, q.P90, q.Max)
		}
		if t.EpisodeSpread != nil || t.EpisodeStateOut != nil {
			extra += fmt.Sprintf(", gate held %d chunks in %d episodes", t.Gated, t.GatedEpisodes)
		}
		fmt.Fprintf(w, "  %-8s %3d/%-3d success %5.1f%%  final distance %.1f mm%s\n", t.Task, t.Successes, t.Episodes, 100*t.Success, 1000*t.Distance, extra)
	}
	fmt.Fprintf(w, "  all      %3d/%-3d success %5.1f%%\n", r.Successes, r.Episodes, 100*r.Success)
	fmt.Fprintf(w, "tick jitter (sim clock) p50 %s p99 %s; tick cost p50 %s p99 %s; inference p50 %s p99 %s\n",
		secs(r.TickJitter.P50), secs(r.TickJitter.P99), secs(r.TickCost.P50), secs(r.TickCost.P99), secs(r.Inference.P50), secs(r.Inference.P99))
	fmt.Fprintf(w, "chunks %d (delay p50 %.0f p99 %.0f ticks, %d late), seam jump mean %.3g p99 %.3g rad, seam jerk mean %.3g p99 %.3g rad/s^3, %d hold ticks, %d clamps; %.0f s simulated in %.1f s\n",
		r.Chunks, r.Delay.P50, r.Delay.P99, r.Late, r.SeamJump.Mean, r.SeamJump.P99, r.SeamJerk.Mean, r.SeamJerk.P99, r.HoldTicks, r.Clamps, r.SimSeconds, r.Seconds)
	if r.Spread != nil {
		fmt.Fprintf(w, "spread per chunk p50 %.3g p99 %.3g max %.3g; the gate held %d chunks\n", r.Spread.P50, r.Spread.P99, r.Spread.Max, r.Gated)
	}
}

func secs(s float64) string {
	return time.Duration(s * float64(time.Second)).Round(time.Microsecond).String()
}

// loadedPolicy is a policy file with its checkpoint loaded (policy.Load) for its robot.
type loadedPolicy struct {
	file *PolicyFile
	ref  string // the checkpoint as named: a directory or shipped:<name>
	ck   *policy.Checkpoint
	rb   *task.Robot // the robot, as the simulated tasks see it
}

// loadPolicy loads a policy file's robot and checkpoint (ckptDir, if not empty, replaces the
// file's) with policy.Load, which checks that they fit. Every error is a usage error.
func loadPolicy(pf *PolicyFile, ckptDir string) (*loadedPolicy, error) {
	ref := pf.Checkpoint
	if ckptDir != "" {
		ref = ckptDir
	}
	if ref == "" {
		ref = shippedPrefix + DefaultCheckpoint
	}
	m, rc, err := openRobot(pf.Robot)
	if err != nil {
		return nil, err
	}
	rb, err := task.NewRobot(m, rc.EELink, rc.HomePosition(m))
	if err != nil {
		return nil, err
	}
	cfg := policy.LoadConfig{Name: ref, EELink: rc.EELink, Weights: pf.Expert.Weights, Threads: pf.Expert.Threads}
	var ck *policy.Checkpoint
	if strings.HasPrefix(ref, shippedPrefix) {
		fsys, dir := checkpointRef(ref)
		ck, err = policy.Load(fsys, dir, m, cfg)
	} else {
		ck, err = policy.LoadDir(ref, m, cfg)
	}
	if err != nil {
		return nil, usageError{err}
	}
	return &loadedPolicy{file: pf, ref: ref, ck: ck, rb: rb}, nil
}

func (lp *loadedPolicy) Close() { lp.ck.Close() }

// expert returns an Inferer of the checkpoint with the policy file's sampler and noise seed.
func (lp *loadedPolicy) expert(seed uint64) (*policy.Expert, error) {
	return lp.ck.Expert(lp.file.Sampler.Sampler(), seed)
}

// loadPolicyTasks loads the policy file policyName (its robot replaced by robotName and its
// expert.weights by weights when those are not empty), the task files to run it on, and the policy's checkpoint (ckptDir, when not empty,
// replaces the file's), and checks that every task is for the policy's robot and fits the
// checkpoint. cmd names the command in errors. The caller closes the policy.
func loadPolicyTasks(cmd, policyName, robotName, weights, ckptDir string, tasks []string) (*loadedPolicy, []*TaskFile, error) {
	pf, err := loadPolicyFile(policyName)
	if err != nil {
		return nil, nil, err
	}
	if err := pf.setWeights(weights); err != nil {
		return nil, nil, err
	}
	if robotName != "" {
		if err := checkRobot(robotName); err != nil {
			return nil, nil, usagef("--robot: %v", err)
		}
		pf.Robot = robotName
	}
	tfs := make([]*TaskFile, 0, len(tasks))
	for _, name := range tasks {
		tf, err := loadTaskFile(name)
		if err != nil {
			return nil, nil, err
		}
		if tf.Robot != pf.Robot {
			return nil, nil, usagef("%s: task %s is for robot %q, the policy for %q", cmd, name, tf.Robot, pf.Robot)
		}
		tfs = append(tfs, tf)
	}
	lp, err := loadPolicy(pf, ckptDir)
	if err != nil {
		return nil, nil, err
	}
	for _, tf := range tfs {
		if err := checkTaskFits(cmd, lp, tf); err != nil {
			lp.Close()
			return nil, nil, err
		}
	}
	return lp, tfs, nil
}

// evaluate runs o's episodes.
// rec, when not nil, keeps each episode's row and trace for --out.
func evaluate(ctx context.Context, o evalOptions, progress io.Writer, rec *evalRecord) (*evalReport, error) {
	lp, tfs, err := loadPolicyTasks("eval", o.policy, "", o.weights, o.checkpoint, o.tasks)
	if err != nil {
		return nil, err
	}
	defer lp.Close()
	if rec != nil {
		rec.robot = reportRobot(lp.rb.Model)
	}
	rep := &evalReport{Policy: o.policy, Checkpoint: lp.ref, Weights: lp.ck.Weights(), Seed: o.seed}
	agg := newAggregate()
	start := time.Now()
	total := len(tfs) * o.episodes
	pb := newProgress(progress, total, "eval")
	ok := 0
	for i, tf := range tfs {
		if rec != nil {
			rec.taskFile = o.tasks[i]
		}
		tr, err := evalTask(ctx, lp, tf, o, agg, func() {
			pb.step(fmt.Sprintf("%d/%d ok", ok, total))
		}, &ok, rec)
		interrupted := err != nil && ctx.Err() != nil
		if err != nil && !interrupted {
			return nil, err
		}
		if tr.Episodes > 0 {
			rep.Tasks = append(rep.Tasks, *tr)
			rep.Episodes += tr.Episodes
			rep.Successes += tr.Successes
		}
		if interrupted {
			rep.Interrupted = true
			break
		}
	}
	pb.done()
	if rep.Episodes > 0 {
		rep.Success = float64(rep.Successes) / float64(rep.Episodes)
	}
	cfg := lp.file.Loop
	rep.Rate = cfg.Rate
	rep.Strategy = string(cfg.Chunk.WithDefaults().Strategy)
	agg.fill(rep)
	rep.Seconds = time.Since(start).Seconds()
	return rep, nil
}

// evalTask runs one task's episodes.
func evalTask(ctx context.Context, lp *loadedPolicy, tf *TaskFile, o evalOptions, agg *aggregate, tick func(), ok *int, rec *evalRecord) (*taskResult, error) {
	rate := lp.file.Loop.Rate
	if rate == 0 {
		rate = 100 // policy.Config's default
	}
	epRate := tf.Episode.Rate
	if epRate == 0 {
		epRate = episode.DefaultRate
	}
	if rate != epRate {
		return nil, usagef("eval: the policy runs at %g Hz, task %s at %g Hz: set loop.rate to the task's rate", rate, tf.Task.Name, epRate)
	}
	runner, err := episode.New(tf.Episode, lp.rb)
	if err != nil {
		return nil, usageError{err}
	}
	_, width := runner.Encoder().Shape()
	if cw, _ := lp.ck.CondShape(); cw != width {
		return nil, usagef("eval: task %s's VLM gives %d-wide embeddings, the checkpoint expects %d", tf.Task.Name, width, cw)
	}
	tk, err := task.New(tf.Task)
	if err != nil {
		return nil, usageError{err}
	}
	sampler := lp.file.Sampler.Sampler()
	res := &taskResult{Task: tk.Name(), Episodes: o.episodes}
	var dist, tracked float64
	var maxSpread, maxOut []float64
	for i := range o.episodes {
		seed := o.seed + uint64(i)
		env, err := runner.Start(tk, seed)
		if err != nil {
			return nil, err
		}
		var trace *task.Trace
		if rec != nil {
			trace = env.Record()
		}
		inf, err := lp.ck.Expert(sampler, lp.file.Seed^seed)
		if err != nil {
			return nil, err
		}
		meta, snap, err := runEpisode(ctx, env, inf, lp.file.Loop, o.latency, agg)
		if err != nil {
			if ctx.Err() != nil {
				// Interrupted: report the episodes that finished.
				res.Episodes = i
				res.finish(dist, tracked, maxSpread, maxOut)
				return res, ctx.Err()
			}
			return nil, fmt.Errorf("eval: %s seed %d: %w", tk.Name(), seed, err)
		}
		if meta.Success {
			res.Successes++
			*ok++
		} else {
			res.Failed = append(res.Failed, seed)
		}
		if meta.Collided {
			res.Collisions++
		}
		dist += meta.Distance
		tracked += meta.Tracked
		if g := lp.file.Loop.Gate; g.Samples > 0 || g.MaxStateOut > 0 {
			if g.Samples > 0 {
				maxSpread = append(maxSpread, snap.Hist.Spread.Max)
			}
			if g.MaxStateOut > 0 {
				maxOut = append(maxOut, snap.Hist.StateOut.Max)
			}
			res.Gated += snap.Counters.Gated
			if snap.Counters.Gated > 0 {
				res.GatedEpisodes++
			}
		}
		agg.simSeconds += meta.Elapsed.Seconds()
		if rec != nil {
			rec.add(seed, meta, tk.TimeLimit(), trace, snap)
		}
		tick()
	}
	res.finish(dist, tracked, maxSpread, maxOut)
	return res, nil
}

// finish computes the rates from the sums over the result's episodes, and the quantiles of
// their largest spreads and states outside (none: not measured).
func (r *taskResult) finish(dist, tracked float64, maxSpread, maxOut []float64) {
	if r.Episodes == 0 {
		return
	}
	r.EpisodeSpread, r.EpisodeStateOut = episodeQuantiles(maxSpread), episodeQuantiles(maxOut)
	r.Success = float64(r.Successes) / float64(r.Episodes)
	r.Distance = dist / float64(r.Episodes)
	if r.Task == "track" {
		r.Tracked = tracked / float64(r.Episodes)
	}
}

// runEpisode runs the control loop on one episode, in the episode's simulated time, until the
// task ends it.
func runEpisode(ctx context.Context, env *episode.Env, inf policy.Inferer, cfg policy.Config, latency time.Duration, agg *aggregate) (task.Meta, *policy.Snapshot, error) {
	drv := &timedDriver{Driver: env.Driver(), cost: agg.tickCost}
	loop, err := policy.New(cfg, policy.Deps{Driver: drv, Inferer: inf, Clock: env.Clock(), Embeddings: envEmbeddings{env}})
	if err != nil {
		return task.Meta{}, nil, usageError{err}
	}
	if err := loop.Start(); err != nil {
		return task.Meta{}, nil, err
	}
	if err := loop.Simulate(ctx, latency); !errors.Is(err, episode.ErrDone) {
		return task.Meta{}, nil, err
	}
	snap := loop.Snapshot()
	agg.add(snap)
	return env.Meta(), snap, nil
}

// episodeQuantiles summarizes per-episode values v (sorting them); nil when there are none.
func episodeQuantiles(v []float64) *episodeMaxima {
	n := len(v)
	if n == 0 {
		return nil
	}
	slices.Sort(v)
	at := func(q float64) float64 { return v[min(int(q*float64(n)), n-1)] }
	return &episodeMaxima{Min: v[0], P10: at(0.1), P50: at(0.5), P90: at(0.9), Max: v[n-1]}
}

// commandLine is the command as run: its path and the flags given.
func commandLine(cmd *cobra.Command) string {
	parts := []string{cmd.CommandPath()}
	cmd.Flags().Visit(func(f *pflag.Flag) {
		v := f.Value.String()
		if sv, ok := f.Value.(pflag.SliceValue); ok {
			v = strings.Join(sv.GetSlice(), ",")
		}
		parts = append(parts, "--"+f.Name+"="+v)
	})
	return strings.Join(parts, " ")
}

// prepareOut checks a command's --out and --overwrite flags and prepares the report directory
// (report.Prepare); --overwrite without --out is a usage error.
func prepareOut(name, out string, overwrite bool) error {
	if out == "" {
		if overwrite {
			return usagef("%s: --overwrite without --out", name)
		}
		return nil
	}
	if err := report.Prepare(out, overwrite); err != nil {
		return usagef("%s: --out %v", name, err)
	}
	return nil
}

// writeSummary writes a command's summary to w, as JSON with asJSON and otherwise as the text
// print renders, and returns that text, which the --out report keeps either way.
func writeSummary(w io.Writer, asJSON bool, summary any, print func(io.Writer)) (string, error) {
	var text strings.Builder
	print(&text)
	var err error
	if asJSON {
		err = json.NewEncoder(w).Encode(summary)
	} else {
		_, err = io.WriteString(w, text.String())
	}
	return text.String(), err
}

// writeRun writes the --out report and names its index on log.
func writeRun(name, out string, run *report.Run, log io.Writer) error {
	if err := report.Write(out, run); err != nil {
		return fmt.Errorf("%s: --out: %w", name, err)
	}
	fmt.Fprintf(log, "%s: report in %s\n", name, filepath.Join(out, report.IndexFile))
	return nil
}

// evalRecord keeps what --out writes: a row and a trace per episode.
type evalRecord struct {
	taskFile string // the task file of the episodes being added, as given
	robot    report.Robot
	episodes []report.Episode
	traces   []*task.Trace
}

// newEvalRecord returns a record, or nil when on is false.
func newEvalRecord(on bool) *evalRecord {
	if !on {
		return nil
	}
	return &evalRecord{}
}

func (r *evalRecord) add(seed uint64, m task.Meta, limit time.Duration, tr *task.Trace, s *policy.Snapshot) {
	ep := episodeRow(seed, m, limit, tr.Tolerance)
	ep.TaskFile = r.taskFile
	h := &s.Hist
	ep.Loop = &report.Loop{
		Ticks: s.Counters.Ticks, Chunks: s.Counters.Chunks, Late: s.Counters.Late, HoldTicks: s.Counters.HoldTicks,
		Clamps: s.Clamps.Total(), DelayMean: h.Delay.Mean(), DelayMax: h.Delay.Max,
		Seams: h.SeamJump.N, SeamJumpMean: h.SeamJump.Mean(), SeamJumpMax: h.SeamJump.Max,
		SeamJerkMean: h.SeamJerk.Mean(), SeamJerkMax: h.SeamJerk.Max, InferenceMean: h.Inference.Mean(),
	}
	r.episodes = append(r.episodes, ep)
	r.traces = append(r.traces, tr)
}

// episodeRow is an episode's line in a report, from the task's metadata.
func episodeRow(seed uint64, m task.Meta, limit time.Duration, tol float64) report.Episode {
	ep := report.Episode{Task: m.Task, Seed: seed, Instruction: m.Instruction, Target: m.Target, Success: m.Success,
		Reason: report.Reason(m, limit, tol), FinalDistance: m.Distance, Collided: m.Collided, Elapsed: m.Elapsed.Seconds()}
	switch m.Task {
	case "detour":
		c := m.Clearance
		ep.Clearance = &c
	case "track":
		tr := m.Tracked
		ep.Tracked = &tr
	}
	return ep
}

// reportRobot is what a report's joint plots need of model m.
func reportRobot(m *robot.Model) report.Robot {
	rb := report.Robot{}
	for _, j := range m.Joints {
		rb.Joints = append(rb.Joints, j.Name)
		lo, hi := 1.0, -1.0 // no limits
		if j.Limits.HasPosition {
			lo, hi = j.Limits.Lower, j.Limits.Upper
		}
		rb.Lower, rb.Upper = append(rb.Lower, lo), append(rb.Upper, hi)
	}
	return rb
}

// envEmbeddings is the episode's synthetic VLM as the loop's embedding mailbox.
type envEmbeddings struct{ env *episode.Env }

func (e envEmbeddings) Latest() (policy.Embedding, error) {
	data, stamp, tokens, width, err := e.env.Latest()
	if err != nil {
		return policy.Embedding{}, err
	}
	return policy.Embedding{Stamp: stamp, Tokens: tokens, Width: width, Data: data}, nil
}

// timedDriver measures the wall-clock cost of a tick: from its state read to its command.
type timedDriver struct {
	robot.Driver
	cost *policy.Histogram
	t0   time.Time
}

func (d *timedDriver) ReadState(dst *robot.State) error {
	d.t0 = time.Now()
	return d.Driver.ReadState(dst)
}

func (d *timedDriver) WriteCommand(c *robot.Command) error {
	if !d.t0.IsZero() {
		d.cost.Record(time.Since(d.t0).Seconds())
		d.t0 = time.Time{}
	}
	return d.Driver.WriteCommand(c)
}

// aggregate sums the loops' telemetry over episodes.
type aggregate struct {
	tickCost            *policy.Histogram
	inference           policy.HistogramSnapshot // wall time of each inference (Simulate's InferPending)
	jitter, delay       policy.HistogramSnapshot
	seamJump, seamJerk  policy.HistogramSnapshot
	spread              policy.HistogramSnapshot
	chunks, holds, late uint64
	gated               uint64
	clamps              policy.Clamps
	simSeconds          float64
}

func newAggregate() *aggregate {
	return &aggregate{tickCost: policy.NewHistogram()}
}

func (a *aggregate) add(s *policy.Snapshot) {
	a.chunks += s.Counters.Chunks
	a.holds += s.Counters.HoldTicks
	a.late += s.Counters.Late
	a.gated += s.Counters.Gated
	a.spread.Merge(s.Hist.Spread)
	for k, n := range s.Clamps {
		a.clamps[k] += n
	}
	a.inference.Merge(s.Hist.Inference)
	a.jitter.Merge(s.Hist.TickJitter)
	a.delay.Merge(s.Hist.Delay)
	a.seamJump.Merge(s.Hist.SeamJump)
	a.seamJerk.Merge(s.Hist.SeamJerk)
}

func (a *aggregate) fill(r *evalReport) {
	r.TickJitter = quant(a.jitter)
	r.Delay = quant(a.delay)
	r.SeamJump = quant(a.seamJump)
	r.SeamJerk = quant(a.seamJerk)
	r.TickCost = quant(a.tickCost.Snapshot())
	r.Inference = quant(a.inference)
	r.Chunks, r.HoldTicks, r.Late, r.Clamps = a.chunks, a.holds, a.late, a.clamps.Total()
	r.ClampsByKind = map[string]uint64{}
	for k, n := range a.clamps {
		r.ClampsByKind[safety.Kind(k).String()] = n
	}
	r.SimSeconds = a.simSeconds
	if a.spread.N > 0 {
		q := quant(a.spread)
		r.Spread = &q
	}
	r.Gated = a.gated
}

func quant(s policy.HistogramSnapshot) quantiles {
	if s.N == 0 {
		return quantiles{}
	}
	return quantiles{P50: s.Quantile(0.5), P99: s.Quantile(0.99), Max: s.Max, Mean: s.Mean(), N: s.N}
}
