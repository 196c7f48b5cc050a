package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flowact/flowact/internal/rostest"
	"github.com/flowact/flowact/robot"
	"github.com/flowact/flowact/robot/ros"
	"github.com/flowact/flowact/robot/urdf"
	"github.com/flowact/flowact/sim/node"
	"github.com/flowact/flowact/sim/task"
)

// The tests against Debian's ROS 1 use internal/rostest: under CI a missing tool fails the test,
// elsewhere it skips it; every process a test starts is stopped and waited for when it ends.

// buildFlowact builds this command into a temporary directory, with the race detector when the
// test runs under it (so that the build reuses the packages compiled for the test).
func buildFlowact(t *testing.T) string { return buildFlowactRace(t, raceEnabled) }

// buildFlowactRace builds this command, with the race detector or without.
func buildFlowactRace(t *testing.T, race bool) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "flowact")
	args := []string{"build", "-o", bin}
	if race {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, ".")...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// startSimNode runs the simulator node (sim/node) in this process: the UR5 with a reach scene and
// the synthetic VLM publishing std_msgs/Float32MultiArray embeddings.
func startSimNode(t *testing.T, uri string) (*node.Node, *robot.Model, robot.Config) {
	t.Helper()
	m, rc, err := urdf.Shipped("ur5")
	if err != nil {
		t.Fatal(err)
	}
	tf, err := loadTaskFile("reach")
	if err != nil {
		t.Fatal(err)
	}
	sn, err := node.New(m, rc, node.Config{
		Task: task.Config{Name: "reach"}, Seed: 1, Embedding: true, VLM: tf.Episode.VLM,
		ROS:    ros.SimSideConfig{Node: ros.Config{MasterURI: uri, Host: "127.0.0.1", Getenv: func(string) string { return "" }}},
		Logger: rostest.Logger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sn.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("simulator node: %v", err)
		}
	})
	return sn, m, rc
}

