package main

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/flowact/flowact/policy"
	"github.com/flowact/flowact/policy/chunk"
	"github.com/flowact/flowact/sim/episode"
	"github.com/flowact/flowact/sim/task"
)

// Measured detour success of the two committed checkpoints of docs/flow-vs-regression.md
// (testdata/ur5-fm-4k and testdata/ur5-reg-4k: the default network, 3 residual blocks of width
// 256, trained for 4000 steps on the shipped recipe's data, one with flow matching, one with
// regression), with the policy they were measured with (fmRegPolicy) at no inference delay: 43
// and 94 of 100 episodes (seeds 1000000-1000099).
const (
	fmDetourRate  = 0.43
	regDetourRate = 0.94
)

// fmRegPolicy is the shipped policy as it was when docs/flow-vs-regression.md was measured
// (prefix splicing, one sample per chunk): the comparison keeps it when the shipped one changes.
var fmRegPolicy = filepath.Join("..", "..", "docs", "flow-vs-regression", "midpoint-10.yaml")

// TestFlowVsRegression keeps the closed-loop result of docs/flow-vs-regression.md: at the same
// network size, data and budget, the regressor's detour success is clearly above flow
// matching's (the issue expected the opposite; the document says why it is not so at this
// budget). Both checkpoints run detour on 60 new seeds (7100000 on; training used 1000-5599)
// with fmRegPolicy, in a binary built without the race detector (eval steps in simulated
// time, so the result does not depend on the build or the load). Each must reach
// minSuccesses(60, measured rate, 1e-3): 50 for the regressor, 14 for flow matching, so a
// checkpoint that kept its measured rate fails with probability below 1e-3, and one whose
// inference path broke (a regressor sampled as a flow, the prefix lost) fails. And the
// regressor must beat flow matching by at least 10 episodes of 60: the expected gap is 30.6
// with a standard deviation of 4.3 (binomial counts at the measured rates), so 10 is 4.8
// deviations below it; at the edges of the measured rates' 95% intervals (0.89 and 0.53) the
// gap still falls below 10 with probability about 0.5%.
func TestFlowVsRegression(t *testing.T) {
	const n = 60
	bin := buildFlowactRace(t, false)
	detour := func(ck string) taskResult {
		t.Helper()
		out, err := exec.Command(bin, "eval", "--policy", fmRegPolicy, "--checkpoint", filepath.Join("testdata", ck), "--task", "detour",
			"--episodes", itoa(n), "--seed", "7100000", "--json").Output()
		if err != nil {
			t.Fatalf("eval %s: %v", ck, err)
		}
		var r evalReport
		if err := json.Unmarshal(out, &r); err != nil || len(r.Tasks) != 1 {
			t.Fatalf("eval %s --json: %v: %q", ck, err, out)
		}
		return r.Tasks[0]
	}
	fm, reg := detour("ur5-fm-4k"), detour("ur5-reg-4k")
	for _, c := range []struct {
		name string
		r    taskResult
		rate float64
	}{{"flow matching", fm, fmDetourRate}, {"regression", reg, regDetourRate}} {
		k := minSuccesses(n, c.rate, 1e-3)
		t.Logf("%s: detour %d/%d (%d collisions), measured rate %.2f, at least %d required", c.name, c.r.Successes, c.r.Episodes, c.r.Collisions, c.rate, k)
		if c.r.Successes < k {
			t.Errorf("%s: %d of %d detour episodes succeeded, want at least %d (measured rate %.2f)", c.name, c.r.Successes, n, k, c.rate)
		}
	}
	if reg.Successes-fm.Successes < 10 {
		t.Errorf("detour: regression %d, flow matching %d of %d: the regressor's lead of %d is below 10", reg.Successes, fm.Successes, n, reg.Successes-fm.Successes)
	}
}

