package main

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestFlowactHelperProcess is not a test: calibration tests run this test binary again with it
// selected and FLOWACT_CHILD set, which makes it `flowact` with the arguments after "--".
func TestFlowactHelperProcess(t *testing.T) {
	if os.Getenv("FLOWACT_CHILD") != "1" {
		t.Skip("helper process for the process tests")
	}
	args := os.Args
	for i, a := range args {
		if a == "--" {
			args = args[i+1:]
			break
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, args, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// TestCalibLatencyROS measures the lag of `flowact sim` over ROS with `flowact calib latency`,
// each its own process, against Debian's rosmaster, on ROS sim time (the simulator publishes
// /clock at half the wall speed; the calibration sleeps on it), and compares it with the same
// measurement in-process on the simulator's own clock: the two agree within one control tick.
func TestCalibLatencyROS(t *testing.T) {
	needROSTools(t, "rosmaster")
	if testing.Short() {
		t.Skip("about 25 s of processes over ROS")
	}
	dir := t.TempDir()
	simCfg := "lag: {time_constant: 2ms}\nfaults: {command_delay: 40ms, command_jitter: 10ms, seed: 4}\n"
	nodeFile := filepath.Join(dir, "node.yaml")
	if err := os.WriteFile(nodeFile, []byte("sim:\n  "+strings.ReplaceAll(strings.TrimSpace(simCfg), "\n", "\n  ")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	simFile := filepath.Join(dir, "sim.yaml")
	if err := os.WriteFile(simFile, []byte(simCfg+"sensor_period: 5ms\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"calib", "latency", "--robot", "ur5", "--rate", "50", "--duration", "8s", "--max-lag", "200ms", "--json"}

	// In-process, on the simulator's clock, with the node's 5 ms step as the sensor period.
	var in, errb syncBuffer
	if code := run(context.Background(), append(append([]string(nil), args...), "--sim", "--sim-config", simFile), &in, &errb); code != 0 {
		t.Fatalf("in-process: exit %d: %s", code, errb.String())
	}
	var want latencyResult
	if err := json.Unmarshal([]byte(in.String()), &want); err != nil {
		t.Fatal(err)
	}

	uri, env := startRosmasterProc(t)
	_, simOut, simErr, _ := flowactProcess(t, env, "sim", "--robot", "ur5", "--rate", "200", "--sim-time", "--speed", "0.5", "--config", nodeFile)
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(simOut.String(), "flowact sim: /flowact_sim"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("flowact sim did not report ready; stdout %q stderr %q", simOut.String(), simErr.String())
		}
	}
	cmd, out, errOut, done := flowactProcess(t, env, append(args, "--master", uri, "--wait", "30s")...)
	select {
	case <-done:
	case <-time.After(90 * time.Second):
		t.Fatalf("flowact calib latency did not finish; stderr %q", errOut.String())
	}
	if code := cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("flowact calib latency: exit %d: %s", code, errOut.String())
	}
	var got latencyResult
	if err := json.Unmarshal([]byte(out.String()), &got); err != nil {
		t.Fatalf("%v: %q", err, out.String())
	}
	t.Logf("over ROS: %.2f ticks [%.2f, %.2f], peak %.3f; in-process: %.2f ticks [%.2f, %.2f]", got.Ticks, got.Low, got.High, got.Peak, want.Ticks, want.Low, want.High)
	if math.Abs(got.Ticks-want.Ticks) > 1 {
		t.Errorf("over ROS the lag is %.2f ticks, in-process %.2f: more than a tick apart", got.Ticks, want.Ticks)
	}
}

// flowactProcess starts `flowact args...` as a separate process (this test binary, see
// TestFlowactHelperProcess) in its own process group, killed at the end of the test.
func flowactProcess(t *testing.T, env []string, args ...string) (cmd *exec.Cmd, stdout, stderr *syncBuffer, done chan struct{}) {
	t.Helper()
	cmd = exec.Command(os.Args[0], append([]string{"-test.run=^TestFlowactHelperProcess$", "--"}, args...)...)
	cmd.Env = append(env, "FLOWACT_CHILD=1")
	stdout, stderr = &syncBuffer{}, &syncBuffer{}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done = make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	})
	return cmd, stdout, stderr, done
}
