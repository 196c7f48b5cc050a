package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/flowact/flowact/cmd/flowact/internal/bench"
	"github.com/flowact/flowact/expert/nn"
	"github.com/flowact/flowact/policy"
	"github.com/flowact/flowact/policy/chunk"
)

// benchOptions are the flags of `flowact bench`.
type benchOptions struct {
	json       bool
	archs      []string
	solvers    []string
	steps      int
	threads    []int
	batches    []int
	duration   time.Duration
	minReps    int
	seed       uint64
	strategies []string
	rate       float64
	sizes      bench.Sizes
	cpuProfile string
	kernels    bool
	weights    []string
	kernelDur  time.Duration
	kernelReps int
	jitter     string // network beside the wall-clock tick: "" none, mlp, transformer
	jitterDur  time.Duration
	jitterRnds int
}

// benchReport is what `flowact bench --json` prints.
type benchReport struct {
	Env      bench.Env            `json:"env"`
	Sizes    bench.Sizes          `json:"sizes"`
	Duration string               `json:"duration"` // per measurement
	Seed     uint64               `json:"seed"`
	Expert   []bench.ExpertResult `json:"expert"`
	Tick     []bench.TickResult   `json:"tick"`
	// Interrupted: SIGINT or SIGTERM ended bench early; the report has the cases it finished.
	Interrupted bool `json:"interrupted,omitempty"`
	// Kernels holds the FMA peak, the products and the reference networks (--kernels).
	Kernels *bench.KernelReport `json:"kernels,omitempty"`
	// Jitter is the wall-clock tick without and with the expert beside it (--jitter), in
	// interleaved rounds; JitterNote says why the isolated case is missing, if it is.
	Jitter     []bench.JitterResult `json:"jitter,omitempty"`
	JitterNote string               `json:"jitter_note,omitempty"`
}