// TestDetourFirstChunk measures what docs/flow-vs-regression.md says of the two committed
// checkpoints at a detour episode's first observation, open loop: how far the end effector goes
// sideways (along the task's lateral axis, m) by the chunk's last row. The scripted demonstrator
// picks a side per episode at random; neither expert can tell which from the first observation
// (each is on the demonstrator's side about half the time). Flow matching's samples go to one side
// or the other, as far as the demonstrations or farther; the regressor's one chunk is pulled toward
// the mean of the two: with FLOWACT_FIT_EPISODES=100 (seeds 1000000-1000099) the demonstrator went
// 33.9 mm sideways by the chunk's last row, flow matching's 800 samples 47.3 mm (52% to the left,
// 48% on the demonstrator's side), the regressor's chunks 16.1 mm (48% left, 51% on the
// demonstrator's side). Asserted: the regressor goes less than 0.6 times as far sideways as flow
// matching (measured 0.34; 0.37 with this test's 10 episodes, 0.28 with the race build's 4 of 4
// samples) and flow matching at least 0.7 times as far as the demonstrator (1.40, 1.48, 1.58). The
// figures depend only on the seeds and the committed weights (and the kernels' rounding), so the
// assertions fail only if inference changes.
func TestDetourFirstChunk(t *testing.T) {
	episodes, samples := 10, 8
	if raceBuild() {
		episodes, samples = 4, 4
	}
	if v, err := strconv.Atoi(os.Getenv("FLOWACT_FIT_EPISODES")); err == nil {
		episodes = v
	}
	type stats struct{ abs, n, left, agree float64 }
	var demo, fm, reg stats
	for _, ck := range []string{"ur5-fm-4k", "ur5-reg-4k"} {
		lp, tfs, err := loadPolicyTasks("eval", fmRegPolicy, "", "", filepath.Join("testdata", ck), []string{"detour"})
		if err != nil {
			t.Fatal(err)
		}
		defer lp.Close()
		runner, err := episode.New(tfs[0].Episode, lp.rb)
		if err != nil {
			t.Fatal(err)
		}
		inf, err := lp.expert(5)
		if err != nil {
			t.Fatal(err)
		}
		h, d := lp.ck.Shape()
		c := chunk.Chunk{Data: make([]float64, h*d)}
		st, n := &fm, samples
		if lp.ck.Regressor() {
			st, n = &reg, 1
		}
		seq := uint64(0)
		for i := range episodes {
			tk, err := task.New(tfs[0].Task)
			if err != nil {
				t.Fatal(err)
			}
			res, err := runner.Run(context.Background(), tk, 1000000+uint64(i), nil)
			if err != nil {
				t.Fatal(err)
			}
			lat := tk.(*task.Detour).Lateral()
			k := slices.IndexFunc(res.Records, func(r episode.Record) bool { return r.Embedding != nil })
			if k < 0 || k+h > len(res.Records) {
				t.Fatalf("seed %d: no observation with an embedding and %d ticks after it", res.Seed, h)
			}
			rec := &res.Records[k]
			p0 := lp.rb.EEPos(rec.Position)
			side := func(q []float64) float64 {
				p := lp.rb.EEPos(q)
				return (p[0]-p0[0])*lat[0] + (p[1]-p0[1])*lat[1]
			}
			add := func(s *stats, v float64) {
				s.abs += math.Abs(v)
				s.n++
				if v > 0 {
					s.left++
				}
				if v*float64(res.Side) > 0 {
					s.agree++
				}
			}
			if st == &fm {
				add(&demo, side(res.Records[k+h-1].Command))
			}
			for range n {
				seq++
				req := policy.Request{Seq: seq, Position: rec.Position,
					Embedding: policy.Embedding{Tokens: res.Tokens, Width: res.Width, Data: rec.Embedding}}
				if err := inf.Infer(&c, &req); err != nil {
					t.Fatal(err)
				}
				add(st, side(c.Row(h-1)))
			}
		}
	}
	for _, x := range []struct {
		name string
		s    stats
	}{{"demonstrator", demo}, {"flow matching", fm}, {"regression", reg}} {
		t.Logf("%s: %0.f chunks, mean |lateral| at the last row %.1f mm, %.0f%% to the left, %.0f%% on the demonstrator's side", x.name, x.s.n, 1000*x.s.abs/x.s.n, 100*x.s.left/x.s.n, 100*x.s.agree/x.s.n)
	}
	mean := func(s stats) float64 { return s.abs / s.n }
	if demo.agree != demo.n {
		t.Errorf("the demonstrator's chunks went to its own side in %.0f of %.0f episodes", demo.agree, demo.n)
	}
	if r := mean(reg) / mean(fm); !(r < 0.6) {
		t.Errorf("the regressor's first chunks go %.2f times as far sideways as flow matching's samples, want below 0.6", r)
	}
	if r := mean(fm) / mean(demo); !(r > 0.7) {
		t.Errorf("flow matching's first chunks go %.2f times as far sideways as the demonstrator's, want above 0.7", r)
	}
}
