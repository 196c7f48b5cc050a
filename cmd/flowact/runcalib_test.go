package main

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowact/flowact/calib"
	"github.com/flowact/flowact/configs"
	"github.com/flowact/flowact/internal/rostest"
	"github.com/flowact/flowact/robot/urdf"
)

// ur5MotorRobot writes a robot directory that is the shipped UR5 with 2^17-tick encoders on its
// motors and its wrist_3 motor mounted the other way round (robot.yaml motors: direction -1), and a simulator config (sim.Config keys)
// of that robot's true motors: 1:101 drives, 2^17-tick multi-turn encoders, offsets away from
// the nominal 0 by up to 12 mrad (within a quarter motor turn, 15.5 mrad), the wrist_3 flip,
// and a transport lag (40 ms command delay, 10 ms state latency). It returns both paths.
func ur5MotorRobot(t *testing.T) (robotDir, simCfg string) {
	t.Helper()
	robotDir = filepath.Join(t.TempDir(), "ur5-flipped")
	src := path.Join("robots", "ur5")
	err := fs.WalkDir(configs.FS, src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		dst := filepath.Join(robotDir, strings.TrimPrefix(p, src))
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		b, err := fs.ReadFile(configs.FS, p)
		if err != nil {
			return err
		}
		if d.Name() == "robot.yaml" {
			old := "wrist_3_joint:       {id: 5, direction: 1,"
			if !strings.Contains(string(b), old) || strings.Count(string(b), "gear_ratio: 101}") != 6 {
				return fmt.Errorf("robot.yaml has no %q or not six 1:101 motors", old)
			}
			text := strings.Replace(string(b), old, "wrist_3_joint:       {id: 5, direction: -1,", 1)
			b = []byte(strings.ReplaceAll(text, "gear_ratio: 101}", "gear_ratio: 101, resolution: 131072}"))
		}
		return os.WriteFile(dst, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	m, _, err := urdf.Shipped("ur5")
	if err != nil {
		t.Fatal(err)
	}
	shift := []float64{0.004, -0.012, 0.009, 0.0, 0.011, -0.0075}
	var b strings.Builder
	b.WriteString("faults: {command_delay: 40ms, state_latency: 10ms, seed: 2}\nmotors:\n")
	for i, j := range m.Joints {
		dir := 1
		if j.Name == "wrist_3_joint" {
			dir = -1
		}
		fmt.Fprintf(&b, "  %s: {id: %d, direction: %d, offset: %s, gear_ratio: 101, resolution: 131072}\n", j.Name, i, dir, ftoa(shift[i]))
	}
	simCfg = filepath.Join(t.TempDir(), "sim.yaml")
	if err := os.WriteFile(simCfg, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return robotDir, simCfg
}

// calibrateUR5 runs `flowact calib motors` and `flowact calib latency --write-lag` in-process on
// the simulator of simCfg, and returns the calibration file they wrote.
func calibrateUR5(t *testing.T, robotDir, simCfg string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "ur5-calib.yaml")
	if code, out, errb := runCLI(t, context.Background(), "calib", "motors", "--robot", robotDir, "--sim", "--sim-config", simCfg, "--out", file); code != 0 {
		t.Fatalf("calib motors: exit %d: %s%s", code, out, errb)
	}
	code, out, errb := runCLI(t, context.Background(), "calib", "latency", "--robot", robotDir, "--sim", "--sim-config", simCfg,
		"--rate", "50", "--duration", "8s", "--max-lag", "200ms", "--calibration", file, "--write-lag")
	if code != 0 || !strings.Contains(out, "wrote lag: ") {
		t.Fatalf("calib latency --write-lag: exit %d: %s%s", code, out, errb)
	}
	return file
}

// TestCalibFileRoundTrip: the file `flowact calib motors` writes, with the lag `flowact calib
// latency --write-lag` adds to it, is the file `flowact run --calib` reads: the flipped wrist
// comes back as a negative reduction, the lag is about the simulator's, and run's reading of it
// binds it to the UR5's model and sets the loop's robot_lag.
func TestCalibFileRoundTrip(t *testing.T) {
	t.Parallel()
	robotDir, simCfg := ur5MotorRobot(t)
	file := calibrateUR5(t, robotDir, simCfg)
	f, err := calib.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if tr := f.Joints["wrist_3_joint"]; tr.Reduction != -101 {
		t.Errorf("wrist_3_joint: reduction %v, want -101 (the flip)", tr.Reduction)
	}
	// 40 ms delay + 10 ms latency + the servo's 50 ms + half a 20 ms tick: about 110 ms.
	if f.Lag < 80*time.Millisecond || f.Lag > 160*time.Millisecond {
		t.Errorf("lag %v, want about 110 ms", f.Lag)
	}
	m, _, err := urdf.Shipped("ur5")
	if err != nil {
		t.Fatal(err)
	}
	pf, err := loadPolicyFile(DefaultPolicy)
	if err != nil {
		t.Fatal(err)
	}
	set, err := readCalibration(file, m, &pf.Loop, 32)
	if err != nil {
		t.Fatal(err)
	}
	if set.Model() != m || pf.Loop.RobotLag != f.Lag {
		t.Errorf("run's reading: model %q, robot_lag %v (the file's lag %v)", set.Model().Name, pf.Loop.RobotLag, f.Lag)
	}
}

// TestRunCalibRefused: `flowact run --calib` refuses, before it connects to anything, a
// calibration file that does not fit the robot or the policy, with one line naming the file and
// what is wrong.
func TestRunCalibRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const good = `version: 1
robot: ur5
lag: 110ms
joints:
  shoulder_pan_joint:  {id: 0, reduction: 101, offset: 0.004, resolution: 131072}
  shoulder_lift_joint: {id: 1, reduction: 101, offset: -0.012, resolution: 131072}
  elbow_joint:         {id: 2, reduction: 101, offset: 0.009, resolution: 131072}
  wrist_1_joint:       {id: 3, reduction: 101, offset: 0, resolution: 131072}
  wrist_2_joint:       {id: 4, reduction: 101, offset: 0.011, resolution: 131072}
  wrist_3_joint:       {id: 5, reduction: -101, offset: -0.0075, resolution: 131072}
`
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	polLag := write("pol-lag.yaml", "robot: ur5\ncheckpoint: shipped:ur5-mlp\nloop: {rate: 50, robot_lag: 150ms}\n")
	nobody := fmt.Sprintf("http://127.0.0.1:%d/", rostest.FreePort(t))
	for _, c := range []struct {
		name, text string
		policy     string
		want       []string
	}{
		{"another robot", strings.Replace(good, "robot: ur5", "robot: arm5", 1), "", []string{`robot: "arm5", but the model is "ur5"`}},
		{"a joint missing", strings.Replace(good, "  wrist_3_joint:       {id: 5, reduction: -101, offset: -0.0075, resolution: 131072}\n", "", 1), "", []string{`joint "wrist_3_joint"`, "no transmission"}},
		{"a joint of another robot", good + "  finger: {id: 6, reduction: 80, offset: 0.015}\n", "", []string{`joint "finger"`, "not an actuated joint"}},
		{"same id twice", strings.Replace(good, "{id: 5,", "{id: 4,", 1), "", []string{`joint "wrist_3_joint"`, "id"}},
		{"unknown key", strings.Replace(good, "lag: 110ms", "latency: 110ms", 1), "", []string{`"latency"`}},
		{"zero reduction", strings.Replace(good, "reduction: 101, offset: 0,", "reduction: 0, offset: 0,", 1), "", []string{`joint "wrist_1_joint"`, "reduction"}},
		{"negative lag", strings.Replace(good, "lag: 110ms", "lag: -1ms", 1), "", []string{"lag: -1ms"}},
		{"lag of a horizon", strings.Replace(good, "lag: 110ms", "lag: 700ms", 1), "", []string{"lag: 700ms is 35 ticks at 50 Hz", "horizon 32"}},
		{"lag against the policy's", good, polLag, []string{"lag: 110ms", "loop.robot_lag is 150ms"}},
		{"no such file", "", "", []string{"none.yaml"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			file := filepath.Join(dir, "none.yaml")
			if c.text != "" {
				file = write(strings.ReplaceAll(c.name, " ", "-")+".yaml", c.text)
			}
			args := []string{"run", "--calib", file, "--master", nobody, "--connect-timeout", "500ms"}
			if c.policy != "" {
				args = append(args, "--policy", c.policy)
			}
			code, _, stderr := runCLI(t, context.Background(), args...)
			if code != 2 || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, filepath.Base(file)) {
				t.Errorf("exit %d, stderr %q; want 2 and one line naming %s", code, stderr, filepath.Base(file))
			}
			for _, w := range c.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr %q does not say %q", stderr, w)
				}
			}
		})
	}
}

