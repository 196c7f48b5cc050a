package main

import (
	"context"
	"encoding/json"
	"testing"
)

// TestDemoShipped runs the demo as a fresh user would, with the shipped policy and checkpoint
// (configs.FS, no flags but one short episode): it must load them and finish. Success is not
// asserted here: real-time episodes on a loaded, race-instrumented machine are not the place;
// the checkpoint's success rate is checked in simulated time by the configs' tests.
func TestDemoShipped(t *testing.T) {
	t.Parallel()
	code, out, stderr := runCLI(t, context.Background(), "demo", "--task", "reach", "--episodes", "1", "--headless", "--json")
	if code != 0 {
		t.Fatalf("demo: exit %d: %s", code, stderr)
	}
	var r demoReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("demo --json: %v: %q", err, out)
	}
	if r.Checkpoint != shippedPrefix+DefaultCheckpoint || r.Policy != DefaultPolicy || r.Episodes != 1 || r.Chunks == 0 {
		t.Errorf("report %+v", r)
	}
	t.Logf("shipped checkpoint, one reach episode in real time: success %v, %.1f s, distance %.1f mm",
		r.Runs[0].Success, r.Runs[0].Elapsed, 1000*r.Runs[0].Distance)
}