func newBenchCmd() *cobra.Command {
	o := benchOptions{sizes: bench.Reference()}
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure expert sampling latency and the control tick's cost on this machine",
		Long: `Measure, on this machine, how long the action expert takes to sample one chunk, for each
architecture, ODE solver and thread count, and what one control tick of the policy loop costs.

Expert: the reference networks of the README (MLP: 3 blocks of 1024, 16 x 512 embedding;
transformer: width 256, 4 layers, 4 heads, MLP ratio 4, 16 x 256 embedding; both 50 x 7 chunks
and a state of 7) with seeded random weights, at batch 1 unless --batch says more (then every
figure is per call of that many chunks). A chunk is noise, Bind (the per-chunk
condition work) and the solve from t = 0 to 1. Reported per case: ms per chunk (median and p99
over the repetitions), the process's CPU time per chunk (cpu-ms, all threads: a loaded machine
stretches the wall time, not this), velocity evaluations per chunk, GFLOP/s from the network's
analytic FLOP count (and per CPU second), and allocations per chunk in steady state (after untimed warm-up chunks: 1, or 3 with two
threads). dopri5 is adaptive (tolerances 1e-4, at most 2000 evaluations): on random weights it
needs hundreds of evaluations per chunk, so it is not in the default list.

Tick: policy.Loop with every piece real (worker, splicer, safety filter, watchdogs) on a fake
robot (ideal tracking, closed-form chunks, a virtual clock that skips the sleeps), per splicing
strategy: ns per tick (median, p99, mean; also for the ticks that ask the worker for a chunk and
those that splice one), allocations per tick, and the ticks the robot was held (1: the first
tick, before any chunk).

Kernels (--kernels, on by default): the machine's measured FMA peak per core (AVX-512 and
AVX2 loops of independent multiply-adds, best round), matrix products on the networks' shapes
(float32 and half-precision weights, and bfloat16 when --weights lists it; 1 and 2 threads)
and the two reference networks of issue 19, fixed in size so that they compare with other
frameworks: A, an MLP 933 -> 1024 -> 1024 -> 1024 -> 350 (SiLU), and B, a pre-LN transformer
of width 256, 4 layers, 4 heads, MLP ratio 4,
50 action tokens with time added to each, cross-attention to 16 condition tokens projected from
a 519-vector; a chunk is Bind and 10 Euler steps at batch 1. Every GFLOP/s figure is also given
as a share of the peak (times the threads); for f16 and bf16 weights the report gives the
largest velocity difference from float32 weights. Expert rows get the same share.

Each case runs for --duration (at least --min-reps chunks; the tick at most 262144 ticks). The machine's load changes the
figures: the report states GOMAXPROCS, the CPU model and the load average.`,
		Example: `  flowact bench
  flowact bench --json > bench.json
  flowact bench --arch mlp --solvers euler --threads 1 --duration 5s
  flowact bench --arch transformer --solvers euler,rk4 --steps 5 --strategies ""
  flowact bench --arch mlp --solvers euler --threads 1 --strategies "" --cpuprofile cpu.out && go tool pprof -top cpu.out`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef("bench: unexpected argument %q", args[0])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.validate(); err != nil {
				return err
			}
			return runBench(cmd.Context(), o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.json, "json", false, "print the results as JSON")
	f.StringSliceVar(&o.archs, "arch", []string{nn.ArchMLP, nn.ArchTransformer}, "architectures: mlp, transformer (comma-separated)")
	f.StringSliceVar(&o.solvers, "solvers", []string{"euler", "heun", "rk4"}, "ODE solvers: "+strings.Join(bench.Solvers(), ", "))
	f.IntVar(&o.steps, "steps", 10, "steps of the fixed-step solvers")
	f.IntSliceVar(&o.threads, "threads", []int{1, 2}, "matrix-product threads of the network: 1, 2")
	f.IntSliceVar(&o.batches, "batch", []int{1}, fmt.Sprintf("chunks per call (1 to %d); figures are per call", bench.MaxBatch))
	f.DurationVar(&o.duration, "duration", 2*time.Second, "least time spent timing each case")
	f.IntVar(&o.minReps, "min-reps", 3, "least number of timed chunks per expert case")
	f.Uint64Var(&o.seed, "seed", 1, "seed of the weights, conditions and noise")
	f.StringSliceVar(&o.strategies, "strategies", []string{"replace", "ensemble", "blend", "prefix", "guided"},
		`splicing strategies whose tick is measured ("" for none)`)
	f.Float64Var(&o.rate, "rate", 500, "control rate of the tick measurement, Hz")
	f.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the measurements to this file (go tool pprof)")
	f.StringSliceVar(&o.weights, "weights", []string{"f32"}, "precision of the expert's weight matrices: f32, f16 (half precision), bf16 (bfloat16); 16-bit ones accumulate in float32. The kernel measurements take f32, f16 and any other listed")
	f.BoolVar(&o.kernels, "kernels", true, "measure the FMA peak, the matrix products and the reference networks A and B")
	f.DurationVar(&o.kernelDur, "kernel-duration", time.Second, "least time spent timing each kernel case")
	f.IntVar(&o.kernelReps, "kernel-min-reps", 5, "least number of timed chunks per reference network case")
	f.StringVar(&o.jitter, "jitter", "", `measure the control tick's wall-clock jitter alone and with this network (mlp, transformer) computing chunks beside it, with and without isolate_tick ("": not measured)`)
	f.DurationVar(&o.jitterDur, "jitter-duration", 3*time.Second, "wall time of each jitter case per round")
	f.IntVar(&o.jitterRnds, "jitter-rounds", 3, "interleaved rounds of the jitter cases")
	s := &o.sizes
	f.IntVar(&s.H, "horizon", s.H, "chunk length H, ticks")
	f.IntVar(&s.D, "dof", s.D, "action dimensions D (and the tick's joints)")
	f.IntVar(&s.Tokens, "tokens", s.Tokens, "embedding tokens of the condition")
	f.IntVar(&s.State, "state", s.State, "state length of the condition")
	f.IntVar(&s.MLPHidden, "mlp-hidden", s.MLPHidden, "MLP width")
	f.IntVar(&s.MLPLayers, "mlp-layers", s.MLPLayers, "MLP residual blocks")
	f.IntVar(&s.MLPEmbed, "mlp-embed", s.MLPEmbed, "MLP embedding width")
	f.IntVar(&s.TFWidth, "tf-width", s.TFWidth, "transformer width")
	f.IntVar(&s.TFLayers, "tf-layers", s.TFLayers, "transformer blocks")
	f.IntVar(&s.TFHeads, "tf-heads", s.TFHeads, "transformer attention heads")
	f.IntVar(&s.TFMLPRatio, "tf-mlp-ratio", s.TFMLPRatio, "transformer MLP ratio")
	f.IntVar(&s.TFEmbed, "tf-embed", s.TFEmbed, "transformer embedding width")
	renameFlags(cmd, map[string]string{"chunk": "horizon"})
	return cmd
}

