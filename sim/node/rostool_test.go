package node

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/flowact/flowact/robot/ros/master"
	"github.com/flowact/flowact/robot/ros/xmlrpc"
)

// Helpers for the tests against Debian's ROS 1: masters, tools and their output.

// needROS skips the test when Debian's ROS 1 tools are missing, and fails it under CI.
func needROS(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range append([]string{"rosmaster"}, tools...) {
		if _, err := os.Stat(filepath.Join("/usr/bin", tool)); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("ROS 1 tool %s missing under CI (install Debian's ros-core and friends): %v", tool, err)
			}
			t.Skipf("ROS 1 tool %s not installed: %v", tool, err)
		}
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// rosEnv is the environment for ROS tools talking to uri, with logs kept in a temp dir.
func rosEnv(t testing.TB, uri string) []string {
	home := t.TempDir()
	return []string{"ROS_MASTER_URI=" + uri, "ROS_HOME=" + home, "ROS_LOG_DIR=" + home, "ROS_IP=127.0.0.1",
		"HOME=" + home, "PATH=/usr/bin:/bin", "PYTHONUNBUFFERED=1"}
}

// masterKinds are the masters every interop test runs against.
var masterKinds = []struct {
	name  string
	start func(t *testing.T) string // returns the URI; stops at cleanup
}{
	{"rosmaster", startRosmaster},
	{"embedded", startEmbedded},
}

// startRosmaster starts Debian's rosmaster on a free port. Another process may take the port
// between the probe and rosmaster's bind (the machine runs many tests), so the master counts as
// up only when getPid answers with its own pid; if it exits, it is tried again on a new port.
func startRosmaster(t *testing.T) string {
	needROS(t)
	for attempt := 0; ; attempt++ {
		port := freePort(t)
		uri := fmt.Sprintf("http://127.0.0.1:%d/", port)
		p := startTool(t, rosEnv(t, uri), "rosmaster", "--core", "-p", strconv.Itoa(port), "-w", "2")
		deadline := time.Now().Add(20 * time.Second)
		for {
			if pid, ok := masterPid(uri); ok && pid == p.cmd.Process.Pid {
				t.Cleanup(func() { p.stop(syscall.SIGINT) })
				return uri
			}
			select {
			case <-p.done:
			case <-time.After(50 * time.Millisecond):
				if time.Now().Before(deadline) {
					continue
				}
				p.stop(syscall.SIGKILL)
			}
			break
		}
		if attempt == 2 {
			t.Fatalf("rosmaster did not come up on a free port in 3 attempts; last output:\n%s", p.out.String())
		}
	}
}

// masterPid asks the master at uri for its pid.
func masterPid(uri string) (int, bool) {
	c, err := xmlrpc.NewClient(xmlrpc.ClientConfig{Timeout: time.Second})
	if err != nil {
		return 0, false
	}
	defer c.Close()
	res, err := c.Call(context.Background(), uri, "getPid", xmlrpc.String("/test"))
	if err != nil {
		return 0, false
	}
	a, _ := res.AsArray()
	if len(a) != 3 {
		return 0, false
	}
	pid, ok := a[2].AsInt()
	return int(pid), ok
}

func startEmbedded(t *testing.T) string {
	m, err := master.New(master.Config{Addr: "127.0.0.1:0", Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("embedded master: %v", err)
		}
	})
	return m.URI()
}

// proc is a tool started by a test, in its own process group so that its children (rosbag
// record's recorder) get the same signals.
type proc struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
	err  error
}

func startTool(t testing.TB, env []string, name string, args ...string) *proc {
	t.Helper()
	path := filepath.Join("/usr/bin", name)
	p := &proc{out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(path, args...)
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.stop(syscall.SIGKILL) })
	return p
}

