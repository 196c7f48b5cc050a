package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/flowact/flowact/dataset"
	"github.com/flowact/flowact/sim/episode"
	"github.com/flowact/flowact/sim/task"
)

// episodeEpoch is the simulated wall time at which recorded episodes start: bag times are ROS
// times, and rosbag tools treat time 0 as unset. (2023-11-14T22:13:20Z.)
var episodeEpoch = time.Unix(1_700_000_000, 0).UTC()

// collectSummary is what collect reports.
type collectSummary struct {
	Task      string  `json:"task"`
	Robot     string  `json:"robot"`
	Episodes  int     `json:"episodes"`
	Successes int     `json:"successes"`
	Success   float64 `json:"success_rate"`
	Ticks     int     `json:"ticks"`
	Seed      uint64  `json:"seed"`
	Out       string  `json:"out"`
	Seconds   float64 `json:"elapsed_s"`
	// Interrupted: SIGINT or SIGTERM ended collect early; Episodes counts the bags written.
	Interrupted bool `json:"interrupted,omitempty"`
	// Fleet says what reached the NATS stream (with --nats).
	Fleet *fleetSummary `json:"fleet,omitempty"`
}

func newCollectCmd() *cobra.Command {
	var (
		taskName, out, robotName string
		episodes                 int
		seed                     uint64
		dwell                    time.Duration
		perturb                  float64
		perturbTime              time.Duration
		asJSON                   bool
		nf                       natsFlags
		fleetID, spool           string
		appendBags, overwrite    bool
	)
	cmd := &cobra.Command{
		Use:   "collect --task T --episodes N --out DIR",
		Short: "Record scripted-expert demonstrations in the simulator as ROS bags",
		Long: `Run the simulator's scripted expert (sim/demo) in-process, faster than real time, on episodes
of a task, and write one ROS bag per episode (package dataset: joint states, VLM embeddings,
commands, and the episode's metadata). Episode i uses seed S+i, so a dataset is reproducible
from --seed. A reach or detour episode normally ends the moment the end effector is within
tolerance, while the expert is still moving; --dwell keeps recording the expert coming to rest
at the goal and holding there, so that a policy learns to stop on the target rather than to
pass through it. --perturb disturbs the commands the robot executes with slow, smooth noise
while the bags record the expert's own (DART): the demonstrations then show the way back to
the expert's path from where a policy's error would take the arm. --task is a task file or the
name of a shipped one (configs/tasks: reach, detour, track).

An --out that already holds bags is refused unless --append adds to them (from --seed when
given, else from the seed after the task's highest one there; a bag that exists is never
replaced) or --overwrite removes them first:

  flowact collect --task reach --episodes 100 --out data
  flowact collect --task reach --episodes 100 --out data --append   # seeds 101..200`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if taskName == "" || out == "" {
				return usagef("collect: --task and --out are required")
			}
			if episodes <= 0 {
				return usagef("collect: --episodes %d: want at least 1", episodes)
			}
			if dwell < 0 {
				return usagef("collect: --dwell %v is negative", dwell)
			}
			tf, err := loadTaskFile(taskName)
			if err != nil {
				return err
			}
			if f := cmd.Flags(); f.Changed("perturb") || f.Changed("perturb-time") {
				if f.Changed("perturb") {
					tf.Episode.Demo.Perturb = perturb
				}
				if f.Changed("perturb-time") {
					tf.Episode.Demo.PerturbTime = perturbTime
				}
				if err := tf.Episode.Demo.Validate(); err != nil {
					return usagef("collect: %v", err)
				}
			}
			if robotName != "" {
				tf.Robot = robotName
				if err := tf.Validate(); err != nil {
					return usagef("collect: --robot: %v", err)
				}
			}
			if appendBags && overwrite {
				return usagef("collect: --append and --overwrite: add to the bags in %s or replace them, not both", out)
			}
			first, err := collectStart(out, tf.Task.Name, episodes, seed, cmd.Flags().Changed("seed"), appendBags, overwrite)
			if err != nil {
				return err
			}
			seed = first
			var pub *episodePublisher
			if nf.url != "" {
				if pub, err = openEpisodePublisher(&nf, fleetID, spool); err != nil {
					return err
				}
				defer pub.Close()
			}
			sum, err := collect(cmd.Context(), tf, episodes, seed, dwell, out, cmd.ErrOrStderr(), pub)
			if err != nil {
				return err
			}
			if pub != nil {
				if sum.Fleet, err = pub.finish(cmd.Context(), nf.timeout); err != nil {
					return err
				}
			}
			w := cmd.OutOrStdout()
			if asJSON {
				if err := json.NewEncoder(w).Encode(sum); err != nil {
					return err
				}
			} else {
				note := ""
				if sum.Interrupted {
					note = fmt.Sprintf(" (interrupted: %d of %d)", sum.Episodes, episodes)
				}
				fmt.Fprintf(w, "collected %d %s episodes on %s in %s%s: %d successful (%.1f%%), %d ticks, seeds %d..%d, in %s\n",
					sum.Episodes, sum.Task, sum.Robot, sum.Out, note, sum.Successes, 100*sum.Success, sum.Ticks,
					seed, seed+uint64(max(sum.Episodes, 1))-1, time.Duration(sum.Seconds*float64(time.Second)).Round(time.Millisecond))
			}
			if sum.Fleet != nil && !asJSON {
				fmt.Fprintf(w, "published to %s: %d messages stored (%d republished, %d duplicates dropped), stream holds %d; %d pending in the spool\n",
					sum.Fleet.Stream, sum.Fleet.Published, sum.Fleet.Retries, sum.Fleet.Duplicates, sum.Fleet.StreamMessages, sum.Fleet.Pending)
			}
			if sum.Interrupted {
				return fmt.Errorf("collect: %w", errInterrupted)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&taskName, "task", "", "task file, or the name of a shipped task (reach, detour, track)")
	f.IntVar(&episodes, "episodes", 100, "number of episodes")
	f.StringVar(&out, "out", "", "output directory for the bags (created if missing)")
	f.StringVar(&robotName, "robot", "", "shipped robot's name or robot directory (default: the task file's)")
	f.Uint64Var(&seed, "seed", 1, "seed of the first episode (episode i uses seed+i)")
	f.DurationVar(&dwell, "dwell", time.Second, "keep recording this long after the task first succeeds (within its time limit)")
	f.Float64Var(&perturb, "perturb", 0, "disturb the executed commands by this std, rad per joint, recording the expert's own (DART; default: the task file's demo.perturb)")
	f.DurationVar(&perturbTime, "perturb-time", 0, "correlation time of the disturbance (default: the task file's demo.perturb_time, or 0.5s)")
	f.BoolVar(&asJSON, "json", false, "print the summary as JSON")
	f.BoolVar(&appendBags, "append", false, "add to the bags already in --out (from the seed after the task's highest one there, unless --seed is given); never replaces a bag")
	f.BoolVar(&overwrite, "overwrite", false, "remove the bags already in --out first")
	f.StringVar(&nf.url, "nats", "", "also publish each episode to this NATS server's JetStream (the robot's stream flowact_<fleet-id>_episodes)")
	f.StringVar(&nf.domain, "nats-domain", "", "JetStream domain of the robot's stream (\"\": the server's own)")
	f.StringVar(&nf.creds, "nats-creds", "", "NATS credentials file")
	f.StringVar(&fleetID, "fleet-id", "sim", "robot id in the fleet (with --nats)")
	f.StringVar(&spool, "spool", "", "episode spool directory (with --nats; default: flowact-spool-<fleet-id> in the user's cache directory)")
	f.DurationVar(&nf.timeout, "nats-timeout", 30*time.Second, "how long to wait, after the last episode, for the stream to store every message (the rest stays in the spool)")
	return cmd
}

// taskRobot loads a robot (a shipped name or a directory, see openRobot) as a task.Robot.
func taskRobot(ref string) (*task.Robot, error) {
	m, cfg, err := openRobot(ref)
	if err != nil {
		return nil, err
	}
	return task.NewRobot(m, cfg.EELink, cfg.HomePosition(m))
}

// collect runs the scripted expert on episodes seed, seed+1, ... and writes a bag for each.
func collect(ctx context.Context, tf *TaskFile, episodes int, seed uint64, dwell time.Duration, out string, progress io.Writer, pub *episodePublisher) (*collectSummary, error) {
	rb, err := taskRobot(tf.Robot)
	if err != nil {
		return nil, err
	}
	r, err := episode.New(tf.Episode, rb)
	if err != nil {
		return nil, usageError{err}
	}
	inner, err := task.New(tf.Task)
	if err != nil {
		return nil, usageError{err}
	}
	var tk task.Task = inner
	if dwell > 0 {
		tk = &dwellTask{Task: inner, dwell: dwell}
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, fmt.Errorf("collect: %w", err)
	}
	sum := &collectSummary{Task: tk.Name(), Robot: tf.Robot, Episodes: episodes, Seed: seed, Out: out}
	start := time.Now()
	pb := newProgress(progress, episodes, "collect "+tk.Name())
	for i := range episodes {
		s := seed + uint64(i)
		res, err := r.Run(ctx, tk, s, nil)
		if err != nil && ctx.Err() != nil {
			// Cut short: the episode under way is not written; the summary covers the rest.
			sum.Episodes, sum.Interrupted = i, true
			break
		}
		if err != nil {
			return nil, fmt.Errorf("collect: %w", err)
		}
		path := filepath.Join(out, bagName(tk.Name(), s))
		// Every message is stamped with the simulated time at which the policy had it (a bag's
		// record time), so that dataset.Align reproduces what the policy saw at each tick.
		ep := res.Episode(tf.Robot, episodeEpoch)
		if err := dataset.WriteEpisode(path, ep, dataset.WriterConfig{}); err != nil {
			return nil, fmt.Errorf("collect: %w", err)
		}
		if pub != nil {
			if err := pub.publish(fmt.Sprintf("%s-%06d", tk.Name(), s), ep); err != nil {
				return nil, fmt.Errorf("collect: %w", err)
			}
		}
		if res.Success {
			sum.Successes++
		}
		sum.Ticks += len(res.Records)
		pb.step(fmt.Sprintf("%d/%d ok", sum.Successes, i+1))
	}
	pb.done()
	sum.Success = float64(sum.Successes) / float64(max(sum.Episodes, 1))
	sum.Seconds = time.Since(start).Seconds()
	return sum, nil
}

// dwellTask keeps an episode going for dwell after the task first succeeds (or to its time
// limit): the demonstration then shows the expert settling on the goal. Success stays what the
// task says (reach's is latched; detour's turns false on a later collision).
type dwellTask struct {
	task.Task
	dwell time.Duration
	since time.Duration // when the task first succeeded; valid when hit
	hit   bool
}

func (d *dwellTask) Reset(r *rand.Rand, rb *task.Robot) error {
	d.hit = false
	return d.Task.Reset(r, rb)
}

func (d *dwellTask) Update(t time.Duration, ee [3]float64) bool {
	done := d.Task.Update(t, ee)
	if !d.Task.Success() {
		return done // failed, or still going
	}
	if !d.hit {
		d.hit, d.since = true, t
	}
	return t >= d.since+d.dwell || t >= d.Task.TimeLimit()
}

// progress shows a count: a progress bar on a terminal, a plain line every tenth otherwise.
type progress struct {
	w     io.Writer
	bar   *progressbar.ProgressBar
	n, i  int
	label string
}

func newProgress(w io.Writer, n int, label string) *progress {
	p := &progress{w: w, n: n, label: label}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.bar = progressbar.NewOptions(n,
			progressbar.OptionSetWriter(f),
			progressbar.OptionSetDescription(label),
			progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
	}
	return p
}

func (p *progress) step(note string) {
	p.i++
	switch {
	case p.bar != nil:
		p.bar.Describe(p.label + " " + note)
		p.bar.Add(1)
	case p.w != nil && (p.i == p.n || p.i%max(1, p.n/10) == 0):
		fmt.Fprintf(p.w, "%s: %d/%d %s\n", p.label, p.i, p.n, note)
	}
}

func (p *progress) done() {
	if p.bar != nil {
		p.bar.Finish()
	}
}

// collectStart checks --out before anything is recorded and returns the first episode's seed:
// an --out holding bags is refused unless --append (which starts after the task's highest seed
// there, unless --seed was given, and refuses to replace a bag) or --overwrite (which removes
// the bags).
func collectStart(out, taskName string, episodes int, seed uint64, seedGiven, appendBags, overwrite bool) (uint64, error) {
	bags, err := dataset.List(out)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && len(bags) == 0) {
		return seed, nil
	}
	if err != nil {
		return 0, usagef("collect: --out: %v", err)
	}
	switch {
	case overwrite:
		for _, b := range bags {
			if err := os.Remove(b); err != nil {
				return 0, fmt.Errorf("collect: --overwrite: %w", err)
			}
		}
		return seed, nil
	case !appendBags:
		return 0, usagef("collect: --out %s holds %d bags (%s first); give --append to add to them, --overwrite to replace them, or another --out", out, len(bags), filepath.Base(bags[0]))
	}
	if !seedGiven {
		prefix := taskName + "-"
		for _, b := range bags {
			name := strings.TrimSuffix(filepath.Base(b), ".bag")
			if !strings.HasPrefix(name, prefix) {
				continue
			}
			if n, err := strconv.ParseUint(name[len(prefix):], 10, 64); err == nil && n >= seed {
				seed = n + 1
			}
		}
	}
	for i := range episodes {
		name := filepath.Join(out, bagName(taskName, seed+uint64(i)))
		if _, err := os.Lstat(name); err == nil {
			return 0, usagef("collect: --append: %s exists (seeds %d..%d); leave out --seed to continue after the highest one there", name, seed, seed+uint64(episodes)-1)
		}
	}
	return seed, nil
}

// bagName is the file name of the task's episode with seed s.
func bagName(taskName string, s uint64) string { return fmt.Sprintf("%s-%06d.bag", taskName, s) }
