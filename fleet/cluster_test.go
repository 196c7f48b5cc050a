package fleet

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flowact/flowact/dataset"
)

// cluster is a 3-node JetStream cluster in this process, on fixed loopback ports so that a
// node can be restarted where it was.
type cluster struct {
	t     *testing.T
	opts  []*server.Options
	nodes []*server.Server
}

func newCluster(t *testing.T, n int) *cluster {
	t.Helper()
	c := &cluster{t: t}
	routes := make([]*url.URL, n)
	cports := make([]int, n)
	for i := range n {
		p, err := FreePort("127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		cports[i] = p
		routes[i] = &url.URL{Scheme: "nats-route", Host: fmt.Sprintf("127.0.0.1:%d", p)}
	}
	for i := range n {
		p, err := FreePort("127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		o := &server.Options{
			ServerName: fmt.Sprintf("n%d", i+1), Host: "127.0.0.1", Port: p, NoSigs: true,
			JetStream: true, StoreDir: t.TempDir(),
			Cluster: server.ClusterOpts{Name: "hub", Host: "127.0.0.1", Port: cports[i]},
			Routes:  routes, // every node gets every route (its own is ignored)
		}
		c.opts = append(c.opts, o)
		c.nodes = append(c.nodes, nil)
	}
	for i := range n {
		c.start(i)
	}
	t.Cleanup(func() {
		for i := range c.nodes {
			c.stop(i)
		}
	})
	c.waitMetaLeader()
	return c
}

func (c *cluster) start(i int) {
	c.t.Helper()
	s, err := server.NewServer(c.opts[i].Clone())
	if err != nil {
		c.t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(20 * time.Second) {
		c.t.Fatalf("node %d not ready", i+1)
	}
	c.nodes[i] = s
}

func (c *cluster) stop(i int) {
	if s := c.nodes[i]; s != nil {
		s.Shutdown()
		s.WaitForShutdown()
		c.nodes[i] = nil
	}
}

func (c *cluster) urls() string {
	var u []string
	for _, o := range c.opts {
		u = append(u, fmt.Sprintf("nats://127.0.0.1:%d", o.Port))
	}
	return strings.Join(u, ",")
}

// waitMetaLeader waits until a running node is the JetStream meta leader and every running
// node is current with it: readiness for connections is not enough for JetStream.
func (c *cluster) waitMetaLeader() {
	poll(c.t, 60*time.Second, "a JetStream meta leader", func() bool {
		leader := false
		for _, s := range c.nodes {
			if s == nil {
				continue
			}
			if !s.JetStreamIsCurrent() {
				return false
			}
			leader = leader || s.JetStreamIsLeader()
		}
		return leader
	})
}

// streamLeader waits for the stream's leader and returns its node index.
func (c *cluster) streamLeader(stream string) int {
	idx := -1
	poll(c.t, 60*time.Second, "a leader of stream "+stream, func() bool {
		for i, s := range c.nodes {
			if s != nil && s.JetStreamIsStreamLeader(server.DEFAULT_GLOBAL_ACCOUNT, stream) {
				idx = i
				return true
			}
		}
		return false
	})
	return idx
}

func (c *cluster) index(name string) int {
	for i, o := range c.opts {
		if o.ServerName == name {
			return i
		}
	}
	c.t.Fatalf("no node %q", name)
	return -1
}

// TestFleetClusterKills records episodes into an R3 stream while the stream's leader, then a
// follower, then the server the robot is connected to are killed and restarted: every message
// is stored exactly once, with no gap in the stream's sequence.
func TestFleetClusterKills(t *testing.T) {
	c := newCluster(t, 3)
	cfg := Config{Robot: "r1", URL: c.urls(), Spool: t.TempDir(), Replicas: 3, PublishTimeout: time.Second, Window: 32}
	l, err := OpenLog(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	nc := connect(t, cfg, "")
	runBG(t, func(ctx context.Context) error { return l.Run(ctx, nc) })
	stream := EpisodeStream("r1")
	want := map[string]int{}
	seed := 0
	record := func(n int) {
		for range n {
			ep := synthEpisode(seed, 2*time.Second)
			id, err := WriteEpisode(l, fmt.Sprintf("ep%d", seed), ep, dataset.WriterConfig{})
			if err != nil {
				t.Fatal(err)
			}
			want[EpisodeSubject("r1", id)] = messagesOf(ep)
			seed++
		}
	}
	// progress waits until the stream has acknowledged more messages than now.
	progress := func(what string) {
		before := l.Stats().Published
		poll(t, 60*time.Second, "publishing to resume "+what, func() bool { return l.Stats().Published > before+50 || l.Drained() })
	}
	kill := func(what string, i int) {
		pending := l.Stats().Pending
		c.stop(i)
		t.Logf("killed %s (node %d) with %d messages pending", what, i+1, pending)
		record(2)
		progress("after killing " + what)
		c.start(i)
		c.waitMetaLeader()
	}

	record(2)
	leader := c.streamLeader(stream)
	kill("the stream leader", leader)

	leader = c.streamLeader(stream)
	kill("a follower", (leader+1)%3)

	record(1)
	kill("the connected server", c.index(nc.ConnectedServerName()))

	record(1)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := l.WaitDrained(ctx); err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(connect(t, Config{}, c.urls()))
	if err != nil {
		t.Fatal(err)
	}
	checkStored(t, js, stream, want)
	st := l.Stats()
	t.Logf("%d episodes, %d messages appended, %d acknowledged, %d republished, %d duplicate acks", len(want), st.Appended, st.Published, st.Retries, st.Duplicates)
	if st.Pending != 0 {
		t.Errorf("%d pending after draining", st.Pending)
	}
}
