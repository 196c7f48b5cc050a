package main

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowact/flowact/robot/ros/xmlrpc"
)

// TestMasterCommand starts `flowact master` on a free port, asks it for its pid over the Master
// API, and stops it with a cancelled context, as SIGINT would.
func TestMasterCommand(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"master", "--addr", "127.0.0.1:0"}, out, out)
	}()
	var uri string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if s := out.String(); strings.Contains(s, "ROS_MASTER_URI=") {
			uri = strings.TrimSpace(strings.SplitN(strings.SplitN(s, "ROS_MASTER_URI=", 2)[1], "\n", 2)[0])
			break
		}
	}
	if uri == "" {
		cancel()
		t.Fatalf("master printed no URI: %q", out.String())
	}
	c, err := xmlrpc.NewClient(xmlrpc.ClientConfig{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	res, err := c.Call(ctx, uri, "getPid", xmlrpc.String("/test"))
	if err != nil {
		t.Fatalf("getPid: %v", err)
	}
	arr, ok := res.AsArray()
	if !ok || len(arr) != 3 {
		t.Fatalf("getPid answered %v", res)
	}
	if code, _ := arr[0].AsInt(); code != 1 {
		t.Fatalf("getPid answered %v, want status code 1", res)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d after cancel; output %q", code, out.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("master did not stop after cancel")
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader on different goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
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
