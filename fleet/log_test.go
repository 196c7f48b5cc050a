package fleet

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/flowact/flowact/dataset"
)

// TestFleetExportSameBag records episodes into the stream and exports them: each bag is byte for
// byte the one dataset.WriteEpisode writes from the same episode, and reads back as the same
// samples.
func TestFleetExportSameBag(t *testing.T) {
	srv := startServer(t, ServerConfig{})
	cfg := Config{Robot: "r1", URL: srv.ClientURL(), Spool: t.TempDir()}
	l, err := OpenLog(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	nc := connect(t, cfg, "")
	stop := runBG(t, func(ctx context.Context) error { return l.Run(ctx, nc) })

	local := t.TempDir()
	want := map[string]int{}
	ids := []string{}
	for i, wc := range []dataset.WriterConfig{{}, {Embedding: dataset.EmbeddingMultiArray}, {Compression: "lz4"}} {
		ep := synthEpisode(i, 2*time.Second)
		id, err := WriteEpisode(l, fmt.Sprintf("ep%d", i), ep, wc)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
		want[EpisodeSubject("r1", id)] = messagesOf(ep)
		if err := dataset.WriteEpisode(filepath.Join(local, "r1-"+id+".bag"), ep, wc); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := l.WaitDrained(ctx); err != nil {
		t.Fatal(err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	checkStored(t, js, EpisodeStream("r1"), want)
	st := l.Stats()
	if st.Episodes != 3 || st.Successes != 2 || st.Pending != 0 || st.Published != st.Appended {
		t.Errorf("stats %+v", st)
	}

	out := t.TempDir()
	rep, err := Export(ctx, js, ExportConfig{Stream: EpisodeStream("r1"), Dir: out})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Skipped) != 0 || len(rep.Episodes) != 3 {
		t.Fatalf("exported %d, skipped %v", len(rep.Episodes), rep.Skipped)
	}
	for _, id := range ids {
		name := "r1-" + id + ".bag"
		a, err := os.ReadFile(filepath.Join(local, name))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s: exported bag (%d bytes) differs from the local one (%d bytes)", name, len(b), len(a))
		}
		ea, err := dataset.Load(filepath.Join(local, name), dataset.Config{})
		if err != nil {
			t.Fatal(err)
		}
		eb, err := dataset.Load(filepath.Join(out, name), dataset.Config{})
		if err != nil {
			t.Fatal(err)
		}
		if ea.N != eb.N || ea.N == 0 || !slices.Equal(ea.State, eb.State) || !slices.Equal(ea.Action, eb.Action) {
			t.Errorf("%s: %d aligned steps exported, %d local, or their values differ", name, eb.N, ea.N)
		}
	}
}

// TestFleetSpoolReplay records while the server is down and across a restart of the recorder:
// the spool keeps every message, and a later Run publishes them in order, each once.
func TestFleetSpoolReplay(t *testing.T) {
	port, err := FreePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	spool := t.TempDir()
	cfg := Config{Robot: "r1", URL: url, Spool: spool, PublishTimeout: 500 * time.Millisecond}
	want := map[string]int{}

	// First run: no server. Everything stays in the spool.
	l, err := OpenLog(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	nc := connect(t, cfg, "")
	stop := runBG(t, func(ctx context.Context) error { return l.Run(ctx, nc) })
	for i := range 2 {
		ep := synthEpisode(i, time.Second)
		id, err := WriteEpisode(l, "", ep, dataset.WriterConfig{})
		if err != nil {
			t.Fatal(err)
		}
		want[EpisodeSubject("r1", id)] = messagesOf(ep)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if st := l.Stats(); st.Published != 0 || st.Pending != st.Appended {
		t.Fatalf("published with no server: %+v", st)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	nc.Close()

	// Second run: the spool is reopened (a new process), one more episode is recorded, then
	// the server comes up.
	l, err = OpenLog(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	total := 0
	for _, n := range want {
		total += n
	}
	if st := l.Stats(); st.Pending != uint64(total) {
		t.Fatalf("reopened spool has %d pending, want %d", st.Pending, total)
	}
	ep := synthEpisode(7, time.Second)
	id, err := WriteEpisode(l, "", ep, dataset.WriterConfig{})
	if err != nil {
		t.Fatal(err)
	}
	want[EpisodeSubject("r1", id)] = messagesOf(ep)
	nc = connect(t, cfg, "")
	runBG(t, func(ctx context.Context) error { return l.Run(ctx, nc) })
	srv := startServer(t, ServerConfig{Port: port})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := l.WaitDrained(ctx); err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(connect(t, Config{}, srv.ClientURL()))
	checkStored(t, js, EpisodeStream("r1"), want)
	segs, _ := listSegments(spool)
	if len(segs) != 1 {
		t.Errorf("spool keeps %d segments after draining, want 1", len(segs))
	}
}
