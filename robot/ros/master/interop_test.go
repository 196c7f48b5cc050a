package master

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flowact/flowact/internal/rostest"
	"github.com/flowact/flowact/robot/ros/xmlrpc"
	"gopkg.in/yaml.v3"
)

// These tests run Debian's ROS 1 tools against the embedded master, through internal/rostest:
// without ROS they fail under CI (whose script installs it) and are skipped elsewhere; every
// process gets its own process group and is stopped when its test ends.

const py = rostest.Python

// rosEnv runs ROS tools against one master.
type rosEnv struct {
	t   *testing.T
	m   *Master
	env []string
	dir string // for the files a test hands the tools
}

func newROSEnv(t *testing.T) *rosEnv {
	rostest.Require(t, "rosparam", "rostopic", "rosnode", "roslaunch")
	rostest.RequirePython(t, "rospy", "std_msgs.msg")
	t.Parallel()
	m := startMaster(t)
	return &rosEnv{t: t, m: m, env: rostest.Env(t, m.URI()), dir: t.TempDir()}
}

// run runs a tool to completion (at most 30 s) and returns its stdout.
func (e *rosEnv) run(name string, args ...string) string {
	e.t.Helper()
	return rostest.Run(e.t, e.env, 30*time.Second, name, args...)
}

// start starts a long-running peer, stopped when the test ends.
func (e *rosEnv) start(name string, args ...string) *rostest.Proc {
	e.t.Helper()
	return rostest.Start(e.t, e.env, name, args...)
}

// Bounds of the waits below: a Python node's start-up takes seconds on a loaded machine.
const (
	lineWait = 20 * time.Second // for a line of a peer's output
	exitWait = 15 * time.Second // for a peer to exit
	pollWait = 15 * time.Second // for the master's state to change
)

func (e *rosEnv) param(key string) (xmlrpc.Value, bool) {
	e.m.mu.Lock()
	defer e.m.mu.Unlock()
	return e.m.params.get(key)
}

// nodeAPI returns the slave URI of node id, or "-" (no URI) if unknown; the caller holds e.m.mu.
func (e *rosEnv) nodeAPI(id string) string {
	if ref := e.m.reg.nodes[id]; ref != nil {
		return ref.api
	}
	return "-"
}

func (e *rosEnv) nodes() []string {
	e.m.mu.Lock()
	defer e.m.mu.Unlock()
	var out []string
	for id := range e.m.reg.nodes {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// yamlOf parses a tool's YAML output.
func yamlOf(t *testing.T, s string) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("output is not YAML: %v\n%s", err, s)
	}
	return v
}

