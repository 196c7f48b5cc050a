package master

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/flowact/flowact/robot/ros/xmlrpc"
)

// blockingNode is a slave API whose first call waits for release, so that tests can queue work
// behind it deterministically.
type blockingNode struct {
	URI     string
	entered chan struct{}
	release chan struct{}
	once    sync.Once
	mu      sync.Mutex
	calls   []slaveCall
}

func newBlockingNode(t *testing.T) *blockingNode {
	b := &blockingNode{entered: make(chan struct{}), release: make(chan struct{})}
	mux := xmlrpc.NewMux()
	first := true
	h := func(method string) xmlrpc.Method {
		return func(ctx context.Context, p []xmlrpc.Value) (xmlrpc.Value, error) {
			b.mu.Lock()
			wait := first
			first = false
			c := slaveCall{method: method}
			c.key, _ = p[1].AsString()
			if len(p) > 2 {
				c.value = p[2]
			}
			b.calls = append(b.calls, c)
			b.mu.Unlock()
			if wait {
				close(b.entered)
				select {
				case <-b.release:
				case <-ctx.Done():
				}
			}
			return reply(1, "", xmlrpc.Int(0)), nil
		}
	}
	mux.Handle("publisherUpdate", h("publisherUpdate"))
	mux.Handle("paramUpdate", h("paramUpdate"))
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		b.once.Do(func() { close(b.release) })
		srv.Close()
	})
	b.URI = srv.URL + "/"
	return b
}

func (b *blockingNode) await(t *testing.T, n int) []slaveCall {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		b.mu.Lock()
		got := append([]slaveCall(nil), b.calls...)
		b.mu.Unlock()
		if len(got) >= n || time.Now().After(deadline) {
			if len(got) != n {
				t.Fatalf("got %d calls, want %d: %v", len(got), n, got)
			}
			return got
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func newTestNotifier(t *testing.T, maxQueue int) *notifier {
	cl, err := xmlrpc.NewClient(xmlrpc.ClientConfig{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	n := newNotifier(cl, slog.New(slog.DiscardHandler), 2, maxQueue, nil)
	t.Cleanup(func() { n.stop(); cl.Close() })
	return n
}

func pubTask(topic string, uris ...string) task {
	return task{kind: taskPublisherUpdate, key: topic, value: xmlrpc.Strings(uris)}
}

func paramTask(key string, v int64) task {
	return task{kind: taskParamUpdate, key: key, value: xmlrpc.Int(v)}
}

// TestNotifierOrderAndCoalescing: calls to one node keep their order; a queued publisherUpdate
// is replaced in place by a newer one for the same topic.
func TestNotifierOrderAndCoalescing(t *testing.T) {
	n := newTestNotifier(t, 100)
	b := newBlockingNode(t)
	n.enqueue(b.URI, pubTask("/t", "a"))
	<-b.entered
	n.enqueue(b.URI, pubTask("/t", "b"))
	n.enqueue(b.URI, paramTask("/k/", 1))
	n.enqueue(b.URI, pubTask("/t", "c"))
	n.enqueue(b.URI, pubTask("/u", "d"))
	close(b.release)
	b.once.Do(func() {})
	got := b.await(t, 4)
	want := []slaveCall{
		{"publisherUpdate", "/t", strs("a")},
		{"publisherUpdate", "/t", strs("c")},
		{"paramUpdate", "/k/", xmlrpc.Int(1)},
		{"publisherUpdate", "/u", strs("d")},
	}
	for i := range want {
		if got[i].String() != want[i].String() {
			t.Fatalf("calls %v, want %v", got, want)
		}
	}
	// The node has seen the last call; its answer may still be on the way back.
	deadline := time.Now().Add(5 * time.Second)
	for n.sent.Load() != 4 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if s, f, d := n.sent.Load(), n.failed.Load(), n.dropped.Load(); s != 4 || f != 0 || d != 0 {
		t.Fatalf("sent %d failed %d dropped %d", s, f, d)
	}
}

// TestNotifierBoundAndStop: past the bound the oldest queued call is dropped; stop drops what
// is still queued, ends the call under way and returns.
func TestNotifierBoundAndStop(t *testing.T) {
	n := newTestNotifier(t, 2)
	b := newBlockingNode(t)
	n.enqueue(b.URI, paramTask("/a/", 0))
	<-b.entered
	for i := range int64(3) {
		n.enqueue(b.URI, paramTask("/a/", i+1))
	}
	if d := n.dropped.Load(); d != 1 {
		t.Fatalf("dropped %d, want 1", d)
	}
	done := make(chan struct{})
	go func() { n.stop(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("stop did not end the blocked call")
	}
	if d := n.dropped.Load(); d != 3 {
		t.Fatalf("dropped %d after stop, want 3", d)
	}
	n.enqueue(b.URI, paramTask("/a/", 9))
	if d := n.dropped.Load(); d != 4 {
		t.Fatalf("enqueue after stop: dropped %d, want 4", d)
	}
}
