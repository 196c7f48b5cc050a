package fleet

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flowact/flowact/dataset"
)

// leafFleet is a hub (domain hub) with robots r1 and r2 each on its own leaf node (domain r1,
// r2), linked as the robot's user, and an operator's connection to the hub.
type leafFleet struct {
	hub    *Server
	leaves map[string]*Server
	ops    *nats.Conn
	opsJS  jetstream.JetStream
}

func startLeafFleet(t *testing.T, narrow bool) *leafFleet {
	t.Helper()
	auth := Auth{Robots: []AuthUser{{Name: "r1", Password: "p1"}, {Name: "r2", Password: "p2"}}, Operators: []AuthUser{{Name: "ops", Password: "ops"}}}
	if err := auth.Validate(); err != nil {
		t.Fatal(err)
	}
	users, _ := auth.Users("hub") // what `flowact hub --auth` gives the server
	if !narrow {
		for _, u := range users {
			u.Permissions = nil
		}
	}
	hub := startServer(t, ServerConfig{Name: "hub", LeafPort: -1, Domain: "hub", Logger: testLogger(t), Users: users})
	leafURL := func(user, pw string) string {
		return fmt.Sprintf("nats-leaf://%s:%s@127.0.0.1:%d", user, pw, hub.opts.LeafNode.Port)
	}
	f := &leafFleet{hub: hub, leaves: map[string]*Server{
		"r1": startServer(t, ServerConfig{Name: "r1-leaf", Domain: "r1", Hub: leafURL("r1", "p1"), Logger: testLogger(t)}),
		"r2": startServer(t, ServerConfig{Name: "r2-leaf", Domain: "r2", Hub: leafURL("r2", "p2"), Logger: testLogger(t)}),
	}}
	poll(t, 30*time.Second, "both leaf links", func() bool { return hub.LeafNodes() == 2 })
	f.ops = connect(t, Config{User: "ops", Password: "ops"}, hub.ClientURL())
	var err error
	if f.opsJS, err = jetstream.New(f.ops); err != nil {
		t.Fatal(err)
	}
	return f
}

// robotConfig is robot r's link config: its client on its own leaf node.
func (f *leafFleet) robotConfig(t *testing.T, r string) Config {
	return Config{Robot: r, URL: f.leaves[r].ClientURL(), Domain: r, HubDomain: "hub", Spool: t.TempDir(), PublishTimeout: time.Second}
}