func TestRealRosparam(t *testing.T) {
	e := newROSEnv(t)
	e.run("/usr/bin/rosparam", "set", "/a", "[1, 2, 3]")
	e.run("/usr/bin/rosparam", "set", "/d", "{x: 1.5, y: {z: hello, flag: true}}")
	if v, _ := e.param("/a"); !xmlrpc.Equal(v, arr(i1, i2, i3)) {
		t.Fatalf("/a stored as %v", v)
	}
	if v, _ := e.param("/d/y"); !xmlrpc.Equal(v, st("z", str("hello"), "flag", xmlrpc.Bool(true))) {
		t.Fatalf("/d/y stored as %v", v)
	}
	if got := yamlOf(t, e.run("/usr/bin/rosparam", "get", "/a")); !slices.Equal(got.([]any), []any{1, 2, 3}) {
		t.Fatalf("rosparam get /a: %v", got)
	}
	got := yamlOf(t, e.run("/usr/bin/rosparam", "get", "/d")).(map[string]any)
	if got["x"] != 1.5 || got["y"].(map[string]any)["z"] != "hello" || got["y"].(map[string]any)["flag"] != true {
		t.Fatalf("rosparam get /d: %v", got)
	}

	yml := filepath.Join(e.dir, "p.yaml")
	if err := os.WriteFile(yml, []byte("arm:\n  joints: [j1, j2]\n  limits: {v: 2.0, a: 5}\n  name: left\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.run("/usr/bin/rosparam", "load", yml, "/robot")
	if v, _ := e.param("/robot/arm/joints"); !xmlrpc.Equal(v, strs("j1", "j2")) {
		t.Fatalf("loaded joints: %v", v)
	}
	if v, _ := e.param("/robot/arm/limits/a"); !xmlrpc.Equal(v, xmlrpc.Int(5)) {
		t.Fatalf("loaded limit: %v", v)
	}
	list := strings.Fields(e.run("/usr/bin/rosparam", "list"))
	for _, k := range []string{"/a", "/d/x", "/d/y/z", "/robot/arm/name", "/run_id"} {
		if !slices.Contains(list, k) {
			t.Errorf("rosparam list lacks %s: %v", k, list)
		}
	}
	e.run("/usr/bin/rosparam", "delete", "/d/y")
	if _, ok := e.param("/d/y"); ok {
		t.Fatal("/d/y survived rosparam delete")
	}
}

func TestRealRoslaunch(t *testing.T) {
	e := newROSEnv(t)
	launch := filepath.Join(e.dir, "t.launch")
	if err := os.WriteFile(launch, []byte(`<launch>
  <param name="robot_name" value="arm7"/>
  <param name="rate" type="double" value="50"/>
  <group ns="ctl">
    <param name="gain" value="3"/>
    <rosparam>
      joints: [j1, j2]
      pid: {p: 10.0, i: 0.1}
    </rosparam>
  </group>
  <node pkg="rostopic" type="rostopic" name="talker" args="pub -r 5 /launched std_msgs/String 'data: x'"/>
</launch>
`), 0o644); err != nil {
		t.Fatal(err)
	}
	// roslaunch uploads the parameters (in one system.multicall), then runs the node.
	rl := e.start("/usr/bin/roslaunch", launch)
	rostest.Eventually(t, pollWait, "the launched node publishes /launched", func() bool {
		e.m.mu.Lock()
		defer e.m.mu.Unlock()
		return slices.Equal(e.m.reg.apis(kindPub, "/launched"), []string{e.nodeAPI("/talker")})
	})
	checks := map[string]xmlrpc.Value{
		"/robot_name": str("arm7"),
		"/rate":       xmlrpc.Double(50),
		"/ctl/gain":   i3,
		"/ctl/joints": strs("j1", "j2"),
		"/ctl/pid":    st("p", xmlrpc.Double(10), "i", xmlrpc.Double(0.1)),
		"/run_id":     str("test-run"),
	}
	for k, want := range checks {
		if v, ok := e.param(k); !ok || !xmlrpc.Equal(v, want) {
			t.Errorf("%s = %v, want %v", k, v, want)
		}
	}
	if _, ok := e.param("/rosversion"); !ok {
		t.Error("roslaunch did not set /rosversion")
	}
	// On SIGINT roslaunch stops its node, which unregisters.
	rl.Process().Signal(syscall.SIGINT) // roslaunch alone: it must stop its node
	rl.Exited(t, exitWait)
	rostest.Eventually(t, pollWait, "the launched node is unregistered", func() bool { return len(e.nodes()) == 0 })
}

// pyNode is a rospy node; its first argument picks a behaviour, its second the node name.
const pyNode = `
import sys, rospy
from std_msgs.msg import String
mode, name = rospy.myargv()[1:3]
rospy.init_node(name)
if mode == "listen":
    rospy.Subscriber("/chatter", String, lambda m: print("heard", m.data, flush=True))
    print("ready", flush=True)
    rospy.spin()
    print("bye", flush=True)
elif mode == "param":
    print("got", rospy.get_param_cached("/gain"), flush=True)
    print("got ns", sorted(rospy.get_param_cached("/ns").items()), flush=True)
    r = rospy.Rate(50)
    while not rospy.is_shutdown() and rospy.get_param_cached("/gain") != 2:
        r.sleep()
    print("updated", rospy.get_param_cached("/gain"), flush=True)
    while not rospy.is_shutdown() and rospy.get_param_cached("/ns").get("x") != 5:
        r.sleep()
    print("updated ns", sorted(rospy.get_param_cached("/ns").items()), flush=True)
`

// TestRealTopics: rostopic pub and a rospy subscriber find each other through the master;
// rostopic echo receives; rosnode list shows the nodes; rosnode kill and SIGTERM remove them.
func TestRealTopics(t *testing.T) {
	e := newROSEnv(t)
	listener := e.start(py, "-c", pyNode, "listen", "listener")
	listener.WaitOutput(t, lineWait, "ready")
	pub := e.start("/usr/bin/rostopic", "pub", "-r", "10", "/chatter", "std_msgs/String", "data: hi")
	listener.WaitOutput(t, lineWait, "heard hi")
	if out := e.run("/usr/bin/rostopic", "echo", "-n", "1", "/chatter"); !strings.Contains(out, `data: "hi"`) {
		t.Fatalf("rostopic echo printed %q", out)
	}
	list := strings.Fields(e.run("/usr/bin/rosnode", "list"))
	if !slices.Contains(list, "/listener") || !slices.ContainsFunc(list, func(n string) bool { return strings.HasPrefix(n, "/rostopic_") }) {
		t.Fatalf("rosnode list: %v", list)
	}

	e.run("/usr/bin/rosnode", "kill", "/listener")
	listener.Exited(t, exitWait)
	rostest.Eventually(t, pollWait, "/listener is unregistered", func() bool { return !slices.Contains(e.nodes(), "/listener") })

	pub.Signal(syscall.SIGTERM) // rospy unregisters (through system.multicall) on SIGTERM
	pub.Exited(t, exitWait)
	rostest.Eventually(t, pollWait, "every node is unregistered", func() bool { return len(e.nodes()) == 0 })
}

// TestRealParamSubscription: rospy's get_param_cached subscribes, then follows changes through
// paramUpdate, for a scalar and for a key inside a subscribed namespace.
func TestRealParamSubscription(t *testing.T) {
	e := newROSEnv(t)
	cl, err := xmlrpc.NewClient(xmlrpc.ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	set := func(key string, v xmlrpc.Value) {
		t.Helper()
		if _, err := cl.Call(context.Background(), e.m.URI(), "setParam", str("/tester"), str(key), v); err != nil {
			t.Fatal(err)
		}
	}
	set("/gain", i1)
	set("/ns", st("x", i1, "y", i2))
	n := e.start(py, "-c", pyNode, "param", "watcher")
	n.WaitOutput(t, lineWait, "got 1")
	n.WaitOutput(t, lineWait, "got ns [('x', 1), ('y', 2)]")
	set("/gain", i2)
	n.WaitOutput(t, lineWait, "updated 2")
	set("/ns/x", xmlrpc.Int(5))
	n.WaitOutput(t, lineWait, "updated ns [('x', 5), ('y', 2)]")
	n.Exited(t, exitWait)
}

// TestRealDuplicateName: a second node with the same name makes the master shut the first down.
func TestRealDuplicateName(t *testing.T) {
	e := newROSEnv(t)
	first := e.start(py, "-c", pyNode, "listen", "dup")
	first.WaitOutput(t, lineWait, "ready")
	second := e.start(py, "-c", pyNode, "listen", "dup")
	second.WaitOutput(t, lineWait, "ready")
	first.Exited(t, exitWait)
	if !strings.Contains(first.Output(), "bye") {
		t.Fatalf("first node did not shut down cleanly:\n%s", first.Output())
	}
	select {
	case <-second.Done():
		t.Fatalf("the second node exited too:\n%s", second.Output())
	default:
	}
	if got := e.nodes(); !slices.Equal(got, []string{"/dup"}) {
		t.Fatalf("nodes %v", got)
	}
}