// validate checks every flag before anything is measured: a bad one is a usage error.
func (o *benchOptions) validate() error {
	empty := func(s string) bool { return s == "" }
	o.archs = slices.DeleteFunc(o.archs, empty)
	o.strategies = slices.DeleteFunc(o.strategies, empty)
	if len(o.archs) == 0 && len(o.strategies) == 0 && !o.kernels && o.jitter == "" {
		return usagef("bench: nothing to measure (no --arch, no --strategies, --kernels=false, no --jitter)")
	}
	if o.jitter != "" {
		if o.jitter != nn.ArchMLP && o.jitter != nn.ArchTransformer {
			return usagef("bench: --jitter %q, want %s or %s", o.jitter, nn.ArchMLP, nn.ArchTransformer)
		}
		if err := o.sizes.CheckArch(o.jitter, 1); err != nil {
			return usageError{err}
		}
		if o.jitterDur <= 0 || o.jitterRnds <= 0 {
			return usagef("bench: --jitter-duration %v and --jitter-rounds %d, want > 0", o.jitterDur, o.jitterRnds)
		}
		if o.rate < 50 || o.rate > 1000 {
			return usagef("bench: --rate %g Hz, want 50 to 1000", o.rate)
		}
	}
	if o.kernelDur <= 0 || o.kernelReps <= 0 {
		return usagef("bench: --kernel-duration %v and --kernel-min-reps %d, want > 0", o.kernelDur, o.kernelReps)
	}
	if len(o.archs) > 0 && (len(o.solvers) == 0 || len(o.threads) == 0 || len(o.batches) == 0) {
		return usagef("bench: --solvers, --threads and --batch need at least one value")
	}
	for _, w := range o.weights {
		if _, err := nn.ParsePrecision(w); err != nil {
			return usagef("bench: --weights %q, want f32, f16 or bf16", w)
		}
	}
	if len(o.archs) > 0 && len(o.weights) == 0 {
		return usagef("bench: --weights needs at least one value")
	}
	for _, b := range o.batches {
		if b < 1 || b > bench.MaxBatch {
			return usagef("bench: --batch %d, want 1 to %d", b, bench.MaxBatch)
		}
	}
	if o.duration <= 0 {
		return usagef("bench: --duration %v, want > 0", o.duration)
	}
	if o.steps <= 0 {
		return usagef("bench: --steps %d, want > 0", o.steps)
	}
	if o.minReps <= 0 {
		return usagef("bench: --min-reps %d, want > 0", o.minReps)
	}
	for _, th := range o.threads {
		if th != 1 && th != 2 {
			return usagef("bench: --threads %d, want 1 or 2", th)
		}
	}
	for _, s := range o.solvers {
		if !slices.Contains(bench.Solvers(), s) {
			return usagef("bench: unknown solver %q (want one of %s)", s, strings.Join(bench.Solvers(), ", "))
		}
	}
	for _, a := range o.archs {
		if a != nn.ArchMLP && a != nn.ArchTransformer {
			return usagef("bench: unknown architecture %q (want %s or %s)", a, nn.ArchMLP, nn.ArchTransformer)
		}
		if err := o.sizes.CheckArch(a, 1); err != nil {
			return usageError{err}
		}
	}
	for _, s := range o.strategies {
		c := chunk.Config{Strategy: chunk.Strategy(s)}
		if err := c.Validate(); err != nil {
			return usagef("bench: --strategies: %v", err)
		}
	}
	if len(o.strategies) > 0 {
		if o.sizes.D <= 0 || o.sizes.H < 2 {
			return usagef("bench: the tick needs --dof > 0 and --horizon >= 2")
		}
		if o.rate < 50 || o.rate > 1000 {
			return usagef("bench: --rate %g Hz, want 50 to 1000", o.rate)
		}
	}
	return nil
}

