package ros

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"
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
	n, err := New(Config{Name: "flowact_child", Host: "127.0.0.1", Logger: testLogger(t)}, testModel(), Handlers{})
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
	out := &syncBuffer{}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperNodeProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), "FLOWACT_ROS_HELPER=1", "ROS_MASTER_URI="+m.URI())
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{}) // closed when the child has exited
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
	})
	peer := peerNode(t, m, "observer")
	listed := func() bool {
		nodes, err := peer.MasterGetNodes()
		if err != nil {
			t.Fatal(err)
		}
		_, ok := nodes["/flowact_child"]
		return ok
	}
	eventually(t, 30*time.Second, "the child node in the master's graph", func() bool {
		return strings.Contains(out.String(), "READY") && listed()
	})
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("child did not exit 30 s after SIGTERM:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "RUN RETURNED <nil>") {
		t.Errorf("child output:\n%s", out.String())
	}
	if listed() {
		t.Errorf("the master still lists /flowact_child after it exited on SIGTERM")
	}
}
