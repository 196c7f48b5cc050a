package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowact/flowact/configs"
	"github.com/flowact/flowact/dataset"
	"github.com/flowact/flowact/fleet"
	"github.com/flowact/flowact/robot"
)

// startHub runs `flowact hub` in-process until the test ends and returns its client URL.
func startHub(t *testing.T, args ...string) string {
	t.Helper()
	port, err := fleet.FreePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, append([]string{"hub", "--port", fmt.Sprint(port), "--leaf-port", "0", "--store", t.TempDir(), "--log-level", "error"}, args...), &out, &errb)
	}()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("flowact hub: exit %d: %s", code, errb.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(out.String(), "flowact hub:") {
		select {
		case code := <-done:
			t.Fatalf("flowact hub exited %d: %s", code, errb.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("flowact hub did not start: %s", errb.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Sprintf("nats://127.0.0.1:%d", port)
}

// TestHubFleetExport runs `flowact hub` sourcing robot r1, records episodes as r1 into it,
// exports them with `flowact export` (the same bags as written locally), pushes the shipped
// checkpoint with `flowact fleet push` and lists the fleet with `flowact fleet status`.
func TestHubFleetExport(t *testing.T) {
	url := startHub(t, "--source", "r1", "--domain", "hub")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	cfg := fleet.Config{Robot: "r1", URL: url, Domain: "hub", Spool: t.TempDir(), TelemetryRate: 20}
	l, err := fleet.OpenLog(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	nc, err := fleet.Connect(cfg, "", "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	lctx, lcancel := context.WithCancel(ctx)
	ldone := make(chan error, 1)
	go func() { ldone <- l.Run(lctx, nc) }()
	tel := fleet.NewTelemetry(cfg, l.Stats, nil)
	tdone := make(chan error, 1)
	go func() { tdone <- tel.Run(lctx, nc) }()
	defer func() { lcancel(); <-ldone; <-tdone }()

	local := t.TempDir()
	joints := []string{"a", "b"}
	for i := range 2 {
		ep := &dataset.Episode{Meta: dataset.Meta{Task: "reach", Robot: "ur5", Joints: joints, Rate: 50, Success: true, Seed: uint64(i)}}
		t0 := time.Unix(1_700_000_000+int64(i)*100, 0).UTC()
		for k := range 50 {
			st := t0.Add(time.Duration(k) * 20 * time.Millisecond)
			ep.States = append(ep.States, dataset.JointState{Stamp: st, Position: []float64{float64(k), float64(i)}})
			ep.Actions = append(ep.Actions, dataset.Action{Stamp: st, Position: []float64{float64(k) + 0.5, 1}})
			if k%10 == 0 {
				ep.Embeddings = append(ep.Embeddings, robot.Embedding{Stamp: st, Tokens: 1, Width: 2, Data: []float32{float32(k), 2}})
			}
		}
		id, err := fleet.WriteEpisode(l, fmt.Sprintf("ep%d", i), ep, dataset.WriterConfig{})
		if err != nil {
			t.Fatal(err)
		}
		if err := dataset.WriteEpisode(filepath.Join(local, "r1-"+id+".bag"), ep, dataset.WriterConfig{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.WaitDrained(ctx); err != nil {
		t.Fatal(err)
	}
	tel.Offer(fleet.Sample{Time: time.Now(), State: "running", Faults: 0})

	// The hub's stream sources r1's: export polls until both episodes are there.
	out := t.TempDir()
	deadline := time.Now().Add(60 * time.Second)
	for {
		code, stdout, stderr := runCLI(t, ctx, "export", "--nats", url, "--out", out)
		if code != 0 {
			t.Fatalf("export: exit %d: %s", code, stderr)
		}
		if n, _ := filepath.Glob(filepath.Join(out, "*.bag")); len(n) == 2 {
			t.Logf("export: %s", strings.TrimSpace(stdout))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("export: %s %s", stdout, stderr)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, name := range []string{"r1-ep0.bag", "r1-ep1.bag"} {
		a, _ := os.ReadFile(filepath.Join(local, name))
		b, err := os.ReadFile(filepath.Join(out, name))
		if err != nil || !bytes.Equal(a, b) || len(a) == 0 {
			t.Errorf("%s: exported bag differs from the local one (%v)", name, err)
		}
	}

	// fleet push: the shipped checkpoint, copied to disk.
	ck := t.TempDir()
	sub, _ := fs.Sub(configs.FS, "checkpoints/"+DefaultCheckpoint)
	if err := os.CopyFS(ck, sub); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCLI(t, ctx, "fleet", "push", ck, "--fleet-id", "r1", "--name", "mlp-v2", "--nats", url)
	if code != 0 || !strings.Contains(stdout, "pushed mlp-v2") {
		t.Fatalf("fleet push: exit %d: %s %s", code, stdout, stderr)
	}
	// A checkpoint for another robot model is refused before upload.
	if code, _, stderr := runCLI(t, ctx, "fleet", "push", ck, "--robot", "r1", "--model", "no-such-robot", "--nats", url); code != 2 {
		t.Errorf("fleet push to an unknown model: exit %d (%s)", code, stderr)
	}

	deadline = time.Now().Add(30 * time.Second)
	for {
		code, stdout, stderr = runCLI(t, ctx, "fleet", "status", "--nats", url)
		if code != 0 {
			t.Fatalf("fleet status: exit %d: %s", code, stderr)
		}
		if strings.Contains(stdout, "r1") && strings.Contains(stdout, "mlp-v2") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("fleet status: %s", stdout)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("fleet status:\n%s", stdout)
}

// TestHubCollectExport: `flowact collect --nats` publishes each episode it records to the
// robot's stream on a hub; `flowact export` writes them back as the very bags collect wrote.
func TestHubCollectExport(t *testing.T) {
	url := startHub(t, "--domain", "hub")
	ctx := context.Background()
	dir := t.TempDir()
	code, stdout, stderr := runCLI(t, ctx, "collect", "--task", "reach", "--episodes", "2", "--out", dir, "--seed", "40", "--json",
		"--nats", url, "--nats-domain", "hub", "--fleet-id", "sim1", "--spool", t.TempDir())
	if code != 0 {
		t.Fatalf("collect: exit %d: %s", code, stderr)
	}
	var sum collectSummary
	if err := json.Unmarshal([]byte(stdout), &sum); err != nil {
		t.Fatal(err)
	}
	if sum.Fleet == nil || sum.Fleet.Pending != 0 || sum.Fleet.StreamMessages == 0 || sum.Fleet.StreamMessages != sum.Fleet.Published-sum.Fleet.Duplicates {
		t.Fatalf("collect --nats: %+v", sum.Fleet)
	}
	out := t.TempDir()
	code, stdout, stderr = runCLI(t, ctx, "export", "--nats", url, "--stream", fleet.EpisodeStream("sim1"), "--fleet-id", "sim1", "--out", out)
	if code != 0 {
		t.Fatalf("export: exit %d: %s", code, stderr)
	}
	t.Logf("collect: %d messages stored; export: %s", sum.Fleet.StreamMessages, strings.TrimSpace(stdout))
	for _, name := range []string{"reach-000040.bag", "reach-000041.bag"} {
		a, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(out, "sim1-"+strings.TrimSuffix(name, ".bag")+".bag"))
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("%s: exported bag differs from collect's (%v)", name, err)
		}
	}
}

// TestFleetConfigBlock: the policy file's fleet: block is decoded strictly and validated.
func TestFleetConfigBlock(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	if err := os.WriteFile(good, []byte("robot: ur5\nfleet:\n  robot: arm-07\n  url: nats://127.0.0.1:4222\n  domain: arm-07\n  hub_domain: hub\n  publish_timeout: 3s\n  telemetry_rate_hz: 2\n  models: true\n  episode_max: 90s\n  record_queue: 1024\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	pf, err := loadPolicyFile(good)
	if err != nil {
		t.Fatal(err)
	}
	if pf.Fleet.Robot != "arm-07" || pf.Fleet.PublishTimeout != 3*time.Second || !pf.Fleet.Models || pf.Fleet.TelemetryRate != 2 ||
		pf.Fleet.EpisodeMax != 90*time.Second || pf.Fleet.RecordQueue != 1024 || pf.Fleet.NoRecord {
		t.Errorf("decoded %+v", pf.Fleet)
	}
	for name, c := range map[string]struct{ body, want string }{
		"unknown.yaml":   {"robot: ur5\nfleet: {robot: a, url: embedded, spol: /tmp}\n", "spol"},
		"no-robot.yaml":  {"robot: ur5\nfleet: {url: embedded}\n", "robot: required"},
		"bad-id.yaml":    {"robot: ur5\nfleet: {robot: a.b, url: embedded}\n", "a.b"},
		"bad-url.yaml":   {"robot: ur5\nfleet: {robot: a, url: http://x:1}\n", "scheme"},
		"bad-rep.yaml":   {"robot: ur5\nfleet: {robot: a, url: embedded, replicas: 2}\n", "replicas 2"},
		"bad-max.yaml":   {"robot: ur5\nfleet: {robot: a, url: embedded, episode_max: 10ms}\n", "episode_max 10ms"},
		"bad-queue.yaml": {"robot: ur5\nfleet: {robot: a, url: embedded, record_queue: 4}\n", "record_queue 4"},
	} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(c.body), 0o644); err != nil {
			t.Fatal(err)
		}
		code, _, stderr := runCLI(t, context.Background(), "--check-config", path)
		if code != 2 || !strings.Contains(stderr, c.want) || !strings.Contains(stderr, name) {
			t.Errorf("%s: exit %d, stderr %q; want 2 and %q", name, code, stderr, c.want)
		}
	}
	// --nats-embedding needs the link.
	if code, _, stderr := runCLI(t, context.Background(), "run", "--nats-embedding", "x.y"); code != 2 || !strings.Contains(stderr, "fleet link is off") {
		t.Errorf("run --nats-embedding without a link: exit %d, %q", code, stderr)
	}
}

// TestDemoFleet: `flowact demo --fleet` runs an embedded hub, records the episode into its
// stream and ends with the stream's message count in its summary.
func TestDemoFleet(t *testing.T) {
	code, out, stderr := runCLI(t, context.Background(), "demo", "--task", shortTrack(t), "--episodes", "1", "--headless", "--json", "--fleet")
	if code != 0 {
		t.Fatalf("demo --fleet: exit %d: %s", code, stderr)
	}
	var r demoReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("demo --json: %v: %q", err, out)
	}
	f := r.Fleet
	if f == nil || f.Pending != 0 || f.StreamMessages == 0 || f.StreamMessages != f.Published-f.Duplicates {
		t.Fatalf("fleet summary %+v", f)
	}
	// An episode of 1.5 s at 50 Hz: begin, meta and end, and at least a state and an action
	// per tick for most of it.
	if f.StreamMessages < 3+2*50 {
		t.Errorf("%d messages for a 1.5 s episode at 50 Hz", f.StreamMessages)
	}
	if !strings.Contains(stderr, "fleet hub nats://127.0.0.1:") {
		t.Errorf("status lacks the fleet line:\n%s", stderr)
	}
	t.Logf("demo --fleet: %+v", *f)
}

// TestHubAuth: with --auth, the hub refuses a connection without credentials and lets an
// operator in.
func TestHubAuth(t *testing.T) {
	auth := filepath.Join(t.TempDir(), "auth.yaml")
	if err := os.WriteFile(auth, []byte("robots:\n  - {name: r1, password: pw1}\noperators:\n  - {name: ops, password: opspw}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	url := startHub(t, "--auth", auth)
	ctx := context.Background()
	if code, _, stderr := runCLI(t, ctx, "fleet", "status", "--nats", url, "--timeout", "2s"); code != 1 || !strings.Contains(strings.ToLower(stderr), "authorization") {
		t.Errorf("fleet status without credentials: exit %d (%s), want 1 and an authorization error", code, stderr)
	}
	code, stdout, stderr := runCLI(t, ctx, "fleet", "status", "--nats", url, "--user", "ops", "--password", "opspw")
	if code != 0 || !strings.HasPrefix(stdout, "ROBOT") {
		t.Errorf("fleet status as the operator: exit %d: %s %s", code, stdout, stderr)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("robots:\n  - {name: r1, password: pw1, nkey: UXYZ}\n"), 0o600)
	if code, _, stderr := runCLI(t, ctx, "hub", "--auth", bad, "--port", "-1", "--leaf-port", "0"); code != 2 || !strings.Contains(stderr, "r1") {
		t.Errorf("hub with a bad auth file: exit %d: %s", code, stderr)
	}
}
