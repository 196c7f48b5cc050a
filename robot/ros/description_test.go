package ros

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/flowact/flowact/internal/rostest"
	"github.com/flowact/flowact/robot/ros/xmlrpc"
)

// getParamString reads a string parameter from the master at uri ("", false when unset).
func getParamString(t *testing.T, uri, key string) (string, bool) {
	t.Helper()
	c, err := xmlrpc.NewClient(xmlrpc.ClientConfig{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	res, err := c.Call(context.Background(), uri, "getParam", xmlrpc.String("/test"), xmlrpc.String(key))
	if err != nil {
		t.Fatal(err)
	}
	a, _ := res.AsArray()
	if len(a) != 3 {
		t.Fatalf("getParam %s answered %v", key, res)
	}
	if code, _ := a[0].AsInt(); code != 1 {
		return "", false
	}
	s, ok := a[2].AsString()
	if !ok {
		t.Fatalf("%s is %v, not a string", key, a[2])
	}
	return s, true
}

// TestRobotDescription: the simulator and the runtime node set robot_description, in their
// namespace, from Config.RobotDescription when no one has; one that rosparam set before is
// kept, and rosparam reads theirs.
func TestRobotDescription(t *testing.T) {
	rostest.Require(t, "rosparam")
	const desc = `<?xml version="1.0"?>
<robot name="arm">
  <link name="base"><visual><geometry><sphere radius="0.03"/></geometry></visual></link>
</robot>
`
	forEachMaster(t, func(t *testing.T, m testMaster) {
		env := rostest.Env(t, m.URI())
		// The simulator, in the root namespace: nothing set yet.
		cfg := testConfig(t, m, "sim")
		cfg.RobotDescription = desc
		side, err := NewSimSide(SimSideConfig{Node: cfg}, testModel(), &simRecordSink{})
		if err != nil {
			t.Fatal(err)
		}
		runSimSide(t, side)
		if got, ok := getParamString(t, m.URI(), "/robot_description"); got != desc {
			t.Errorf("/robot_description = %q (set %v), want the simulator's", got, ok)
		}
		if out := rostest.Run(t, env, 30*time.Second, "rosparam", "get", "/robot_description"); !strings.Contains(out, `robot name=\"arm\"`) {
			t.Errorf("rosparam get /robot_description: %q", out)
		}

		// A runtime node in /r, where a launch file has set its own description: kept.
		const theirs = `<robot name="mine"/>`
		rostest.Run(t, env, 30*time.Second, "rosparam", "set", "/r/robot_description", theirs)
		cfg = testConfig(t, m, "pilot")
		cfg.Namespace = "/r"
		cfg.RobotDescription = desc
		n, err := New(cfg, testModel(), Handlers{})
		if err != nil {
			t.Fatal(err)
		}
		runNode(t, n)
		waitReady(t, n)
		if got, _ := getParamString(t, m.URI(), "/r/robot_description"); got != theirs {
			t.Errorf("/r/robot_description = %q after the node registered, want the one set before, %q", got, theirs)
		}
	})
}

func TestURDFRobotName(t *testing.T) {
	for in, want := range map[string]string{
		`<?xml version="1.0"?><!-- c --><robot name="ur5"><link name="a"/></robot>`: "ur5",
		`<robot/>`:           "",
		`<sdf name="x"/>`:    "",
		`not xml at all <<<`: "",
		``:                   "",
	} {
		if got := urdfRobotName(in); got != want {
			t.Errorf("urdfRobotName(%q) = %q, want %q", in, got, want)
		}
	}
}
