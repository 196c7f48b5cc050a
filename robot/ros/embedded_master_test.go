package ros

import (
	"fmt"
	"net"
	"strconv"
	"testing"

	"github.com/flowact/flowact/internal/rostest"
	"github.com/flowact/flowact/robot/ros/master"
)

// embeddedMaster is flowact's in-process master (robot/ros/master) behind testMaster. The first
// Start picks a free port; later Starts reuse it, as a restarted roscore would.
type embeddedMaster struct {
	t    testing.TB
	port int
	m    *master.Master
}

func newEmbeddedMaster(t testing.TB) testMaster {
	e := &embeddedMaster{t: t}
	e.Start(t)
	t.Cleanup(func() { e.Stop(t) })
	return e
}

func (e *embeddedMaster) URI() string { return fmt.Sprintf("http://127.0.0.1:%d/", e.port) }

func (e *embeddedMaster) Start(t testing.TB) {
	t.Helper()
	m, err := master.New(master.Config{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(e.port)), Logger: rostest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	e.m = m
	if e.port == 0 {
		_, p, err := net.SplitHostPort(m.URI()[len("http://") : len(m.URI())-1])
		if err != nil {
			t.Fatalf("master URI %q: %v", m.URI(), err)
		}
		e.port, _ = strconv.Atoi(p)
	}
}

func (e *embeddedMaster) Stop(t testing.TB) {
	if e.m == nil {
		return
	}
	if err := e.m.Close(); err != nil {
		t.Errorf("embedded master close: %v", err)
	}
	e.m = nil
}
