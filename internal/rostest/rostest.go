package rostest

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
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
)

// Python is Debian's python3, the one that sees rospy, rosbag and genpy.
const Python = "/usr/bin/python3"

// poll is how often the waiting helpers look again.
const poll = 20 * time.Millisecond

// Path returns the path of a ROS tool: name itself when it contains a slash, /usr/bin/<name>
// otherwise.
func Path(name string) string {
	if strings.Contains(name, "/") {
		return name
	}
	return filepath.Join("/usr/bin", name)
}

// Require checks that every tool exists (see Path), then fails the test when CI is set and one is
// missing, and skips it otherwise.
func Require(t testing.TB, tools ...string) {
	t.Helper()
	var missing []string
	for _, tool := range tools {
		if _, err := os.Stat(Path(tool)); err != nil {
			missing = append(missing, Path(tool))
		}
	}
	missingROS(t, missing)
}

// RequirePython checks that Debian's python3 exists and imports every module (e.g. "rospy",
// "std_msgs.msg"), then fails the test when CI is set and something is missing, and skips it
// otherwise.
func RequirePython(t testing.TB, modules ...string) {
	t.Helper()
	Require(t, Python)
	if len(modules) == 0 {
		return
	}
	out, err := exec.Command(Python, "-c", "import "+strings.Join(modules, ", ")).CombinedOutput()
	if err != nil {
		missingROS(t, []string{fmt.Sprintf("python modules %v (%v: %s)", modules, err, strings.TrimSpace(string(out)))})
	}
}

func missingROS(t testing.TB, missing []string) {
	t.Helper()
	if len(missing) == 0 {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("ROS 1 missing under CI (scripts/test installs Debian's ros-core and friends): %s", strings.Join(missing, ", "))
	}
	t.Skipf("ROS 1 missing: %s", strings.Join(missing, ", "))
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago. Another process may take it
// before the caller binds it; StartRosmaster copes with that.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Env is the whole environment of a ROS tool talking to the master at uri (none when uri is ""):
// nothing of the caller's, HOME, ROS_HOME and ROS_LOG_DIR in a fresh temp dir, ROS_IP 127.0.0.1,
// PATH /usr/bin:/bin, unbuffered Python output, then extra ("KEY=value", e.g. PYTHONPATH).
func Env(t testing.TB, uri string, extra ...string) []string {
	home := t.TempDir()
	env := []string{"ROS_HOME=" + home, "ROS_LOG_DIR=" + home, "ROS_IP=127.0.0.1",
		"HOME=" + home, "PATH=/usr/bin:/bin", "PYTHONUNBUFFERED=1"}
	if uri != "" {
		env = append(env, "ROS_MASTER_URI="+uri)
	}
	return append(env, extra...)
}

// Buffer is a bytes.Buffer that goroutines may share, for a process's output.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Proc is a process a test started with Start.
type Proc struct {
	cmd    *exec.Cmd
	stdout Buffer // stdout alone
	all    Buffer // stdout and stderr, interleaved
	done   chan struct{}
	err    error // Wait's; read after done is closed
}

// Start starts the tool name (see Path) with args and env (nil: the test's own environment), in a
// process group of its own, and kills the group and waits for it when the test ends.
func Start(t testing.TB, env []string, name string, args ...string) *Proc {
	t.Helper()
	p := &Proc{done: make(chan struct{})}
	p.cmd = exec.Command(Path(name), args...)
	p.cmd.Env = env
	p.cmd.Stdout = io.MultiWriter(&p.stdout, &p.all)
	p.cmd.Stderr = &p.all
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// A child left in the group may hold the output pipes open after the tool itself exits.
	p.cmd.WaitDelay = 5 * time.Second
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", p.cmd.Args, err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.Stop(syscall.SIGKILL) })
	return p
}

// Pid is the process's id (and its group's).
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Process is the process itself, to signal it alone rather than its group.
func (p *Proc) Process() *os.Process { return p.cmd.Process }

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Err is the process's Wait error (nil: exit status 0; an *exec.ExitError carries another),
// once Done is closed.
func (p *Proc) Err() error {
	<-p.done
	return p.err
}

// Stdout is what the process wrote to stdout so far.
func (p *Proc) Stdout() string { return p.stdout.String() }

// Output is what the process wrote to stdout and stderr so far, interleaved.
func (p *Proc) Output() string { return p.all.String() }

// Signal sends sig to the process's group; after the process has exited it returns
// os.ErrProcessDone.
func (p *Proc) Signal(sig syscall.Signal) error {
	select {
	case <-p.done:
		return os.ErrProcessDone
	default:
		return syscall.Kill(-p.cmd.Process.Pid, sig)
	}
}

// Stop sends sig to the process's group and waits for the process; after 5 s it kills the group.
func (p *Proc) Stop(sig syscall.Signal) {
	p.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		p.Signal(syscall.SIGKILL)
		<-p.done
	}
}

// Exited waits up to d for the process to exit, whatever its status.
func (p *Proc) Exited(t testing.TB, d time.Duration) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(d):
		t.Fatalf("%s did not exit within %v; output:\n%s", p.cmd.Args, d, p.Output())
	}
}