// TestRunAgainstRosmaster runs the flowact binary's `run` as its own process against Debian's
// rosmaster, with the simulator node in the test's process, and checks what ROS's own tools see:
// the arm moves under the policy's commands, rostopic echo shows the Float64MultiArray commands
// and the loop's /diagnostics status, rosservice calls hold and start, a private parameter from
// the command line is on the parameter server (and sets --log-level: the debug log shows), and SIGINT ends the process with status 0 after
// it has unregistered (rosnode list no longer shows it).
func TestRunAgainstRosmaster(t *testing.T) {
	rostest.Require(t, "rosmaster", "rostopic", "rosnode", "rosservice", "rosparam")
	t.Parallel()
	bin := buildFlowact(t)
	_, ck, _ := trainTiny(t) // an untrained checkpoint: its chunks still move the arm
	uri := rostest.StartRosmaster(t).URI()
	env := rostest.Env(t, uri)
	sn, m, rc := startSimNode(t, uri)

	run := rostest.Start(t, env, bin, "run", "--checkpoint", ck, "--master", uri,
		"--connect-timeout", "20s", "__name:=policy", "_log_level:=debug")
	home := rc.HomePosition(m)
	st := robot.NewState(m.DoF())
	rostest.Eventually(t, 60*time.Second, "the arm to move under flowact run's commands", func() bool {
		sn.Sim().TrueStateTo(&st)
		for i := range home {
			if math.Abs(st.Position[i]-home[i]) > 0.01 {
				return true
			}
		}
		return false
	})

	if out := rostest.Run(t, env, 30*time.Second, "rostopic", "echo", "-n", "1", rc.Topics.Command); !strings.Contains(out, "label: \"joints\"") ||
		strings.Count(strings.SplitN(out, "data:", 2)[1], ",") != m.DoF()-1 {
		t.Errorf("rostopic echo %s:\n%s", rc.Topics.Command, out)
	}
	// The simulator publishes its own /diagnostics too: take the runtime's.
	if out := rostest.Run(t, env, 30*time.Second, "rostopic", "echo", "-n", "1", "--filter", "any(s.name == 'flowact: policy' for s in m.status)", "/diagnostics"); !strings.Contains(out, "flowact: policy") ||
		!strings.Contains(out, "tick_jitter.p99_s") || !strings.Contains(out, "inference.p50_s") || !strings.Contains(out, "watchdog.active") {
		t.Errorf("rostopic echo /diagnostics:\n%s", out)
	}
	if out := rostest.Run(t, env, 30*time.Second, "rosparam", "get", "/policy/log_level"); strings.TrimSpace(out) != "debug" {
		t.Errorf("rosparam get /policy/log_level: %q", out)
	}
	if !strings.Contains(run.Output(), "run: policy loaded") {
		t.Error("_log_level:=debug did not set the log level: no debug line in flowact run's log")
	}
	if out := rostest.Run(t, env, 30*time.Second, "rosservice", "call", "/policy/hold"); !strings.Contains(out, "success: True") || !strings.Contains(out, "holding") {
		t.Errorf("rosservice call /policy/hold:\n%s", out)
	}
	if out := rostest.Run(t, env, 30*time.Second, "rosservice", "call", "/policy/start"); !strings.Contains(out, "success: True") || !strings.Contains(out, "running") {
		t.Errorf("rosservice call /policy/start:\n%s", out)
	}
	if out := rostest.Run(t, env, 30*time.Second, "rosnode", "list"); !strings.Contains(out, "/policy\n") {
		t.Fatalf("rosnode list does not show /policy:\n%s", out)
	}

	if err := run.Process().Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	run.Wait(t, 20*time.Second) // fails unless the exit status is 0
	if out := run.Output(); !strings.Contains(out, "stopped and unregistered") {
		t.Errorf("flowact run's log does not say it stopped and unregistered:\n%s", out)
	}
	if out := rostest.Run(t, env, 30*time.Second, "rosnode", "list"); strings.Contains(out, "/policy\n") {
		t.Errorf("rosnode list still shows /policy after flowact run exited:\n%s", out)
	}
}

// TestRunBadInput: a bad config, a missing checkpoint, an unreachable master, bad ROS arguments:
// one line on stderr each, starting "flowact: ", and a non-zero exit status. A signal while
// waiting for the master is not an error.
func TestRunBadInput(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	unknownKey := filepath.Join(dir, "unknown.yaml")
	if err := os.WriteFile(unknownKey, []byte("robot: ur5\nloop: {rate: 50, hoizon: 16}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	badValue := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(badValue, []byte("robot: ur5\nloop: {rate: 5000}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, ck, _ := trainTiny(t)
	nobody := fmt.Sprintf("http://127.0.0.1:%d/", rostest.FreePort(t))
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"run", "--policy", unknownKey, "--checkpoint", ck}, 2, "hoizon"},
		{[]string{"run", "--policy", badValue, "--checkpoint", ck}, 2, "rate"},
		{[]string{"run", "--policy", filepath.Join(dir, "none.yaml")}, 2, "none.yaml"},
		{[]string{"run", "--checkpoint", filepath.Join(dir, "missing")}, 2, "missing"},
		{[]string{"run", "--checkpoint", ck, "--master", nobody, "--connect-timeout", "500ms"}, 1, "unreachable"},
		{[]string{"run", "--checkpoint", ck, "--master", "ftp://x/"}, 2, "master URI"},
		{[]string{"run", "--checkpoint", ck, "__name:=a/b"}, 2, "node name"},
		{[]string{"run", "--checkpoint", ck, "stray"}, 2, "stray"},
		{[]string{"run", "--checkpoint", ck, "--embedding-type", "jpeg"}, 2, "jpeg"},
		{[]string{"run", "--checkpoint", ck, "--robot", "r2d2"}, 2, "r2d2"},
		{[]string{"run", "--checkpoint", ck, "--robot", "panda"}, 2, "joints"},
	} {
		t0 := time.Now()
		code, _, stderr := runCLI(t, context.Background(), c.args...)
		if code != c.code || strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, "flowact: ") || !strings.Contains(stderr, c.want) {
			t.Errorf("%q: exit %d, stderr %q; want %d and one line about %q", c.args, code, stderr, c.code, c.want)
		}
		if d := time.Since(t0); d > 10*time.Second {
			t.Errorf("%q: took %v", c.args, d)
		}
	}

	// SIGINT (a cancelled context) while waiting for the master ends run at once, status 0.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	code, _, stderr := runCLI(t, ctx, "run", "--checkpoint", ck, "--master", nobody, "--connect-timeout", "30s")
	if code != 0 || !errors.Is(ctx.Err(), context.DeadlineExceeded) || stderr != "" {
		t.Errorf("cancelled while waiting for the master: exit %d (%v), stderr %q; want 0 and nothing said", code, ctx.Err(), stderr)
	}
}