func runBench(ctx context.Context, o benchOptions, stdout, stderr io.Writer) error {
	rep := benchReport{Env: bench.ReadEnv(), Sizes: o.sizes, Duration: o.duration.String(), Seed: o.seed,
		Expert: []bench.ExpertResult{}, Tick: []bench.TickResult{}}
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return fmt.Errorf("bench: cpu profile: %w", err)
		}
		defer func() {
			pprof.StopCPUProfile()
			if err := f.Close(); err != nil {
				fmt.Fprintf(stderr, "bench: cpu profile: %v\n", err)
			}
		}()
	}
	progress := func(format string, args ...any) {
		if !o.json {
			fmt.Fprintf(stderr, "bench: "+format+"\n", args...)
		}
	}
	// A case cut short by SIGINT or SIGTERM is dropped; the report has the finished ones.
	interrupted := func(err error) bool {
		rep.Interrupted = err != nil && ctx.Err() != nil
		return rep.Interrupted
	}
cases:
	for _, arch := range o.archs {
		for _, s := range o.solvers {
			for _, th := range o.threads {
				for _, b := range o.batches {
					for _, wt := range o.weights {
						progress("%s, %s, %d thread(s), batch %d, %s weights", arch, s, th, b, wt)
						r, err := bench.Expert(ctx, bench.ExpertConfig{Arch: arch, Solver: s, Steps: o.steps, Threads: th,
							Batch: b, Sizes: o.sizes, Duration: o.duration, MinReps: o.minReps, Seed: o.seed, Weights: mustPrecision(wt)})
						if interrupted(err) {
							break cases
						}
						if err != nil {
							return err
						}
						rep.Expert = append(rep.Expert, r)
					}
				}
			}
		}
	}
	for _, st := range o.strategies {
		if rep.Interrupted {
			break
		}
		progress("tick, %s", st)
		r, err := bench.Tick(ctx, bench.TickConfig{Strategy: chunk.Strategy(st), Rate: o.rate, Joints: o.sizes.D,
			H: o.sizes.H, Tokens: o.sizes.Tokens, Width: o.sizes.TFEmbed, Duration: o.duration})
		if interrupted(err) {
			break
		}
		if err != nil {
			return err
		}
		rep.Tick = append(rep.Tick, r)
	}
	if o.jitter != "" && !rep.Interrupted {
		if err := benchJitter(ctx, o, &rep, progress); err != nil {
			if !interrupted(err) {
				return err
			}
		}
	}
	if o.kernels && !rep.Interrupted {
		progress("kernels: FMA peak, products, reference networks A and B")
		th := slices.Clone(o.threads)
		if len(th) == 0 {
			th = []int{1, 2}
		}
		k, err := bench.Kernels(ctx, bench.KernelConfig{Duration: o.kernelDur, Threads: th, MinReps: o.kernelReps, Seed: o.seed,
			Weights: kernelWeights(o.weights)})
		if err != nil {
			return err
		}
		rep.Kernels = &k
		for i := range rep.Expert {
			if k.Peak > 0 {
				e := &rep.Expert[i]
				e.PeakShare = e.GFLOPS / (k.Peak * float64(e.Threads))
			}
		}
	}
	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		printBench(stdout, &rep)
	}
	if rep.Interrupted {
		return fmt.Errorf("bench: %w", errInterrupted)
	}
	return nil
}

