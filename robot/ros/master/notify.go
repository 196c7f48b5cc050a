package master

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/flowact/flowact/robot/ros/xmlrpc"
)

// The notifier makes the master's calls to nodes' slave APIs (publisherUpdate, paramUpdate,
// shutdown) off the request path, like rosmaster's MarkedThreadPool: calls to one slave API run
// one at a time, in the order they were queued (so a subscriber never sees an older publisher
// list after a newer one), while a bounded pool of workers serves different slaves in parallel.
// A slow or dead node delays only its own queue, up to the call timeout.

// taskKind is the slave API method a task calls.
type taskKind uint8

const (
	taskPublisherUpdate taskKind = iota
	taskParamUpdate
	taskShutdown
)

// task is one slave call.
type task struct {
	kind  taskKind
	key   string       // topic (publisherUpdate) or parameter key (paramUpdate)
	value xmlrpc.Value // publisher URIs, parameter value, or shutdown reason
}

// destQueue is the pending work for one slave API.
type destQueue struct {
	api     string
	tasks   []task
	running bool // a worker owns this queue (it is in ready or being served)
}

// notifier owns the worker goroutines; stop waits for them.
type notifier struct {
	client   *xmlrpc.Client
	log      *slog.Logger
	maxQueue int
	// onParamReject is called (without the notifier's lock) when a node answers paramUpdate
	// with code -1, meaning it is not subscribed to key.
	onParamReject func(api, key string)

	mu     sync.Mutex
	cond   *sync.Cond
	dests  map[string]*destQueue
	ready  []*destQueue
	closed bool

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	sent, failed, dropped atomic.Uint64
}

func newNotifier(client *xmlrpc.Client, log *slog.Logger, workers, maxQueue int, onParamReject func(api, key string)) *notifier {
	ctx, cancel := context.WithCancel(context.Background())
	n := &notifier{client: client, log: log, maxQueue: maxQueue, onParamReject: onParamReject,
		dests: map[string]*destQueue{}, ctx: ctx, cancel: cancel}
	n.cond = sync.NewCond(&n.mu)
	n.wg.Add(workers)
	for range workers {
		go n.work()
	}
	return n
}

// enqueue queues t for api without blocking. A publisherUpdate replaces a pending one for the
// same topic in place (it carries the whole list, so only the newest matters); past maxQueue
// pending tasks the oldest is dropped and counted.
func (n *notifier) enqueue(api string, t task) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		n.dropped.Add(1)
		return
	}
	q := n.dests[api]
	if q == nil {
		q = &destQueue{api: api}
		n.dests[api] = q
	}
	if t.kind == taskPublisherUpdate {
		for i := range q.tasks {
			if q.tasks[i].kind == taskPublisherUpdate && q.tasks[i].key == t.key {
				q.tasks[i] = t
				return
			}
		}
	}
	if len(q.tasks) >= n.maxQueue {
		n.dropped.Add(1)
		n.log.Warn("master: slave call queue full, dropping the oldest call", "api", api, "limit", n.maxQueue)
		q.tasks = append(q.tasks[:0], q.tasks[1:]...)
	}
	q.tasks = append(q.tasks, t)
	if !q.running {
		q.running = true
		n.ready = append(n.ready, q)
		n.cond.Signal()
	}
}

func (n *notifier) work() {
	defer n.wg.Done()
	n.mu.Lock()
	for {
		for len(n.ready) == 0 && !n.closed {
			n.cond.Wait()
		}
		if n.closed {
			n.mu.Unlock()
			return
		}
		q := n.ready[0]
		n.ready = n.ready[1:]
		t := q.tasks[0]
		q.tasks = q.tasks[1:]
		n.mu.Unlock()

		n.call(q.api, t)

		n.mu.Lock()
		if len(q.tasks) > 0 {
			n.ready = append(n.ready, q) // to the back: one task per turn keeps slaves fair
		} else {
			q.running = false
			delete(n.dests, q.api)
		}
	}
}

func (n *notifier) call(api string, t task) {
	var method string
	var params []xmlrpc.Value
	switch t.kind {
	case taskPublisherUpdate:
		method, params = "publisherUpdate", []xmlrpc.Value{xmlrpc.String("/master"), xmlrpc.String(t.key), t.value}
	case taskParamUpdate:
		method, params = "paramUpdate", []xmlrpc.Value{xmlrpc.String("/master"), xmlrpc.String(t.key), t.value}
	case taskShutdown:
		method, params = "shutdown", []xmlrpc.Value{xmlrpc.String("/master"), t.value}
	}
	v, err := n.client.Call(n.ctx, api, method, params...)
	if err != nil {
		n.failed.Add(1)
		if t.kind == taskShutdown {
			// Expected often: the replaced node may be gone already.
			n.log.Debug("master: shutdown of replaced node failed", "api", api, "err", err)
		} else {
			n.log.Warn("master: slave call failed", "method", method, "api", api, "key", t.key, "err", err)
		}
		return
	}
	n.sent.Add(1)
	if t.kind == taskParamUpdate {
		if a, ok := v.AsArray(); ok && len(a) > 0 {
			if code, _ := a[0].AsInt(); code == -1 && n.onParamReject != nil {
				n.onParamReject(api, t.key)
			}
		}
	}
}

// stop drops pending tasks (counting them), ends calls under way and waits for the workers.
func (n *notifier) stop() {
	n.mu.Lock()
	if !n.closed {
		n.closed = true
		for _, q := range n.dests {
			n.dropped.Add(uint64(len(q.tasks)))
			q.tasks = nil
		}
		n.cond.Broadcast()
	}
	n.mu.Unlock()
	n.cancel()
	n.wg.Wait()
}