// TestRunCalibOverROS: `flowact sim` speaking motor units (the UR5 with offsets off the nominal
// ones, 1:101 drives, a flipped wrist, 50 ms of transport lag) and `flowact run --calib FILE`
// with the shipped policy, as processes against Debian's rosmaster, FILE written by `flowact
// calib motors` and `calib latency --write-lag`: the runtime maps the ticks to joint angles and
// back, takes the file's lag, and drives the arm to the reach task's target (the simulator
// reports the task over with success).
func TestRunCalibOverROS(t *testing.T) {
	rostest.Require(t, "rosmaster")
	t.Parallel()
	if testing.Short() {
		t.Skip("processes over ROS: 5 to 40 s")
	}
	robotDir, simCfg := ur5MotorRobot(t)
	file := calibrateUR5(t, robotDir, simCfg)
	simYAML, err := os.ReadFile(simCfg)
	if err != nil {
		t.Fatal(err)
	}
	nodeFile := filepath.Join(t.TempDir(), "node.yaml")
	if err := os.WriteFile(nodeFile, []byte("sim:\n  "+strings.ReplaceAll(strings.TrimSpace(string(simYAML)), "\n", "\n  ")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Without the race detector: the shipped policy's inference must keep up with 50 Hz on a
	// loaded machine; the loop's races are the policy package's tests' business.
	bin := buildFlowactRace(t, false)
	uri := rostest.StartRosmaster(t).URI()
	env := rostest.Env(t, uri)
	sim := rostest.Start(t, env, bin, "sim", "--robot", "ur5", "--task", "reach", "--embedding", "--master", uri, "--config", nodeFile)
	run := rostest.Start(t, env, bin, "run", "--calib", file, "--master", uri, "--connect-timeout", "20s")
	rostest.Eventually(t, 60*time.Second, "flowact sim to report the reach task over", func() bool {
		return strings.Contains(sim.Output(), "task over")
	})
	if out := sim.Output(); !strings.Contains(out, "success=true") {
		t.Errorf("the reach task failed under flowact run --calib:\n%s\nflowact run:\n%s", out, run.Output())
	}
	if out := run.Output(); !strings.Contains(out, "the robot speaks motor units") || !strings.Contains(out, "robot_lag=") {
		t.Errorf("flowact run does not say it took the calibration and its lag:\n%s", out)
	}
}
