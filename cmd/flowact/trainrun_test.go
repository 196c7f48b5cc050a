package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowact/flowact/expert/ckpt"
	"github.com/flowact/flowact/expert/train"
)

// hookWriter collects what is written to it and calls at, once, when a write contains its key.
type hookWriter struct {
	bytes.Buffer
	key  string
	at   func()
	done bool
}

func (w *hookWriter) Write(b []byte) (int, error) {
	if !w.done && strings.Contains(string(b), w.key) {
		w.done = true
		w.at()
	}
	return w.Buffer.Write(b)
}

// copyDir copies the regular files of src into a new directory dst: what a disk holds at an
// instant (a crash there leaves exactly this).
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			t.Fatalf("%s: %s is not a regular file (a save left behind?)", src, e.Name())
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func manifestSteps(t *testing.T, dir string) int {
	t.Helper()
	m, err := ckpt.ParseManifest(readFile(t, filepath.Join(dir, ckpt.ManifestFile)))
	if err != nil {
		t.Fatal(err)
	}
	return m.Provenance.Steps
}

// TestTrainResume trains 20 steps in one go, and the same run cut at step 15 by a crash (the
// disk then holds the --save-every 10 checkpoint) and at step 13 by SIGINT, each continued with
// --resume: the three model.safetensors are the same bytes (moving average and F16 weights on,
// so the train state must carry the average at full precision), and the resumed logs hold
// steps 1..20 once each.
func TestTrainResume(t *testing.T) {
	data, root := t.TempDir(), t.TempDir()
	collectInto(t, data, "reach", 4, "5")
	flags := []string{"--data", data, "--steps", "20", "--batch", "4", "--hidden", "16", "--layers", "1", "--warmup", "2",
		"--ema", "0.9", "--val", "0.25", "--seed", "4", "--weights-dtype", "F16"}
	trainArgs := func(extra ...string) []string { return append(append([]string{"train"}, flags...), extra...) }
	full := filepath.Join(root, "full")
	if code, _, stderr := runCLI(t, context.Background(), trainArgs("--out", full)...); code != 0 {
		t.Fatalf("train: exit %d: %s", code, stderr)
	}
	want := readFile(t, filepath.Join(full, ckpt.WeightsFile))

	resumeEqual := func(dir string) {
		t.Helper()
		if code, _, stderr := runCLI(t, context.Background(), trainArgs("--resume", dir)...); code != 0 {
			t.Fatalf("train --resume %s: exit %d: %s", dir, code, stderr)
		}
		if got := readFile(t, filepath.Join(dir, ckpt.WeightsFile)); !bytes.Equal(got, want) {
			t.Errorf("%s: resumed model.safetensors differs from the uninterrupted run's", dir)
		}
		if n := manifestSteps(t, dir); n != 20 {
			t.Errorf("%s: resumed checkpoint at step %d", dir, n)
		}
		var steps []int
		for _, line := range strings.Split(strings.TrimSpace(string(readFile(t, filepath.Join(dir, "train.jsonl")))), "\n") {
			var p train.Point
			if err := json.Unmarshal([]byte(line), &p); err != nil {
				t.Fatalf("%s/train.jsonl: %v: %q", dir, err, line)
			}
			steps = append(steps, p.Step)
		}
		if len(steps) != 20 || steps[0] != 1 || steps[19] != 20 {
			t.Errorf("%s/train.jsonl steps %v, want 1..20", dir, steps)
		}
	}

	// A crash at step 15: the disk holds the checkpoint of step 10 and a log past it.
	periodic, crashed := filepath.Join(root, "periodic"), filepath.Join(root, "crashed")
	w := &hookWriter{key: "step 15/20", at: func() { copyDir(t, periodic, crashed) }}
	var out bytes.Buffer
	if code := run(context.Background(), trainArgs("--out", periodic, "--save-every", "10"), &out, w); code != 0 {
		t.Fatalf("train --save-every 10: exit %d: %s", code, w.String())
	}
	if !w.done {
		t.Fatalf("no step 15 in the progress: %s", w.String())
	}
	if n := manifestSteps(t, crashed); n != 10 {
		t.Fatalf("checkpoint on disk at step 15 is of step %d, want 10", n)
	}
	if got := readFile(t, filepath.Join(periodic, ckpt.WeightsFile)); !bytes.Equal(got, want) {
		t.Errorf("--save-every changed the run's weights")
	}
	resumeEqual(crashed)

	// SIGINT at step 13 writes a resumable checkpoint of the 13 steps and exits 130.
	stopped := filepath.Join(root, "stopped")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w = &hookWriter{key: "step 13/20", at: cancel}
	if code := run(ctx, trainArgs("--out", stopped), &out, w); code != exitInterrupted {
		t.Fatalf("train cut by SIGINT: exit %d, want %d: %s", code, exitInterrupted, w.String())
	}
	if n := manifestSteps(t, stopped); n != 13 {
		t.Fatalf("interrupted checkpoint at step %d, want 13", n)
	}
	resumeEqual(stopped)
}

