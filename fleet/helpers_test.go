package fleet

import (
	"context"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flowact/flowact/dataset"
	"github.com/flowact/flowact/robot"
)

var (
	t0         = time.Unix(1700000000, 250_000_000).UTC()
	testJoints = []string{"j1", "j2", "j3"}
)

// synthEpisode builds an episode of dur: states and actions at 100 Hz, embeddings (2 x 4) at
// 5 Hz; values encode the seed, stream and index.
func synthEpisode(seed int, dur time.Duration) *dataset.Episode {
	ep := &dataset.Episode{Meta: dataset.Meta{Version: dataset.MetaVersion, Task: "reach", Instruction: "touch the red ball",
		Seed: uint64(seed), Success: seed%2 == 0, Robot: "arm3", Joints: slices.Clone(testJoints), Rate: 100}}
	base := t0.Add(time.Duration(seed) * time.Minute)
	s := float64(seed)
	for i := 0; time.Duration(i)*10*time.Millisecond <= dur; i++ {
		st := base.Add(time.Duration(i) * 10 * time.Millisecond)
		p := []float64{s + float64(i), 1000 + float64(i), -float64(i) / 7}
		ep.States = append(ep.States, dataset.JointState{Stamp: st, Position: p, Velocity: []float64{1, 2, 3}, Effort: []float64{0.5, 0, -0.5}})
		ep.Actions = append(ep.Actions, dataset.Action{Stamp: st, Position: []float64{s + float64(i) + 0.5, 1000.5 + float64(i), -float64(i)/7 + 0.5}})
	}
	for i := 0; 30*time.Millisecond+time.Duration(i)*200*time.Millisecond <= dur; i++ {
		e := robot.Embedding{Stamp: base.Add(30*time.Millisecond + time.Duration(i)*200*time.Millisecond), Tokens: 2, Width: 4, Data: make([]float32, 8)}
		for j := range e.Data {
			e.Data[j] = float32(seed*10000 + i*100 + j)
		}
		ep.Embeddings = append(ep.Embeddings, e)
	}
	return ep
}

// messagesOf is the number of stream messages WriteEpisode makes of ep: begin, every state,
// embedding and action, meta, end.
func messagesOf(ep *dataset.Episode) int {
	return len(ep.States) + len(ep.Embeddings) + len(ep.Actions) + 3
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("FLOWACT_FLEET_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return nil
}

func startServer(t testing.TB, cfg ServerConfig) *Server {
	t.Helper()
	if cfg.Port == 0 {
		cfg.Port = -1
	}
	if cfg.StoreDir == "" {
		cfg.StoreDir = t.TempDir()
	}
	s, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func connect(t testing.TB, cfg Config, url string) *nats.Conn {
	t.Helper()
	nc, err := Connect(cfg, url, "test", testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// runBG runs f in a goroutine until the test ends (cancel, then wait).
func runBG(t testing.TB, f func(ctx context.Context) error) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f(ctx) }()
	var err error
	stopped := false
	stop = func() error {
		if !stopped {
			stopped = true
			cancel()
			err = <-done
		}
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}

// poll calls ok every 20 ms until it holds, failing the test after d.
func poll(t testing.TB, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkStored reads every message of stream and checks that each (episode, seq) of want is
// stored exactly once: want maps an episode subject to its message count.
func checkStored(t testing.TB, js jetstream.JetStream, stream string, want map[string]int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	total := 0
	for _, n := range want {
		total += n
	}
	var info *jetstream.StreamInfo
	poll(t, 60*time.Second, "the stream to hold every message", func() bool {
		s, err := js.Stream(ctx, stream)
		if err != nil {
			return false
		}
		info, err = s.Info(ctx)
		return err == nil && info.State.Msgs >= uint64(total)
	})
	if info.State.Msgs != uint64(total) {
		t.Fatalf("stream %s holds %d messages, want %d", stream, info.State.Msgs, total)
	}
	c, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]map[uint64]int{}
	var lastStreamSeq uint64
	for got := 0; got < total; {
		b, err := c.Fetch(total-got, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range b.Messages() {
			md, err := m.Metadata()
			if err != nil {
				t.Fatal(err)
			}
			if md.Sequence.Stream <= lastStreamSeq {
				t.Fatalf("stream sequence %d after %d", md.Sequence.Stream, lastStreamSeq)
			}
			lastStreamSeq = md.Sequence.Stream
			seq, err := strconv.ParseUint(m.Headers().Get(HeaderSeq), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			if seen[m.Subject()] == nil {
				seen[m.Subject()] = map[uint64]int{}
			}
			seen[m.Subject()][seq]++
			got++
		}
		if ctx.Err() != nil {
			t.Fatal(ctx.Err())
		}
	}
	if lastStreamSeq != uint64(total) {
		t.Errorf("last stream sequence %d, want %d (no gaps, nothing deleted)", lastStreamSeq, total)
	}
	for subj, n := range want {
		for seq := uint64(1); seq <= uint64(n); seq++ {
			if c := seen[subj][seq]; c != 1 {
				t.Errorf("%s message %d stored %d times", subj, seq, c)
			}
		}
		if len(seen[subj]) != n {
			t.Errorf("%s: %d distinct messages, want %d", subj, len(seen[subj]), n)
		}
	}
	if len(seen) != len(want) {
		t.Errorf("%d episodes stored, want %d", len(seen), len(want))
	}
}
