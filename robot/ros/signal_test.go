package ros

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flowact/flowact/internal/rostest"
)

// TestHelperNodeProcess is not a test: TestSIGTERMUnregisters runs this test binary again with
// FLOWACT_ROS_HELPER set, and this function then is a flowact node process whose context is
// connected to SIGINT and SIGTERM, as cmd/flowact's is.
func TestHelperNodeProcess(t *testing.T) {
	if os.Getenv("FLOWACT_ROS_HELPER") == "" {
		t.Skip("helper process for TestSIGTERMUnregisters")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	n, err := New(Config{Name: "flowact_child", Host: "127.0.0.1", Logger: rostest.Logger(t)}, testModel(), Handlers{})
	if err != nil {
		fmt.Println("NEW FAILED", err)
		os.Exit(2)
	}
	go func() {
		<-n.Ready()
		fmt.Println("READY")
	}()
	fmt.Println("RUN RETURNED", n.Run(ctx))
	os.Exit(0)
}

// TestSIGTERMUnregisters: a node process that gets SIGTERM unregisters everything from the
// master before it exits, so the ROS graph forgets it (what `rosnode list` shows).
func TestSIGTERMUnregisters(t *testing.T) {
	m := newEmbeddedMaster(t)
	p := rostest.Start(t, append(os.Environ(), "FLOWACT_ROS_HELPER=1", "ROS_MASTER_URI="+m.URI()),
		os.Args[0], "-test.run=^TestHelperNodeProcess$", "-test.count=1")
	peer := peerNode(t, m, "observer")
	listed := func() bool {
		nodes, err := peer.MasterGetNodes()
		if err != nil {
			t.Fatal(err)
		}
		_, ok := nodes["/flowact_child"]
		return ok
	}
	rostest.Eventually(t, 30*time.Second, "the child node in the master's graph", func() bool {
		return strings.Contains(p.Output(), "READY") && listed()
	})
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	p.Exited(t, 30*time.Second)
	if !strings.Contains(p.Output(), "RUN RETURNED <nil>") {
		t.Errorf("child output:\n%s", p.Output())
	}
	if listed() {
		t.Errorf("the master still lists /flowact_child after it exited on SIGTERM")
	}
}