// leaks tries, as robot r1 on its leaf node, what r2's credentials are for: publish under r2's
// prefix to the hub, receive r2's subjects from the hub, read r2's model key in the hub's
// bucket, and read r2's episode stream in r2's domain. It returns what succeeded. Each refusal
// is told apart from a slow link by an allowed twin that does get through first.
func (f *leafFleet) leaks(t *testing.T, ctx context.Context) []string {
	t.Helper()
	var leaks []string
	r1 := connect(t, f.robotConfig(t, "r1"), "")

	// Publish under r2's prefix: the hub's subscriber gets r1's message sent after it.
	var own, other atomic.Int64
	sub, err := f.ops.Subscribe(Prefix+".*.telemetry", func(m *nats.Msg) {
		if strings.HasPrefix(m.Subject, Prefix+".r1.") && string(m.Data) == "last" {
			own.Add(1)
		} else if strings.HasPrefix(m.Subject, Prefix+".r2.") {
			other.Add(1)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	f.ops.Flush()
	poll(t, 30*time.Second, "r1's telemetry at the hub", func() bool {
		r1.Publish(TelemetrySubject("r2"), []byte("spoof"))
		r1.Publish(TelemetrySubject("r1"), []byte("last"))
		r1.Flush()
		time.Sleep(20 * time.Millisecond)
		return own.Load() > 0
	})
	sub.Unsubscribe()
	if other.Load() > 0 {
		leaks = append(leaks, "published under flowact.r2")
	}

	// Receive r2's subjects: r1's subscription to its own gets the operator's messages sent after
	// r2's.
	own.Store(0)
	other.Store(0)
	s1, err := r1.Subscribe(Prefix+".r1.embedding", func(*nats.Msg) { own.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	s2, err := r1.Subscribe(Prefix+".r2.embedding", func(*nats.Msg) { other.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	r1.Flush()
	poll(t, 30*time.Second, "the operator's message to r1 on r1's leaf", func() bool {
		f.ops.Publish(Prefix+".r2.embedding", []byte("x"))
		f.ops.Publish(Prefix+".r1.embedding", []byte("x"))
		f.ops.Flush()
		time.Sleep(20 * time.Millisecond)
		return own.Load() >= 3
	})
	s1.Unsubscribe()
	s2.Unsubscribe()
	if other.Load() > 0 {
		leaks = append(leaks, "received flowact.r2")
	}

	// Read r2's model key from the hub's domain (r1's own key reads).
	hub, err := jetstream.NewWithDomain(r1, "hub")
	if err != nil {
		t.Fatal(err)
	}
	kv, err := hub.KeyValue(ctx, ModelBucket)
	if err != nil {
		t.Fatalf("r1 opening the model bucket across its leaf: %v", err)
	}
	if e, err := kv.Get(ctx, "r1"); err != nil || string(e.Value()) != "model-r1" {
		t.Fatalf("r1 reading its own model key across its leaf: %v", err)
	}
	short, cancel := context.WithTimeout(ctx, 3*time.Second)
	if e, err := kv.Get(short, "r2"); err == nil {
		leaks = append(leaks, "read r2's model key: "+string(e.Value()))
	}
	cancel()

	// Read r2's episode stream in r2's domain.
	r2js, err := jetstream.NewWithDomain(r1, "r2")
	if err != nil {
		t.Fatal(err)
	}
	short, cancel = context.WithTimeout(ctx, 3*time.Second)
	if _, err := r2js.Stream(short, EpisodeStream("r2")); err == nil {
		leaks = append(leaks, "read r2's episode stream")
	} else if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, jetstream.ErrNoStreamResponse) && !errors.Is(err, nats.ErrNoResponders) && !errors.Is(err, nats.ErrTimeout) {
		t.Logf("r2's stream from r1: %v", err)
	}
	cancel()
	return leaks
}

// setup records an episode on each robot's own stream, lets the hub source both, and puts each
// robot's model key.
func (f *leafFleet) setup(t *testing.T, ctx context.Context) {
	t.Helper()
	for _, r := range []string{"r1", "r2"} {
		if err := retry(ctx, orDiscard(nil), "source", func() error { return AddRobotSource(ctx, f.opsJS, r, r, 1) }); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]int{}
	total := 0
	for i, r := range []string{"r1", "r2"} {
		cfg := f.robotConfig(t, r)
		l, err := OpenLog(cfg, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		nc := connect(t, cfg, "")
		runBG(t, func(ctx context.Context) error { return l.Run(ctx, nc) })
		ep := synthEpisode(i, 300*time.Millisecond)
		id, err := WriteEpisode(l, "", ep, dataset.WriterConfig{})
		if err != nil {
			t.Fatal(err)
		}
		want[EpisodeSubject(r, id)] = messagesOf(ep)
		total += messagesOf(ep)
		if err := l.WaitDrained(ctx); err != nil {
			t.Fatal(err)
		}
	}
	poll(t, 60*time.Second, "the hub to source both robots' episodes across their leaf links", func() bool {
		s, err := f.opsJS.Stream(ctx, HubStream)
		if err != nil {
			return false
		}
		info, err := s.Info(ctx)
		return err == nil && info.State.Msgs == uint64(total)
	})
	checkStored(t, f.opsJS, HubStream, want)
	kv, err := ModelKV(ctx, f.opsJS)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{"r1", "r2"} {
		if _, err := kv.PutString(ctx, r, "model-"+r); err != nil {
			t.Fatal(err)
		}
	}
}

// TestFleetLeafPermissions: robots on their own leaf nodes, each leaf linked to the hub as its
// robot's user of the hub's Auth (LeafPermissions, as `flowact hub --auth` sets them). The hub sources both robots' streams across the links and
// each robot reads its own model key across its link; robot r1 cannot publish under r2's prefix,
// receive r2's subjects, read r2's model key or r2's episode stream. The same checks on a hub
// whose robot users have every permission find all four: they can fail.
func TestFleetLeafPermissions(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	t.Run("narrowed", func(t *testing.T) {
		f := startLeafFleet(t, true)
		f.setup(t, ctx)
		if leaks := f.leaks(t, ctx); len(leaks) > 0 {
			t.Errorf("r1's leaf link could: %v", leaks)
		}
	})
	t.Run("open", func(t *testing.T) {
		f := startLeafFleet(t, false)
		f.setup(t, ctx)
		leaks := f.leaks(t, ctx)
		want := []string{"published under flowact.r2", "received flowact.r2", "read r2's model key: model-r2", "read r2's episode stream"}
		if !slices.Equal(leaks, want) {
			t.Errorf("with every permission r1 could %v, want %v: the checks miss a leak", leaks, want)
		}
	})
}
