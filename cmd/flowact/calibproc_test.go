package main

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flowact/flowact/calib"
	"github.com/flowact/flowact/robot"
	"github.com/flowact/flowact/robot/ros"
	"github.com/flowact/flowact/robot/urdf"
)

// TestFlowactHelperProcess is not a test: process tests (calibration, the simulator) run this
// test binary again with it selected and FLOWACT_CHILD set, which makes it `flowact` with the
// arguments after "--", signals and exit status included (as main does).
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
	t.Parallel()
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
	cmd, out, errOut, done := flowactProcess(t, env, append(args, "--master", uri, "--connect-timeout", "30s")...)
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

// flowactCommand is `flowact args...` as a command of this test binary (see
// TestFlowactHelperProcess), not started.
func flowactCommand(env []string, args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], append([]string{"-test.run=^TestFlowactHelperProcess$", "--"}, args...)...)
	cmd.Env = append(env, "FLOWACT_CHILD=1")
	return cmd
}

// flowactProcess starts `flowact args...` as a separate process (this test binary, see
// TestFlowactHelperProcess) in its own process group, killed at the end of the test.
func flowactProcess(t *testing.T, env []string, args ...string) (cmd *exec.Cmd, stdout, stderr *syncBuffer, done chan struct{}) {
	return flowactProcessIn(t, env, nil, args...)
}

// flowactProcessIn is flowactProcess with stdin read from in (nil: none).
func flowactProcessIn(t *testing.T, env []string, in io.Reader, args ...string) (cmd *exec.Cmd, stdout, stderr *syncBuffer, done chan struct{}) {
	t.Helper()
	var stdin []io.Reader
	if in != nil {
		stdin = append(stdin, in)
	}
	cmd = flowactCommand(env, args...)
	stdout, stderr = &syncBuffer{}, &syncBuffer{}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if len(stdin) > 0 {
		cmd.Stdin = stdin[0]
	}
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

// TestCalibMotorsROS calibrates `flowact sim` speaking encoder ticks (arm5, offsets shifted
// from the nominal ones) with `flowact calib motors`, each its own process, over Debian's
// rosmaster on ROS sim time. The test is the person at the arm: at each prompt it moves the
// simulated joints to the asked pose by publishing the ticks the true motors need for it (the
// simulator has no hand), waits until /joint_states shows them there, and presses Enter; then
// it lets go, and the command sweeps the joints itself. The offsets come back within a tick and
// the directions exactly.
func TestCalibMotorsROS(t *testing.T) {
	t.Parallel()
	needROSTools(t, "rosmaster")
	if testing.Short() {
		t.Skip("about 40 s of processes over ROS")
	}
	simCfg, truthOff := arm5SimMotors(t, 0.4, false)
	simYAML, err := os.ReadFile(simCfg)
	if err != nil {
		t.Fatal(err)
	}
	nodeFile := filepath.Join(t.TempDir(), "node.yaml")
	if err := os.WriteFile(nodeFile, []byte("sim:\n  "+strings.ReplaceAll(strings.TrimSpace(string(simYAML)), "\n", "\n  ")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	m, rc, err := urdf.Shipped("arm5")
	if err != nil {
		t.Fatal(err)
	}
	truth := map[string]robot.Motor{}
	for name, mo := range rc.Motors {
		mo.Offset = truthOff[name]
		truth[name] = mo
	}
	nomTruth, err := calib.Nominal(m, truth, nil)
	if err != nil {
		t.Fatal(err)
	}
	truthSet, err := calib.NewSet(m, nomTruth)
	if err != nil {
		t.Fatal(err)
	}

	uri, env := startRosmasterProc(t)
	_, simOut, simErr, _ := flowactProcess(t, env, "sim", "--robot", "arm5", "--rate", "100", "--sim-time", "--speed", "2", "--config", nodeFile)
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(simOut.String(), "flowact sim: /flowact_sim"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("flowact sim did not report ready; stdout %q stderr %q", simOut.String(), simErr.String())
		}
	}
	// The hand: a ROS node on the simulator's command topic.
	hand, err := ros.New(ros.Config{Name: "hand", MasterURI: uri, Host: "127.0.0.1", MotorUnits: true, Getenv: func(string) string { return "" }, Logger: quietLog()}, m, ros.Handlers{})
	if err != nil {
		t.Fatal(err)
	}
	hctx, hcancel := context.WithCancel(context.Background())
	hdone := make(chan error, 1)
	go func() { hdone <- hand.Run(hctx) }()
	defer func() { hcancel(); <-hdone }()
	<-hand.Ready()

	out := filepath.Join(t.TempDir(), "arm5-calib.yaml")
	stdinR, stdinW := io.Pipe()
	defer stdinW.Close()
	cmd, stdout, stderr, done := flowactProcessIn(t, env, stdinR, "calib", "motors", "--robot", "arm5", "--master", uri, "--connect-timeout", "30s", "--sweep-speed", "0.5", "--out", out)

	hold, stepped := make([]float64, m.DoF()), make([]float64, m.DoF())
	for i, j := range m.Joints {
		l := j.Limits
		hold[i] = (l.Lower + l.Upper) / 2
		stepped[i] = hold[i] + 0.2*(l.Upper-l.Lower)
	}
	st := robot.NewState(m.DoF())
	ticks := make([]float64, m.DoF())
	for n, pose := range [][]float64{hold, stepped, nil} {
		for deadline := time.Now().Add(60 * time.Second); strings.Count(stderr.String(), "press Enter") <= n; time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("no prompt %d; stderr %q", n+1, stderr.String())
			}
		}
		if pose != nil {
			truthSet.PositionToMotor(ticks, pose)
			for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				if err := hand.Driver().WriteCommand(&robot.Command{Position: ticks}); err != nil {
					t.Fatal(err)
				}
				if hand.Driver().ReadState(&st) == nil && sameTicks(st.Position, ticks) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the arm did not reach pose %d: at %v, want %v", n+1, st.Position, ticks)
				}
			}
		}
		io.WriteString(stdinW, "\n")
	}
	stdinW.Close() // exec's stdin copier ends only then, and Wait with it
	select {
	case <-done:
	case <-time.After(120 * time.Second):
		t.Fatalf("flowact calib motors did not finish; stdout %q stderr %q", stdout.String(), stderr.String())
	}
	if code := cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exit %d: stdout %q stderr %q", code, stdout.String(), stderr.String())
	}
	f, err := calib.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for i, j := range m.Joints {
		tick := 1 / math.Abs(truthSet.Transmission(i).Scale())
		if e := math.Abs(f.Joints[j.Name].Offset - truthOff[j.Name]); e > tick {
			t.Errorf("%s: offset %v, true %v (%.2f ticks off)", j.Name, f.Joints[j.Name].Offset, truthOff[j.Name], e/tick)
		}
		if got, want := f.Joints[j.Name].Direction(), truthSet.Transmission(i).Direction(); got != want {
			t.Errorf("%s: direction %d, true %d", j.Name, got, want)
		}
	}
	if !strings.Contains(f.Source, "over ROS") {
		t.Errorf("source %q", f.Source)
	}
}

// sameTicks reports whether motor readings a are within a tick of b.
func sameTicks(a, b []float64) bool {
	for i := range a {
		if math.Abs(a[i]-b[i]) > 1 {
			return false
		}
	}
	return true
}
