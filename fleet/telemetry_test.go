package fleet

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flowact/flowact/dataset"
)

// TestFleetTelemetryQueue: Offer never blocks; what a full queue cannot take is counted.
func TestFleetTelemetryQueue(t *testing.T) {
	tel := NewTelemetry(Config{Robot: "r1", TelemetryQueue: 8}, nil, nil)
	accepted := 0
	for i := range 20 {
		if tel.Offer(Sample{State: "running", Counters: map[string]uint64{"ticks": uint64(i)}}) {
			accepted++
		}
	}
	if st := tel.Stats(); accepted != 8 || st.Offered != 20 || st.Dropped != 12 {
		t.Errorf("accepted %d, stats %+v; want 8 accepted, 20 offered, 12 dropped", accepted, st)
	}
}

// natsCLI returns the path of the nats CLI (natscli), installed by scripts/test; without it the
// test fails under CI=true and is skipped elsewhere.
func natsCLI(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("nats"); err == nil {
		return p
	}
	if gp := os.Getenv("GOPATH"); gp != "" {
		if p := filepath.Join(gp, "bin", "nats"); fileExists(p) {
			return p
		}
	}
	if home, err := os.UserHomeDir(); err == nil {
		if p := filepath.Join(home, "go", "bin", "nats"); fileExists(p) {
			return p
		}
	}
	msg := "the nats CLI is not installed: go install github.com/nats-io/natscli/nats@v0.5.0"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func runCLI(t *testing.T, ctx context.Context, cli, server string, args ...string) []byte {
	t.Helper()
	cmd := exec.CommandContext(ctx, cli, append([]string{"--server", server}, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "XDG_CONFIG_HOME="+t.TempDir())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("nats %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// TestFleetNatsCLI checks, with the nats CLI as a user would, what a robot puts on the server:
// its episode stream (`nats stream info`), its status key (`nats kv get`) and its telemetry
// (`nats sub`).
func TestFleetNatsCLI(t *testing.T) {
	cli := natsCLI(t)
	srv := startServer(t, ServerConfig{})
	cfg := Config{Robot: "r1", URL: srv.ClientURL(), Spool: t.TempDir(), TelemetryRate: 20}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	l, err := OpenLog(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	nc := connect(t, cfg, "")
	runBG(t, func(ctx context.Context) error { return l.Run(ctx, nc) })
	ep := synthEpisode(3, time.Second)
	if _, err := WriteEpisode(l, "", ep, dataset.WriterConfig{}); err != nil {
		t.Fatal(err)
	}
	if err := l.WaitDrained(ctx); err != nil {
		t.Fatal(err)
	}

	var info struct {
		Config struct{ Name string }
		State  struct{ Messages uint64 }
	}
	if err := json.Unmarshal(runCLI(t, ctx, cli, srv.ClientURL(), "stream", "info", EpisodeStream("r1"), "--json"), &info); err != nil {
		t.Fatal(err)
	}
	if info.Config.Name != EpisodeStream("r1") || info.State.Messages != uint64(messagesOf(ep)) {
		t.Errorf("nats stream info: %+v, want %d messages", info, messagesOf(ep))
	}

	// `nats sub` is started first and told to quit after one message; the publisher then runs.
	sub := exec.CommandContext(ctx, cli, "--server", srv.ClientURL(), "sub", TelemetrySubject("r1"), "--count=1", "--raw")
	sub.Env = append(os.Environ(), "HOME="+t.TempDir(), "XDG_CONFIG_HOME="+t.TempDir())
	var subOut, subErr bytes.Buffer
	sub.Stdout, sub.Stderr = &subOut, &subErr
	if err := sub.Start(); err != nil {
		t.Fatal(err)
	}
	poll(t, 30*time.Second, "nats sub to subscribe", func() bool { return hasInterest(srv, TelemetrySubject("r1")) })
	tel := NewTelemetry(cfg, l.Stats, testLogger(t))
	runBG(t, func(ctx context.Context) error { return tel.Run(ctx, nc) })
	for i := range 3 {
		tel.Offer(Sample{Time: time.Now(), State: "running", Counters: map[string]uint64{"ticks": uint64(100 * i)}, Snapshot: map[string]int{"i": i}})
	}
	if err := sub.Wait(); err != nil {
		t.Fatalf("nats sub: %v\n%s", err, subErr.String())
	}
	var msg struct {
		Status
		Snapshot map[string]int `json:"snapshot"`
	}
	if err := json.Unmarshal(bytes.TrimSpace(subOut.Bytes()), &msg); err != nil {
		t.Fatalf("nats sub printed %q: %v", subOut.String(), err)
	}
	if msg.Robot != "r1" || msg.State != "running" || msg.Snapshot == nil {
		t.Errorf("nats sub: %+v", msg)
	}

	poll(t, 30*time.Second, "the status key", func() bool { return tel.Stats().Published > 0 && statusPut(ctx, nc) })
	var st Status
	if err := json.Unmarshal(runCLI(t, ctx, cli, srv.ClientURL(), "kv", "get", StatusBucket, "r1", "--raw"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Robot != "r1" || st.Episodes != 1 || st.Spool.Published != uint64(messagesOf(ep)) {
		t.Errorf("nats kv get: %+v", st)
	}
}

func hasInterest(s *Server, subject string) bool {
	return s.NATS().GlobalAccount().SubscriptionInterest(subject)
}

func statusPut(ctx context.Context, nc *nats.Conn) bool {
	js, err := jetstream.New(nc)
	if err != nil {
		return false
	}
	kv, err := js.KeyValue(ctx, StatusBucket)
	if err != nil {
		return false
	}
	_, err = kv.Get(ctx, "r1")
	return err == nil
}
