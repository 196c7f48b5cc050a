package node

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/flowact/flowact/internal/rostest"
	"github.com/flowact/flowact/robot/ros/master"
	"github.com/flowact/flowact/robot/ros/xmlrpc"
)

// Helpers for the tests against Debian's ROS 1 that internal/rostest does not hold: the embedded
// master, rostopic echo's output and the master's answers, which need robot/ros.

// masterKinds are the masters every interop test runs against.
var masterKinds = []struct {
	name  string
	start func(t *testing.T) string // returns the URI; stops at cleanup
}{
	{"rosmaster", func(t *testing.T) string { return rostest.StartRosmaster(t).URI() }},
	{"embedded", startEmbedded},
}

func startEmbedded(t *testing.T) string {
	m, err := master.New(master.Config{Addr: "127.0.0.1:0", Logger: rostest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("embedded master: %v", err)
		}
	})
	return m.URI()
}

// echoMsg is what the tests read of a rostopic echo document.
type echoMsg struct {
	Header struct {
		Stamp struct {
			Secs  int64 `yaml:"secs"`
			Nsecs int64 `yaml:"nsecs"`
		} `yaml:"stamp"`
	} `yaml:"header"`
	Name     []string  `yaml:"name"`
	Position []float64 `yaml:"position"`
	Clock    struct {
		Secs  int64 `yaml:"secs"`
		Nsecs int64 `yaml:"nsecs"`
	} `yaml:"clock"`
}

// parseEcho decodes rostopic echo's YAML documents (separated by "---").
func parseEcho(t testing.TB, out string) []echoMsg {
	t.Helper()
	var msgs []echoMsg
	dec := yaml.NewDecoder(strings.NewReader(out))
	for {
		var m echoMsg
		err := dec.Decode(&m)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("rostopic echo output: %v\n%s", err, out)
		}
		if m.Name != nil || m.Position != nil || m.Clock.Secs != 0 || m.Clock.Nsecs != 0 {
			msgs = append(msgs, m)
		}
	}
	return msgs
}

// masterCall calls method of the master API at uri as /test with args after the caller ID, and
// returns the code and value of the triple [code, message, value] it answers; it fails the test
// on an error or an answer of another shape.
func masterCall(t testing.TB, uri, method string, args ...xmlrpc.Value) (code int64, value xmlrpc.Value) {
	t.Helper()
	c, err := xmlrpc.NewClient(xmlrpc.ClientConfig{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	res, err := c.Call(context.Background(), uri, method, append([]xmlrpc.Value{xmlrpc.String("/test")}, args...)...)
	if err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	a, _ := res.AsArray()
	if len(a) != 3 {
		t.Fatalf("%s answered %v", method, res)
	}
	code, _ = a[0].AsInt()
	return code, a[2]
}

// lookupNode asks the master at uri for node's URI; ok is false when the master does not know it.
func lookupNode(t testing.TB, uri, node string) (ok bool) {
	t.Helper()
	code, _ := masterCall(t, uri, "lookupNode", xmlrpc.String(node))
	return code == 1
}

// subscribers returns the nodes the master at uri lists as subscribers of topic
// (getSystemState).
func subscribers(t testing.TB, uri, topic string) []string {
	t.Helper()
	_, v := masterCall(t, uri, "getSystemState")
	state, _ := v.AsArray()
	if len(state) != 3 {
		t.Fatalf("getSystemState answered %v", v)
	}
	subs, _ := state[1].AsArray()
	for _, e := range subs {
		pair, _ := e.AsArray()
		if len(pair) != 2 {
			continue
		}
		if name, _ := pair[0].AsString(); name != topic {
			continue
		}
		nodes, _ := pair[1].AsArray()
		var out []string
		for _, n := range nodes {
			s, _ := n.AsString()
			out = append(out, s)
		}
		return out
	}
	return nil
}
