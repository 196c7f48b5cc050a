package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/flowact/flowact/cmd/flowact/internal/onboard"
	"github.com/flowact/flowact/cmd/flowact/internal/report"
	"github.com/flowact/flowact/dataset"
	"github.com/flowact/flowact/fleet"
	"github.com/flowact/flowact/policy"
	"github.com/flowact/flowact/policy/safety"
	"github.com/flowact/flowact/robot"
	"github.com/flowact/flowact/robot/ros"
	"github.com/flowact/flowact/robot/ros/master"
	"github.com/flowact/flowact/sim/episode"
	"github.com/flowact/flowact/sim/node"
	"github.com/flowact/flowact/sim/task"
	"github.com/flowact/flowact/sim/vlm"
)

// demoOptions are the flags of `flowact demo`.
type demoOptions struct {
	policy     string
	checkpoint string
	weights    string // overrides the policy file's expert.weights when not empty
	robot      string
	tasks      []string
	episodes   int
	headless   bool
	asJSON     bool
	master     string
	seed       uint64
	logLevel   string
	fleet      bool
	out        string // --out: the report directory ("" none)
	overwrite  bool   // --overwrite: replace the report in --out
}

// demoEpisode is one episode of the demo.
type demoEpisode struct {
	Task     string  `json:"task"`
	Seed     uint64  `json:"seed"`
	Target   string  `json:"target,omitempty"`
	Success  bool    `json:"success"`
	Collided bool    `json:"collided,omitempty"`
	Elapsed  float64 `json:"elapsed_s"`  // simulated time the task ran
	Distance float64 `json:"distance_m"` // end effector to goal at the end
	Tracked  float64 `json:"tracked,omitempty"`
}

// demoTask sums one task's episodes.
type demoTask struct {
	Task      string  `json:"task"`
	Episodes  int     `json:"episodes"`
	Successes int     `json:"successes"`
	Success   float64 `json:"success_rate"`
	Distance  float64 `json:"mean_final_distance_m"`
}

// demoReport is the demo's summary. Times are wall-clock: the loop ran in real time against the
// simulator node through ROS.
type demoReport struct {
	Policy     string        `json:"policy"`
	Checkpoint string        `json:"checkpoint"`
	Robot      string        `json:"robot"`
	Master     string        `json:"master"`
	Embedded   bool          `json:"embedded_master"`
	Strategy   string        `json:"strategy"`
	Rate       float64       `json:"rate_hz"`
	Seed       uint64        `json:"seed"`
	Tasks      []demoTask    `json:"tasks"`
	Runs       []demoEpisode `json:"episodes_run"`
	Episodes   int           `json:"episodes"`
	Successes  int           `json:"successes"`
	Success    float64       `json:"success_rate"`
	TickJitter quantiles     `json:"tick_jitter_s"`
	TickCost   quantiles     `json:"tick_cost_s"`
	Inference  quantiles     `json:"inference_s"`
	Delay      quantiles     `json:"chunk_delay_ticks"`
	SeamJerk   quantiles     `json:"seam_jerk_rad_s3"`
	Ticks      uint64        `json:"ticks"`
	Overruns   uint64        `json:"overruns"`
	Chunks     uint64        `json:"chunks"`
	Late       uint64        `json:"late_chunks"`
	HoldTicks  uint64        `json:"hold_ticks"`
	Clamps     uint64        `json:"clamps"`
	Commands   uint64        `json:"commands_sent"`
	// Trips counts the watchdogs' trips by kind (policy/safety: state_stale, embedding_stale,
	// starved, chunk_late, chunk_rejected, faulted).
	Trips   map[string]uint64 `json:"watchdog_trips"`
	Seconds float64           `json:"elapsed_s"`
	// Interrupted: SIGINT or SIGTERM ended the demo early; the summary covers the episodes
	// that finished.
	Interrupted bool `json:"interrupted,omitempty"`
	// Fleet (--fleet) reports the episodes published to the embedded hub's stream.
	Fleet *fleetSummary `json:"fleet,omitempty"`
}

