package rostest

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestRosmasterRestart: the master answers getPid with its own pid, comes back on the same port
// after Stop and Start, and is gone after Stop.
func TestRosmasterRestart(t *testing.T) {
	m := StartRosmaster(t)
	first, err := GetPid(m.URI())
	if err != nil || first != m.p.Pid() {
		t.Fatalf("getPid: %d, %v; want %d", first, err, m.p.Pid())
	}
	m.Stop(t)
	if _, err := GetPid(m.URI()); err == nil {
		t.Fatal("getPid answered after Stop")
	}
	m.Start(t)
	if pid, err := GetPid(m.URI()); err != nil || pid == first || pid != m.p.Pid() {
		t.Fatalf("after restart getPid: %d, %v; want %d (not %d)", pid, err, m.p.Pid(), first)
	}
}

// TestProc: Run returns stdout alone, Output has both streams, a failing tool fails the test,
// and Stop's signal reaches the process.
func TestProc(t *testing.T) {
	Require(t, "sh")
	if got := Run(t, nil, 10*time.Second, "sh", "-c", "echo out; echo err >&2"); got != "out\n" {
		t.Errorf("Run returned %q, want stdout alone", got)
	}
	p := Start(t, nil, "sh", "-c", "echo out; echo err >&2; exec sleep 60")
	p.WaitOutput(t, 10*time.Second, "err")
	if !strings.Contains(p.Output(), "out") || p.Stdout() != "out\n" {
		t.Errorf("Output %q, Stdout %q", p.Output(), p.Stdout())
	}
	p.Stop(syscall.SIGTERM)
	p.Exited(t, time.Second)
	if p.err == nil || !strings.Contains(p.err.Error(), "terminated") {
		t.Errorf("after SIGTERM Wait returned %v", p.err)
	}

	var ft fakeT
	ft.TB = t
	func() {
		defer func() { recover() }() // Fatalf ends the fake test by panicking
		Run(&ft, nil, 10*time.Second, "sh", "-c", "echo boom >&2; exit 3")
	}()
	if !strings.Contains(ft.msg, "exit status 3") || !strings.Contains(ft.msg, "boom") {
		t.Errorf("a failing tool reported %q", ft.msg)
	}
}

// TestRequire: a missing tool fails the test when CI is set and skips it otherwise; present
// tools do neither.
func TestRequire(t *testing.T) {
	for _, ci := range []string{"1", ""} {
		t.Setenv("CI", ci)
		for _, tools := range [][]string{{"sh"}, {"sh", "/nonexistent/rostool"}} {
			ft := fakeT{TB: t}
			func() {
				defer func() { recover() }()
				Require(&ft, tools...)
			}()
			missing := len(tools) == 2
			switch {
			case !missing && (ft.msg != "" || ft.skipped != ""):
				t.Errorf("CI=%q, %v present: failed %q, skipped %q", ci, tools, ft.msg, ft.skipped)
			case missing && ci != "" && (!strings.Contains(ft.msg, "/nonexistent/rostool") || ft.skipped != ""):
				t.Errorf("CI=%q, a tool missing: failed %q, skipped %q; want a failure", ci, ft.msg, ft.skipped)
			case missing && ci == "" && (ft.msg != "" || !strings.Contains(ft.skipped, "/nonexistent/rostool")):
				t.Errorf("CI unset, a tool missing: failed %q, skipped %q; want a skip", ft.msg, ft.skipped)
			}
		}
	}
}

// fakeT records Fatalf and Skipf and panics to stop the caller, as t.FailNow and t.SkipNow stop a
// test.
type fakeT struct {
	testing.TB
	msg     string
	skipped string
}

func (f *fakeT) Skipf(format string, args ...any) {
	f.skipped = fmt.Sprintf(format, args...)
	panic(f)
}

func (f *fakeT) Helper() {}

func (f *fakeT) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	panic(f)
}
