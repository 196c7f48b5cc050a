package main

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
)

// TestEvalPipeline runs collect -> train -> eval on a tiny checkpoint: the report must account
// for every episode, the loop must have run chunks through the expert, and the same seed must
// give the same report (the loop steps in simulated time, inference between ticks: the
// evaluation does not depend on this machine's speed or load).
func TestEvalPipeline(t *testing.T) {
	_, ck, _ := trainTiny(t)
	evalJSON := func() evalReport {
		t.Helper()
		return evalRun(t, "--checkpoint", ck, "--task", "reach", "--task", "detour", "--episodes", "1", "--seed", "5")
	}
	r := evalJSON()
	if r.Episodes != 2 || len(r.Tasks) != 2 || r.Tasks[0].Task != "reach" || r.Tasks[1].Task != "detour" || r.Rate != 50 {
		t.Fatalf("report %+v", r)
	}
	if r.Chunks == 0 || r.Inference.N == 0 || r.TickCost.N == 0 || r.SimSeconds <= 0 {
		t.Errorf("the loop ran no chunks: %+v", r)
	}
	// At 0 simulated latency every chunk arrives at the tick after its request.
	if r.Delay.P99 != 1 || r.Late != 0 {
		t.Errorf("chunk delay p99 %g ticks, %d late; want 1 and 0", r.Delay.P99, r.Late)
	}
	// At 300 ms (15 ticks) every chunk arrives 15 ticks after its request, although the tiny
	// network finishes long before the simulator has run 15 ticks: the loop holds the result.
	slow := evalRun(t, "--checkpoint", ck, "--task", "reach", "--episodes", "3", "--seed", "5", "--latency", "300ms")
	if slow.Delay.N == 0 || slow.Delay.Mean != 15 || slow.Delay.Max != 15 {
		t.Errorf("at 300 ms: chunk delays %+v ticks; want all 15", slow.Delay)
	}
	r2 := evalJSON()
	for i := range r.Tasks {
		a, b := r.Tasks[i], r2.Tasks[i]
		if a.Successes != b.Successes || a.Distance != b.Distance {
			t.Errorf("%s: two runs from one seed differ: %+v vs %+v", a.Task, a, b)
		}
	}
	if r.Chunks != r2.Chunks || r.SeamJerk != r2.SeamJerk {
		t.Errorf("two runs from one seed differ: %d vs %d chunks, seam jerk %+v vs %+v", r.Chunks, r2.Chunks, r.SeamJerk, r2.SeamJerk)
	}
}

// evalRun runs `flowact eval ARGS --json` and decodes its report; a failed run fails the test.
func evalRun(t *testing.T, args ...string) evalReport {
	t.Helper()
	code, out, stderr := runCLI(t, context.Background(), append(append([]string{"eval"}, args...), "--json")...)
	if code != 0 {
		t.Fatalf("eval %q: exit %d: %s", args, code, stderr)
	}
	var r evalReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("eval --json: %v: %q", err, out)
	}
	return r
}

