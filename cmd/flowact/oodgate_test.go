package main

import (
	"encoding/json"
	"os/exec"
	"testing"
)

// TestOODGate keeps the out-of-distribution gate's result of docs/ood-gate.md on the shipped
// checkpoint with docs/ood-gate/gated.yaml (8 samples per chunk, the spread of the 8 rows after
// the committed ones, a hold above 0.45): on normal reach episodes it never held (0 of 300
// episodes of the three tasks on seeds 2000000 on, 0 of 300 on seeds 1000000 on, where the
// largest episode spread was 0.414), and seen through another synthetic VLM (a wrong embedding:
// docs/ood-gate/reach-other-vlm.yaml) it held in every episode (the smallest episode spread of
// 100 was 0.543, and on seeds 2000000 on the gate held in 100 of 100). Here 20 normal and 10
// wrong-embedding episodes run on new seeds (7200000 on) in a binary built without the race
// detector (a held episode asks for a chunk every tick until its time limit: 10 of them take
// about 15 s here). Normal: at most 2 held episodes (at a false-hold rate of 1.2%, the upper end
// of a 95% interval for 0 of 300, 3 or more of 20 happen with probability 0.18%). Wrong
// embedding: at least 7 of 10 (minSuccesses(10, 0.964, 1e-3), 0.964 being the lower end of a 95%
// interval for 100 of 100). A gate that stopped measuring or holding fails the second,
// one whose spread grew or threshold fell fails the first.
//
// The state gate (docs/ood-gate/state-gated.yaml: a hold when the state lies more than 0.5
// standard deviations beyond the training data's range) the same way: on normal episodes the
// state never left the range (0 of 300 on seeds 1000000 on and on 2000000 on), and with the
// robot's home turned 1.2 rad about the base (docs/ood-gate/reach-other-home.yaml, the policy
// state-gated-other-home.yaml: the wrong robot pose, which the spread does not flag) it held in
// 100 of 100 episodes on seeds 2000000 on: 20 normal reach episodes with at most 2 held, 10
// wrong-pose ones with at least 7.
func TestOODGate(t *testing.T) {
	bin := buildFlowactRace(t, false)
	run := func(task string, n int) taskResult { return runGated(t, bin, "gated.yaml", task, n, false) }
	if normal := run("reach", 20); normal.GatedEpisodes > 2 {
		t.Errorf("normal reach: the gate held in %d of 20 episodes, want at most 2", normal.GatedEpisodes)
	}
	const n = 10
	k := minSuccesses(n, 0.964, 1e-3)
	if ood := run("docs/ood-gate/reach-other-vlm.yaml", n); ood.GatedEpisodes < k {
		t.Errorf("another VLM's embeddings: the gate held in %d of %d episodes, want at least %d", ood.GatedEpisodes, n, k)
	}
	if normal := runGated(t, bin, "state-gated.yaml", "reach", 20, true); normal.GatedEpisodes > 2 {
		t.Errorf("normal reach, state gate: held in %d of 20 episodes, want at most 2", normal.GatedEpisodes)
	}
	if ood := runGated(t, bin, "state-gated-other-home.yaml", "docs/ood-gate/reach-other-home.yaml", n, true); ood.GatedEpisodes < k {
		t.Errorf("another home pose, state gate: held in %d of %d episodes, want at least %d", ood.GatedEpisodes, n, k)
	}
}

// runGated evaluates n episodes of task with the policy docs/ood-gate/policy and returns the
// task's result, which must report the spread, or with state the state outside.
func runGated(t *testing.T, bin, policy, task string, n int, state bool) taskResult {
	t.Helper()
	cmd := exec.Command(bin, "eval", "--policy", "docs/ood-gate/"+policy, "--task", task,
		"--episodes", itoa(n), "--seed", "7200000", "--json")
	cmd.Dir = "../.." // the policies name the robot directory from the repository's root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("eval %s %s: %v", policy, task, err)
	}
	var r evalReport
	if err := json.Unmarshal(out, &r); err != nil || len(r.Tasks) != 1 {
		t.Fatalf("eval %s --json: %v: %q", task, err, out)
	}
	tr := r.Tasks[0]
	q := tr.EpisodeSpread
	if state {
		q = tr.EpisodeStateOut
	}
	if q == nil {
		t.Fatalf("eval %s %s: no signal reported", policy, task)
	}
	t.Logf("%s, %s: %d/%d succeeded; the gate held %d chunks in %d episodes; episode max signal p10 %.3f p50 %.3f p90 %.3f max %.3f",
		policy, task, tr.Successes, tr.Episodes, tr.Gated, tr.GatedEpisodes, q.P10, q.P50, q.P90, q.Max)
	return tr
}
