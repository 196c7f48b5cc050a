package master

import (
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/goroslib/v2"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/std_msgs"
)

// TestGoroslibPeers runs goroslib v2.1.4 nodes (what robot/ros builds on) against the master:
// registration with publisherUpdate fan-out, a message through, scalar parameters, node
// listing, and unregistration on Close.
func TestGoroslibPeers(t *testing.T) {
	m := startMaster(t)
	addr := strings.TrimSuffix(strings.TrimPrefix(m.URI(), "http://"), "/")
	newNode := func(name string) *goroslib.Node {
		n, err := goroslib.NewNode(goroslib.NodeConf{MasterAddress: addr, Name: name, Host: "127.0.0.1",
			LogDestinations: goroslib.LogDestinationCallback, OnLog: func(goroslib.LogLevel, string) {}})
		if err != nil {
			t.Fatalf("goroslib node %s: %v", name, err)
		}
		return n
	}
	subNode := newNode("gsub")
	got := make(chan string, 16)
	sub, err := goroslib.NewSubscriber(goroslib.SubscriberConf{Node: subNode, Topic: "chatter",
		Callback: func(msg *std_msgs.String) {
			select {
			case got <- msg.Data:
			default:
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	pubNode := newNode("gpub")
	pub, err := goroslib.NewPublisher(goroslib.PublisherConf{Node: pubNode, Topic: "chatter", Msg: &std_msgs.String{}})
	if err != nil {
		t.Fatal(err)
	}
	// The subscriber learns of the publisher through publisherUpdate, then connects.
	deadline := time.After(15 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for done := false; !done; {
		select {
		case s := <-got:
			if s != "hello" {
				t.Fatalf("received %q", s)
			}
			done = true
		case <-tick.C:
			pub.Write(&std_msgs.String{Data: "hello"})
		case <-deadline:
			t.Fatal("no message through the master")
		}
	}

	if err := pubNode.ParamSetFloat64("/rate", 12.5); err != nil {
		t.Fatal(err)
	}
	if v, err := subNode.ParamGetFloat64("/rate"); err != nil || v != 12.5 {
		t.Fatalf("ParamGetFloat64: %v %v", v, err)
	}
	if v, err := subNode.ParamGetString("/run_id"); err != nil || v != "test-run" {
		t.Fatalf("run_id: %q %v", v, err)
	}
	nodes, err := subNode.MasterGetNodes()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"/gpub", "/gsub"} {
		if _, ok := nodes[n]; !ok {
			t.Errorf("MasterGetNodes lacks %s: %v", n, nodes)
		}
	}

	pub.Close()
	pubNode.Close()
	sub.Close()
	subNode.Close()
	m.mu.Lock()
	left := len(m.reg.nodes)
	m.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d nodes still registered after Close", left)
	}
}
