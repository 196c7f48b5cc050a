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
func TestOODGate(t *testing.T) {
	bin := buildFlowactRace(t, false)
	run := func(task string, n int) taskResult {
		t.Helper()
		out, err := exec.Command(bin, "eval", "--policy", "../../docs/ood-gate/gated.yaml", "--task", task,
			"--episodes", itoa(n), "--seed", "7200000", "--json").Output()
		if err != nil {
			t.Fatalf("eval %s: %v", task, err)
		}
		var r evalReport
		if err := json.Unmarshal(out, &r); err != nil || len(r.Tasks) != 1 {
			t.Fatalf("eval %s --json: %v: %q", task, err, out)
		}
		tr := r.Tasks[0]
		if tr.EpisodeSpread == nil {
			t.Fatalf("eval %s: no spread reported", task)
		}
		t.Logf("%s: %d/%d succeeded; the gate held %d chunks in %d episodes; episode max spread p10 %.3f p50 %.3f p90 %.3f max %.3f",
			task, tr.Successes, tr.Episodes, tr.Gated, tr.GatedEpisodes, tr.EpisodeSpread.P10, tr.EpisodeSpread.P50, tr.EpisodeSpread.P90, tr.EpisodeSpread.Max)
		return tr
	}
	if normal := run("reach", 20); normal.GatedEpisodes > 2 {
		t.Errorf("normal reach: the gate held in %d of 20 episodes, want at most 2", normal.GatedEpisodes)
	}
	const n = 10
	k := minSuccesses(n, 0.964, 1e-3)
	if ood := run("../../docs/ood-gate/reach-other-vlm.yaml", n); ood.GatedEpisodes < k {
		t.Errorf("another VLM's embeddings: the gate held in %d of %d episodes, want at least %d", ood.GatedEpisodes, n, k)
	}
}