func printBench(w io.Writer, r *benchReport) {
	e := r.Env
	fmt.Fprintf(w, "%s %s/%s, GOMAXPROCS %d, %d CPUs", e.GoVersion, e.GOOS, e.GOARCH, e.GOMAXPROCS, e.NumCPU)
	if e.CPU != "" {
		fmt.Fprintf(w, ", %s", e.CPU)
	}
	if len(e.LoadAvg) == 3 {
		fmt.Fprintf(w, ", load average %.2f %.2f %.2f", e.LoadAvg[0], e.LoadAvg[1], e.LoadAvg[2])
	}
	fmt.Fprintf(w, "\n%s, seed %d, %s per case\n", e.Time.Format(time.RFC3339), r.Seed, r.Duration)
	if r.Interrupted {
		fmt.Fprintf(w, "interrupted: %d expert and %d tick cases finished\n", len(r.Expert), len(r.Tick))
	}
	s := r.Sizes
	if len(r.Expert) > 0 {
		fmt.Fprintf(w, "\nExpert: %d x %d chunks (noise, Bind, solve), %d condition tokens; figures per call of batch chunks\n", s.H, s.D, s.Tokens)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "arch\tsolver\tsteps\tthreads\tbatch\tweights\treps\tms p50\tms p99\tcpu-ms\tevals\tMFLOP\tGFLOP/s\tof peak\tGFLOP/cpu-s\tallocs\t")
		for _, x := range r.Expert {
			steps := "adaptive"
			if x.Steps > 0 {
				steps = fmt.Sprint(x.Steps)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%d\t%s\t%s\t%s\t%.4g\t%s\t%.2f\t%s\t%.2f\t%.2f\t\n", x.Arch, x.Solver, steps, x.Threads, x.Batch, x.Weights, x.Reps,
				ms(x.MsMedian), ms(x.MsP99), ms(x.CPUMs), x.Evals, ms(x.MFLOP), x.GFLOPS, pct(x.PeakShare), x.GFLOPPerCPUs, x.Allocs)
		}
		tw.Flush()
	}
	if k := r.Kernels; k != nil {
		printKernels(w, k)
	}
	if len(r.Jitter) > 0 {
		fmt.Fprintf(w, "\nControl tick on the wall clock (policy.Loop.Run at %g Hz, fake driver), alone and with the %s expert computing beside it\n", r.Jitter[0].Rate, r.Jitter[len(r.Jitter)-1].Arch)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "network\tisolate_tick\tticks\tlate µs p50\tlate µs p99\tlate µs max\ttick µs p50\ttick µs p99\toverruns\tchunks\tinfer ms p50\tbusy\t")
		for _, x := range r.Jitter {
			name := x.Arch
			if name == "" {
				name = "none"
			}
			fmt.Fprintf(tw, "%s\t%v\t%d\t%.1f\t%.1f\t%.0f\t%.2f\t%.2f\t%d\t%d\t%s\t%s\t\n", name, x.Isolate, x.Ticks, x.LateUsMedian, x.LateUsP99, x.LateUsMax,
				x.TickUsMedian, x.TickUsP99, x.Overruns, x.Inferences, ms(x.InferMsMedian), pct(x.Busy))
		}
		tw.Flush()
		if r.JitterNote != "" {
			fmt.Fprintln(w, "isolate_tick not measured:", r.JitterNote)
		}
	}
	if len(r.Tick) > 0 {
		t := r.Tick[0]
		fmt.Fprintf(w, "\nControl tick: policy.Loop, %d joints, H = %d, %g Hz, fake driver and clock\n", t.Joints, t.H, t.Rate)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "strategy\tticks\tns p50\tns p99\tns mean\trequest p50\trequest p99\tsplice p50\tsplice p99\tallocs/tick\tholds\t")
		for _, x := range r.Tick {
			fmt.Fprintf(tw, "%s\t%d\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.4f\t%d\t\n", x.Strategy, x.Ticks, x.NsMedian, x.NsP99, x.NsMean,
				x.Request.NsMedian, x.Request.NsP99, x.Splice.NsMedian, x.Splice.NsP99, x.Allocs, x.HoldTicks)
		}
		tw.Flush()
	}
}

