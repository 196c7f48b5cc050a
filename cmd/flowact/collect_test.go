package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/flowact/flowact/dataset"
)

// collectInto runs `flowact collect` in-process and returns its JSON summary.
func collectInto(t *testing.T, dir, taskName string, n int, seed string) collectSummary {
	t.Helper()
	code, out, stderr := runCLI(t, context.Background(), "collect", "--task", taskName, "--episodes", itoa(n), "--out", dir, "--seed", seed, "--json")
	if code != 0 {
		t.Fatalf("collect: exit %d: %s", code, stderr)
	}
	var sum collectSummary
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatalf("collect --json: %v: %q", err, out)
	}
	return sum
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestCollect records scripted-expert episodes and reads them back with package dataset: one
// bag per episode with the seed in its name, the metadata the episode had, every stream aligned
// at the task's rate, and a successful expert.
func TestCollect(t *testing.T) {
	dir := t.TempDir()
	sum := collectInto(t, dir, "detour", 3, "40")
	if sum.Episodes != 3 || sum.Successes != 3 || sum.Task != "detour" || sum.Robot != "ur5" || sum.Ticks == 0 {
		t.Fatalf("summary %+v", sum)
	}
	paths, err := dataset.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != 3 || filepath.Base(paths[0]) != "detour-000040.bag" {
		t.Fatalf("bags %v", paths)
	}
	for i, p := range paths {
		a, err := dataset.Load(p, dataset.Config{})
		if err != nil {
			t.Fatal(err)
		}
		m := a.Meta
		if m.Task != "detour" || m.Seed != uint64(40+i) || !m.Success || m.Robot != "ur5" || m.Rate != 50 || len(m.Joints) != 6 || m.Instruction == "" {
			t.Errorf("%s: meta %+v", p, m)
		}
		if a.D != 6 || a.Tokens != 1 || a.Width != 256 || a.N < 20 {
			t.Errorf("%s: %d ticks of %d joints, %d x %d embeddings", p, a.N, a.D, a.Tokens, a.Width)
		}
	}
	// The same seed gives the same episodes, byte for byte.
	again := t.TempDir()
	collectInto(t, again, "detour", 1, "40")
	h1, err1 := dataset.Hash(paths[:1])
	h2, err2 := dataset.Hash([]string{filepath.Join(again, "detour-000040.bag")})
	if err1 != nil || err2 != nil || h1 != h2 {
		t.Errorf("same seed, different bags: %s vs %s (%v, %v)", h1, h2, err1, err2)
	}
}

func TestCollectUsage(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"collect", "--episodes", "2", "--out", dir},
		{"collect", "--task", "reach", "--episodes", "0", "--out", dir},
		{"collect", "--task", "juggle", "--episodes", "1", "--out", dir},
		{"collect", "--task", "reach", "--episodes", "1", "--out", dir, "--robot", "r2d2"},
		{"collect", "--task", "reach", "--episodes", "x", "--out", dir},
		{"collect", "--task", "detour", "--episodes", "1", "--out", dir, "--perturb", "-0.01"},
		{"collect", "--task", "detour", "--episodes", "1", "--out", dir, "--perturb-time", "-1s"},
	} {
		code, _, stderr := runCLI(t, context.Background(), args...)
		if code != 2 || strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, "flowact: ") {
			t.Errorf("%q: exit %d, stderr %q; want 2 and one line", args, code, stderr)
		}
	}
}

// TestCollectOut: an --out holding bags is refused (exit 2, naming the folder and the flags) and
// left as it was; --append continues after the highest seed there and never replaces a bag (a
// --seed that would is refused); --overwrite replaces the bags.
func TestCollectOut(t *testing.T) {
	dir := t.TempDir()
	collectInto(t, dir, "reach", 2, "40")
	bags := func() map[string]string {
		paths, err := dataset.List(dir)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, p := range paths {
			h, err := dataset.Hash([]string{p})
			if err != nil {
				t.Fatal(err)
			}
			out[filepath.Base(p)] = h
		}
		return out
	}
	first := bags()
	kept := func(what string, n int) map[string]string {
		t.Helper()
		now := bags()
		for name, h := range first {
			if now[name] != h {
				t.Errorf("%s: %s changed or went", what, name)
			}
		}
		if len(now) != n {
			t.Errorf("%s: %d bags, want %d: %v", what, len(now), n, now)
		}
		return now
	}
	code, _, stderr := runCLI(t, context.Background(), "collect", "--task", "reach", "--episodes", "1", "--out", dir)
	if code != 2 || !strings.Contains(stderr, dir) || !strings.Contains(stderr, "--append") || !strings.Contains(stderr, "--overwrite") {
		t.Errorf("collect into a folder of bags: exit %d, %q", code, stderr)
	}
	kept("refused", 2)
	code, _, stderr = runCLI(t, context.Background(), "collect", "--task", "reach", "--episodes", "2", "--out", dir, "--append")
	if code != 0 {
		t.Fatalf("--append: exit %d: %s", code, stderr)
	}
	now := kept("--append", 4)
	if now["reach-000042.bag"] == "" || now["reach-000043.bag"] == "" {
		t.Errorf("--append wrote %v, want seeds 42 and 43 added", now)
	}
	code, _, stderr = runCLI(t, context.Background(), "collect", "--task", "reach", "--episodes", "3", "--out", dir, "--append", "--seed", "39")
	if code != 2 || !strings.Contains(stderr, "reach-000040.bag") {
		t.Errorf("--append over a bag: exit %d, %q", code, stderr)
	}
	kept("refused --append --seed", 4)
	if code, _, stderr := runCLI(t, context.Background(), "collect", "--task", "reach", "--episodes", "1", "--out", dir, "--overwrite", "--seed", "7"); code != 0 {
		t.Fatalf("--overwrite: exit %d: %s", code, stderr)
	}
	if now := bags(); len(now) != 1 || now["reach-000007.bag"] == "" {
		t.Errorf("--overwrite left %v, want reach-000007.bag only", now)
	}
}
