package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowact/flowact/configs"
	"github.com/flowact/flowact/internal/rostest"
)

// shortTrack writes the shipped track task with a 1.5 s time limit (0.5 s to settle): the
// shortest episode that still has a settle phase and a tracked fraction.
func shortTrack(t *testing.T) string {
	t.Helper()
	b, err := configs.FS.ReadFile("tasks/track.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, r := range [][2]string{{"time_limit: 8s", "time_limit: 1500ms"}, {"settle: 2s", "settle: 500ms"}} {
		if !strings.Contains(s, r[0]) {
			t.Fatalf("tasks/track.yaml has no %q", r[0])
		}
		s = strings.Replace(s, r[0], r[1], 1)
	}
	p := filepath.Join(t.TempDir(), "track.yaml")
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestDemoJSON runs the demo headless on the embedded master with an untrained checkpoint, one
// reach episode (6 s unless it succeeds) and one short track episode: the summary must account
// for both, and carry the loop's real-time figures, measured through ROS. Its --out report has
// a line per episode that sums to the summary's totals, the path plots and the joint plots of
// the failed episodes (checkReport).
func TestDemoJSON(t *testing.T) {
	t.Parallel()
	_, ck, _ := trainTiny(t)
	dir := filepath.Join(t.TempDir(), "report")
	code, out, stderr := runCLI(t, context.Background(), "demo", "--checkpoint", ck, "--task", "reach,"+shortTrack(t),
		"--episodes", "1", "--headless", "--json", "--seed", "11", "--out", dir)
	if code != 0 {
		t.Fatalf("demo: exit %d: %s", code, stderr)
	}
	var r demoReport
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("demo --json: %v: %q", err, out)
	}
	if r.Episodes != 2 || len(r.Tasks) != 2 || r.Tasks[0].Task != "reach" || r.Tasks[1].Task != "track" || len(r.Runs) != 2 {
		t.Fatalf("report %+v", r)
	}
	if !r.Embedded || !strings.HasPrefix(r.Master, "http://127.0.0.1:") || r.Rate != 50 || r.Seed != 11 || r.Runs[0].Seed != 11 {
		t.Errorf("report header %+v", r)
	}
	if tr := r.Runs[1]; tr.Elapsed < 1.5 || tr.Elapsed > 1.6 {
		t.Errorf("track episode ran %g s, want its 1.5 s time limit", tr.Elapsed)
	}
	if _, ok := r.Trips["state_stale"]; !ok {
		t.Errorf("watchdog trips %v lack state_stale", r.Trips)
	}
	if r.Ticks == 0 || r.TickJitter.N == 0 || r.Inference.N == 0 || r.Chunks == 0 || r.Commands == 0 || r.SeamJerk.N == 0 {
		t.Errorf("the loop did not run through ROS: %+v", r)
	}
	if r.Inference.P50 <= 0 || r.Inference.P99 < r.Inference.P50 || r.TickJitter.P99 < r.TickJitter.P50 {
		t.Errorf("quantiles: inference %+v, jitter %+v", r.Inference, r.TickJitter)
	}
	eps := checkReport(t, dir, r.Episodes)
	for i, e := range eps {
		run := r.Runs[i]
		if e.Task != run.Task || e.Seed != run.Seed || e.Success != run.Success || e.FinalDistance != run.Distance ||
			e.Loop == nil || e.Loop.Ticks == 0 || e.Loop.Ticks > r.Ticks || e.Reason == "" {
			t.Errorf("episodes.jsonl line %d %+v; the summary has %+v", i+1, e, run)
		}
	}
	// Status lines went to stderr, one per episode (headless).
	for _, want := range []string{"ROS master http://127.0.0.1:", "reach   1/1", "track   1/1"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("status output lacks %q:\n%s", want, stderr)
		}
	}
}

// TestDemoText: the human summary names every figure the issue asks for.
func TestDemoText(t *testing.T) {
	t.Parallel()
	_, ck, _ := trainTiny(t)
	code, out, stderr := runCLI(t, context.Background(), "demo", "--checkpoint", ck, "--task", shortTrack(t), "--episodes", "1")
	if code != 0 {
		t.Fatalf("demo: exit %d: %s", code, stderr)
	}
	for _, want := range []string{"(embedded)", "track   1/1", "summary:", "track      ", "success", "tick jitter p50", "inference p50", "seam jerk p50"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestDemoBadInput(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"demo", "--episodes", "0"}, "episodes"},
		{[]string{"demo", "--task", "juggle"}, "juggle"},
		{[]string{"demo", "--robot", "r2d2"}, "r2d2"},
		{[]string{"demo", "--checkpoint", filepath.Join(t.TempDir(), "missing")}, "missing"},
		{[]string{"demo", "--log-level", "loud"}, "loud"},
		{[]string{"demo", "--overwrite"}, "demo: --overwrite without --out"},
	} {
		code, _, stderr := runCLI(t, context.Background(), c.args...)
		if code != 2 || strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, "flowact: ") || !strings.Contains(stderr, c.want) {
			t.Errorf("%q: exit %d, stderr %q; want 2 and one line about %q", c.args, code, stderr, c.want)
		}
	}
}

// TestDemoJoinsRosmaster: with --master the demo joins an existing graph (Debian's rosmaster)
// instead of starting its own, so ROS's tools see its nodes and topics while it runs.
func TestDemoJoinsRosmaster(t *testing.T) {
	rostest.Require(t, "rosmaster", "rostopic", "rosnode")
	t.Parallel()
	_, ck, _ := trainTiny(t)
	uri := rostest.StartRosmaster(t).URI()
	env := rostest.Env(t, uri)
	track := shortTrack(t)
	// Long enough for the Python tools to start and look while the episode runs.
	b, err := os.ReadFile(track)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(track, []byte(strings.Replace(string(b), "time_limit: 1500ms", "time_limit: 20s", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		code        int
		out, stderr string
	}
	done := make(chan result, 1)
	go func() {
		code, out, stderr := runCLI(t, ctx, "demo", "--checkpoint", ck, "--task", track, "--episodes", "1", "--master", uri, "--headless")
		done <- result{code, out, stderr}
	}()
	rostest.Eventually(t, 20*time.Second, "the demo's nodes in rosnode list", func() bool {
		out := rostest.Run(t, env, 30*time.Second, "rosnode", "list")
		return strings.Contains(out, "/flowact\n") && strings.Contains(out, "/flowact_sim\n")
	})
	for topic, want := range map[string]string{"/joint_states": "shoulder_pan_joint", "/joint_group_pos_controller/command": "joints"} {
		if out := rostest.Run(t, env, 30*time.Second, "rostopic", "echo", "-n", "1", topic); !strings.Contains(out, want) {
			t.Errorf("rostopic echo %s:\n%s", topic, out)
		}
	}
	cancel() // as SIGINT would
	r := <-done
	if r.code != 0 || !strings.Contains(r.out, "interrupted") {
		t.Errorf("demo after cancel: exit %d, stderr %q, stdout:\n%s\nwant 0 and a summary that says it was interrupted", r.code, r.stderr, r.out)
	}
	if strings.Contains(r.out, "(embedded)") || !strings.Contains(r.out, uri) {
		t.Errorf("demo output does not name the joined master %s:\n%s", uri, r.out)
	}
	if out := rostest.Run(t, env, 30*time.Second, "rosnode", "list"); strings.Contains(out, "/flowact") {
		t.Errorf("the demo's nodes are still registered after it ended:\n%s", out)
	}
}