// TestEvalBadInput: a missing checkpoint, a bad policy file, a checkpoint for another shape, a
// bad flag: one clear line each and exit status 2.
func TestEvalBadInput(t *testing.T) {
	dir := t.TempDir()
	badPolicy := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(badPolicy, []byte("robot: ur5\nloop: {rate: 50, horizon: -3}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	otherRate := filepath.Join(dir, "fast.yaml")
	if err := os.WriteFile(otherRate, []byte("robot: ur5\nloop: {rate: 100}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	notCkpt := t.TempDir()
	if err := os.WriteFile(filepath.Join(notCkpt, "manifest.json"), []byte(`{"version": 1`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"eval", "--checkpoint", filepath.Join(dir, "missing"), "--episodes", "1"}, "missing"},
		{[]string{"eval", "--checkpoint", notCkpt, "--episodes", "1"}, "manifest"},
		{[]string{"eval", "--policy", badPolicy, "--episodes", "1"}, "horizon"},
		{[]string{"eval", "--policy", filepath.Join(dir, "nope.yaml")}, "nope.yaml"},
		{[]string{"eval", "--task", "juggle", "--episodes", "1"}, "juggle"},
		{[]string{"eval", "--episodes", "0"}, "episodes"},
		{[]string{"eval", "--latency", "-1s"}, "latency"},
		{[]string{"eval", "--episodes", "many"}, "many"},
		{[]string{"eval", "--episodes", "1", "--overwrite"}, "eval: --overwrite without --out"},
	} {
		code, _, stderr := runCLI(t, context.Background(), c.args...)
		if code != 2 || strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, "flowact: ") || !strings.Contains(stderr, c.want) {
			t.Errorf("%q: exit %d, stderr %q; want 2 and one line about %q", c.args, code, stderr, c.want)
		}
	}
	// A policy at another rate than the tasks is refused before any episode runs.
	_, ck, _ := trainTiny(t)
	code, _, stderr := runCLI(t, context.Background(), "eval", "--policy", otherRate, "--checkpoint", ck, "--task", "reach", "--episodes", "1")
	if code != 2 || !strings.Contains(stderr, "100 Hz") {
		t.Errorf("policy at 100 Hz on 50 Hz tasks: exit %d, %q", code, stderr)
	}
}

// shippedRates, shippedRates200 and shippedRates300 are the success rates per task of the
// shipped checkpoint with the shipped policy at 0, 200 and 300 ms of inference delay, as
// docs/delay-check.md measured them on 1000 episodes per task (flowact eval --episodes 1000
// --seed 20000000 --latency L), rounded down to the hundredth: 997, 977 and 998 of 1000 at 0 ms;
// 999, 972 and 979 at 200 ms; 999, 943 and 942 at 300 ms.
var (
	shippedRates    = map[string]float64{"reach": 0.99, "detour": 0.97, "track": 0.99}
	shippedRates200 = map[string]float64{"reach": 0.99, "detour": 0.97, "track": 0.97}
	shippedRates300 = map[string]float64{"reach": 0.99, "detour": 0.94, "track": 0.94}
)

// TestShippedCheckpoint loads the shipped policy and checkpoint from the binary and drives the
// simulator through 30 seeded episodes of each bundled task, with no inference delay, 200 ms
// and 300 ms, on seeds that neither the training data (1000-5599) nor the README's evaluations
// (1000000-1000099; from 11000000, 13000000, 15000000, 16000000, 17000000 and 18000000, at
// most 300 each; 19000000-19000999 and 20000000-20000999) use. Each task must succeed at least
// minSuccesses(30, rate, 1e-3) times: if the checkpoint still has the rate docs/delay-check.md
// measured, the test fails by chance with probability below 1e-3 per task; a checkpoint that
// lost its skill fails it (detour at 0.97 needs 25 of 30: a regression to 0.70 fails 92% of the
// time; track at 300 ms needs 23 of 30 at 0.94, which a policy tracking at 0.55, the checkpoint
// of 5a530c1 with one sample, would reach with probability 0.01). The episodes run in a binary
// built without the race detector (some 30x faster for the network; the evaluation steps in
// simulated time, so its result does not depend on the build or the machine's load).
func TestShippedCheckpoint(t *testing.T) {
	const n = 30
	bin := buildFlowactRace(t, false)
	for _, c := range []struct {
		latency string
		rates   map[string]float64
	}{{"0s", shippedRates}, {"200ms", shippedRates200}, {"300ms", shippedRates300}} {
		t.Run(c.latency, func(t *testing.T) {
			out, err := exec.Command(bin, "eval", "--episodes", itoa(n), "--seed", "7000000", "--latency", c.latency, "--json").Output()
			if err != nil {
				t.Fatalf("eval: %v", err)
			}
			var r evalReport
			if err := json.Unmarshal(out, &r); err != nil {
				t.Fatalf("eval --json: %v: %q", err, out)
			}
			if r.Checkpoint != shippedPrefix+DefaultCheckpoint || len(r.Tasks) != len(c.rates) {
				t.Fatalf("report %+v", r)
			}
			var mean float64
			for _, tr := range r.Tasks {
				rate, ok := c.rates[tr.Task]
				if !ok {
					t.Fatalf("task %s has no stated rate", tr.Task)
				}
				mean += rate / float64(len(r.Tasks))
				k := minSuccesses(n, rate, 1e-3)
				t.Logf("%s: %d/%d, stated rate %.2f, at least %d required (failed seeds %v)", tr.Task, tr.Successes, tr.Episodes, rate, k, tr.Failed)
				if tr.Successes < k {
					t.Errorf("%s: %d of %d episodes succeeded, want at least %d (stated rate %.2f)", tr.Task, tr.Successes, tr.Episodes, k, rate)
				}
			}
			// The tasks together: a sum of binomials, bounded here by one binomial at the mean
			// rate (the sum is more concentrated than that).
			if k := minSuccesses(r.Episodes, mean, 1e-3); r.Successes < k {
				t.Errorf("%d of %d episodes succeeded, want at least %d (mean stated rate %.2f)", r.Successes, r.Episodes, k, mean)
			}
		})
	}
}

// minSuccesses returns the largest k such that a binomial(n, p) count falls below k with
// probability below alpha.
func minSuccesses(n int, p, alpha float64) int {
	k, cdf := 0, 0.0 // cdf = P(X < k)
	for ; k <= n; k++ {
		next := cdf + binomPMF(n, k, p)
		if next >= alpha {
			break
		}
		cdf = next
	}
	return k
}

func binomPMF(n, k int, p float64) float64 {
	lg := func(x int) float64 { v, _ := math.Lgamma(float64(x) + 1); return v }
	if p <= 0 {
		if k == 0 {
			return 1
		}
		return 0
	}
	if p >= 1 {
		if k == n {
			return 1
		}
		return 0
	}
	return math.Exp(lg(n) - lg(k) - lg(n-k) + float64(k)*math.Log(p) + float64(n-k)*math.Log1p(-p))
}

func TestMinSuccesses(t *testing.T) {
	for _, c := range []struct {
		n    int
		p    float64
		want int
	}{
		{10, 0.9, 5}, {30, 0.9, 21}, {60, 0.95, 51}, {10, 0, 0}, {5, 1, 5}, {3, 0.5, 0},
	} {
		if got := minSuccesses(c.n, c.p, 1e-3); got != c.want {
			t.Errorf("minSuccesses(%d, %g) = %d, want %d", c.n, c.p, got, c.want)
		}
	}
}

// raceBuild reports whether the test binary was built with the race detector.
func raceBuild() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}
