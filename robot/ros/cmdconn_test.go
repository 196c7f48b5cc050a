package ros

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/goroslib/v2/pkg/apimaster"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/std_msgs"

	"github.com/flowact/flowact/internal/rostest"
	"github.com/flowact/flowact/robot/ros/xmlrpc"
)

// masterClient is a Master API client for the tests, as node /cmdconn_test.
func masterClient(m testMaster) *apimaster.Client {
	return apimaster.NewClient(m.URI()[len("http://"):len(m.URI())-1], "/cmdconn_test", &http.Client{Timeout: 5 * time.Second})
}

// TestBrakeAfterShutdown: the runtime streams per-tick commands to the simulator's node and is
// told to shut down from outside, as `rosnode kill` does (the slave API's shutdown). goroslib
// ends the node's connection at once; the commands written afterwards (a loop braking) reach the
// robot through the command connection, none lost, until Run's context ends; then
// both connections unregister and Run returns ErrShutdown.
func TestBrakeAfterShutdown(t *testing.T) {
	rostest.Require(t, "rosmaster")
	forEachMaster(t, func(t *testing.T, m testMaster) {
		sink := &simRecordSink{}
		side, err := NewSimSide(SimSideConfig{Node: testConfig(t, m, "")}, testModel(), sink)
		if err != nil {
			t.Fatal(err)
		}
		runSimSide(t, side)
		n, err := New(testConfig(t, m, "flowact"), testModel(), Handlers{})
		if err != nil {
			t.Fatal(err)
		}
		stop := runNode(t, n)
		waitReady(t, n)
		mc := masterClient(m)
		if _, err := mc.LookupNode("/flowact_command"); err != nil {
			t.Fatalf("the command connection is not registered once the node is ready: %v", err)
		}

		stopStream := streamNumbered(t, n.Driver())
		rostest.Eventually(t, 20*time.Second, "commands at the simulator", func() bool { c, _ := sink.counts(); return c >= 10 })

		uri, err := mc.LookupNode("/flowact")
		if err != nil {
			t.Fatal(err)
		}
		rpc, err := xmlrpc.NewClient(xmlrpc.ClientConfig{Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer rpc.Close()
		if _, err := rpc.Call(context.Background(), uri, "shutdown", xmlrpc.String("/rosnode"), xmlrpc.String("user request")); err != nil {
			t.Fatalf("shutdown: %v", err)
		}
		select {
		case <-n.ShutdownRequested():
		case <-time.After(10 * time.Second):
			t.Fatal("no shutdown request reported")
		}
		if !strings.Contains(n.ShutdownReason(), "user request") {
			t.Errorf("reason %q", n.ShutdownReason())
		}
		c0, _ := sink.counts()
		rostest.Eventually(t, 10*time.Second, "commands through the command connection", func() bool { c, _ := sink.counts(); return c >= c0+30 })
		sent := stopStream()
		if err := stop(); !errors.Is(err, ErrShutdown) {
			t.Errorf("Run: %v, want ErrShutdown", err)
		}
		for _, name := range []string{"/flowact", "/flowact_command"} {
			if _, err := mc.LookupNode(name); err == nil {
				t.Errorf("%s still registered after Run returned", name)
			}
		}
		received := sink.receivedInOrder(t, sent)
		t.Logf("%d commands, %d of them after the shutdown request, none lost", received, received-c0)
	})
}

// TestCommandTopicBusy: a node does not become ready while another live node publishes on its
// command topic; after Config.CommandWait Run ends with ErrCommandTopicBusy naming it. Once
// the other publisher has gone, a node starts at once.
func TestCommandTopicBusy(t *testing.T) {
	m := newEmbeddedMaster(t)
	peer := peerNode(t, m, "other")
	pub := publisher[std_msgs.Float64MultiArray](t, peer, "/flowact/command")
	cfg := testConfig(t, m, "flowact")
	cfg.CommandWait = 300 * time.Millisecond
	n, err := New(cfg, testModel(), Handlers{})
	if err != nil {
		t.Fatal(err)
	}
	err = n.Run(context.Background())
	if !errors.Is(err, ErrCommandTopicBusy) || !strings.Contains(err.Error(), "/other") {
		t.Fatalf("Run: %v, want ErrCommandTopicBusy naming /other", err)
	}
	select {
	case <-n.Ready():
		t.Error("ready beside another publisher of the command topic")
	default:
	}
	pub.Close()
	n2, err := New(cfg, testModel(), Handlers{})
	if err != nil {
		t.Fatal(err)
	}
	runNode(t, n2)
	waitReady(t, n2)
}
