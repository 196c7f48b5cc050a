package main

import (
	"context"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flowact/flowact/robot/ros/xmlrpc"
)

// simProcess starts `flowact sim args...` as a separate process (this test binary, see
// TestFlowactHelperProcess) in its own process group.
func simProcess(t *testing.T, env []string, args ...string) (cmd *exec.Cmd, stdout, stderr *syncBuffer, done chan struct{}) {
	t.Helper()
	cmd = exec.Command(os.Args[0], append([]string{"-test.run=^TestFlowactHelperProcess$", "--", "sim"}, args...)...)
	cmd.Env = append(env, "FLOWACT_CHILD=1")
	stdout, stderr = &syncBuffer{}, &syncBuffer{}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done = make(chan struct{}) // closed when the process has exited (cmd.ProcessState is set)
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
		}
	})
	return cmd, stdout, stderr, done
}

// needROSTools skips (or, under CI, fails) when Debian's ROS 1 tools are missing.
func needROSTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := os.Stat(filepath.Join("/usr/bin", tool)); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("ROS 1 tool %s missing under CI (install Debian's ros-core and friends): %v", tool, err)
			}
			t.Skipf("ROS 1 tool %s not installed: %v", tool, err)
		}
	}
}

// startRosmasterProc starts Debian's rosmaster on a free port and returns its URI and the ROS
// environment for it. Another process may take the port between the probe and rosmaster's bind,
// so the master counts as up only when getPid answers with its own pid; otherwise it is tried
// again on a new port.
func startRosmasterProc(t *testing.T) (uri string, env []string) {
	for attempt := 0; attempt < 3; attempt++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		uri = fmt.Sprintf("http://127.0.0.1:%d/", port)
		home := t.TempDir()
		env = []string{"ROS_MASTER_URI=" + uri, "ROS_HOME=" + home, "ROS_LOG_DIR=" + home, "ROS_IP=127.0.0.1",
			"HOME=" + home, "PATH=/usr/bin:/bin", "PYTHONUNBUFFERED=1"}
		master := exec.Command("/usr/bin/rosmaster", "--core", "-p", strconv.Itoa(port), "-w", "2")
		master.Env = env
		master.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := master.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { master.Wait(); close(exited) }()
		stop := func(sig syscall.Signal) {
			syscall.Kill(-master.Process.Pid, sig)
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
				syscall.Kill(-master.Process.Pid, syscall.SIGKILL)
				<-exited
			}
		}
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if pid, ok := masterPid(uri); ok && pid == master.Process.Pid {
				t.Cleanup(func() { stop(syscall.SIGINT) })
				return uri, env
			}
			select {
			case <-exited:
				deadline = time.Time{} // it could not bind: try another port
			default:
			}
		}
		stop(syscall.SIGKILL)
	}
	t.Fatal("rosmaster did not come up on a free port in 3 attempts")
	return "", nil
}

// masterPid asks the master at uri for its pid.
func masterPid(uri string) (int, bool) {
	c, err := xmlrpc.NewClient(xmlrpc.ClientConfig{Timeout: time.Second})
	if err != nil {
		return 0, false
	}
	defer c.Close()
	res, err := c.Call(context.Background(), uri, "getPid", xmlrpc.String("/test"))
	if err != nil {
		return 0, false
	}
	a, _ := res.AsArray()
	if len(a) != 3 {
		return 0, false
	}
	pid, ok := a[2].AsInt()
	return int(pid), ok
}

// rosTool runs a Debian ROS tool for at most d (SIGINT then) and returns its output.
func rosTool(t *testing.T, env []string, d time.Duration, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	c := exec.CommandContext(ctx, filepath.Join("/usr/bin", name), args...)
	c.Env = env
	c.Cancel = func() error { return c.Process.Signal(os.Interrupt) }
	c.WaitDelay = 5 * time.Second
	out, _ := c.CombinedOutput()
	return string(out)
}

var simAvgRate = regexp.MustCompile(`average rate: ([0-9.]+)`)

// stampRe reads one header stamp of rostopic echo TOPIC/header/stamp.
var stampRe = regexp.MustCompile(`(?m)^secs:\s*([0-9]+)\s+^nsecs:\s*([0-9]+)`)

