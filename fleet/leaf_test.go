package fleet

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/flowact/flowact/dataset"
)

// The issue asks for a 30 s cut; the suite's default keeps its time down. `go test ./fleet
// -run Leaf -fleet.cut=30s` runs the long one.
var linkCut = flag.Duration("fleet.cut", 3*time.Second, "how long TestFleetLeafCutAndHubRestart cuts the leaf link")

// proxy is a TCP relay standing for the link between a robot's leaf node and the hub: cut closes
// every connection and refuses new ones until restore.
type proxy struct {
	t      *testing.T
	addr   string
	target string
	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]bool
	wg     sync.WaitGroup
}

func newProxy(t *testing.T, target string) *proxy {
	p := &proxy{t: t, target: target, conns: map[net.Conn]bool{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(p.cut)
	return p
}

func (p *proxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns[c], p.conns[up] = true, true
			p.mu.Unlock()
			for _, pair := range [][2]net.Conn{{c, up}, {up, c}} {
				p.wg.Add(1)
				go func() {
					defer p.wg.Done()
					io.Copy(pair[0], pair[1])
					pair[0].Close()
					pair[1].Close()
				}()
			}
		}
	}()
}

// cut closes the listener and every connection, and waits for the relay's goroutines.
func (p *proxy) cut() {
	p.mu.Lock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *proxy) restore() {
	var ln net.Listener
	var err error
	for range 50 { // the port was just closed: it may take a moment to be free again
		if ln, err = net.Listen("tcp", p.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		p.t.Fatal(err)
	}
	p.serve(ln)
}

// TestFleetLeafCutAndHubRestart runs a robot on its own leaf node (JetStream domain r1) whose
// stream the hub (domain hub) sources across the leaf link. The link is cut for -fleet.cut while
// the robot records, then the hub is restarted while it records: the robot's stream and the
// hub's both end with every message exactly once.
func TestFleetLeafCutAndHubRestart(t *testing.T) {
	hubPort, err := FreePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	hubCfg := ServerConfig{Name: "hub", Port: hubPort, LeafPort: -1, LeafNoAdvertise: true, Domain: "hub", StoreDir: t.TempDir(), Logger: testLogger(t)}
	hub := startServer(t, hubCfg)
	hubCfg.LeafPort = hub.opts.LeafNode.Port
	link := newProxy(t, fmt.Sprintf("127.0.0.1:%d", hubCfg.LeafPort))
	leaf := startServer(t, ServerConfig{Name: "r1-leaf", Domain: "r1", Hub: "nats-leaf://" + link.addr, Logger: testLogger(t)})
	poll(t, 30*time.Second, "the leaf link", func() bool { return hub.LeafNodes() == 1 })

	cfg := Config{Robot: "r1", URL: leaf.ClientURL(), Domain: "r1", HubDomain: "hub", Spool: t.TempDir(), PublishTimeout: time.Second}
	l, err := OpenLog(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	nc := connect(t, cfg, "")
	runBG(t, func(ctx context.Context) error { return l.Run(ctx, nc) })

	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	// The hub sources the robot's stream from the robot's domain, over the leaf link.
	hubJS := func() jetstream.JetStream {
		js, err := jetstream.New(connect(t, Config{}, fmt.Sprintf("nats://127.0.0.1:%d", hubPort)))
		if err != nil {
			t.Fatal(err)
		}
		return js
	}
	if err := retry(ctx, orDiscard(nil), "source", func() error { return AddRobotSource(ctx, hubJS(), "r1", "r1", 1) }); err != nil {
		t.Fatal(err)
	}

	want := map[string]int{}
	seed := 0
	total := 0
	record := func(n int) {
		for range n {
			ep := synthEpisode(seed, time.Second)
			id, err := WriteEpisode(l, fmt.Sprintf("ep%d", seed), ep, dataset.WriterConfig{})
			if err != nil {
				t.Fatal(err)
			}
			want[EpisodeSubject("r1", id)] = messagesOf(ep)
			total += messagesOf(ep)
			seed++
		}
	}
	hubCount := func(js jetstream.JetStream) uint64 {
		s, err := js.Stream(ctx, HubStream)
		if err != nil {
			return 0
		}
		info, err := s.Info(ctx)
		if err != nil {
			return 0
		}
		return info.State.Msgs
	}
	js := hubJS()
	record(2)
	poll(t, 60*time.Second, "the hub to source the first episodes", func() bool { return hubCount(js) == uint64(total) })

	link.cut()
	cutAt := total
	record(3)
	if err := l.WaitDrained(ctx); err != nil { // the robot's own server is reachable: no lag there
		t.Fatal(err)
	}
	time.Sleep(*linkCut)
	if n := hubCount(js); n != uint64(cutAt) {
		t.Fatalf("the hub holds %d messages with the link cut, want the %d from before", n, cutAt)
	}
	link.restore()
	poll(t, 60*time.Second, "the hub to catch up after the cut", func() bool { return hubCount(js) == uint64(total) })

	// Restart the hub while the robot records.
	hub.Close()
	record(2)
	hub = startServer(t, hubCfg)
	record(1)
	js = hubJS()
	poll(t, 60*time.Second, "the hub to catch up after its restart", func() bool { return hubCount(js) == uint64(total) })
	if err := l.WaitDrained(ctx); err != nil {
		t.Fatal(err)
	}
	checkStored(t, js, HubStream, want)
	rjs, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	checkStored(t, rjs, EpisodeStream("r1"), want)
	t.Logf("%d episodes, %d messages; link cut %v; robot log %+v", len(want), total, *linkCut, l.Stats())
}