func newDemoCmd() *cobra.Command {
	var o demoOptions
	cmd := &cobra.Command{
		Use:   "demo [--task reach,detour,track] [--episodes N] [--headless] [--json] [--master URL]",
		Short: "Run the whole system in one process: ROS master, simulator, synthetic VLM, policy loop",
		Long: `Run flowact end to end in one process, in real time, on a machine with or without ROS:
an embedded ROS master (or, with --master, an existing one, so that rostopic and rviz can
watch), the simulator as a ROS node (/flowact_sim: /joint_states, /tf, markers) with the
synthetic VLM publishing embeddings, and the onboard runtime exactly as ` + "`flowact run`" + ` runs it
(/flowact: the policy loop with the shipped checkpoint, commands over ROS, /diagnostics).

For each task, --episodes episodes run one after another: the scene is drawn anew from the
seed (episode i of a task uses --seed + i), the arm starts at home, the loop starts, and the
episode ends when the task says so (success, collision or its time limit). Live status lines
show the task, its progress, tick jitter and inference latency (--headless: one line per
episode); the summary gives the success rate per task, tick jitter and inference latency
p50/p99, and the seam jerk (--json: as JSON on stdout).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.episodes <= 0 {
				return usagef("demo: --episodes %d: want at least 1", o.episodes)
			}
			if err := prepareOut("demo", o.out, o.overwrite); err != nil {
				return err
			}
			// The log and, with --json, the status lines share stderr: one lock for both.
			stderr := &lockedWriter{w: cmd.ErrOrStderr()}
			log, err := newLogger(stderr, o.logLevel)
			if err != nil {
				return err
			}
			status := cmd.OutOrStdout()
			if o.asJSON {
				status = stderr
			}
			var rec *demoRecord
			if o.out != "" {
				rec = &demoRecord{}
			}
			rep, err := runDemo(cmd.Context(), o, status, log, rec)
			if err != nil {
				return err
			}
			text, err := writeSummary(cmd.OutOrStdout(), o.asJSON, rep, func(w io.Writer) { printDemo(w, rep) })
			if err != nil {
				return err
			}
			if rec != nil {
				run := &report.Run{Title: "flowact demo", Command: commandLine(cmd), Robot: rec.robot,
					Episodes: rec.rows(), Traces: rec.traces, Summary: rep, SummaryText: text}
				if err := writeRun("demo", o.out, run, stderr); err != nil {
					return err
				}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.policy, "policy", DefaultPolicy, "policy file, or the name of a shipped policy")
	f.StringVar(&o.checkpoint, "checkpoint", "", "checkpoint directory (default: the policy file's)")
	f.StringVar(&o.weights, "weights", "", "precision of the expert's weight matrices, f32, f16 or bf16 (default: the policy file's expert.weights)")
	f.StringVar(&o.robot, "robot", "", "shipped robot's name or robot directory (default: the policy file's, "+DefaultPolicy+": ur5)")
	f.StringSliceVar(&o.tasks, "task", defaultTasks, "task files or shipped task names (repeat or comma-separate)")
	f.IntVar(&o.episodes, "episodes", 3, "episodes per task")
	f.BoolVar(&o.headless, "headless", false, "no live status: one line per episode")
	f.BoolVar(&o.asJSON, "json", false, "print the summary as JSON on stdout (status goes to stderr)")
	f.StringVar(&o.master, "master", "", "join this ROS master instead of starting an embedded one (e.g. http://127.0.0.1:11311/)")
	f.Uint64Var(&o.seed, "seed", 1_000_000, "seed of each task's first episode (keep clear of the training seeds)")
	f.BoolVar(&o.fleet, "fleet", false, "also run an embedded NATS hub: publish the loop's telemetry and each episode (joint states, embeddings, commanded reference, metadata) to JetStream")
	f.StringVar(&o.out, "out", "", "also write a report to this directory: episodes.jsonl, per task a plot of the end-effector paths, per failed episode a plot of its joints, index.html linking them (as eval --out)")
	f.BoolVar(&o.overwrite, "overwrite", false, "replace the report a former run left in --out")
	f.StringVar(&o.logLevel, "log-level", "error", "log level on stderr: debug, info, warn or error (watchdog warnings are counted in the summary either way)")
	renameFlags(cmd, map[string]string{"tasks": "task"})
	return cmd
}

// lockedWriter serializes writes from several goroutines to one writer.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// demo is one run of the demo: the runtime, the robot, the status output.
type demo struct {
	o      demoOptions
	log    *slog.Logger
	uri    string
	model  *robot.Model
	rc     robot.Config
	rt     *onboard.Runtime
	status io.Writer
	live   bool // status lines rewrite themselves (a terminal)
	start  time.Time
	fleet  *demoFleet  // --fleet
	rec    *demoRecord // --out
}

// rec, when not nil, keeps each episode's row and trace for --out.
func runDemo(ctx context.Context, o demoOptions, status io.Writer, log *slog.Logger, rec *demoRecord) (*demoReport, error) {
	start := time.Now()
	lp, tfs, err := loadPolicyTasks("demo", o.policy, o.robot, o.weights, o.checkpoint, o.tasks)
	if err != nil {
		return nil, err
	}
	defer lp.Close()
	pf := lp.file
	d := &demo{o: o, log: log, status: status, start: start, model: lp.rb.Model, rec: rec}
	if rec != nil {
		rec.robot = reportRobot(lp.rb.Model)
	}
	if _, d.rc, err = openRobot(pf.Robot); err != nil {
		return nil, err
	}
	if f, ok := status.(*os.File); ok && !o.headless && !o.asJSON && term.IsTerminal(int(f.Fd())) {
		d.live = true
	}

	d.uri = o.master
	if d.uri == "" {
		m, err := master.New(master.Config{Addr: "127.0.0.1:0", Logger: log})
		if err != nil {
			return nil, err
		}
		if err := m.Start(); err != nil {
			return nil, fmt.Errorf("demo: embedded ROS master: %w", err)
		}
		defer m.Close()
		d.uri = m.URI()
	}
	fmt.Fprintf(status, "flowact demo: ROS master %s%s; policy %s, checkpoint %s, robot %s\n",
		d.uri, map[bool]string{true: " (embedded)", false: ""}[o.master == ""], o.policy, lp.ref, pf.Robot)

	// The runtime, exactly as `flowact run` builds it; the demo starts and stops the loop per
	// episode. flowact_msgs/Embedding: goroslib decodes it with one copy.
	rosCfg := ros.Config{MasterURI: d.uri, Embedding: ros.EmbeddingCustom, Getenv: noEnv}
	var link *fleetLink
	if o.fleet {
		if d.fleet, err = startDemoFleet(lp, log); err != nil {
			return nil, err
		}
		defer d.fleet.Close()
		link = d.fleet.link
		fmt.Fprintf(status, "flowact demo: fleet hub %s (embedded), robot %q: telemetry on %s, episodes in stream %s\n",
			d.fleet.srv.ClientURL(), demoFleetID, fleet.TelemetrySubject(demoFleetID), fleet.EpisodeStream(demoFleetID))
	}
	if d.rt, err = newRuntime(lp, rosCfg, nil, false, defaultConnectTimeout, log, link); err != nil {
		return nil, err
	}
	rctx, rcancel := context.WithCancel(ctx)
	rtDone := make(chan error, 1)
	if link != nil {
		go func() { rtDone <- link.runWith(rctx, d.rt.Run) }()
	} else {
		go func() { rtDone <- d.rt.Run(rctx) }()
	}
	stopRuntime := func() error {
		rcancel()
		return <-rtDone
	}
	select {
	case <-d.rt.Ready():
	case err := <-rtDone:
		rcancel()
		return nil, err
	}

	rep := &demoReport{Policy: o.policy, Checkpoint: lp.ref, Robot: pf.Robot, Master: d.uri, Embedded: o.master == "", Seed: o.seed}
	var runErr error
tasks:
	for k, tf := range tfs {
		if rec != nil {
			rec.taskFile = o.tasks[k]
		}
		for i := range o.episodes {
			ep, err := d.episode(ctx, tf, o.seed+uint64(i), i)
			if ctx.Err() != nil {
				rep.Interrupted = true
				break tasks
			}
			if err != nil {
				runErr = err
				break tasks
			}
			rep.Runs = append(rep.Runs, ep)
		}
	}
	if d.fleet != nil && runErr == nil {
		rep.Fleet = d.fleet.summary(ctx)
	}
	snap := d.rt.Loop().Snapshot()
	drv := d.rt.Node().Driver().Stats()
	if err := stopRuntime(); err != nil && runErr == nil {
		runErr = err
	}
	if runErr != nil {
		return nil, runErr
	}
	rep.fill(snap, drv)
	rep.Seconds = time.Since(start).Seconds()
	return rep, nil
}

// noEnv keeps the demo's ROS nodes off the environment's ROS_NAMESPACE, ROS_IP and
// ROS_MASTER_URI: the demo names its master itself.
func noEnv(string) string { return "" }

// checkTaskFits refuses a task the checkpoint was not trained for: another control rate or
// another embedding width.
func checkTaskFits(cmd string, lp *loadedPolicy, tf *TaskFile) error {
	rate := lp.file.Loop.Rate
	if rate == 0 {
		rate = 100 // policy.Config's default
	}
	epRate := tf.Episode.Rate
	if epRate == 0 {
		epRate = episode.DefaultRate
	}
	if rate != epRate {
		return usagef("%s: the policy runs at %g Hz, task %s at %g Hz: set loop.rate to the task's rate", cmd, rate, tf.Task.Name, epRate)
	}
	width := tf.Episode.VLM.Width
	if width == 0 {
		width = vlm.DefaultWidth
	}
	if cw, _ := lp.ck.CondShape(); cw != width {
		return usagef("%s: task %s's VLM gives %d-wide embeddings, the checkpoint expects %d", cmd, tf.Task.Name, width, cw)
	}
	return nil
}

// taskNodeConfig is the simulator node's world for an episode of tf with seed: the task, its
// scene drawn from seed, and the episode's simulator and synthetic VLM (the VLM the task's
// checkpoint was trained with), embedding on. `flowact demo` and `flowact sim --task` both build
// their nodes from it.
func taskNodeConfig(tf *TaskFile, seed uint64) node.Config {
	return node.Config{Sim: tf.Episode.Sim, Task: tf.Task, Seed: seed, Embedding: true, VLM: tf.Episode.VLM}
}

// nodeConfig is the demo's simulator node for an episode: taskNodeConfig on the demo's master.
func (d *demo) nodeConfig(tf *TaskFile, seed uint64) node.Config {
	c := taskNodeConfig(tf, seed)
	c.ROS = ros.SimSideConfig{Node: ros.Config{MasterURI: d.uri, Embedding: ros.EmbeddingCustom, Getenv: noEnv, Logger: d.log}}
	c.Logger = d.log
	return c
}

// episodeWait bounds the waits of an episode: for the simulator node to register and for its
// first joint state and embedding, and, beyond the task's time limit, for the task to end.
const episodeWait = 10 * time.Second

// episode runs one episode: a simulator node with the task's scene drawn from seed, the loop
// started once it has a fresh joint state and embedding, stopped when the task ends.
func (d *demo) episode(ctx context.Context, tf *TaskFile, seed uint64, i int) (demoEpisode, error) {
	tk, err := task.New(tf.Task)
	if err != nil {
		return demoEpisode{}, usageError{err}
	}
	limit := tk.TimeLimit()
	ep := demoEpisode{Task: tk.Name(), Seed: seed}
	sn, err := node.New(d.model, d.rc, d.nodeConfig(tf, seed))
	if err != nil {
		return ep, fmt.Errorf("demo: simulator: %w", err)
	}
	var trace *task.Trace
	if d.rec != nil {
		trace = sn.Record()
	}
	t0 := time.Now()
	nctx, ncancel := context.WithCancel(ctx)
	simDone := make(chan error, 1)
	go func() { simDone <- sn.Run(nctx) }()
	defer func() {
		ncancel()
		<-simDone
	}()
	loop := d.rt.Loop()
	st := robot.NewState(d.model.DoF())
	if err := d.await(ctx, "the simulator's first joint state and embedding", func() bool {
		if d.rt.Node().Driver().ReadState(&st) != nil || !st.Stamp.After(t0) {
			return false
		}
		at, _ := d.rt.Node().Embeddings().Received()
		return at.After(t0)
	}, simDone); err != nil {
		return ep, err
	}
	before := loop.Snapshot()
	if err := loop.Start(); err != nil {
		return ep, fmt.Errorf("demo: start: %w", err)
	}
	var rec *demoRecorder
	if d.fleet != nil {
		if rec, err = d.fleet.record(d.rt.Node(), sn, d.model, 1/loop.Period().Seconds(), fmt.Sprintf("%s-%d", tk.Name(), seed)); err != nil {
			return ep, err
		}
		defer rec.abort()
	}
	label := fmt.Sprintf("%-7s %d/%d", tk.Name(), i+1, d.o.episodes)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var m task.Meta
	lastLine := time.Now()
	for {
		select {
		case <-ctx.Done():
			return ep, ctx.Err()
		case err := <-simDone:
			simDone <- err // for the deferred wait
			return ep, fmt.Errorf("demo: simulator stopped: %v", err)
		case <-tick.C:
		}
		m = sn.Meta()
		if m.Success || m.Collided || m.Elapsed >= limit {
			break
		}
		if time.Since(t0) > limit+episodeWait {
			return ep, fmt.Errorf("demo: %s seed %d: the simulator did not finish the task in %v", tk.Name(), seed, limit+episodeWait)
		}
		if loop.State() == safety.Fault {
			return ep, fmt.Errorf("demo: %s seed %d: the loop faulted: %s", tk.Name(), seed, loop.Snapshot().Cause)
		}
		switch {
		case d.live:
			fmt.Fprintf(d.status, "\r\033[K%s", d.statusLine(label, m, limit))
		case !d.o.headless && time.Since(lastLine) >= time.Second:
			lastLine = time.Now()
			fmt.Fprintln(d.status, d.statusLine(label, m, limit))
		}
	}
	// Stop: decelerate to rest and go idle before the next scene replaces this one.
	if err := loop.Stop(); err != nil {
		return ep, fmt.Errorf("demo: stop: %w", err)
	}
	if err := d.await(ctx, "the loop to stop", func() bool { return loop.State() == safety.Idle }, simDone); err != nil {
		return ep, err
	}
	if d.rec != nil {
		d.rec.add(seed, m, limit, trace, episodeLoop(before, loop.Snapshot()))
	}
	if rec != nil {
		if err := rec.finish(dataset.Meta{Task: tk.Name(), Instruction: m.Instruction, Seed: seed, Success: m.Success,
			Robot: d.model.Name, Rate: 1 / loop.Period().Seconds()}); err != nil {
			return ep, fmt.Errorf("demo: recording: %w", err)
		}
	}
	ep.Target, ep.Success, ep.Collided = m.Target, m.Success, m.Collided
	ep.Elapsed, ep.Distance, ep.Tracked = m.Elapsed.Seconds(), m.Distance, m.Tracked
	verdict := "success"
	switch {
	case m.Collided:
		verdict = "collided"
	case !m.Success:
		verdict = "failed"
	}
	extra := ""
	if tk.Name() == "track" {
		extra = fmt.Sprintf(", tracked %.0f%%", 100*m.Tracked)
	}
	if d.live {
		fmt.Fprint(d.status, "\r\033[K")
	}
	fmt.Fprintf(d.status, "%s  %-8s in %4.1f s, final distance %5.1f mm%s  (%q, seed %d)\n",
		label, verdict, ep.Elapsed, 1000*m.Distance, extra, m.Instruction, seed)
	return ep, nil
}

// demoRecord keeps what --out writes: per episode its metadata, the loop's figures over it and
// its trace (written by the simulator node until its Run returns: read only after the episode).
type demoRecord struct {
	taskFile string // the task file of the episodes being added, as given
	robot    report.Robot
	eps      []demoRecorded
	traces   []*task.Trace
}

type demoRecorded struct {
	taskFile string
	seed     uint64
	meta     task.Meta
	limit    time.Duration
	loop     *report.Loop
}

func (r *demoRecord) add(seed uint64, m task.Meta, limit time.Duration, tr *task.Trace, loop *report.Loop) {
	r.eps = append(r.eps, demoRecorded{r.taskFile, seed, m, limit, loop})
	r.traces = append(r.traces, tr)
}

// rows are the episodes' report lines; call it once every episode's node has stopped.
func (r *demoRecord) rows() []report.Episode {
	rows := make([]report.Episode, len(r.eps))
	for i, e := range r.eps {
		rows[i] = episodeRow(e.seed, e.meta, e.limit, r.traces[i].Tolerance)
		rows[i].TaskFile, rows[i].Loop = e.taskFile, e.loop
	}
	return rows
}

// episodeLoop is the loop's figures between two snapshots of one loop (the demo's runs all its
// episodes): counters and means; the maxima are the whole run's, so they are left out.
func episodeLoop(a, b *policy.Snapshot) *report.Loop {
	mean := func(x, y policy.HistogramSnapshot) float64 {
		if y.N <= x.N {
			return 0
		}
		return (y.Sum - x.Sum) / float64(y.N-x.N)
	}
	h, g := &a.Hist, &b.Hist
	return &report.Loop{
		Ticks: b.Counters.Ticks - a.Counters.Ticks, Chunks: b.Counters.Chunks - a.Counters.Chunks,
		Late: b.Counters.Late - a.Counters.Late, HoldTicks: b.Counters.HoldTicks - a.Counters.HoldTicks,
		Clamps: b.Clamps.Total() - a.Clamps.Total(), DelayMean: mean(h.Delay, g.Delay),
		Seams: g.SeamJump.N - h.SeamJump.N, SeamJumpMean: mean(h.SeamJump, g.SeamJump),
		SeamJerkMean: mean(h.SeamJerk, g.SeamJerk), InferenceMean: mean(h.Inference, g.Inference),
	}
}

// await polls ok every 5 ms until it holds, at most episodeWait.
func (d *demo) await(ctx context.Context, what string, ok func() bool, simDone chan error) error {
	deadline := time.Now().Add(episodeWait)
	for !ok() {
		if time.Now().After(deadline) {
			return fmt.Errorf("demo: waited %v for %s", episodeWait, what)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-simDone:
			simDone <- err
			return fmt.Errorf("demo: simulator stopped while waiting for %s: %v", what, err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	return nil
}

// statusLine is the live line: task and progress, then the loop's tick jitter and inference
// latency so far.
func (d *demo) statusLine(label string, m task.Meta, limit time.Duration) string {
	s := d.rt.Loop().Snapshot()
	jit, inf := s.Hist.TickJitter, s.Hist.Inference
	return fmt.Sprintf("%s  %4.1f/%.0f s  distance %5.1f mm  | %s | tick jitter p50 %s p99 %s | inference p50 %s p99 %s | chunks %d",
		label, m.Elapsed.Seconds(), limit.Seconds(), 1000*m.Distance, s.State,
		secs(jit.Quantile(0.5)), secs(jit.Quantile(0.99)), secs(inf.Quantile(0.5)), secs(inf.Quantile(0.99)), s.Counters.Chunks)
}

// fill sums the episodes and takes the loop's telemetry.
func (r *demoReport) fill(s *policy.Snapshot, drv ros.DriverStats) {
	index := map[string]int{}
	for _, ep := range r.Runs {
		i, ok := index[ep.Task]
		if !ok {
			i = len(r.Tasks)
			index[ep.Task] = i
			r.Tasks = append(r.Tasks, demoTask{Task: ep.Task})
		}
		t := &r.Tasks[i]
		t.Episodes++
		t.Distance += ep.Distance
		if ep.Success {
			t.Successes++
		}
	}
	for i := range r.Tasks {
		t := &r.Tasks[i]
		t.Success = float64(t.Successes) / float64(t.Episodes)
		t.Distance /= float64(t.Episodes)
		r.Episodes += t.Episodes
		r.Successes += t.Successes
	}
	if r.Episodes > 0 {
		r.Success = float64(r.Successes) / float64(r.Episodes)
	}
	r.Strategy, r.Rate = string(s.Strategy), s.Rate
	r.TickJitter = quant(s.Hist.TickJitter)
	r.TickCost = quant(s.Hist.TickCost)
	r.Inference = quant(s.Hist.Inference)
	r.Delay = quant(s.Hist.Delay)
	r.SeamJerk = quant(s.Hist.SeamJerk)
	r.Ticks, r.Overruns, r.Chunks = s.Counters.Ticks, s.Counters.Overruns, s.Counters.Chunks
	r.Late, r.HoldTicks = s.Counters.Late, s.Counters.HoldTicks
	r.Clamps = s.Clamps.Total()
	r.Commands = drv.CommandsSent
	r.Trips = map[string]uint64{}
	for k, n := range s.Trips {
		r.Trips[safety.Trip(k).String()] = n
	}
}

func printDemo(w io.Writer, r *demoReport) {
	if r.Interrupted {
		fmt.Fprintf(w, "interrupted: the summary covers the %d episodes that finished\n", len(r.Runs))
	}
	fmt.Fprintf(w, "summary: %s splicing at %g Hz over ROS (%s), seeds from %d\n", r.Strategy, r.Rate, r.Master, r.Seed)
	for _, t := range r.Tasks {
		fmt.Fprintf(w, "  %-8s %3d/%-3d success %5.1f%%  mean final distance %.1f mm\n", t.Task, t.Successes, t.Episodes, 100*t.Success, 1000*t.Distance)
	}
	fmt.Fprintf(w, "  all      %3d/%-3d success %5.1f%%\n", r.Successes, r.Episodes, 100*r.Success)
	fmt.Fprintf(w, "tick jitter p50 %s p99 %s (%d ticks, %d overruns); inference p50 %s p99 %s; tick cost p99 %s\n",
		secs(r.TickJitter.P50), secs(r.TickJitter.P99), r.Ticks, r.Overruns, secs(r.Inference.P50), secs(r.Inference.P99), secs(r.TickCost.P99))
	fmt.Fprintf(w, "chunks %d (delay p99 %.0f ticks, %d late), seam jerk p50 %.3g p99 %.3g rad/s^3, %d clamps, %d hold ticks, %d commands sent; %.1f s\n",
		r.Chunks, r.Delay.P99, r.Late, r.SeamJerk.P50, r.SeamJerk.P99, r.Clamps, r.HoldTicks, r.Commands, r.Seconds)
	var trips []string
	for _, k := range slices.Sorted(maps.Keys(r.Trips)) {
		if n := r.Trips[k]; n > 0 {
			trips = append(trips, fmt.Sprintf("%s %d", k, n))
		}
	}
	if len(trips) > 0 {
		fmt.Fprintf(w, "watchdog trips: %s\n", strings.Join(trips, ", "))
	}
	if f := r.Fleet; f != nil {
		fmt.Fprintf(w, "fleet: stream %s holds %d messages (%d published, %d republished, %d duplicates dropped, %d pending)\n",
			f.Stream, f.StreamMessages, f.Published, f.Retries, f.Duplicates, f.Pending)
	}
}