// TestTrainOutRefused: a non-empty --out is refused (exit 2, naming the folder and the flags)
// and left as it was; --resume of another run's folder is refused; --overwrite replaces it.
func TestTrainOutRefused(t *testing.T) {
	data, ck := t.TempDir(), filepath.Join(t.TempDir(), "ck")
	collectInto(t, data, "reach", 2, "6")
	flags := []string{"train", "--data", data, "--steps", "2", "--batch", "4", "--hidden", "16", "--layers", "1", "--warmup", "1", "--val", "0", "--seed", "2"}
	if code, _, stderr := runCLI(t, context.Background(), append(flags, "--out", ck)...); code != 0 {
		t.Fatalf("train: exit %d: %s", code, stderr)
	}
	snapshot := map[string][]byte{}
	for _, name := range []string{ckpt.WeightsFile, ckpt.ManifestFile, ckpt.TrainStateFile, "train.jsonl", "loss.png"} {
		snapshot[name] = readFile(t, filepath.Join(ck, name))
	}
	unchanged := func(what string) {
		t.Helper()
		for name, b := range snapshot {
			if !bytes.Equal(readFile(t, filepath.Join(ck, name)), b) {
				t.Errorf("%s: %s changed", what, name)
			}
		}
	}
	code, _, stderr := runCLI(t, context.Background(), append(flags, "--out", ck, "--seed", "3")...)
	if code != 2 || !strings.Contains(stderr, ck) || !strings.Contains(stderr, "--resume") || !strings.Contains(stderr, "--overwrite") {
		t.Errorf("train into a used --out: exit %d, %q", code, stderr)
	}
	unchanged("refused --out")
	code, _, stderr = runCLI(t, context.Background(), append(flags, "--resume", ck, "--seed", "3")...)
	if code != 2 || !strings.Contains(stderr, "--resume "+ck) || !strings.Contains(stderr, "--seed 2") {
		t.Errorf("--resume with another seed: exit %d, %q", code, stderr)
	}
	unchanged("refused --resume")
	code, _, stderr = runCLI(t, context.Background(), append(flags, "--resume", ck, "--out", t.TempDir())...)
	if code != 2 || !strings.Contains(stderr, "same folder") {
		t.Errorf("--resume into another --out: exit %d, %q", code, stderr)
	}
	if code, _, stderr := runCLI(t, context.Background(), append(flags, "--out", ck, "--seed", "3", "--overwrite")...); code != 0 {
		t.Fatalf("train --overwrite: exit %d: %s", code, stderr)
	}
	if manifestSteps(t, ck) != 2 || bytes.Equal(readFile(t, filepath.Join(ck, ckpt.WeightsFile)), snapshot[ckpt.WeightsFile]) {
		t.Errorf("--overwrite did not replace the run")
	}
}

// TestTrainSkipBadBags: a bag cut in half stops a run by default, naming the bag; with
// --skip-bad-bags it is listed on stderr with its error and the run trains on the others.
func TestTrainSkipBadBags(t *testing.T) {
	data := t.TempDir()
	collectInto(t, data, "reach", 4, "8")
	bad := filepath.Join(data, "reach-000009.bag")
	b := readFile(t, bad)
	if err := os.WriteFile(bad, b[:len(b)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"train", "--data", data, "--steps", "2", "--batch", "4", "--hidden", "16", "--layers", "1", "--warmup", "1", "--val", "0.25", "--json"}
	code, _, stderr := runCLI(t, context.Background(), append(args, "--out", filepath.Join(t.TempDir(), "strict"))...)
	if code == 0 || !strings.Contains(stderr, bad) {
		t.Errorf("train on a cut bag: exit %d, %q; want a failure naming %s", code, stderr, bad)
	}
	code, out, stderr := runCLI(t, context.Background(), append(args, "--out", filepath.Join(t.TempDir(), "skip"), "--skip-bad-bags")...)
	if code != 0 {
		t.Fatalf("train --skip-bad-bags: exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "skipping "+bad+": ") || strings.Count(stderr, "skipping") != 1 {
		t.Errorf("stderr %q: want one line skipping %s with its error", stderr, bad)
	}
	var sum trainSummary
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatal(err)
	}
	if sum.Episodes+sum.ValEps != 3 {
		t.Errorf("trained on %d + %d episodes, want the 3 good bags", sum.Episodes, sum.ValEps)
	}
}