// TestRunWithSimProcess: `flowact run` and `flowact sim` as two processes of the built binary
// against Debian's rosmaster, seen only through ROS's tools: the joint states rostopic echoes
// leave home under the runtime's commands, and SIGINT ends both with status 0, unregistered.
func TestRunWithSimProcess(t *testing.T) {
	rostest.Require(t, "rosmaster", "rostopic", "rosnode")
	t.Parallel()
	bin := buildFlowact(t)
	_, ck, _ := trainTiny(t)
	uri := rostest.StartRosmaster(t).URI()
	env := rostest.Env(t, uri)
	m, rc, err := urdf.Shipped("ur5")
	if err != nil {
		t.Fatal(err)
	}
	home := rc.HomePosition(m)

	sim := rostest.Start(t, env, bin, "sim", "--robot", "ur5", "--task", "reach", "--publish-embedding", "--master", uri)
	run := rostest.Start(t, env, bin, "run", "--checkpoint", ck, "--master", uri, "--connect-timeout", "20s")
	rostest.Eventually(t, 60*time.Second, "rostopic echo of /joint_states away from home", func() bool {
		out := rostest.Run(t, env, 30*time.Second, "rostopic", "echo", "-n", "1", "/joint_states")
		pos, err := echoedFloats(out, "position")
		if err != nil {
			t.Fatalf("%v in\n%s", err, out)
		}
		for i := range home {
			if math.Abs(pos[i]-home[i]) > 0.01 {
				return true
			}
		}
		return false
	})
	if out := rostest.Run(t, env, 30*time.Second, "rostopic", "echo", "-n", "1", rc.Topics.Command); !strings.Contains(out, "data: [") {
		t.Errorf("rostopic echo %s:\n%s", rc.Topics.Command, out)
	}
	for _, p := range []*rostest.Proc{run, sim} {
		if err := p.Process().Signal(syscall.SIGINT); err != nil {
			t.Fatal(err)
		}
		p.Wait(t, 20*time.Second) // fails unless the exit status is 0
	}
	if out := rostest.Run(t, env, 30*time.Second, "rosnode", "list"); strings.Contains(out, "/flowact") {
		t.Errorf("rosnode list after both exited:\n%s", out)
	}
}

// echoedFloats parses the list field "key: [a, b, ...]" of rostopic echo's YAML output.
func echoedFloats(out, key string) ([]float64, error) {
	for _, line := range strings.Split(out, "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), key+": [")
		if !ok {
			continue
		}
		var v []float64
		for _, f := range strings.Split(strings.TrimSuffix(rest, "]"), ",") {
			x, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
			if err != nil {
				return nil, fmt.Errorf("%s: %v", key, err)
			}
			v = append(v, x)
		}
		return v, nil
	}
	return nil, fmt.Errorf("no %s list", key)
}