// Wait waits up to d for the process to exit, fails the test unless it exited with status 0
// (killing it on timeout), and returns its stdout.
func (p *Proc) Wait(t testing.TB, d time.Duration) string {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(d):
		p.Stop(syscall.SIGKILL)
		t.Fatalf("%s did not finish within %v; output:\n%s", p.cmd.Args, d, p.Output())
	}
	if p.err != nil {
		t.Fatalf("%s: %v; output:\n%s", p.cmd.Args, p.err, p.Output())
	}
	return p.Stdout()
}

// WaitOutput waits up to d for the process's output (stdout or stderr) to contain s.
func (p *Proc) WaitOutput(t testing.TB, d time.Duration, s string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !strings.Contains(p.Output(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q from %s within %v; output:\n%s", s, p.cmd.Args, d, p.Output())
		}
		time.Sleep(poll)
	}
}

// Run runs the tool name (see Path) to completion, at most d, fails the test unless it exits with
// status 0, and returns its stdout.
func Run(t testing.TB, env []string, d time.Duration, name string, args ...string) string {
	t.Helper()
	return Start(t, env, name, args...).Wait(t, d)
}

// Eventually polls cond every 20 ms until it holds, and fails the test if d passes first.
func Eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(poll)
	}
}

// Logger logs to the test's log at debug level when the test runs with -v, and nowhere otherwise.
// It drops what is logged after the test's cleanup (a goroutine may outlive the test by a little).
func Logger(t testing.TB) *slog.Logger {
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

// Rosmaster is Debian's rosmaster --core, started by StartRosmaster.
type Rosmaster struct {
	port int
	env  []string
	p    *Proc // nil while stopped
}

// StartRosmaster requires rosmaster (see Require), starts it on a free port of 127.0.0.1 and stops
// it when the test ends. Another process may take the port between the probe and rosmaster's bind
// (a busy machine runs many tests), so the master counts as up only when getPid answers with its
// own pid; if it exits first, it is tried again on a new port, three times in all.
func StartRosmaster(t testing.TB) *Rosmaster {
	t.Helper()
	Require(t, "rosmaster")
	m := &Rosmaster{}
	t.Cleanup(func() { m.Stop(t) })
	var err error
	for range 3 {
		m.port = FreePort(t)
		m.env = Env(t, m.URI())
		if err = m.start(t); err == nil {
			return m
		}
	}
	t.Fatal(err)
	return nil
}

// URI is the master's XML-RPC address, "http://127.0.0.1:PORT/".
func (m *Rosmaster) URI() string { return fmt.Sprintf("http://127.0.0.1:%d/", m.port) }

// Stop kills the master (SIGKILL, as a crash would) and waits for it. Stopping a stopped master
// does nothing.
func (m *Rosmaster) Stop(testing.TB) {
	if m.p != nil {
		m.p.Stop(syscall.SIGKILL)
		m.p = nil
	}
}

// Start starts the stopped master again on the same port, as a restarted roscore would.
func (m *Rosmaster) Start(t testing.TB) {
	t.Helper()
	if m.p != nil {
		t.Fatal("rostest: Rosmaster.Start: the master is running")
	}
	if err := m.start(t); err != nil {
		t.Fatal(err)
	}
}

// start starts rosmaster on m.port and waits up to 20 s for getPid to answer with its pid.
func (m *Rosmaster) start(t testing.TB) error {
	p := Start(t, m.env, "rosmaster", "--core", "-p", strconv.Itoa(m.port), "-w", "2")
	deadline := time.Now().Add(20 * time.Second)
	for {
		if pid, err := GetPid(m.URI()); err == nil && pid == p.Pid() {
			m.p = p
			return nil
		}
		select {
		case <-p.Done():
			return fmt.Errorf("rosmaster on port %d exited: %s", m.port, p.Output())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.Stop(syscall.SIGKILL)
			return fmt.Errorf("rosmaster on port %d did not answer getPid within 20 s: %s", m.port, p.Output())
		}
	}
}

// getPidCall is getPid("/rostest") as XML-RPC.
const getPidCall = `<?xml version="1.0"?><methodCall><methodName>getPid</methodName>` +
	`<params><param><value><string>/rostest</string></value></param></params></methodCall>`

// GetPid asks the ROS master at uri for its pid (the master API's getPid, whose answer is the
// triple [code, message, pid]), waiting at most a second.
func GetPid(uri string) (int, error) {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Post(uri, "text/xml", strings.NewReader(getPidCall))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var r struct {
		Values []struct {
			Int string `xml:"int"`
			I4  string `xml:"i4"`
		} `xml:"params>param>value>array>data>value"`
	}
	if err := xml.NewDecoder(resp.Body).Decode(&r); err != nil {
		return 0, fmt.Errorf("getPid at %s: %w", uri, err)
	}
	if len(r.Values) != 3 {
		return 0, fmt.Errorf("getPid at %s: %d values, not the triple [code, message, pid]", uri, len(r.Values))
	}
	code, pid := r.Values[0].Int+r.Values[0].I4, r.Values[2].Int+r.Values[2].I4
	if code != "1" {
		return 0, fmt.Errorf("getPid at %s: code %q", uri, code)
	}
	return strconv.Atoi(strings.TrimSpace(pid))
}
