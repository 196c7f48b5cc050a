package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/flowact/flowact/robot"
	"github.com/flowact/flowact/robot/ros"
	"github.com/flowact/flowact/robot/ros/master"
	"github.com/flowact/flowact/robot/ros/xmlrpc"
	"github.com/flowact/flowact/robot/urdf"
	"github.com/flowact/flowact/sim/node"
)

// runSim runs `flowact sim args...` in-process and returns the exit status.
func runSim(ctx context.Context, stdout, stderr io.Writer, args ...string) int {
	return run(ctx, append([]string{"sim"}, args...), stdout, stderr)
}

func TestSimUsageErrors(t *testing.T) {
	badYAML := filepath.Join(t.TempDir(), "sim.yaml")
	if err := os.WriteFile(badYAML, []byte("sim:\n  lag:\n    order: 1\n  bogus_key: 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	badRate := filepath.Join(t.TempDir(), "rate.yaml")
	if err := os.WriteFile(badRate, []byte("rate: -3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string // in the error line
	}{
		{[]string{"--no-such-flag"}, "unknown flag"},
		{[]string{"--rate", "-5"}, "rate -5 Hz"},
		{[]string{"--rate", "fast"}, "invalid argument"},
		{[]string{"--robot", "no_such_robot"}, "no_such_robot"},
		{[]string{"--robot", t.TempDir()}, "robot.yaml"},
		{[]string{"--task", "juggle"}, "juggle: no such file (nor a shipped task config)"},
		{[]string{"--task", "reach", "--robot", "r2d2"}, "r2d2"},
		{[]string{"--speed", "2"}, "needs sim time"},
		{[]string{"--publish-embedding"}, "embedding needs a task"},
		{[]string{"stray-argument"}, `unexpected argument "stray-argument"`},
		{[]string{"/joint_states:="}, "empty target"},
		{[]string{"--config", badYAML}, "bogus_key"},
		{[]string{"--config", badRate}, "rate -3 Hz"},
		{[]string{"--config", "/no/such/file.yaml"}, "no such file"},
		{[]string{"--master", "ftp://somewhere"}, "master URI"},
		{[]string{"_no_such:=1"}, "private parameter _no_such:=1 sets nothing"},
		{[]string{"--rate", "50", "_rate:=10"}, "_rate:=10 and --rate 50 disagree"},
		{[]string{"--embedding-type", "sensor_msgs/Image"}, "--embedding-type"},
	} {
		args := tc.args
		var out, errb syncBuffer
		code := runSim(context.Background(), &out, &errb, args...)
		stderr := errb.String()
		if code != 2 {
			t.Errorf("%q: exit %d, want 2 (usage); stderr %q", args, code, stderr)
		}
		if n := strings.Count(strings.TrimSpace(stderr), "\n"); n != 0 || !strings.HasPrefix(stderr, "flowact: ") || !strings.Contains(stderr, tc.want) {
			t.Errorf("%q: stderr %q, want one line starting with \"flowact: \" that says %q", args, stderr, tc.want)
		}
	}
}

// TestSimNoMaster checks the one-line error for a master that does not answer.
func TestSimNoMaster(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	uri := fmt.Sprintf("http://%s/", l.Addr())
	l.Close() // nothing listens there now
	var out, errb syncBuffer
	start := time.Now()
	code := runSim(context.Background(), &out, &errb, "--master", uri, "--connect-timeout", "500ms")
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr %q", code, errb.String())
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("gave up after %v, want about --wait", took)
	}
	// The node logs its wait to stderr; the error is the last line.
	lines := strings.Split(strings.TrimSpace(errb.String()), "\n")
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, "flowact: sim: no ROS master answered at "+uri) {
		t.Errorf("last stderr line %q", last)
	}
}

// TestSimCommand runs `flowact sim` against the embedded master with a remap and reads its
// joint states through flowact's runtime node (robot/ros), then stops it as SIGINT would.
func TestSimCommand(t *testing.T) {
	m, err := master.New(master.Config{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	defer m.Close()

	simCfg := filepath.Join(t.TempDir(), "sim.yaml")
	const file = `rate: 20            # --rate 50 overrides it
sim:
  lag: {order: 2, frequency: 30}
  faults: {command_delay: 20ms, seed: 4}
ros:
  node: {name: file_sim} # __name:=arm_sim overrides it
  markers: /arm/markers
`
	if err := os.WriteFile(simCfg, []byte(file), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- runSim(ctx, &out, &errb, "--master", m.URI(), "--rate", "50", "--task", "reach", "--seed", "3",
			"--config", simCfg, "--publish-embedding", "--embedding-type", "flowact_msgs/Embedding",
			"/joint_states:=/arm/joint_states", "__name:=arm_sim")
	}()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(out.String(), "flowact sim: /arm_sim") {
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("no ready line; stdout %q stderr %q", out.String(), errb.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(out.String(), "/arm/joint_states out") || !strings.Contains(out.String(), "task reach, seed 3") ||
		!strings.Contains(out.String(), "at 50 Hz") {
		t.Errorf("stdout %q", out.String())
	}

	model, rc, err := urdf.Shipped("ur5")
	if err != nil {
		t.Fatal(err)
	}
	rt, err := ros.New(ros.Config{Name: "runtime", MasterURI: m.URI(), Host: "127.0.0.1", Getenv: func(string) string { return "" },
		Topics: ros.Topics{JointStates: "/arm/joint_states"}, Embedding: ros.EmbeddingCustom, Logger: quietLog()}, model, ros.Handlers{})
	if err != nil {
		t.Fatal(err)
	}
	rtCtx, rtCancel := context.WithCancel(context.Background())
	rtDone := make(chan error, 1)
	go func() { rtDone <- rt.Run(rtCtx) }()
	defer func() { rtCancel(); <-rtDone }()
	st := robot.NewState(model.DoF())
	for deadline := time.Now().Add(20 * time.Second); rt.JointStates().ReadState(&st) != nil; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the runtime read no joint state from flowact sim")
		}
	}
	// --embedding-type flowact_msgs/Embedding: the runtime, subscribed with that type, gets it.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if e, err := rt.Embeddings().Latest(); err == nil {
			if e.Tokens*e.Width == 0 || len(e.Data) != e.Tokens*e.Width {
				t.Errorf("embedding %d x %d with %d values", e.Tokens, e.Width, len(e.Data))
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the runtime read no embedding from flowact sim --publish-embedding")
		}
	}
	for i, j := range model.Joints {
		if want := rc.Home[j.Name]; st.Position[i] != want {
			t.Errorf("joint %s at %v, want home %v", j.Name, st.Position[i], want)
		}
	}

	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d after cancel; stderr %q", code, errb.String())
		}
		if !strings.Contains(out.String(), "flowact sim: stopped after ") {
			t.Errorf("no summary line: %q", out.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("flowact sim did not stop after cancel")
	}
	// The node unregistered: the master no longer knows it.
	c, err := xmlrpc.NewClient(xmlrpc.ClientConfig{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	res, err := c.Call(context.Background(), m.URI(), "lookupNode", xmlrpc.String("/test"), xmlrpc.String("/arm_sim"))
	if err != nil {
		t.Fatal(err)
	}
	if a, _ := res.AsArray(); len(a) != 3 {
		t.Fatalf("lookupNode answered %v", res)
	} else if code, _ := a[0].AsInt(); code == 1 {
		t.Errorf("the master still knows /arm_sim after flowact sim exited: %v", res)
	}
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// TestSimTaskConfig checks that `flowact sim --task` builds the node `flowact demo` builds for
// the same task and seed: the task file's robot, task, synthetic VLM and simulator settings,
// not the VLM's defaults (the shipped checkpoint was trained with the file's VLM). A --config
// file's vlm section and an explicit --robot still win.
func TestSimTaskConfig(t *testing.T) {
	const seed = 3
	custom := filepath.Join(t.TempDir(), "custom_task.yaml")
	if err := os.WriteFile(custom, []byte("robot: ur5\ntask: {name: reach, reach: {targets: 2}}\n"+
		"episode: {vlm: {tokens: 2, width: 64, gain: 0.3, seed: 11}, sim: {lag: {order: 1, frequency: 20}}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, task := range []string{"reach", "detour", "track", custom} {
		t.Run(filepath.Base(task), func(t *testing.T) {
			tf, err := loadTaskFile(task)
			if err != nil {
				t.Fatal(err)
			}
			got := simConfig(t, "--task", task, "--seed", fmt.Sprint(seed), "--publish-embedding")
			want := (&demo{}).nodeConfig(tf, seed)
			if !reflect.DeepEqual(got.Task, want.Task) || !reflect.DeepEqual(got.VLM, want.VLM) || !reflect.DeepEqual(got.Sim, want.Sim) ||
				got.Seed != want.Seed || got.Embedding != want.Embedding {
				t.Errorf("sim builds task %+v vlm %+v sim %+v seed %d embedding %v;\ndemo builds task %+v vlm %+v sim %+v seed %d embedding %v",
					got.Task, got.VLM, got.Sim, got.Seed, got.Embedding, want.Task, want.VLM, want.Sim, want.Seed, want.Embedding)
			}
			if reflect.ValueOf(got.VLM).IsZero() {
				t.Errorf("VLM left at its defaults: %+v", got.VLM)
			}
		})
	}
	// The shipped reach task's VLM, as configs/tasks/reach.yaml states it.
	if v := simConfig(t, "--task", "reach").VLM; v.Tokens != 1 || v.Width != 256 || v.Gain != 0.1 || v.Seed != 7 {
		t.Errorf("reach's VLM %+v, want tokens 1, width 256, gain 0.1, seed 7 (configs/tasks/reach.yaml)", v)
	}
	// An explicit --robot overrides the task file's (as with `flowact collect`).
	if c := simConfigFor(t, "panda", "--task", "reach", "--robot", "panda"); c.VLM.Gain != 0.1 {
		t.Errorf("--robot panda --task reach: vlm %+v, want reach's", c.VLM)
	}
	// --config's vlm section wins over the task file's; its absent sim section does not.
	cfgFile := filepath.Join(t.TempDir(), "sim.yaml")
	if err := os.WriteFile(cfgFile, []byte("vlm: {gain: 0.5}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if c := simConfig(t, "--task", custom, "--config", cfgFile); c.VLM.Gain != 0.5 || c.VLM.Seed != 0 || c.Sim.Lag.Order != 1 {
		t.Errorf("--config vlm {gain: 0.5} over %s: vlm %+v, sim %+v", custom, c.VLM, c.Sim)
	}
}

// simConfig is the node config `flowact sim args...` builds, checking that it loads the shipped
// robot wantRobot.
func simConfigFor(t *testing.T, wantRobot string, args ...string) node.Config {
	t.Helper()
	var o simOptions
	cmd := simCommand(&o)
	if err := cmd.ParseFlags(args); err != nil {
		t.Fatal(err)
	}
	m, _, c, err := simNodeConfig(cmd.Flags(), o, nil)
	if err != nil {
		t.Fatalf("%q: %v", args, err)
	}
	if want, _, err := urdf.Shipped(wantRobot); err != nil || m.Name != want.Name {
		t.Errorf("%q: robot %q, want %s's %q (%v)", args, m.Name, wantRobot, want.Name, err)
	}
	return c
}

// simConfig is simConfigFor the shipped tasks' robot, ur5.
func simConfig(t *testing.T, args ...string) node.Config {
	t.Helper()
	return simConfigFor(t, "ur5", args...)
}