// TestSimProcess runs `flowact sim` as its own process against Debian's rosmaster: the published
// stamps give the configured rate, rostopic hz reports one, rostopic echo shows the joint names
// in model order; SIGINT makes it unregister and exit 0. Without a master it exits 1 with a one-line error.
func TestSimProcess(t *testing.T) {
	needROSTools(t, "rosmaster", "rostopic")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	uri := fmt.Sprintf("http://127.0.0.1:%d/", port)
	home := t.TempDir()
	env := []string{"ROS_MASTER_URI=" + uri, "ROS_HOME=" + home, "ROS_LOG_DIR=" + home, "ROS_IP=127.0.0.1",
		"HOME=" + home, "PATH=/usr/bin:/bin", "PYTHONUNBUFFERED=1"}

	t.Run("no master", func(t *testing.T) {
		cmd, _, stderr, done := simProcess(t, env, "--connect-timeout", "300ms")
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Fatal("flowact sim did not give up on the absent master")
		}
		lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
		if code := cmd.ProcessState.ExitCode(); code != 1 || !strings.HasPrefix(lines[len(lines)-1], "flowact: sim: no ROS master answered at "+uri) {
			t.Errorf("exit %d, stderr:\n%s", code, stderr.String())
		}
	})

	uri, env = startRosmasterProc(t)

	// ROS_MASTER_URI, not --master, names the master here.
	cmd, stdout, stderr, done := simProcess(t, env, "--rate", "50", "--task", "reach", "--seed", "5")
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(stdout.String(), "flowact sim: /flowact_sim"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("flowact sim did not report ready; stdout %q stderr %q", stdout.String(), stderr.String())
		}
	}
	// rostopic hz, measured for 3 s after its first report (Python's start-up takes seconds on a
	// loaded machine).
	hzOut := &syncBuffer{}
	hzCmd := exec.Command("/usr/bin/rostopic", "hz", "-w", "100", "/joint_states")
	hzCmd.Env, hzCmd.Stdout, hzCmd.Stderr = env, hzOut, hzOut
	if err := hzCmd.Start(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(60 * time.Second); !simAvgRate.MatchString(hzOut.String()); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			hzCmd.Process.Kill()
			hzCmd.Wait()
			t.Fatalf("rostopic hz printed no rate:\n%s", hzOut.String())
		}
	}
	time.Sleep(3 * time.Second)
	hzCmd.Process.Signal(os.Interrupt)
	hzCmd.Wait()
	all := simAvgRate.FindAllStringSubmatch(hzOut.String(), -1)
	if r, _ := strconv.ParseFloat(all[len(all)-1][1], 64); r <= 0 {
		t.Errorf("rostopic hz /joint_states: %.1f Hz", r)
	}
	// The rate is judged on the stamps the simulator publishes (its own clock): rostopic hz
	// times arrivals, and a tool starved on a loaded machine that catches up on a burst reports
	// more than was sent. ±20% catches a wrong --rate (here 50) or skipped steps.
	stamps := stampRe.FindAllStringSubmatch(rosTool(t, env, 60*time.Second, "rostopic", "echo", "-n", "100", "/joint_states/header/stamp"), -1)
	if len(stamps) != 100 {
		t.Fatalf("rostopic echo /joint_states/header/stamp: %d stamps, want 100", len(stamps))
	}
	stamp := func(m []string) float64 {
		s, _ := strconv.ParseFloat(m[1], 64)
		ns, _ := strconv.ParseFloat(m[2], 64)
		return s + ns*1e-9
	}
	if span := stamp(stamps[99]) - stamp(stamps[0]); span <= 0 || 99/span < 40 || 99/span > 60 {
		t.Errorf("/joint_states stamps: 100 over %.3f s, want 50 Hz", span)
	}
	echo := rosTool(t, env, 20*time.Second, "rostopic", "echo", "-n", "1", "/joint_states")
	if !strings.Contains(echo, "name: [shoulder_pan_joint, shoulder_lift_joint, elbow_joint, wrist_1_joint, wrist_2_joint, wrist_3_joint]") &&
		!strings.Contains(echo, "- shoulder_pan_joint\n  - shoulder_lift_joint\n  - elbow_joint\n  - wrist_1_joint\n  - wrist_2_joint\n  - wrist_3_joint") {
		t.Errorf("rostopic echo /joint_states:\n%s", echo)
	}

	syscall.Kill(cmd.Process.Pid, syscall.SIGINT)
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("flowact sim did not exit within 15 s of SIGINT")
	}
	if code := cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit %d after SIGINT; stderr:\n%s", code, stderr.String())
	}
	c, err := xmlrpc.NewClient(xmlrpc.ClientConfig{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	res, err := c.Call(context.Background(), uri, "lookupNode", xmlrpc.String("/test"), xmlrpc.String("/flowact_sim"))
	if err != nil {
		t.Fatal(err)
	}
	if a, _ := res.AsArray(); len(a) == 3 {
		if code, _ := a[0].AsInt(); code == 1 {
			t.Errorf("rosmaster still knows /flowact_sim after SIGINT: %v", res)
		}
	}
}

var stampRE = regexp.MustCompile(`secs: (\d+)\s+nsecs:\s+(\d+)`)

// TestSimPrivateParamsProcess runs `flowact sim --sim-time _rate:=10` as its own process against
// Debian's rosmaster: the private parameter sets the step and /joint_states rate, as --rate 10
// would, measured on the simulator's own clock (the joint states' stamps, in simulated time:
// 0.1 s apart, or a multiple when rostopic misses one on a loaded machine), and rosparam sees
// ~rate = 10 and the robot's /robot_description.
func TestSimPrivateParamsProcess(t *testing.T) {
	needROSTools(t, "rosmaster", "rostopic", "rosparam")
	_, env := startRosmasterProc(t)
	cmd, stdout, stderr, done := simProcess(t, env, "--sim-time", "_rate:=10")
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(stdout.String(), "flowact sim: /flowact_sim"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("flowact sim did not report ready; stdout %q stderr %q", stdout.String(), stderr.String())
		}
	}
	if !strings.Contains(stdout.String(), " at 10 Hz ") {
		t.Errorf("flowact sim _rate:=10 reports %q, want 10 Hz", stdout.String())
	}
	echo := rosTool(t, env, 60*time.Second, "rostopic", "echo", "-n", "12", "/joint_states/header/stamp")
	var stamps []time.Duration
	for _, m := range stampRE.FindAllStringSubmatch(echo, -1) {
		s, _ := strconv.ParseInt(m[1], 10, 64)
		ns, _ := strconv.ParseInt(m[2], 10, 64)
		stamps = append(stamps, time.Duration(s)*time.Second+time.Duration(ns))
	}
	if len(stamps) < 10 {
		t.Fatalf("rostopic echo gave %d stamps:\n%s", len(stamps), echo)
	}
	const period = 100 * time.Millisecond
	least := time.Duration(math.MaxInt64)
	for i := 1; i < len(stamps); i++ {
		d := stamps[i] - stamps[i-1]
		least = min(least, d)
		// Stamps are whole steps of simulated time: a multiple of the period, to the nanosecond
		// of the message's stamp.
		if k := (d + period/2) / period; k < 1 || (d-k*period).Abs() > time.Microsecond {
			t.Errorf("joint states %d and %d are %v apart in simulated time, not a multiple of %v", i-1, i, d, period)
		}
	}
	if least != period {
		t.Errorf("closest joint states %v apart in simulated time, want %v (10 Hz)", least, period)
	}
	if got := strings.TrimSpace(rosTool(t, env, 30*time.Second, "rosparam", "get", "/flowact_sim/rate")); got != "10" {
		t.Errorf("rosparam get /flowact_sim/rate: %q, want 10", got)
	}
	if got := rosTool(t, env, 30*time.Second, "rosparam", "get", "/robot_description"); !strings.Contains(got, `robot name=\"ur5\"`) {
		t.Errorf("rosparam get /robot_description: %.200q, want the UR5's", got)
	}
	syscall.Kill(cmd.Process.Pid, syscall.SIGINT)
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("flowact sim did not exit within 15 s of SIGINT")
	}
	if code := cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit %d after SIGINT; stderr:\n%s", code, stderr.String())
	}
}
