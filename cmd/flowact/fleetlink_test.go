package main

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/flowact/flowact/cmd/flowact/internal/onboard"
	"github.com/flowact/flowact/configs"
	"github.com/flowact/flowact/fleet"
	"github.com/flowact/flowact/policy"
	"github.com/flowact/flowact/policy/chunk"
)

// TestFleetRunRollout wires the fleet link as `flowact run --nats embedded` does, with
// fleet.models on, and rolls models out to it: the shipped checkpoint is installed and the
// inference worker's next chunk comes from it; a bundle made for another robot and a
// checkpoint whose manifest does not load are refused, reported in the status, and the
// running model keeps serving chunks.
func TestFleetRunRollout(t *testing.T) {
	pf, err := loadPolicyFile(DefaultPolicy)
	if err != nil {
		t.Fatal(err)
	}
	lp, err := loadPolicy(pf, "")
	if err != nil {
		t.Fatal(err)
	}
	defer lp.Close()
	cfg := fleet.Config{Robot: "r1", URL: fleet.Embedded, Spool: t.TempDir(), Models: true, TelemetryRate: 50}
	link, err := openFleetLink(cfg, false, lp, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer link.Close()
	ex, err := lp.expert(1)
	if err != nil {
		t.Fatal(err)
	}
	var oc onboard.Config
	inf := link.wire(&oc, ex, 1)
	if oc.Recorder == nil || link.swap == nil || inf != link.swap {
		t.Fatal("the link did not wire telemetry and the swappable inferer")
	}

	h, d := inf.Shape()
	req := &policy.Request{Seq: 1, Position: make([]float64, d)}
	c := &chunk.Chunk{Data: make([]float64, h*d)}
	width, _ := lp.ck.CondShape()
	req.Embedding = policy.Embedding{Stamp: time.Now(), Tokens: 1, Width: width, Data: make([]float32, width)}
	infer := func() {
		t.Helper()
		if err := inf.Infer(c, req); err != nil {
			t.Fatal(err)
		}
	}
	infer()
	first := link.swap.cur.Load()

	err = link.runWith(context.Background(), func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		js, err := jetstream.New(link.nc)
		if err != nil {
			return err
		}
		if _, err := fleet.ModelKV(ctx, js); err != nil {
			return err
		}
		ck := t.TempDir()
		sub, _ := fs.Sub(configs.FS, "checkpoints/"+DefaultCheckpoint)
		if err := os.CopyFS(ck, sub); err != nil {
			return err
		}
		push := func(name string, dir string, robotName string) {
			model, _, err := openRobot(robotName)
			if err != nil {
				t.Fatal(err)
			}
			b, _, err := fleet.Bundle(dir, model, "")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := fleet.Push(ctx, js, "r1", name, b); err != nil {
				t.Fatal(err)
			}
		}
		waitStats := func(installed, refused uint64) {
			t.Helper()
			deadline := time.Now().Add(30 * time.Second)
			for {
				st := link.roll.Stats()
				if st.Installed == installed && st.Refused == refused {
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("rollout stats %+v, want %d installed, %d refused", st, installed, refused)
				}
				infer() // the worker keeps producing chunks meanwhile
				time.Sleep(10 * time.Millisecond)
			}
		}

		push("mlp-2", ck, "ur5")
		waitStats(1, 0)
		if link.swap.cur.Load() == first {
			t.Fatal("installed, but the inferer was not swapped")
		}
		infer()
		if link.swap.used != link.swap.cur.Load() {
			t.Error("the worker's next chunk did not come from the new model")
		}

		push("for-panda", ck, "panda")
		waitStats(1, 1)

		broken := t.TempDir()
		os.CopyFS(broken, sub)
		if err := os.WriteFile(filepath.Join(broken, "manifest.json"), []byte(`{"version": 99}`), 0o644); err != nil {
			t.Fatal(err)
		}
		push("broken", broken, "ur5")
		waitStats(1, 2)
		infer()

		// The status key says which model runs and why the last one was refused.
		link.Record(&policy.Snapshot{Time: time.Now(), Counters: policy.Counters{Ticks: 1}})
		deadline := time.Now().Add(30 * time.Second)
		for {
			sts, _ := fleet.Statuses(ctx, js)
			if len(sts) == 1 && sts[0].Model == "mlp-2" && sts[0].ModelError != "" {
				t.Logf("status: model %s, refused: %s", sts[0].Model, sts[0].ModelError)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("status %+v", sts)
			}
			link.Record(&policy.Snapshot{Time: time.Now()})
			time.Sleep(50 * time.Millisecond)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