// stop signals the tool's process group and waits for the tool (killing it after 10 s).
func (p *proc) stop(sig syscall.Signal) {
	select {
	case <-p.done:
		return
	default:
	}
	syscall.Kill(-p.cmd.Process.Pid, sig)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// wait waits up to d for the tool to exit and returns its output; it fails the test on a
// timeout or an error exit.
func (p *proc) wait(t testing.TB, d time.Duration) string {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(d):
		p.stop(syscall.SIGKILL)
		t.Fatalf("%v did not finish within %v; output:\n%s", p.cmd.Args, d, p.out.String())
	}
	if p.err != nil {
		t.Fatalf("%v: %v; output:\n%s", p.cmd.Args, p.err, p.out.String())
	}
	return p.out.String()
}

func runTool(t testing.TB, env []string, d time.Duration, name string, args ...string) string {
	t.Helper()
	return startTool(t, env, name, args...).wait(t, d)
}

// echoMsg is what the tests read of a rostopic echo document.
type echoMsg struct {
	Header struct {
		Stamp struct {
			Secs  int64 `yaml:"secs"`
			Nsecs int64 `yaml:"nsecs"`
		} `yaml:"stamp"`
	} `yaml:"header"`
	Name     []string  `yaml:"name"`
	Position []float64 `yaml:"position"`
	Clock    struct {
		Secs  int64 `yaml:"secs"`
		Nsecs int64 `yaml:"nsecs"`
	} `yaml:"clock"`
}

// parseEcho decodes rostopic echo's YAML documents (separated by "---").
func parseEcho(t testing.TB, out string) []echoMsg {
	t.Helper()
	var msgs []echoMsg
	dec := yaml.NewDecoder(strings.NewReader(strings.ReplaceAll(out, "\n---\n", "\n---\n")))
	for {
		var m echoMsg
		err := dec.Decode(&m)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("rostopic echo output: %v\n%s", err, out)
		}
		if m.Name != nil || m.Position != nil || m.Clock.Secs != 0 || m.Clock.Nsecs != 0 {
			msgs = append(msgs, m)
		}
	}
	return msgs
}

// lookupNode asks the master at uri for node's URI; ok is false when the master does not know it.
func lookupNode(t testing.TB, uri, node string) (ok bool) {
	t.Helper()
	c, err := xmlrpc.NewClient(xmlrpc.ClientConfig{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	res, err := c.Call(context.Background(), uri, "lookupNode", xmlrpc.String("/test"), xmlrpc.String(node))
	if err != nil {
		t.Fatalf("lookupNode: %v", err)
	}
	a, _ := res.AsArray()
	if len(a) != 3 {
		t.Fatalf("lookupNode answered %v", res)
	}
	code, _ := a[0].AsInt()
	return code == 1
}

// eventually polls cond every 50 ms until it holds or d passes.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writers and readers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testLogger logs to the test log at debug level with -v, else nowhere.
func testLogger(t testing.TB) *slog.Logger {
	if !testing.Verbose() {
		return quiet()
	}
	w := &tWriter{t: t}
	t.Cleanup(func() { w.done.Store(true) })
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct {
	t    testing.TB
	done atomic.Bool
}

func (w *tWriter) Write(p []byte) (int, error) {
	if !w.done.Load() {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

// subscribers returns the nodes the master at uri lists as subscribers of topic
// (getSystemState).
func subscribers(t testing.TB, uri, topic string) []string {
	t.Helper()
	c, err := xmlrpc.NewClient(xmlrpc.ClientConfig{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	res, err := c.Call(context.Background(), uri, "getSystemState", xmlrpc.String("/test"))
	if err != nil {
		t.Fatalf("getSystemState: %v", err)
	}
	a, _ := res.AsArray()
	if len(a) != 3 {
		t.Fatalf("getSystemState answered %v", res)
	}
	state, _ := a[2].AsArray()
	if len(state) != 3 {
		t.Fatalf("getSystemState answered %v", res)
	}
	subs, _ := state[1].AsArray()
	for _, e := range subs {
		pair, _ := e.AsArray()
		if len(pair) != 2 {
			continue
		}
		if name, _ := pair[0].AsString(); name != topic {
			continue
		}
		nodes, _ := pair[1].AsArray()
		var out []string
		for _, n := range nodes {
			s, _ := n.AsString()
			out = append(out, s)
		}
		return out
	}
	return nil
}
