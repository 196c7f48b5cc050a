package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/flowact/flowact/policy"
	"github.com/flowact/flowact/policy/chunk"
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
	tasks      []string
	episodes   int
	seed       uint64
	latency    time.Duration
	asJSON     bool
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
	Chunks     uint64    `json:"chunks"`
	HoldTicks  uint64    `json:"hold_ticks"`
	Late       uint64    `json:"late_chunks"`
	Clamps     uint64    `json:"clamps"`
	// ClampsByKind splits Clamps by the safety filter's kind (position, velocity, ...).
	ClampsByKind map[string]uint64 `json:"clamps_by_kind"`
	SimSeconds   float64           `json:"simulated_s"`
	// Missed counts chunks the loop took a tick late because the worker's hand-over lost a race
	// with the simulated clock (a loaded machine); 0 means the run is reproducible from its seed.
	Missed  int     `json:"missed_handovers"`
	Seconds float64 `json:"elapsed_s"`
}

func newEvalCmd() *cobra.Command {
	var o evalOptions
	cmd := &cobra.Command{
		Use:   "eval [--policy FILE | --checkpoint DIR] [--task T]... --episodes N",
		Short: "Measure a policy's closed-loop success rate in the simulator",
		Long: `Run the real control loop (policy.Loop: normalize -> expert sampler -> unnormalize, chunk
splicing, safety filter) against the in-process simulator and the synthetic VLM, on the
simulator's clock: faster than real time and reproducible from --seed (episode i of a task
uses seed S+i). Inference runs on the loop's worker as in production; the simulated clock
waits for it and lets it take --latency of simulated time (0: its chunk arrives at the next
tick). Prints the success rate per task, tick jitter and cost, inference latency, chunk delay
and seam jerk; --json for scripts.

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
			rep, err := evaluate(cmd.Context(), o, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if o.asJSON {
				return json.NewEncoder(w).Encode(rep)
			}
			printReport(w, rep)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.policy, "policy", DefaultPolicy, "policy file, or the name of a shipped policy")
	f.StringVar(&o.checkpoint, "checkpoint", "", "checkpoint directory (default: the policy file's)")
	f.StringSliceVar(&o.tasks, "task", defaultTasks, "task files or shipped task names (repeat or comma-separate)")
	f.IntVar(&o.episodes, "episodes", 50, "episodes per task")
	f.Uint64Var(&o.seed, "seed", 1_000_000, "seed of each task's first episode (keep clear of the training seeds)")
	f.DurationVar(&o.latency, "latency", 0, "simulated inference latency (0: the chunk arrives at the next tick)")
	f.BoolVar(&o.asJSON, "json", false, "print the report as JSON")
	return cmd
}

func printReport(w io.Writer, r *evalReport) {
	fmt.Fprintf(w, "policy %s, checkpoint %s, %s splicing at %g Hz, seeds from %d\n", r.Policy, r.Checkpoint, r.Strategy, r.Rate, r.Seed)
	for _, t := range r.Tasks {
		extra := ""
		switch {
		case t.Task == "detour":
			extra = fmt.Sprintf(", %d collisions", t.Collisions)
		case t.Task == "track":
			extra = fmt.Sprintf(", mean tracked %.1f%%", 100*t.Tracked)
		}
		fmt.Fprintf(w, "  %-8s %3d/%-3d success %5.1f%%  final distance %.1f mm%s\n", t.Task, t.Successes, t.Episodes, 100*t.Success, 1000*t.Distance, extra)
	}
	fmt.Fprintf(w, "  all      %3d/%-3d success %5.1f%%\n", r.Successes, r.Episodes, 100*r.Success)
	fmt.Fprintf(w, "tick jitter (sim clock) p50 %s p99 %s; tick cost p50 %s p99 %s; inference p50 %s p99 %s\n",
		secs(r.TickJitter.P50), secs(r.TickJitter.P99), secs(r.TickCost.P50), secs(r.TickCost.P99), secs(r.Inference.P50), secs(r.Inference.P99))
	fmt.Fprintf(w, "chunks %d (delay p50 %.0f p99 %.0f ticks, %d late), seam jump mean %.3g p99 %.3g rad, seam jerk mean %.3g p99 %.3g rad/s^3, %d hold ticks, %d clamps; %.0f s simulated in %.1f s\n",
		r.Chunks, r.Delay.P50, r.Delay.P99, r.Late, r.SeamJump.Mean, r.SeamJump.P99, r.SeamJerk.Mean, r.SeamJerk.P99, r.HoldTicks, r.Clamps, r.SimSeconds, r.Seconds)
	if r.Missed > 0 {
		fmt.Fprintf(w, "warning: %d chunks were handed to the loop a tick late (a loaded machine): this run is not exactly reproducible\n", r.Missed)
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
	cfg := policy.LoadConfig{Name: ref, EELink: rc.EELink}
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

// loadPolicyTasks loads the policy file policyName (its robot replaced by robotName when that is
// not empty), the task files to run it on, and the policy's checkpoint (ckptDir, when not empty,
// replaces the file's), and checks that every task is for the policy's robot and fits the
// checkpoint. cmd names the command in errors. The caller closes the policy.
func loadPolicyTasks(cmd, policyName, robotName, ckptDir string, tasks []string) (*loadedPolicy, []*TaskFile, error) {
	pf, err := loadPolicyFile(policyName)
	if err != nil {
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
func evaluate(ctx context.Context, o evalOptions, progress io.Writer) (*evalReport, error) {
	lp, tfs, err := loadPolicyTasks("eval", o.policy, "", o.checkpoint, o.tasks)
	if err != nil {
		return nil, err
	}
	defer lp.Close()
	rep := &evalReport{Policy: o.policy, Checkpoint: lp.ref, Seed: o.seed}
	agg := newAggregate()
	start := time.Now()
	total := len(tfs) * o.episodes
	pb := newProgress(progress, total, "eval")
	ok := 0
	for _, tf := range tfs {
		tr, err := evalTask(ctx, lp, tf, o, agg, func() {
			pb.step(fmt.Sprintf("%d/%d ok", ok, total))
		}, &ok)
		if err != nil {
			return nil, err
		}
		rep.Tasks = append(rep.Tasks, *tr)
		rep.Episodes += tr.Episodes
		rep.Successes += tr.Successes
	}
	pb.done()
	rep.Success = float64(rep.Successes) / float64(rep.Episodes)
	cfg := lp.file.Loop
	rep.Rate = cfg.Rate
	rep.Strategy = string(cfg.Chunk.WithDefaults().Strategy)
	agg.fill(rep)
	rep.Seconds = time.Since(start).Seconds()
	return rep, nil
}

// evalTask runs one task's episodes.
func evalTask(ctx context.Context, lp *loadedPolicy, tf *TaskFile, o evalOptions, agg *aggregate, tick func(), ok *int) (*taskResult, error) {
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
	for i := range o.episodes {
		seed := o.seed + uint64(i)
		env, err := runner.Start(tk, seed)
		if err != nil {
			return nil, err
		}
		inf, err := lp.ck.Expert(sampler, lp.file.Seed^seed)
		if err != nil {
			return nil, err
		}
		meta, err := runEpisode(ctx, env, inf, lp.file.Loop, o.latency, agg)
		if err != nil {
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
		agg.simSeconds += meta.Elapsed.Seconds()
		tick()
	}
	res.Success = float64(res.Successes) / float64(res.Episodes)
	res.Distance = dist / float64(res.Episodes)
	if tk.Name() == "track" {
		res.Tracked = tracked / float64(res.Episodes)
	}
	return res, nil
}

// runEpisode runs the control loop on one episode until the task ends it.
func runEpisode(ctx context.Context, env *episode.Env, inf policy.Inferer, cfg policy.Config, latency time.Duration, agg *aggregate) (task.Meta, error) {
	ls := newLockstep(env.Clock(), inf, latency, agg)
	drv := &timedDriver{Driver: env.Driver(), cost: agg.tickCost}
	loop, err := policy.New(cfg, policy.Deps{Driver: drv, Inferer: ls, Clock: ls, Embeddings: envEmbeddings{env}})
	if err != nil {
		return task.Meta{}, usageError{err}
	}
	ls.loop = loop
	if err := loop.Start(); err != nil {
		return task.Meta{}, err
	}
	if err := loop.Run(ctx); !errors.Is(err, episode.ErrDone) {
		return task.Meta{}, err
	}
	agg.add(loop.Snapshot())
	agg.missed += ls.missed
	return env.Meta(), nil
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

// lockstep couples the episode's simulated clock to the loop's inference worker, so that an
// evaluation neither depends on this machine's speed nor on the scheduler: a chunk asked for at
// tick k arrives at the first tick at or after k's time + latency, however long the network
// really took. It is the loop's Clock and its Inferer (around the real one).
//
// The loop counts a request (Telemetry.Requests) before its tick ends; SleepUntil sees it at
// the next sleep. A finished inference holds its result (Infer does not return) until the
// simulated clock reaches the request's release time: sleeping past it, the tick waits for the
// inference to finish, lets Infer return, waits for the worker's next clock reading (it reads
// the clock for the latency right before handing the result to the loop, while the tick is
// parked here), then yields briefly so that the hand-over, a buffered channel send, has
// happened before the tick looks for it. Without the hold, a network faster than the
// simulator's ticks delivered before the latency had passed, and asking again before the first
// result was released blocked the worker for good at the episode's end.
type lockstep struct {
	inner   policy.Inferer
	clock   robot.Clock
	latency time.Duration
	loop    *policy.Loop
	wall    *policy.Histogram

	done     chan struct{} // one value per finished inference (at most one is in flight)
	handOver chan struct{} // lets the finished inference return
	nowSeen  chan struct{} // the worker read the clock after an inference
	quit     chan struct{} // closed when the tick loop ends: nothing waits for the worker any more
	awaitNow atomic.Bool

	// Owned by the tick goroutine.
	seen, finished uint64
	release        time.Time
	deliverAt      int            // the tick's SleepUntil count at which a result was handed over, or -1
	sleeps         int            // SleepUntil calls
	missed         int            // results the loop took a tick late (the hand-over lost the race)
	grace          *time.Duration // the wait for a hand-over: doubled after each miss, up to maxGrace
}

// consumed returns how many results the loop has taken from its worker: each is counted once,
// as a chunk, a late, stale or rejected one.
func (s *lockstep) consumed() uint64 {
	t := s.loop.Telemetry()
	return t.Chunks.Load() + t.Late.Load() + t.Stale.Load() + t.Rejected.Load()
}

// deliverGrace is how long the parked tick first waits for the worker's channel send after its last
// clock reading: a few instructions, but its thread may lose the CPU on a loaded machine. Results
// taken late anyway are counted (evalReport.Missed) so that a report says when it was not
// reproducible.
const (
	deliverGrace = 200 * time.Microsecond
	maxGrace     = 5 * time.Millisecond
)

// newLockstep returns the lockstep of inf on clock, with the hand-over wait shared in agg.
func newLockstep(clock robot.Clock, inf policy.Inferer, latency time.Duration, agg *aggregate) *lockstep {
	return &lockstep{inner: inf, clock: clock, latency: latency, wall: agg.inference, grace: &agg.grace, deliverAt: -1,
		done: make(chan struct{}, 1), handOver: make(chan struct{}, 1), nowSeen: make(chan struct{}, 1), quit: make(chan struct{})}
}

func (s *lockstep) Shape() (h, d int) { return s.inner.Shape() }

func (s *lockstep) Infer(dst *chunk.Chunk, req *policy.Request) error {
	t0 := time.Now()
	err := s.inner.Infer(dst, req)
	s.wall.Record(time.Since(t0).Seconds())
	select {
	case s.done <- struct{}{}:
	case <-s.quit:
		return err
	}
	select {
	case <-s.handOver:
		s.awaitNow.Store(true)
	case <-s.quit:
	}
	return err
}

func (s *lockstep) Now() time.Time {
	now := s.clock.Now() // before the signal: the simulator's lock may be busy right after it
	if s.awaitNow.CompareAndSwap(true, false) {
		select {
		case s.nowSeen <- struct{}{}:
		case <-s.quit:
		}
	}
	return now
}

// stop tells a held inference that the tick loop has ended.
func (s *lockstep) stop() {
	select {
	case <-s.quit:
	default:
		close(s.quit)
	}
}

func (s *lockstep) SleepUntil(ctx context.Context, t time.Time) error {
	s.sleeps++
	if s.deliverAt >= 0 && s.sleeps == s.deliverAt+1 {
		// The tick that just ran should have taken the result handed over before it.
		if s.consumed() < s.finished {
			s.missed++
			*s.grace = min(2**s.grace, maxGrace) // the machine is loaded: wait longer from now on
		}
		s.deliverAt = -1
	}
	if n := s.loop.Telemetry().Requests.Load(); n > s.seen {
		s.seen = n
		s.release = s.clock.Now().Add(s.latency)
	}
	if s.finished < s.seen && !t.Before(s.release) {
		if err := s.clock.SleepUntil(ctx, s.release); err != nil {
			s.stop()
			return err
		}
		for i, ch := range []chan struct{}{s.done, s.nowSeen} {
			select {
			case <-ch:
			case <-ctx.Done():
				s.stop()
				return ctx.Err()
			}
			if i == 0 {
				s.handOver <- struct{}{}
			}
		}
		s.finished++
		runtime.Gosched()
		time.Sleep(*s.grace)
		s.deliverAt = s.sleeps
	}
	err := s.clock.SleepUntil(ctx, t)
	if err != nil {
		s.deliverAt = -1 // no tick follows
		s.stop()
	}
	return err
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
	inference, tickCost *policy.Histogram
	hist                map[string]policy.HistogramSnapshot
	chunks, holds, late uint64
	clamps              uint64
	clampKinds          map[string]uint64
	simSeconds          float64
	missed              int
	grace               time.Duration // the lockstep hand-over wait, shared by the episodes
}

func newAggregate() *aggregate {
	b := policy.ExpBounds(1e-6, 1.25, 80) // 1 µs to 0.6 s
	return &aggregate{inference: policy.NewHistogram(b), tickCost: policy.NewHistogram(b), hist: map[string]policy.HistogramSnapshot{}, clampKinds: map[string]uint64{}, grace: deliverGrace}
}

func (a *aggregate) add(s *policy.Snapshot) {
	a.chunks += s.Counters["chunks"]
	a.holds += s.Counters["hold_ticks"]
	a.late += s.Counters["late"]
	for k, n := range s.Clamps {
		a.clamps += n
		a.clampKinds[k] += n
	}
	for _, k := range []string{"tick_jitter_s", "delay_ticks", "seam_jump_rad", "seam_jerk_rad_s3"} {
		a.hist[k] = mergeHist(a.hist[k], s.Histogram[k])
	}
}

func (a *aggregate) fill(r *evalReport) {
	r.TickJitter = quant(a.hist["tick_jitter_s"])
	r.Delay = quant(a.hist["delay_ticks"])
	r.SeamJump = quant(a.hist["seam_jump_rad"])
	r.SeamJerk = quant(a.hist["seam_jerk_rad_s3"])
	r.TickCost = quant(a.tickCost.Snapshot())
	r.Inference = quant(a.inference.Snapshot())
	r.Chunks, r.HoldTicks, r.Late, r.Clamps, r.ClampsByKind = a.chunks, a.holds, a.late, a.clamps, a.clampKinds
	r.SimSeconds = a.simSeconds
	r.Missed = a.missed
}

// mergeHist adds b's counts to a's (histograms with the same bounds).
func mergeHist(a, b policy.HistogramSnapshot) policy.HistogramSnapshot {
	if a.Counts == nil {
		a.Bounds = b.Bounds
		a.Counts = append([]uint64(nil), b.Counts...)
		a.N, a.Sum, a.Max = b.N, b.Sum, b.Max
		return a
	}
	if len(a.Counts) != len(b.Counts) {
		return a
	}
	for i, c := range b.Counts {
		a.Counts[i] += c
	}
	a.N += b.N
	a.Sum += b.Sum
	a.Max = math.Max(a.Max, b.Max)
	return a
}

func quant(s policy.HistogramSnapshot) quantiles {
	if s.N == 0 {
		return quantiles{}
	}
	return quantiles{P50: s.Quantile(0.5), P99: s.Quantile(0.99), Max: s.Max, Mean: s.Mean(), N: s.N}
}
