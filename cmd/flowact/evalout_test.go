package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/flowact/flowact/cmd/flowact/internal/report"
)

// TestEvalOut runs eval --out on a tiny checkpoint, which fails most episodes: the JSONL has one
// parsable line per episode whose sums are the printed totals, every task has a path plot and
// every failed episode a joint plot, each a valid PNG with content (and the failures drawn in
// red), every link of index.html resolves, and a second run into the same folder is refused
// unless --overwrite is given.
func TestEvalOut(t *testing.T) {
	_, ck, _ := trainTiny(t)
	dir := filepath.Join(t.TempDir(), "report")
	// A reach task with a short time limit (the shipped VLM and scene): shorter episodes.
	shipped, err := os.ReadFile(filepath.Join("..", "..", "configs", "tasks", "reach.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	short := filepath.Join(t.TempDir(), "short.yaml")
	body := strings.Replace(string(shipped), "time_limit: 6s", "time_limit: 1.5s", 1)
	if body == string(shipped) {
		t.Fatal("the shipped reach task has no 'time_limit: 6s' line")
	}
	if err := os.WriteFile(short, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	// Two files of one task (reach): their plots must not overwrite each other.
	args := []string{"eval", "--checkpoint", ck, "--task", short, "--task", "detour", "--task", "reach", "--episodes", "2", "--seed", "5", "--out", dir}
	code, out, stderr := runCLI(t, context.Background(), append(args, "--json")...)
	if code != 0 {
		t.Fatalf("eval --out: exit %d: %s", code, stderr)
	}
	var rep evalReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("eval --json: %v: %q", err, out)
	}
	if rep.Episodes != 6 || len(rep.Tasks) != 3 {
		t.Fatalf("report %+v", rep)
	}

	// episodes.jsonl: one line per episode, in order; per task its sums are the report's.
	eps := checkReport(t, dir, rep.Episodes)
	failedPlots := 0
	files := []string{short, "detour", "reach"} // the --task arguments, in the report's order
	for k, tr := range rep.Tasks {
		var n, ok, coll int
		var dist float64
		var failed []uint64
		for _, e := range eps {
			if e.TaskFile != files[k] {
				continue
			}
			if e.Task != tr.Task {
				t.Errorf("%s seed %d: task %s in the lines of task file %s (%s)", e.Task, e.Seed, e.Task, files[k], tr.Task)
			}
			n++
			dist += e.FinalDistance
			if e.Success {
				ok++
			} else {
				failed = append(failed, e.Seed)
				failedPlots++
			}
			if e.Collided {
				coll++
			}
			if e.Reason == "" || e.Loop == nil || e.Loop.Ticks == 0 || e.Loop.Chunks == 0 {
				t.Errorf("%s seed %d: reason %q, loop %+v", e.Task, e.Seed, e.Reason, e.Loop)
			}
			if tr.Task == "detour" && e.Clearance == nil {
				t.Errorf("detour seed %d has no clearance", e.Seed)
			}
		}
		if n != tr.Episodes || ok != tr.Successes || coll != tr.Collisions || !slices.Equal(failed, tr.Failed) ||
			math.Abs(dist/float64(n)-tr.Distance) > 1e-12 {
			t.Errorf("%s: episodes.jsonl sums to %d episodes, %d successes, %d collisions, failed %v, mean distance %v; the report %+v",
				tr.Task, n, ok, coll, failed, dist/float64(n), tr)
		}
	}
	if failedPlots == 0 {
		t.Fatal("the tiny checkpoint failed no episode: the joint plots are untested")
	}
	var sum evalReport
	if b, err := os.ReadFile(filepath.Join(dir, report.SummaryJSON)); err != nil || json.Unmarshal(b, &sum) != nil {
		t.Fatalf("summary.json: %v", err)
	}
	if sum.Episodes != rep.Episodes || sum.Successes != rep.Successes || sum.Chunks != rep.Chunks || sum.SeamJump != rep.SeamJump {
		t.Errorf("summary.json %+v differs from the printed report %+v", sum, rep)
	}

	// The same folder again: refused; with --overwrite, replaced, and the printed text is
	// summary.txt.
	code, _, stderr = runCLI(t, context.Background(), args...)
	if code != 2 || !strings.Contains(stderr, "--overwrite") || !strings.Contains(stderr, dir) {
		t.Errorf("eval into a used --out: exit %d, %q; want 2 and a line naming the folder and --overwrite", code, stderr)
	}
	code, out, stderr = runCLI(t, context.Background(), append(args, "--overwrite")...)
	if code != 0 {
		t.Fatalf("eval --overwrite: exit %d: %s", code, stderr)
	}
	if b, err := os.ReadFile(filepath.Join(dir, report.SummaryText)); err != nil || string(b) != out {
		t.Errorf("summary.txt %q, printed %q (%v)", b, out, err)
	}
	// --overwrite removes only a report's files: a folder with something else stays refused.
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = runCLI(t, context.Background(), append(args, "--overwrite")...)
	if code != 2 || !strings.Contains(stderr, "notes.txt") {
		t.Errorf("--overwrite on a folder with a foreign file: exit %d, %q", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "notes.txt")); err != nil {
		t.Errorf("--overwrite removed a file that was not the report's: %v", err)
	}
}

// checkReport checks a report folder: episodes.jsonl has n lines that decode strictly, each
// task's path plot and each failed episode's joint plot are PNGs with content (the path plot
// shows failures in red), every link of index.html resolves and every file is linked. It
// returns the episodes.
func checkReport(t *testing.T, dir string, n int) []report.Episode {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, report.EpisodesFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var eps []report.Episode
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e report.Episode
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil {
			t.Fatalf("episodes.jsonl line %d: %v: %s", len(eps)+1, err, sc.Bytes())
		}
		eps = append(eps, e)
	}
	if len(eps) != n {
		t.Fatalf("episodes.jsonl has %d lines, the report %d episodes", len(eps), n)
	}
	// One path plot per task file; one joint plot per failed episode, none shared.
	groups := map[string]bool{}
	joints := map[string]bool{}
	failed := 0
	for _, e := range eps {
		groups[e.TaskFile] = true
		if e.TaskFile == "" {
			t.Errorf("%s seed %d: no task file", e.Task, e.Seed)
		}
		if e.Success {
			continue
		}
		failed++
		if e.Joints == "" || joints[e.Joints] {
			t.Errorf("%s seed %d failed and has no joint plot of its own (%q)", e.Task, e.Seed, e.Joints)
			continue
		}
		joints[e.Joints] = true
		readPNG(t, filepath.Join(dir, e.Joints))
	}
	paths, err := filepath.Glob(filepath.Join(dir, "*-paths.png"))
	if err != nil || len(paths) != len(groups) {
		t.Errorf("path plots %v (%v), want one for each of the %d task files", paths, err, len(groups))
	}
	red := 0
	for _, p := range paths {
		red += countPixels(readPNG(t, p), func(r, g, b uint32) bool { return r > 0xb000 && g < 0x5000 && b < 0x5000 })
	}
	if failed > 0 && red < 200 {
		t.Errorf("%d failures but %d red pixels in the path plots", failed, red)
	}
	page, err := os.ReadFile(filepath.Join(dir, report.IndexFile))
	if err != nil {
		t.Fatal(err)
	}
	linked := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?:href|src)="([^"]+)"`).FindAllStringSubmatch(string(page), -1) {
		if _, err := os.Stat(filepath.Join(dir, m[1])); err != nil {
			t.Errorf("index.html links %s: %v", m[1], err)
		}
		linked[m[1]] = true
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Name() != report.IndexFile && !linked[e.Name()] {
			t.Errorf("index.html does not link %s", e.Name())
		}
	}
	return eps
}

// readPNG decodes a PNG and checks that it has content: at least 2% of its pixels not white,
// in at least 4 colours.
func readPNG(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	b := img.Bounds()
	inked := countPixels(img, func(r, g, bl uint32) bool { return r < 0xf000 || g < 0xf000 || bl < 0xf000 })
	colours := map[[3]uint32]bool{}
	for y := b.Min.Y; y < b.Max.Y; y += 3 {
		for x := b.Min.X; x < b.Max.X; x += 3 {
			r, g, bl, _ := img.At(x, y).RGBA()
			colours[[3]uint32{r >> 12, g >> 12, bl >> 12}] = true
		}
	}
	if b.Dx() < 400 || b.Dy() < 300 || inked < b.Dx()*b.Dy()/50 || len(colours) < 4 {
		t.Errorf("%s: %v, %d inked pixels, %d colours: no plot", path, b, inked, len(colours))
	}
	return img
}

func countPixels(img image.Image, match func(r, g, b uint32) bool) int {
	n := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if match(r, g, bl) {
				n++
			}
		}
	}
	return n
}
