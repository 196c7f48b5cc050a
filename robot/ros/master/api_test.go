package master

import (
	"context"
	"fmt"
	"net"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowact/flowact/robot/ros/xmlrpc"
)

var (
	str  = xmlrpc.String
	strs = func(s ...string) xmlrpc.Value { return xmlrpc.Strings(s) }
	arr  = xmlrpc.Array
)

// startMaster starts a Master on a free loopback port and closes it when the test ends.
func startMaster(t testing.TB) *Master {
	t.Helper()
	m, err := New(Config{Addr: "127.0.0.1:0", RunID: "test-run"})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return m
}

// do calls method on m's dispatcher (no network) and splits the ROS triple.
func do(t *testing.T, m *Master, method string, params ...xmlrpc.Value) (int, string, xmlrpc.Value) {
	t.Helper()
	v, err := m.mux.Dispatch(context.Background(), xmlrpc.Call{Method: method, Params: params})
	if err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	a, ok := v.AsArray()
	if !ok || len(a) != 3 {
		t.Fatalf("%s answered %v, not a triple", method, v)
	}
	code, ok1 := a[0].AsInt()
	msg, ok2 := a[1].AsString()
	if !ok1 || !ok2 {
		t.Fatalf("%s answered %v", method, v)
	}
	return int(code), msg, a[2]
}

// want checks a call's code and value.
func want(t *testing.T, m *Master, code int, val xmlrpc.Value, method string, params ...xmlrpc.Value) string {
	t.Helper()
	c, msg, v := do(t, m, method, params...)
	if c != code || !xmlrpc.Equal(v, val) {
		t.Fatalf("%s%v = [%d, %q, %v], want [%d, _, %v]", method, params, c, msg, v, code, val)
	}
	return msg
}

// slaveCall is one call a fake node received.
type slaveCall struct {
	method, key string
	value       xmlrpc.Value
}

func (c slaveCall) String() string { return fmt.Sprintf("%s(%s, %v)", c.method, c.key, c.value) }

// fakeNode is a node's slave API that records the master's calls.
type fakeNode struct {
	URI   string
	mu    sync.Mutex
	calls []slaveCall
	code  int64 // the code paramUpdate answers
}

