package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tinyBench are flags that make `flowact bench` measure small networks for a few milliseconds.
var tinyBench = []string{"bench", "--horizon", "8", "--dof", "3", "--tokens", "4", "--state", "3",
	"--mlp-hidden", "32", "--mlp-layers", "2", "--mlp-embed", "16",
	"--tf-width", "32", "--tf-layers", "1", "--tf-heads", "2", "--tf-mlp-ratio", "2", "--tf-embed", "16",
	"--duration", "1ms", "--min-reps", "2", "--rate", "250", "--kernels=false"}

func TestBenchJSON(t *testing.T) {
	args := append(append([]string{}, tinyBench...), "--json", "--solvers", "euler,rk4", "--steps", "3",
		"--threads", "1,2", "--strategies", "replace,prefix")
	code, stdout, stderr := runCLI(t, context.Background(), args...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if stderr != "" {
		t.Errorf("stderr with --json: %q", stderr)
	}
	var rep benchReport
	dec := json.NewDecoder(strings.NewReader(stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rep); err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	e := rep.Env
	if e.GoVersion == "" || e.GOOS == "" || e.GOARCH == "" || e.GOMAXPROCS < 1 {
		t.Errorf("env %+v", e)
	}
	if rep.Sizes.H != 8 || rep.Sizes.TFWidth != 32 || rep.Seed != 1 || rep.Duration != "1ms" {
		t.Errorf("sizes %+v, seed %d, duration %q", rep.Sizes, rep.Seed, rep.Duration)
	}
	// 2 architectures x 2 solvers x 2 thread counts, in flag order.
	if len(rep.Expert) != 8 {
		t.Fatalf("%d expert results, want 8", len(rep.Expert))
	}
	evals := map[string]float64{"euler": 3, "rk4": 12}
	for i, r := range rep.Expert {
		wantArch, wantSolver, wantThreads := []string{"mlp", "transformer"}[i/4], []string{"euler", "rk4"}[i/2%2], 1+i%2
		if r.Arch != wantArch || r.Solver != wantSolver || r.Threads != wantThreads || r.Steps != 3 {
			t.Errorf("result %d is %s/%s/%d threads/%d steps, want %s/%s/%d/3", i, r.Arch, r.Solver, r.Threads, r.Steps,
				wantArch, wantSolver, wantThreads)
		}
		if !(r.MsMedian > 0 && r.MsP99 >= r.MsMedian && r.GFLOPS > 0 && r.MFLOP > 0 && r.Reps >= 2) {
			t.Errorf("result %d: %+v", i, r)
		}
		if r.Evals != evals[r.Solver] {
			t.Errorf("result %d: %g evaluations, want %g", i, r.Evals, evals[r.Solver])
		}
	}
	if len(rep.Tick) != 2 || rep.Tick[0].Strategy != "replace" || rep.Tick[1].Strategy != "prefix" {
		t.Fatalf("tick results %+v", rep.Tick)
	}
	for _, r := range rep.Tick {
		if !(r.NsMedian > 0 && r.NsP99 >= r.NsMedian && r.Ticks >= 100 && r.Joints == 3 && r.H == 8 && r.Rate == 250) {
			t.Errorf("tick %+v", r)
		}
	}
}

func TestBenchTable(t *testing.T) {
	args := append(append([]string{}, tinyBench...), "--arch", "mlp", "--solvers", "heun", "--threads", "1",
		"--batch", "1,3", "--strategies", "blend")
	code, stdout, stderr := runCLI(t, context.Background(), args...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"GOMAXPROCS", "ms p50", "GFLOP/s", "allocs", "batch", "heun", "ns p50", "blend"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout, "transformer") {
		t.Errorf("--arch mlp measured the transformer:\n%s", stdout)
	}
	// Progress goes to stderr, one line per case: two batch sizes and a tick.
	if n := strings.Count(stderr, "\n"); n != 3 {
		t.Errorf("stderr has %d lines, want 3 (one per case):\n%s", n, stderr)
	}
}

func TestBenchCPUProfile(t *testing.T) {
	prof := filepath.Join(t.TempDir(), "cpu.out")
	args := append(append([]string{}, tinyBench...), "--arch", "mlp", "--solvers", "euler", "--threads", "1",
		"--strategies", "", "--json", "--cpuprofile", prof)
	if code, _, stderr := runCLI(t, context.Background(), args...); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	b, err := os.ReadFile(prof)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b { // pprof profiles are gzipped protobufs
		t.Fatalf("%s is not a gzipped profile (%d bytes)", prof, len(b))
	}
	// An unwritable profile path is an error before anything is measured.
	code, stdout, stderr := runCLI(t, context.Background(), "bench", "--cpuprofile", filepath.Join(prof, "x"), "--json")
	if code != 1 || stdout != "" || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
		t.Errorf("unwritable profile: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

func TestBenchUsage(t *testing.T) {
	for _, args := range [][]string{
		{"bench", "--threads", "3"},
		{"bench", "--threads", "x"},
		{"bench", "--batch", "0"},
		{"bench", "--batch", "1000"},
		{"bench", "--solvers", "rk45"},
		{"bench", "--arch", "cnn"},
		{"bench", "--steps", "0"},
		{"bench", "--duration", "0s"},
		{"bench", "--duration", "soon"},
		{"bench", "--min-reps", "0"},
		{"bench", "--strategies", "bogus"},
		{"bench", "--rate", "5"},
		{"bench", "--tf-heads", "3"},
		{"bench", "--mlp-hidden", "0"},
		{"bench", "--arch", "", "--strategies", "", "--kernels=false"},
		{"bench", "--kernel-duration", "0s"},
		{"bench", "--weights", "f8"},
		{"bench", "--kernel-min-reps", "0"},
		{"bench", "extra"},
	} {
		var out, errb bytes.Buffer
		code := run(context.Background(), args, &out, &errb)
		stderr := errb.String()
		if code != 2 {
			t.Errorf("%q: exit %d, want 2 (stderr %q)", args, code, stderr)
		}
		if n := strings.Count(strings.TrimSpace(stderr), "\n"); n != 0 || !strings.HasPrefix(stderr, "flowact: ") {
			t.Errorf("%q: stderr %q, want one line starting with \"flowact: \"", args, stderr)
		}
		if out.Len() != 0 {
			t.Errorf("%q: measured something before failing: %q", args, out.String())
		}
	}
}

// TestBenchKernels runs the kernel section alone, briefly, and checks its report.
func TestBenchKernels(t *testing.T) {
	code, stdout, stderr := runCLI(t, context.Background(), "bench", "--arch", "", "--strategies", "", "--threads", "1",
		"--kernel-duration", "1ms", "--kernel-min-reps", "1", "--weights", "bf16", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var rep benchReport
	dec := json.NewDecoder(strings.NewReader(stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rep); err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	k := rep.Kernels
	if k == nil || k.Kernels == "" {
		t.Fatalf("no kernel report: %s", stdout)
	}
	if (k.Kernels != "go") != (k.Peak > 0) || len(k.Products) != 3*5 || len(k.Networks) != 6 || len(k.Accuracy) != 4 {
		t.Fatalf("kernel report %+v", k)
	}
	for _, n := range k.Networks {
		if !(n.MsMedian > 0 && n.GFLOPS > 0 && n.Reps >= 1 && n.MFLOP > 0 && n.Params > 0) {
			t.Errorf("network %+v", n)
		}
		if k.Peak > 0 && !(n.PeakShare > 0) {
			t.Errorf("network %+v has no share of the peak", n)
		}
	}
	// f32 and f16 always, then bf16 from --weights; the accuracy of each 16-bit precision
	// within 20 unit roundoffs of the largest velocity (nn's TestF16Weights).
	for i, want := range []string{"f32", "f16", "bf16"} {
		if p := k.Products[5*i]; p.Weights != want {
			t.Errorf("product %d: weights %q, want %q", 5*i, p.Weights, want)
		}
	}
	for _, h := range k.Accuracy {
		u := map[string]float64{"f16": 0x1p-11, "bf16": 0x1p-8}[h.Weights]
		if !(h.MaxDiff > 0 && h.MaxDiff < 20*u*h.MaxAbs) {
			t.Errorf("%s cost %+v", h.Weights, h)
		}
	}
}

// TestBenchJitter runs the wall-clock jitter cases briefly on a tiny MLP: the tick alone, with
// the network beside it, and isolated (or the note saying why not). Only counts are checked:
// the timings are the machine's.
func TestBenchJitter(t *testing.T) {
	args := append(append([]string{}, tinyBench...), "--json", "--arch", "", "--strategies", "",
		"--jitter", "mlp", "--jitter-duration", "100ms", "--jitter-rounds", "1")
	code, stdout, stderr := runCLI(t, context.Background(), args...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var rep benchReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatal(err)
	}
	want := 3
	if rep.JitterNote != "" {
		want = 2
	}
	if len(rep.Jitter) != want {
		t.Fatalf("%d jitter results (note %q), want %d", len(rep.Jitter), rep.JitterNote, want)
	}
	for i, r := range rep.Jitter {
		if r.Ticks == 0 || r.LateUsMax < r.LateUsMedian || (i > 0) != (r.Arch == "mlp") || (i > 0) != (r.Inferences > 0) || r.Isolate != (i == 2) {
			t.Errorf("case %d: %+v", i, r)
		}
	}
	if code, _, stderr := runCLI(t, context.Background(), "bench", "--jitter", "cnn"); code != 2 || !strings.Contains(stderr, "--jitter") {
		t.Errorf("--jitter cnn: exit %d, %q", code, stderr)
	}
}
