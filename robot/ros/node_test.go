package ros

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/flowact/flowact/internal/rostest"
	"github.com/flowact/flowact/robot"
)

// closedURI returns a master URI at which nothing listens.
func closedURI(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr + "/"
}

// TestConnectTimeout: with no master at the address, Node.Run and SimSide.Run end with
// ErrMaster once Config.ConnectTimeout has passed, in one line naming the master and the cause;
// cancelling while they wait returns nil.
func TestConnectTimeout(t *testing.T) {
	uri := closedURI(t)
	cfg := Config{MasterURI: uri, Host: "127.0.0.1", Getenv: envMap{}.get, ConnectTimeout: 300 * time.Millisecond,
		RetryMin: 20 * time.Millisecond, RetryMax: 100 * time.Millisecond, Logger: rostest.Logger(t)}
	n, err := New(cfg, testModel(), Handlers{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSimSide(SimSideConfig{Node: cfg}, testModel(), &simRecordSink{})
	if err != nil {
		t.Fatal(err)
	}
	for what, run := range map[string]func(context.Context) error{"node": n.Run, "simulator": s.Run} {
		err := run(context.Background())
		if !errors.Is(err, ErrMaster) || !strings.Contains(err.Error(), uri) || !strings.Contains(err.Error(), what) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: Run: %v; want ErrMaster naming %s on one line", what, err, uri)
		}
		// The cause is the attempts' (nothing listens), not the deadline that ended them.
		if !strings.Contains(err.Error(), "connection refused") {
			t.Errorf("%s: Run: %v; want the cause, connection refused", what, err)
		}
	}
	cfg.ConnectTimeout = 0 // wait as long as it takes
	w, err := New(cfg, testModel(), Handlers{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := w.Run(ctx); err != nil {
		t.Errorf("cancelled while waiting: %v, want nil", err)
	}
}

// TestFlush: when Run's context ends, the node waits for its sender to hand the commands
// already written to the publisher (as the sender does: take, then count it sent) before it
// unregisters, and gives up after Config.FlushTimeout when they never go (on synctest's clock).
func TestFlush(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := Config{MasterURI: "http://127.0.0.1:1/", Getenv: envMap{}.get, FlushTimeout: time.Second, Logger: rostest.Logger(t)}
		n, err := New(cfg, testModel(), Handlers{})
		if err != nil {
			t.Fatal(err)
		}
		cmd := &robot.Command{Position: []float64{1, 2, 3}}
		if err := n.Driver().WriteCommand(cmd); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { n.flush(); close(done) }()
		time.Sleep(500 * time.Millisecond)
		synctest.Wait()
		select {
		case <-done:
			t.Fatal("flush returned with a command not yet sent")
		default:
		}
		if n.cmd.take() == nil {
			t.Fatal("no command waiting")
		}
		n.cmd.sent.Add(1)
		<-done
		if s := n.Driver().Stats(); s.CommandsSent != 1 {
			t.Errorf("stats %+v", s)
		}
		// Nobody sends: flush gives up after the timeout.
		n.Driver().WriteCommand(cmd)
		t0 := time.Now()
		n.flush()
		if d := time.Since(t0); d < time.Second || d > time.Second+10*flushPoll {
			t.Errorf("flush gave up after %v, want the 1 s timeout", d)
		}
	})
}
