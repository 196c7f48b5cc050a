package report

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowact/flowact/sim/task"
)

// TestReason: how an episode ended, from its metadata, for each way it can end.
func TestReason(t *testing.T) {
	limit := 6 * time.Second
	for _, c := range []struct {
		m    task.Meta
		want string
	}{
		{task.Meta{Task: "reach", Success: true, Elapsed: 820 * time.Millisecond}, "reached the goal at 0.82 s"},
		{task.Meta{Task: "detour", Collided: true, Elapsed: 1200 * time.Millisecond}, "collided with the obstacle at 1.20 s"},
		{task.Meta{Task: "reach", Elapsed: limit, Distance: 0.1827}, "time limit 6 s: 182.7 mm from the goal (tolerance 30.0 mm)"},
		{task.Meta{Task: "track", Success: true, Tracked: 0.93, Elapsed: limit}, "tracked the target 93.0% of the ticks"},
		{task.Meta{Task: "track", Tracked: 0.4, Elapsed: limit}, "tracked the target only 40.0% of the ticks"},
		{task.Meta{Task: "reach", Elapsed: time.Second, Distance: 0.05}, "stopped at 1.00 s, 50.0 mm from the goal"},
	} {
		if got := Reason(c.m, limit, 0.03); got != c.want {
			t.Errorf("%+v: %q, want %q", c.m, got, c.want)
		}
	}
}

// TestPrepare: a missing folder is made, an empty one taken, a used one refused; overwrite
// removes a former report's files only, and refuses a folder that holds anything else.
func TestPrepare(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	if err := Prepare(dir, false); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		t.Fatalf("not made: %v", err)
	}
	if err := Prepare(dir, false); err != nil {
		t.Errorf("empty folder: %v", err)
	}
	own := []string{EpisodesFile, SummaryJSON, SummaryText, IndexFile, "reach-paths.png", "reach-2-paths.png", "reach-1000-joints.png", "index.html.tmp"}
	for _, name := range own {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := Prepare(dir, false); err == nil || !strings.Contains(err.Error(), "--overwrite") {
		t.Errorf("used folder: %v", err)
	}
	if err := Prepare(dir, true); err != nil {
		t.Errorf("overwrite: %v", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("overwrite left %d entries", len(ents))
	}
	for _, name := range []string{"reach-paths.png", "notes.txt"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := Prepare(dir, true); err == nil || !strings.Contains(err.Error(), "notes.txt") {
		t.Errorf("a foreign file: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "notes.txt")); err != nil {
		t.Errorf("overwrite removed a foreign file: %v", err)
	}
}

// TestGroupEpisodes: episodes group by task file in order of first appearance; a second file of
// one task gets its own file stem and a title naming the file.
func TestGroupEpisodes(t *testing.T) {
	eps := []Episode{
		{Task: "reach", TaskFile: "short.yaml", Seed: 1}, {Task: "reach", TaskFile: "short.yaml", Seed: 2},
		{Task: "detour", TaskFile: "detour", Seed: 1}, {Task: "reach", TaskFile: "reach", Seed: 1},
	}
	gs := groupEpisodes(eps)
	if len(gs) != 3 {
		t.Fatalf("%d groups", len(gs))
	}
	for i, want := range []struct {
		title, base string
		index       []int
	}{{"reach (short.yaml)", "reach", []int{0, 1}}, {"detour", "detour", []int{2}}, {"reach", "reach-2", []int{3}}} {
		g := gs[i]
		if g.title != want.title || g.base != want.base || len(g.index) != len(want.index) || g.index[0] != want.index[0] {
			t.Errorf("group %d: %+v, want %+v", i, *g, want)
		}
	}
}
