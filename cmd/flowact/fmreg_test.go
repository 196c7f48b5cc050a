package main

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"testing"
)

// Measured detour success of the two committed checkpoints of docs/flow-vs-regression.md
// (testdata/ur5-fm-4k and testdata/ur5-reg-4k: the default network, 3 residual blocks of width
// 256, trained for 4000 steps on the shipped recipe's data, one with flow matching, one with
// regression), with the shipped policy at no inference delay: 43 and 94 of 100 episodes (seeds
// 1000000-1000099).
const (
	fmDetourRate  = 0.43
	regDetourRate = 0.94
)

// TestFlowVsRegression keeps the closed-loop result of docs/flow-vs-regression.md: at the same
// network size, data and budget, the regressor's detour success is clearly above flow
// matching's (the issue expected the opposite; the document says why it is not so at this
// budget). Both checkpoints run detour on 60 new seeds (7100000 on; training used 1000-5599)
// with the shipped policy, in a binary built without the race detector (eval steps in simulated
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
		out, err := exec.Command(bin, "eval", "--checkpoint", filepath.Join("testdata", ck), "--task", "detour",
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
