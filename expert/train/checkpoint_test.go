package train

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/flowact/flowact/expert/ckpt"
)

// TestSaveReplacesAsUnit: a save that fails while writing leaves the last checkpoint as it was
// (loadable, same bytes, no temporary folder); a crash while the new checkpoint's files are moved
// in (one file moved, two not) leaves a directory that Resume completes to the new checkpoint;
// Run calls Checkpoint every CheckpointEvery steps but the last.
func TestSaveReplacesAsUnit(t *testing.T) {
	toy := Bimodal{H: 4, Slope: 1, Std: 0.1}
	var saved []int
	cfg := Config{Steps: 8, BatchSize: 4, EMA: 0.9, Seed: 2, Now: fixedClock(), CheckpointEvery: 3}
	net := smallMLP(t)
	defer net.Close()
	dir, next := t.TempDir(), t.TempDir()
	var tr *Trainer
	cfg.Checkpoint = func(step int) error {
		saved = append(saved, step)
		return tr.Save(dir, SaveInfo{})
	}
	tr, err := New(net, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if err := tr.Run(context.Background(), toy, nil); err != nil {
		t.Fatal(err)
	}
	if len(saved) != 2 || saved[0] != 3 || saved[1] != 6 {
		t.Fatalf("Checkpoint called at steps %v, want [3 6]", saved)
	}
	files := func(d string) map[string][]byte {
		out := map[string][]byte{}
		ents, err := os.ReadDir(d)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			b, _ := os.ReadFile(filepath.Join(d, e.Name()))
			out[e.Name()] = b
		}
		return out
	}
	before := files(dir)
	if len(before) != 3 {
		t.Fatalf("checkpoint holds %d entries, want the manifest, weights and train state", len(before))
	}
	// A failing write (here an unknown weights dtype, as a full disk would fail it).
	if err := tr.Save(dir, SaveInfo{DType: "F8"}); !errors.Is(err, ckpt.ErrDType) {
		t.Fatalf("save with dtype F8: %v", err)
	}
	after := files(dir)
	for name, b := range before {
		if !bytes.Equal(after[name], b) {
			t.Errorf("failed save changed %s", name)
		}
	}
	if len(after) != len(before) {
		t.Errorf("failed save left %d entries, had %d", len(after), len(before))
	}
	if c, err := ckpt.Load(dir); err != nil || c.Manifest.Provenance.Steps != 6 {
		t.Fatalf("after a failed save: %v", err)
	}

	// A crash while moving the step-8 checkpoint in: its train state moved, the rest not.
	if err := tr.Save(next, SaveInfo{}); err != nil {
		t.Fatal(err)
	}
	done := filepath.Join(dir, saveDone)
	if err := os.Mkdir(done, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range files(next) {
		to := filepath.Join(done, name)
		if name == ckpt.TrainStateFile {
			to = filepath.Join(dir, name)
		}
		if err := os.WriteFile(to, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ckpt.Load(dir); !errors.Is(err, ckpt.ErrChecksum) {
		t.Fatalf("half-moved checkpoint loads: %v", err)
	}
	tr2, net2, err := Resume(dir, cfg)
	if err != nil {
		t.Fatalf("resume after a crash mid-move: %v", err)
	}
	defer net2.Close()
	defer tr2.Close()
	if tr2.Step() != 8 {
		t.Errorf("resumed at step %d, want 8", tr2.Step())
	}
	if _, err := os.Stat(done); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s left after resume: %v", saveDone, err)
	}
	want := files(next)
	for name, b := range files(dir) {
		if !bytes.Equal(b, want[name]) {
			t.Errorf("%s is not the new checkpoint's", name)
		}
	}
}