func newFakeNode(t *testing.T) *fakeNode {
	f := &fakeNode{code: 1}
	mux := xmlrpc.NewMux()
	record := func(method string) xmlrpc.Method {
		return func(_ context.Context, p []xmlrpc.Value) (xmlrpc.Value, error) {
			c := slaveCall{method: method}
			if method == "shutdown" {
				c.key, _ = p[1].AsString()
			} else {
				c.key, _ = p[1].AsString()
				c.value = p[2]
			}
			f.mu.Lock()
			f.calls = append(f.calls, c)
			code := f.code
			f.mu.Unlock()
			return reply(int(code), "", xmlrpc.Int(0)), nil
		}
	}
	for _, m := range []string{"publisherUpdate", "paramUpdate", "shutdown"} {
		mux.Handle(m, record(m))
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	f.URI = srv.URL + "/"
	return f
}

// await waits up to 5 s for n calls and returns them.
func (f *fakeNode) await(t *testing.T, n int) []slaveCall {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		f.mu.Lock()
		got := append([]slaveCall(nil), f.calls...)
		f.mu.Unlock()
		if len(got) >= n || time.Now().After(deadline) {
			if len(got) != n {
				t.Fatalf("node %s got %d calls, want %d: %v", f.URI, len(got), n, got)
			}
			return got
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func checkCalls(t *testing.T, f *fakeNode, want ...slaveCall) {
	t.Helper()
	got := f.await(t, len(want))
	for i := range want {
		if got[i].method != want[i].method || got[i].key != want[i].key || !xmlrpc.Equal(got[i].value, want[i].value) {
			t.Fatalf("call %d: got %v, want %v (all: %v)", i, got[i], want[i], got)
		}
	}
}

func TestRegistration(t *testing.T) {
	m := startMaster(t)
	s1, s1b, p1 := newFakeNode(t), newFakeNode(t), newFakeNode(t)
	typ := str("std_msgs/String")
	const srvURI = "rosrpc://127.0.0.1:4000"

	want(t, m, 1, arr(), "registerSubscriber", str("/sub1"), str("chatter"), typ, str(s1.URI))
	want(t, m, 1, strs(s1.URI), "registerPublisher", str("/pub1"), str("/chatter"), typ, str(p1.URI))
	s1.await(t, 1) // else the next update may replace this one while it is queued
	want(t, m, 1, strs(p1.URI), "registerSubscriber", str("/ns/sub2"), str("/chatter"), str("*"), str(s1b.URI))
	want(t, m, 1, xmlrpc.Int(1), "registerService", str("/pub1"), str("~set"), str(srvURI), str(p1.URI))
	want(t, m, 1, str(srvURI), "lookupService", str("/x"), str("/pub1/set"))
	want(t, m, -1, str(""), "lookupService", str("/x"), str("/nope"))
	want(t, m, 1, arr(
		arr(arr(str("/chatter"), strs("/pub1"))),
		arr(arr(str("/chatter"), strs("/sub1", "/ns/sub2"))),
		arr(arr(str("/pub1/set"), strs("/pub1"))),
	), "getSystemState", str("/x"))
	want(t, m, 1, arr(strs("/chatter", "std_msgs/String")), "getPublishedTopics", str("/x"), str(""))
	want(t, m, 1, arr(), "getPublishedTopics", str("/x"), str("/other"))
	want(t, m, 1, arr(strs("/chatter", "std_msgs/String")), "getTopicTypes", str("/x"))
	want(t, m, 1, str(p1.URI), "lookupNode", str("/x"), str("pub1"))
	want(t, m, -1, str(""), "lookupNode", str("/x"), str("/ghost"))
	want(t, m, 1, str(m.URI()), "getUri", str("/x"))

	// Unregistering the publisher sends the subscriber an empty list; a second time is a no-op.
	want(t, m, 1, xmlrpc.Int(1), "unregisterPublisher", str("/pub1"), str("/chatter"), str(p1.URI))
	want(t, m, 1, xmlrpc.Int(0), "unregisterPublisher", str("/pub1"), str("/chatter"), str(p1.URI))
	want(t, m, 1, xmlrpc.Int(0), "unregisterService", str("/pub1"), str("/pub1/set"), str("rosrpc://elsewhere:1"))
	want(t, m, 1, xmlrpc.Int(1), "unregisterService", str("/pub1"), str("/pub1/set"), str(srvURI))
	want(t, m, -1, str(""), "lookupNode", str("/x"), str("/pub1")) // no registrations left: forgotten
	checkCalls(t, s1,
		slaveCall{"publisherUpdate", "/chatter", strs(p1.URI)},
		slaveCall{"publisherUpdate", "/chatter", arr()})

	// /sub1 registers again from another URI: the old one is told to shut down, and /sub1 is
	// listed once, at its new URI.
	s1new := newFakeNode(t)
	want(t, m, 1, arr(), "registerSubscriber", str("/sub1"), str("/other"), typ, str(s1new.URI))
	checkCalls(t, s1,
		slaveCall{"publisherUpdate", "/chatter", strs(p1.URI)},
		slaveCall{"publisherUpdate", "/chatter", arr()},
		slaveCall{"shutdown", "[/sub1] Reason: new node registered with same name", xmlrpc.Value{}})
	want(t, m, 1, arr(arr(), arr(
		arr(str("/chatter"), strs("/ns/sub2")),
		arr(str("/other"), strs("/sub1")),
	), arr()), "getSystemState", str("/x"))
	want(t, m, 1, str(s1new.URI), "lookupNode", str("/x"), str("/sub1"))
	want(t, m, 1, xmlrpc.Int(1), "unregisterSubscriber", str("/sub1"), str("/other"), str(s1new.URI))
}

// TestReplacedPublisherUpdatesSubscribers: when a publisher's name is taken over by a new node
// that does not publish the topic, the topic's subscribers learn that the old one is gone.
func TestReplacedPublisherUpdatesSubscribers(t *testing.T) {
	m := startMaster(t)
	sub, old, nw := newFakeNode(t), newFakeNode(t), newFakeNode(t)
	typ := str("std_msgs/String")
	want(t, m, 1, arr(), "registerSubscriber", str("/sub"), str("/t"), typ, str(sub.URI))
	want(t, m, 1, strs(sub.URI), "registerPublisher", str("/p"), str("/t"), typ, str(old.URI))
	sub.await(t, 1)
	want(t, m, 1, arr(), "registerPublisher", str("/p"), str("/u"), typ, str(nw.URI))
	checkCalls(t, sub, slaveCall{"publisherUpdate", "/t", strs(old.URI)}, slaveCall{"publisherUpdate", "/t", arr()})
	checkCalls(t, old, slaveCall{"shutdown", "[/p] Reason: new node registered with same name", xmlrpc.Value{}})
}

func TestAPIErrors(t *testing.T) {
	m := startMaster(t)
	const api = "http://127.0.0.1:1/"
	tests := []struct {
		method string
		params []xmlrpc.Value
		code   int
		msg    string
	}{
		{"getPid", nil, -1, "missing required caller_id"},
		{"getPid", []xmlrpc.Value{str("/a"), str("extra")}, -1, "bad call arity"},
		{"getParam", []xmlrpc.Value{xmlrpc.Int(3), str("/k")}, -1, "caller_id must be a string"},
		{"getParam", []xmlrpc.Value{str("/a"), str("")}, -1, "must be specified and non-empty"},
		{"getParam", []xmlrpc.Value{str("/a"), xmlrpc.Int(1)}, -1, "must be a string"},
		{"getParam", []xmlrpc.Value{str("/a"), str("/unset")}, -1, "Parameter [/unset] is not set"},
		{"deleteParam", []xmlrpc.Value{str("/a"), str("/unset")}, -1, "is not set"},
		{"setParam", []xmlrpc.Value{str("/a"), str("/"), xmlrpc.Int(1)}, -1, "root of parameter tree"},
		{"setParam", []xmlrpc.Value{str("/a"), str("/k"), xmlrpc.Nil()}, -1, "must be specified"},
		{"searchParam", []xmlrpc.Value{str("/a"), str("~p")}, 0, "Internal failure"},
		{"searchParam", []xmlrpc.Value{str("/a"), str("nothing")}, -1, "upwards search"},
		{"registerPublisher", []xmlrpc.Value{str("/a"), str("bad topic"), str("a/B"), str(api)}, -1, "illegal chars"},
		{"registerPublisher", []xmlrpc.Value{str("/a"), str("/"), str("a/B"), str(api)}, -1, "global namespace"},
		{"registerPublisher", []xmlrpc.Value{str("/a"), str("/t"), str("NoPackage"), str(api)}, -1, "package resource name"},
		{"registerPublisher", []xmlrpc.Value{str("/a"), str("/t"), str("a/B"), str("ftp://x")}, -1, "not an RPC URI"},
		{"registerSubscriber", []xmlrpc.Value{str("/a"), str("/t"), str("a/B"), xmlrpc.Int(1)}, -1, "not an XMLRPC URI"},
		{"lookupNode", []xmlrpc.Value{str("/a"), str("")}, -1, "non-empty string"},
		{"unregisterSubscriber", []xmlrpc.Value{str("/a"), str("/t"), str(api)}, 1, "[/a] is not a registered node"},
	}
	for _, tc := range tests {
		code, msg, _ := do(t, m, tc.method, tc.params...)
		if code != tc.code || !strings.Contains(msg, tc.msg) {
			t.Errorf("%s%v = %d %q, want %d %q", tc.method, tc.params, code, msg, tc.code, tc.msg)
		}
	}
	if _, err := m.mux.Dispatch(context.Background(), xmlrpc.Call{Method: "shutdown", Params: []xmlrpc.Value{str("/a")}}); err == nil {
		t.Error("shutdown is served")
	}
}

func TestParamServerAPI(t *testing.T) {
	m := startMaster(t)
	want(t, m, 1, str("test-run"), "getParam", str("/x"), str("/run_id"))
	want(t, m, 1, xmlrpc.Int(0), "setParam", str("/ns/node"), str("~gain"), xmlrpc.Double(2.5))
	want(t, m, 1, xmlrpc.Int(0), "setParam", str("/ns/node"), str("rel/list"), arr(xmlrpc.Int(1), str("two")))
	want(t, m, 1, st("node", st("gain", xmlrpc.Double(2.5)), "rel", st("list", arr(xmlrpc.Int(1), str("two")))), "getParam", str("/x"), str("/ns"))
	want(t, m, 1, xmlrpc.Bool(true), "hasParam", str("/ns/node"), str("~gain"))
	want(t, m, 1, xmlrpc.Bool(false), "hasParam", str("/ns/node"), str("~loss"))
	want(t, m, 1, str("/ns/node/gain"), "searchParam", str("/ns/node"), str("gain"))
	want(t, m, 1, str("/ns/rel/list"), "searchParam", str("/ns/other"), str("rel/list"))
	want(t, m, 1, strs("/run_id", "/ns/node/gain", "/ns/rel/list"), "getParamNames", str("/x"))
	want(t, m, 1, xmlrpc.Int(0), "deleteParam", str("/x"), str("/ns/node"))
	want(t, m, 1, strs("/run_id", "/ns/rel/list"), "getParamNames", str("/x"))
}

// TestParamUpdates follows rosmaster's compute_param_updates: subscribers at and above a changed
// key get the new value (but not the node that changed it), subscribers below get their part.
func TestParamUpdates(t *testing.T) {
	m := startMaster(t)
	a, b, c, d := newFakeNode(t), newFakeNode(t), newFakeNode(t), newFakeNode(t)
	want(t, m, 1, st(), "subscribeParam", str("/A"), str(a.URI), str("/a"))
	want(t, m, 1, st(), "subscribeParam", str("/B"), str(b.URI), str("/a/b"))
	want(t, m, 1, st(), "subscribeParam", str("/C"), str(c.URI), str("/x"))

	want(t, m, 1, xmlrpc.Int(0), "setParam", str("/other"), str("/a/b"), i1)
	want(t, m, 1, xmlrpc.Int(0), "setParam", str("/A"), str("/a/b"), i2) // A made it: only B hears
	want(t, m, 1, xmlrpc.Int(0), "setParam", str("/other"), str("/a"), st("b", st("c", i1)))
	want(t, m, 1, xmlrpc.Int(0), "setParam", str("/other"), str("/a"), st("z", i1))
	want(t, m, 1, xmlrpc.Int(0), "deleteParam", str("/A"), str("/a"))
	want(t, m, 1, xmlrpc.Int(0), "setParam", str("/other"), str("/y"), i3) // nobody
	checkCalls(t, a,
		slaveCall{"paramUpdate", "/a/b/", i1},
		slaveCall{"paramUpdate", "/a/", st("b", st("c", i1))},
		slaveCall{"paramUpdate", "/a/", st("z", i1)},
		slaveCall{"paramUpdate", "/a/", st()})
	checkCalls(t, b,
		slaveCall{"paramUpdate", "/a/b/", i1},
		slaveCall{"paramUpdate", "/a/b/", i2},
		slaveCall{"paramUpdate", "/a/b/", st("c", i1)},
		slaveCall{"paramUpdate", "/a/b/", st()},
		slaveCall{"paramUpdate", "/a/b/", st()})
	checkCalls(t, c)

	// subscribeParam answers the current value; unsubscribing stops the updates.
	want(t, m, 1, i3, "subscribeParam", str("/C"), str(c.URI), str("/y"))
	want(t, m, 1, xmlrpc.Int(1), "unsubscribeParam", str("/C"), str(c.URI), str("/y"))
	want(t, m, 1, xmlrpc.Int(0), "unsubscribeParam", str("/C"), str(c.URI), str("/y"))

	// A node answering -1 ("not subscribed") loses its subscription.
	d.mu.Lock()
	d.code = -1
	d.mu.Unlock()
	want(t, m, 1, st(), "subscribeParam", str("/D"), str(d.URI), str("/q"))
	want(t, m, 1, xmlrpc.Int(0), "setParam", str("/other"), str("/q"), i1)
	d.await(t, 1)
	deadline := time.Now().Add(5 * time.Second)
	for {
		m.mu.Lock()
		n := len(m.reg.lists[kindParamSub]["/q/"])
		m.mu.Unlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the rejected subscription was kept")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSlaveFailuresCounted(t *testing.T) {
	m := startMaster(t)
	want(t, m, 1, arr(), "registerSubscriber", str("/dead"), str("/t"), str("a/B"), str("http://127.0.0.1:1/"))
	want(t, m, 1, strs("http://127.0.0.1:1/"), "registerPublisher", str("/p"), str("/t"), str("a/B"), str("http://127.0.0.1:2/"))
	deadline := time.Now().Add(5 * time.Second)
	for m.Stats().SlaveFailed != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v", m.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestLifecycle(t *testing.T) {
	for _, addr := range []string{"nohost", "127.0.0.1:x", "127.0.0.1:70000"} {
		if _, err := New(Config{Addr: addr}); err == nil {
			t.Errorf("New accepted address %q", addr)
		}
	}
	if _, err := New(Config{SlaveTimeout: -1}); err == nil {
		t.Error("New accepted a negative timeout")
	}
	m, err := New(Config{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if m.URI() != "" || len(m.RunID()) != 36 {
		t.Fatalf("before Start: URI %q, run id %q", m.URI(), m.RunID())
	}
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	if err := m.Start(); err == nil {
		t.Error("second Start succeeded")
	}
	if !strings.HasPrefix(m.URI(), "http://127.0.0.1:") || !strings.HasSuffix(m.URI(), "/") {
		t.Errorf("URI %q", m.URI())
	}
	busy, _ := New(Config{Addr: strings.TrimSuffix(strings.TrimPrefix(m.URI(), "http://"), "/")})
	if err := busy.Start(); err == nil {
		t.Error("second master on the same port started")
	}
	busy.Close()
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Start(); err == nil {
		t.Error("Start after Close succeeded")
	}

	ctx, cancel := context.WithCancel(context.Background())
	r, _ := New(Config{Addr: "127.0.0.1:0"})
	done := make(chan error)
	go func() { done <- r.Run(ctx) }()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

func BenchmarkRegisterPublisher(b *testing.B) {
	m := startMaster(b)
	cl, err := xmlrpc.NewClient(xmlrpc.ClientConfig{})
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	params := []xmlrpc.Value{str("/talker"), str("/chatter"), str("std_msgs/String"), str("http://127.0.0.1:40000/")}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := cl.Call(ctx, m.URI(), "registerPublisher", params...); err != nil {
			b.Fatal(err)
		}
	}
}

func ExampleMaster() {
	m, err := New(Config{Addr: "127.0.0.1:0"}) // port 0: any free port
	if err != nil {
		panic(err)
	}
	if err := m.Start(); err != nil {
		panic(err)
	}
	defer m.Close()
	// Point ROS_MASTER_URI at m.URI() for rostopic, rosparam, rospy nodes...
	fmt.Println(strings.HasPrefix(m.URI(), "http://127.0.0.1:"))
	// Output: true
}

// TestMulticallOverHTTP sends what roslaunch sends, parameters in one system.multicall, and
// what rospy sends at shutdown, its unregistrations in one.
func TestMulticallOverHTTP(t *testing.T) {
	m := startMaster(t)
	cl, err := xmlrpc.NewClient(xmlrpc.ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	mc := func(method string, params ...xmlrpc.Value) xmlrpc.Value {
		return st("methodName", str(method), "params", arr(params...))
	}
	const api = "http://127.0.0.1:5/"
	v, err := cl.Call(context.Background(), m.URI(), "system.multicall", arr(
		mc("setParam", str("/roslaunch"), str("/ctl/pid"), st("p", xmlrpc.Double(10))),
		mc("setParam", str("/roslaunch"), str("/rate"), xmlrpc.Int(50)),
		mc("registerPublisher", str("/n"), str("/t"), str("a/B"), str(api)),
		mc("getParam", str("/x"), str("/ctl")),
		mc("noSuchMethod"),
	))
	if err != nil {
		t.Fatal(err)
	}
	results, _ := v.AsArray()
	want := []xmlrpc.Value{
		arr(reply(1, "parameter /ctl/pid set", zero)),
		arr(reply(1, "parameter /rate set", zero)),
		arr(reply(1, "Registered [/n] as publisher of [/t]", arr())),
		arr(reply(1, "Parameter [/ctl]", st("pid", st("p", xmlrpc.Double(10))))),
		st("faultCode", xmlrpc.Int(xmlrpc.FaultMethodNotFound), "faultString", str(`method "noSuchMethod" is not supported`)),
	}
	if len(results) != len(want) {
		t.Fatalf("multicall answered %v", v)
	}
	for i := range want {
		if !xmlrpc.Equal(results[i], want[i]) {
			t.Errorf("result %d: %v, want %v", i, results[i], want[i])
		}
	}
	v, err = cl.Call(context.Background(), m.URI(), "system.multicall", arr(
		mc("unregisterPublisher", str("/n"), str("/t"), str(api)),
		mc("unregisterSubscriber", str("/n"), str("/t"), str(api)),
	))
	if err != nil {
		t.Fatal(err)
	}
	if want := arr(arr(reply(1, "Unregistered [/n] as publisher of [/t]", xmlrpc.Int(1))),
		arr(reply(1, "[/n] is not a registered node", xmlrpc.Int(0)))); !xmlrpc.Equal(v, want) {
		t.Fatalf("unregister multicall: %v, want %v", v, want)
	}
}

// TestCloseWaitsForGoroutines: after Close nothing of the master runs: the server, the
// notifier's workers and the slave-call connections are gone.
func TestCloseWaitsForGoroutines(t *testing.T) {
	node := newFakeNode(t)
	cl, err := xmlrpc.NewClient(xmlrpc.ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	before := runtime.NumGoroutine()
	m, err := New(Config{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	call := func(method string, params ...xmlrpc.Value) {
		if _, err := cl.Call(context.Background(), m.URI(), method, params...); err != nil {
			t.Fatal(err)
		}
	}
	call("registerSubscriber", str("/s"), str("/t"), str("a/B"), str(node.URI))
	call("registerPublisher", str("/p"), str("/t"), str("a/B"), str("http://127.0.0.1:9/"))
	node.await(t, 1)
	cl.Close() // the test's own keep-alive connection to the master
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines before, %d after Close:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestCloseEndsSilentConnections: a connection that never sends a request (a client whose call
// was canceled while it dialed keeps one) does not hold Close: http.Server.Shutdown alone waits
// for it until the grace period ends (or for 5 s, its limit for a new connection).
func TestCloseEndsSilentConnections(t *testing.T) {
	m, err := New(Config{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	m.grace = time.Hour
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", strings.TrimSuffix(strings.TrimPrefix(m.URI(), "http://"), "/"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// A request on another connection: the silent one has been accepted by then (the listener
	// serves connections in order).
	cl, err := xmlrpc.NewClient(xmlrpc.ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Call(context.Background(), m.URI(), "getUri", str("/t")); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	closed := make(chan error, 1)
	go func() { closed <- m.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second): // a hang, not a speed: the grace period is an hour
		t.Fatal("Close waited for a connection that sent no request")
	}
	if m.cut != 1 {
		t.Errorf("Close closed %d connections that sent no request, want 1", m.cut)
	}
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	if n, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatalf("the silent connection still open after Close (read %d bytes)", n)
	}
}