// benchJitter runs the jitter cases in interleaved rounds: the tick alone, with the network
// beside it, with the network and isolate_tick. Where isolate_tick is refused (not Linux, one
// CPU), the note says why and the other cases run.
func benchJitter(ctx context.Context, o benchOptions, rep *benchReport, progress func(string, ...any)) error {
	warm := min(500*time.Millisecond, o.jitterDur)
	isolate := true
	for round := range o.jitterRnds {
		for _, c := range []struct {
			arch    string
			isolate bool
		}{{"", false}, {o.jitter, false}, {o.jitter, true}} {
			if c.isolate && !isolate {
				continue
			}
			progress("jitter round %d: network %q, isolate_tick %v", round+1, c.arch, c.isolate)
			r, err := bench.Jitter(ctx, bench.JitterConfig{Arch: c.arch, Isolate: c.isolate, Sizes: o.sizes, Rate: o.rate,
				Warmup: warm, Duration: o.jitterDur, Seed: o.seed})
			if err != nil && c.isolate && errors.Is(err, policy.ErrConfig) && ctx.Err() == nil {
				isolate = false
				rep.JitterNote = err.Error()
				continue
			}
			if err != nil {
				return err
			}
			rep.Jitter = append(rep.Jitter, r)
		}
	}
	return nil
}

// ms formats a positive figure (milliseconds, MFLOP) with three significant digits, or as an
// integer from 100 on.
func ms(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

// pct formats a share of the peak ("" when unknown).
func pct(v float64) string {
	if v <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f%%", 100*v)
}

func printKernels(w io.Writer, k *bench.KernelReport) {
	fmt.Fprintf(w, "\nKernels: %s; measured FMA peak per core:", k.Kernels)
	for _, p := range k.Peaks {
		fmt.Fprintf(w, " %s %.1f GFLOP/s", p.ISA, p.GFLOPS)
	}
	if len(k.Peaks) == 0 {
		fmt.Fprint(w, " not measured (no peak loop for these kernels)")
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "product\tweights\tthreads\tGFLOP/s\tof peak\t")
	for _, p := range k.Products {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.1f\t%s\t\n", p.Shape, p.Weights, p.Threads, p.GFLOPS, pct(p.PeakShare))
	}
	tw.Flush()
	fmt.Fprintln(w, "\nReference networks (issue 19), chunk = Bind + 10 Euler steps, batch 1")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "net\tweights\tthreads\treps\tms p50\tms p99\tms min\tcpu-ms\tMFLOP\tGFLOP/s\tof peak\tGFLOP/cpu-s\tof peak\tweights GB/s\tallocs\t")
	for _, n := range k.Networks {
		gb := "-"
		if n.GBps > 0 {
			gb = fmt.Sprintf("%.1f", n.GBps)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%.1f\t%s\t%.1f\t%s\t%s\t%.2f\t\n", n.Net, n.Weights, n.Threads, n.Reps,
			ms(n.MsMedian), ms(n.MsP99), ms(n.MsMin), ms(n.CPUMs), ms(n.MFLOP), n.GFLOPS, pct(n.PeakShare), n.GFLOPPerCPUs, pct(n.CPUPeakShare), gb, n.Allocs)
	}
	tw.Flush()
	for _, h := range k.Accuracy {
		fmt.Fprintf(w, "%s weights, %s: max |v_%s - v_f32| = %.3g (max |v| %.3g)\n", h.Weights, h.Net, h.Weights, h.MaxDiff, h.MaxAbs)
	}
}

// mustPrecision parses a --weights value that validate has accepted.
func mustPrecision(w string) nn.Precision {
	p, err := nn.ParsePrecision(w)
	if err != nil {
		panic(err) // validate checked it
	}
	return p
}

// kernelWeights returns the precisions the kernel measurements take: f32 and f16, then the
// others --weights lists (bf16).
func kernelWeights(ws []string) []nn.Precision {
	out := []nn.Precision{nn.F32, nn.F16}
	for _, w := range ws {
		if p := mustPrecision(w); !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}
