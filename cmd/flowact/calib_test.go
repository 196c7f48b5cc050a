package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flowact/flowact/calib"
	"github.com/flowact/flowact/configs"
	"github.com/flowact/flowact/robot/urdf"
)

// arm5SimMotors is a sim config whose motors are arm5's nominal ones with the offsets shifted
// (and, with flip, the shoulder's motor mounted the other way round).
func arm5SimMotors(t *testing.T, shift float64, flip bool) (string, map[string]float64) {
	t.Helper()
	m, rc, err := urdf.Shipped("arm5")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("motors:\n")
	offsets := map[string]float64{}
	for i, j := range m.Joints {
		mo := rc.Motors[j.Name]
		off := mo.Offset + shift*float64(i+1)/6
		if j.Name == "finger" {
			off = mo.Offset + shift/100
		}
		dir := mo.Direction
		if flip && j.Name == "shoulder" {
			dir, off = 1, off-2*math.Pi
		}
		offsets[j.Name] = off
		b.WriteString("  " + j.Name + ": {id: " + calibItoa(mo.ID) + ", direction: " + calibItoa(dir) + ", offset: " + ftoa(off) +
			", gear_ratio: " + ftoa(mo.GearRatio) + ", resolution: " + calibItoa(int(mo.Resolution)) + ", wrap: " + calibItoa(int(mo.Wrap)) + "}\n")
	}
	name := filepath.Join(t.TempDir(), "sim.yaml")
	if err := os.WriteFile(name, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return name, offsets
}

func calibItoa(v int) string { return strconv.Itoa(v) }
func ftoa(v float64) string  { return strconv.FormatFloat(v, 'g', -1, 64) }

func TestCalibMotorsSim(t *testing.T) {
	simCfg, truth := arm5SimMotors(t, 0.4, false)
	out := filepath.Join(t.TempDir(), "arm5-calib.yaml")
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"calib", "motors", "--robot", "arm5", "--sim", "--sim-config", simCfg, "--out", out}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	f, err := calib.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	m, _, _ := urdf.Shipped("arm5")
	set, err := calib.NewSet(m, f.Joints)
	if err != nil {
		t.Fatal(err)
	}
	for i, j := range m.Joints {
		tick := 1 / math.Abs(set.Transmission(i).Scale())
		if e := math.Abs(f.Joints[j.Name].Offset - truth[j.Name]); e > tick {
			t.Errorf("%s: offset %v, true %v (%.2f ticks off)", j.Name, f.Joints[j.Name].Offset, truth[j.Name], e/tick)
		}
	}
	if !strings.Contains(stdout.String(), "wrote "+out) || !strings.Contains(stdout.String(), "shoulder") || !strings.Contains(f.Source, "the simulator") {
		t.Errorf("stdout %q, source %q", stdout.String(), f.Source)
	}

	// A motor mounted the other way round is refused, and nothing is written.
	simCfg, _ = arm5SimMotors(t, 0.4, true)
	out2 := filepath.Join(t.TempDir(), "refused.yaml")
	stdout.Reset()
	stderr.Reset()
	code = run(context.Background(), []string{"calib", "motors", "--robot", "arm5", "--sim", "--sim-config", simCfg, "--out", out2, "--json"}, &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), `joint "shoulder": direction: measured +1, the model says -1`) {
		t.Errorf("flipped shoulder: exit %d, stderr %q", code, stderr.String())
	}
	var rep struct {
		OK     bool `json:"ok"`
		Joints []struct {
			Joint     string `json:"joint"`
			Direction int    `json:"direction"`
		} `json:"joints"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil || rep.OK || len(rep.Joints) != 6 || rep.Joints[1].Direction != 1 {
		t.Errorf("json report %+v (%v): %s", rep, err, stdout.String())
	}
	if _, err := os.Stat(out2); !os.IsNotExist(err) {
		t.Errorf("a refused calibration wrote %s", out2)
	}
	if code := run(context.Background(), []string{"calib", "motors", "--robot", "arm5", "--sim"}, &stdout, &stderr); code != 2 {
		t.Errorf("no --out: exit %d", code)
	}
}

// TestCalibLatencySim measures the lag of the simulator as a command would, at the shipped
// policy's 50 Hz, and writes it into a copy of that policy file, keeping its comments.
func TestCalibLatencySim(t *testing.T) {
	dir := t.TempDir()
	simCfg := filepath.Join(dir, "sim.yaml")
	// 40 ms of command delay with 10 ms of jitter, 15 ms of state latency, a stiff servo.
	if err := os.WriteFile(simCfg, []byte("lag: {time_constant: 2ms}\nsensor_period: 1ms\nfaults: {command_delay: 40ms, command_jitter: 10ms, state_latency: 15ms, seed: 4}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	pol, err := configs.FS.Open("policies/ur5-mlp.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var orig bytes.Buffer
	orig.ReadFrom(pol)
	pol.Close()
	policyFile := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policyFile, orig.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"calib", "latency", "--sim", "--sim-config", simCfg, "--policy", policyFile, "--duration", "16s", "--json"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var res latencyResult
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("%v: %s", err, stdout.String())
	}
	// Transport: (40 + 5 + 15) ms = 3 ticks at 50 Hz, plus the half tick of the hold; the
	// UR5's velocity and acceleration limits in the simulator add some tracking lag on top.
	want := (40+5+15+2)/20.0 + 0.5
	if res.Rate != 50 || res.Ticks < want-1 || res.Ticks > want+1.5 || res.Low > res.Ticks || res.High < res.Ticks {
		t.Errorf("result %+v, want about %.2f ticks at 50 Hz", res, want)
	}
	// On the simulator's own clock no tick can be late.
	if res.Late != 0 || !strings.Contains(stdout.String(), `"late_ticks": 0`) {
		t.Errorf("late ticks %d on the simulator's clock; output %s", res.Late, stdout.String())
	}
	p, err := loadPolicyFile(policyFile)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Loop.RobotLag; math.Abs(got.Seconds()-res.Seconds) > 1e-6 || got == 0 {
		t.Errorf("policy loop.robot_lag %v, measured %v s", got, res.Seconds)
	}
	edited, _ := os.ReadFile(policyFile)
	if !strings.Contains(string(edited), "# Real-time chunking (Black et al. 2025)") || !strings.Contains(string(edited), "  robot_lag: ") {
		t.Errorf("edited policy:\n%s", edited)
	}
}

func TestSetRobotLag(t *testing.T) {
	lag := 61500 * time.Microsecond
	for _, tc := range []struct{ name, in, want string }{
		{"insert", "robot: ur5\nloop:\n    rate: 50  # Hz\n# c\nseed: 1\n", "robot: ur5\nloop:\n    robot_lag: 61.5ms  # measured by flowact calib latency\n    rate: 50  # Hz\n# c\nseed: 1\n"},
		{"replace", "loop:\n  rate: 50\n  robot_lag: 10ms # old\nseed: 1\n", "loop:\n  rate: 50\n  robot_lag: 61.5ms  # measured by flowact calib latency\nseed: 1\n"},
		{"no loop", "robot: ur5", "robot: ur5\nloop:\n  robot_lag: 61.5ms  # measured by flowact calib latency\n"},
		{"top-level robot_lag elsewhere", "robot_lag: 1\nloop:\n  rate: 50\n", "robot_lag: 1\nloop:\n  robot_lag: 61.5ms  # measured by flowact calib latency\n  rate: 50\n"},
	} {
		got, err := setRobotLag(tc.in, lag)
		if err != nil || got != tc.want {
			t.Errorf("%s: got %q (%v), want %q", tc.name, got, err, tc.want)
		}
	}
	if _, err := setRobotLag("loop: {rate: 50}\n", lag); err == nil {
		t.Error("flow-style loop edited")
	}
}

func TestCheckConfigCalibration(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(good, []byte("version: 1\nrobot: arm5\njoints:\n  waist: {reduction: 1, resolution: 4096, wrap: 4096, offset: -3.14}\n"), 0o644)
	os.WriteFile(bad, []byte("version: 1\nrobot: arm5\njoints:\n  waist: {reduction: 0}\n"), 0o644)
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"--check-config", good}, &out, &errb); code != 0 {
		t.Errorf("good calibration: exit %d: %s", code, errb.String())
	}
	errb.Reset()
	if code := run(context.Background(), []string{"--check-config", bad}, &out, &errb); code != 2 || !strings.Contains(errb.String(), `joint "waist": reduction`) || !strings.Contains(errb.String(), "bad.yaml") {
		t.Errorf("bad calibration: exit %d: %s", code, errb.String())
	}
}
