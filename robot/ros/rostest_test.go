package ros

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
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Helpers for the interop tests against Debian's real ROS 1 (rosmaster, rostopic, rosnode,
// rosservice, rospy under /usr/bin/python3). Under CI they fail when ROS is missing; elsewhere
// they skip. Every process a test starts is killed and waited for in t.Cleanup.

// needROS returns the path of tool in /usr/bin, or fails (CI) / skips the test.
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

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// testMaster is a ROS master the tests can stop and start again on the same port.
type testMaster interface {
	URI() string
	Stop(t testing.TB)
	Start(t testing.TB)
}

// masterKinds are the masters every interop test runs against: Debian's rosmaster and
// flowact's embedded one (robot/ros/master).
var masterKinds = []struct {
	name string
	new  func(t testing.TB) testMaster
}{
	{"rosmaster", newRosmaster},
	{"embedded", newEmbeddedMaster},
}

// forEachMaster runs f as a parallel subtest per master kind, each with a fresh master.
func forEachMaster(t *testing.T, f func(t *testing.T, m testMaster)) {
	for _, k := range masterKinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			m := k.new(t)
			f(t, m)
		})
	}
}

// rosEnv is the environment for ROS tools talking to uri, with logs kept in a temp dir.
func rosEnv(t testing.TB, uri string) []string {
	home := t.TempDir()
	env := []string{"ROS_MASTER_URI=" + uri, "ROS_HOME=" + home, "ROS_LOG_DIR=" + home, "ROS_IP=127.0.0.1",
		"HOME=" + home, "PATH=/usr/bin:/bin", "PYTHONUNBUFFERED=1"}
	return env
}

type rosmaster struct {
	port int
	env  []string
	cmd  *exec.Cmd
	done chan struct{}
	out  *syncBuffer
}

func newRosmaster(t testing.TB) testMaster {
	needROS(t)
	m := &rosmaster{port: freePort(t)}
	m.env = rosEnv(t, m.URI())
	m.Start(t)
	t.Cleanup(func() { m.Stop(t) })
	return m
}

func (m *rosmaster) URI() string { return fmt.Sprintf("http://127.0.0.1:%d/", m.port) }

func (m *rosmaster) Start(t testing.TB) {
	t.Helper()
	m.out = &syncBuffer{}
	m.cmd = exec.Command("/usr/bin/rosmaster", "--core", "-p", fmt.Sprint(m.port), "-w", "2")
	m.cmd.Env = m.env
	m.cmd.Stdout, m.cmd.Stderr = m.out, m.out
	if err := m.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	m.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { cmd.Wait(); close(done) }(m.cmd, m.done)
	// Ready when it answers on its port.
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", m.port), time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-m.done:
			t.Fatalf("rosmaster exited: %s", m.out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("rosmaster did not come up: %s", m.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (m *rosmaster) Stop(t testing.TB) {
	if m.cmd == nil {
		return
	}
	m.cmd.Process.Signal(syscall.SIGKILL)
	<-m.done
	m.cmd = nil
}

// syncBuffer is a goroutine-safe bytes.Buffer for process output.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// proc is a background ROS tool.
type proc struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
	err  error
}

// startTool starts /usr/bin/<name> args... (or /usr/bin/python3 when name ends in .py) with env
// and kills it at cleanup.
func startTool(t *testing.T, env []string, name string, args ...string) *proc {
	t.Helper()
	path := filepath.Join("/usr/bin", name)
	if strings.HasSuffix(name, ".py") {
		path, args = "/usr/bin/python3", append([]string{name}, args...)
	}
	p := &proc{out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(path, args...)
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.stop(syscall.SIGKILL) })
	return p
}

// stop signals the tool and waits for it.
func (p *proc) stop(sig syscall.Signal) {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// wait waits up to d for the tool to exit and returns its output.
func (p *proc) wait(t *testing.T, d time.Duration) string {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(d):
		p.stop(syscall.SIGKILL)
		t.Fatalf("%s did not finish within %v; output:\n%s", p.cmd.Args, d, p.out.String())
	}
	if p.err != nil {
		t.Fatalf("%s: %v; output:\n%s", p.cmd.Args, p.err, p.out.String())
	}
	return p.out.String()
}

// runTool runs a ROS tool to completion (at most d) and returns its output.
func runTool(t *testing.T, env []string, d time.Duration, name string, args ...string) string {
	t.Helper()
	return startTool(t, env, name, args...).wait(t, d)
}

// eventually polls cond every 20 ms until it holds or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// testLogger logs to the test log (debug level when -v).
func testLogger(t testing.TB) *slog.Logger {
	var w io.Writer = io.Discard
	if testing.Verbose() {
		tw := &tWriter{t: t}
		t.Cleanup(func() { tw.done.Store(true) })
		w = tw
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// tWriter writes to t.Log until the test's cleanup, then drops.
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

// runNode starts n.Run in the background and stops it at cleanup; the returned stop cancels it
// and returns Run's error (a test that calls stop checks that error itself).
func runNode(t *testing.T, n *Node) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- n.Run(ctx) }()
	var once sync.Once
	var err error
	var explicit atomic.Bool
	wait := func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-errc:
			case <-time.After(20 * time.Second):
				err = fmt.Errorf("Run did not return 20 s after cancel")
			}
		})
		return err
	}
	t.Cleanup(func() {
		if err := wait(); err != nil && !explicit.Load() {
			t.Error(err)
		}
	})
	return func() error {
		explicit.Store(true)
		return wait()
	}
}
