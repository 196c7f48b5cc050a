package main

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/flowact/flowact/configs"
)

// TestShippedConfigs loads and validates every shipped policy and task file, and checks that
// the tasks share one synthetic VLM (a checkpoint is trained for one) and one control rate, which
// every shipped policy runs at.
func TestShippedConfigs(t *testing.T) {
	policies, err := fs.Glob(configs.FS, "policies/*.yaml")
	if err != nil || len(policies) == 0 {
		t.Fatalf("no shipped policies (%v)", err)
	}
	tasks, err := fs.Glob(configs.FS, "tasks/*.yaml")
	if err != nil || len(tasks) != 3 {
		t.Fatalf("shipped tasks %v (%v), want reach, detour and track", tasks, err)
	}
	var first *TaskFile
	for _, name := range tasks {
		tf, err := loadTaskFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if want := strings.TrimSuffix(filepath.Base(name), ".yaml"); tf.Task.Name != want {
			t.Errorf("%s: task %q, want %q", name, tf.Task.Name, want)
		}
		if first == nil {
			first = tf
			continue
		}
		if !reflect.DeepEqual(tf.Episode.VLM, first.Episode.VLM) || tf.Episode.Rate != first.Episode.Rate || tf.Robot != first.Robot {
			t.Errorf("%s: robot %s, rate %g, VLM %+v; %s has %s, %g, %+v", name, tf.Robot, tf.Episode.Rate, tf.Episode.VLM,
				tasks[0], first.Robot, first.Episode.Rate, first.Episode.VLM)
		}
	}
	for _, name := range policies {
		pf, err := loadPolicyFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if pf.Robot != first.Robot || pf.Loop.Rate != first.Episode.Rate {
			t.Errorf("%s: robot %s at %g Hz; the tasks are for %s at %g Hz", name, pf.Robot, pf.Loop.Rate, first.Robot, first.Episode.Rate)
		}
		if code, out, errs := runCLI(t, context.Background(), "--check-config", name); code != 0 || !strings.HasSuffix(out, "ok (policy file)\n") {
			t.Errorf("--check-config %s: exit %d, %q %q", name, code, out, errs)
		}
	}
}

// TestBadConfigs feeds --check-config broken files: each must give exit status 2 and one line
// naming the file, the key and the reason.
func TestBadConfigs(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name, body string
		want       []string // substrings of the error line
	}{
		{"unknown-key.yaml", "robot: ur5\nloop: {rate: 50}\nsampler: {solvr: euler}\n", []string{"unknown-key.yaml:3", `sampler.solvr: unknown key "solvr" (want one of: `}},
		{"bad-rate.yaml", "robot: ur5\nloop: {rate: 20}\n", []string{"bad-rate.yaml", "loop", "rate 20"}},
		{"bad-solver.yaml", "robot: ur5\nsampler: {solver: leapfrog}\n", []string{"bad-solver.yaml", "sampler.solver", "leapfrog"}},
		{"bad-steps.yaml", "robot: ur5\nsampler: {steps: -1}\n", []string{"bad-steps.yaml", "sampler.steps"}},
		{"bad-weights.yaml", "robot: ur5\nexpert: {weights: f8}\n", []string{"bad-weights.yaml", `expert: weights: "f8" is not f32, f16 or bf16`}},
		{"bad-threads.yaml", "robot: ur5\nexpert: {threads: 3}\n", []string{"bad-threads.yaml", "expert: threads: 3"}},
		{"no-robot.yaml", "seed: 3\nsampler: {steps: 5}\n", []string{"no-robot.yaml", "robot: required"}},
		{"bad-robot.yaml", "robot: r2d2\n", []string{"bad-robot.yaml", "robot", "r2d2"}},
		{"bad-type.yaml", "robot: ur5\nseed: many\n", []string{"bad-type.yaml:2: seed: `many` is a string, want a non-negative integer"}},
		{"bad-ckpt-ref.yaml", "robot: ur5\ncheckpoint: \"shipped:\"\n", []string{"bad-ckpt-ref.yaml", "checkpoint"}},
		{"bad-strategy.yaml", "robot: ur5\nloop: {chunk: {strategy: yolo}}\n", []string{"bad-strategy.yaml", "loop", "yolo"}},
		{"prefix-guided-prefix.yaml", "robot: ur5\nloop: {chunk: {strategy: prefix, guided_prefix: true}}\n", []string{"prefix-guided-prefix.yaml", "loop", "guided_prefix", "\"prefix\""}},
		{"task-bad-name.yaml", "robot: ur5\ntask: {name: juggle}\n", []string{"task-bad-name.yaml", "task", "juggle"}},
		{"task-bad-tol.yaml", "robot: ur5\ntask: {name: reach, reach: {tolerance: -1}}\n", []string{"task-bad-tol.yaml", "task", "tolerance"}},
		{"task-bad-vlm.yaml", "robot: ur5\ntask: {name: reach}\nepisode: {vlm: {tokens: -2}}\n", []string{"task-bad-vlm.yaml", "episode", "vlm", "-2"}},
		{"task-unknown.yaml", "robot: ur5\ntask: {name: reach}\nepisode: {speed: 3}\n", []string{"task-unknown.yaml:3", "speed"}},
		{"empty.yaml", "# nothing\n", []string{"empty.yaml", "empty"}},
		{"no-ckpt.yaml", "robot: ur5\ncheckpoint: /nonexistent/ck\n", []string{"no-ckpt.yaml", "checkpoint /nonexistent/ck"}},
		{"other-robot.yaml", "robot: panda\n", []string{"other-robot.yaml", "6 joints", "panda"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, c.name)
			if err := os.WriteFile(path, []byte(c.body), 0o644); err != nil {
				t.Fatal(err)
			}
			code, _, stderr := runCLI(t, context.Background(), "--check-config", path)
			if code != 2 {
				t.Errorf("exit %d, want 2 (stderr %q)", code, stderr)
			}
			if strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, "flowact: ") {
				t.Errorf("stderr %q: want one line starting with \"flowact: \"", stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr %q does not contain %q", stderr, w)
				}
			}
			if strings.Contains(stderr, "main.") {
				t.Errorf("stderr %q names a Go type", stderr)
			}
		})
	}
	// A name that is neither a file nor a shipped config says which kind was looked for.
	for dir, kind := range map[string]string{"policies": "policy", "tasks": "task"} {
		if _, _, err := readConfig("nope", dir); err == nil || err.Error() != "nope: no such file (nor a shipped "+kind+" config)" {
			t.Errorf("readConfig(nope, %s): %v", dir, err)
		}
	}
	if code, _, stderr := runCLI(t, context.Background(), "--check-config", filepath.Join(dir, "missing.yaml")); code != 2 || !strings.Contains(stderr, "missing.yaml") {
		t.Errorf("missing file: exit %d, %q", code, stderr)
	}
}

// TestCheckConfigKinds: --check-config tells every kind of config file by its keys, wherever
// it lives and whatever its name: each shipped file (policies, tasks, robot.yaml), each in a
// folder of another kind under a neutral name, and a file of each other kind; broken files of
// each kind get one line naming the file, the kind and the key; a file whose keys fit no kind
// is refused naming those keys and the closest kind.
func TestCheckConfigKinds(t *testing.T) {
	check := func(path string) (int, string, string) {
		t.Helper()
		return runCLI(t, context.Background(), "--check-config", path)
	}
	want := map[string]string{"policies": "policy file", "tasks": "task file", "robots": "robot config"}
	var shipped []string
	if err := fs.WalkDir(configs.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".yaml") {
			shipped = append(shipped, p)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(shipped) < 7 {
		t.Fatalf("shipped configs %v: want the policies, the three tasks and the three robots", shipped)
	}
	tmp := t.TempDir()
	for i, p := range shipped {
		kind := want[strings.Split(p, "/")[0]]
		if code, out, stderr := check(p); code != 0 || out != p+": ok ("+kind+")\n" {
			t.Errorf("%s: exit %d, %q %q; want ok (%s)", p, code, out, stderr, kind)
		}
		// The same file under a neutral name in a folder named for another kind.
		other := filepath.Join(tmp, "policies", fmt.Sprint(i))
		if kind == "policy file" {
			other = filepath.Join(tmp, "tasks", fmt.Sprint(i))
		}
		name := filepath.Join(other, "settings.yaml")
		if kind == "robot config" {
			// With its URDF, in a directory of the robot's name (the URDF's default name).
			robotDir := path.Dir(p)
			other = filepath.Join(other, path.Base(robotDir))
			if err := os.CopyFS(other, mustSub(t, configs.FS, robotDir)); err != nil {
				t.Fatal(err)
			}
			name = filepath.Join(other, "settings.yaml")
			if err := os.Rename(filepath.Join(other, "robot.yaml"), name); err != nil {
				t.Fatal(err)
			}
		} else {
			b, err := fs.ReadFile(configs.FS, p)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(other, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(name, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if code, out, stderr := check(name); code != 0 || !strings.HasSuffix(out, ": ok ("+kind+")\n") {
			t.Errorf("%s copied to %s: exit %d, %q %q; want ok (%s)", p, name, code, out, stderr, kind)
		}
	}

	// A robot directory to break robot configs in.
	arm := filepath.Join(tmp, "arms", "ur5")
	if err := os.CopyFS(arm, mustSub(t, configs.FS, "robots/ur5")); err != nil {
		t.Fatal(err)
	}
	robotYAML, err := os.ReadFile(filepath.Join(arm, "robot.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, c := range []struct {
		name, body string
		kind       string   // "": refused
		want       []string // substrings of the error line
	}{
		{"calib.yaml", "version: 1\nrobot: arm5\njoints:\n  waist: {reduction: 1, resolution: 4096, wrap: 4096, offset: -3.14}\n", "calibration file", nil},
		{"node.yaml", "rate: 200\nsim_time: true\ntask: {name: reach}\n", "simulator node config", nil},
		{"simcfg.yaml", "lag: {order: 2}\nfaults: {command_delay: 20ms, position_noise: 0.001}\n", "simulator config", nil},
		{"auth.yaml", "robots:\n  - {name: arm-1, password: secret}\n", "fleet auth file", nil},
		// Broken files of each kind: the kind's own error.
		{"calib-bad.yaml", "version: 1\nrobot: arm5\njoints:\n  waist: {reduction: 0}\n", "", []string{"calib-bad.yaml", `joint "waist": reduction`}},
		{"node-bad.yaml", "rate: -5\nsim_time: true\n", "", []string{"node-bad.yaml", "rate"}},
		{"simcfg-bad.yaml", "lag: {order: 2}\nfaults: {command_delay: 20ms, position_noise: lots}\n", "", []string{"simcfg-bad.yaml:2", "position_noise", "lots"}},
		{"auth-bad.yaml", "robots:\n  - {name: arm-1, pasword: secret}\n", "", []string{"auth-bad.yaml:2", "pasword"}},
		{"ur5/robot-nested.yaml", strings.Replace(string(robotYAML), "elbow_joint:         {velocity:", "elbow_joint:         {velocty:", 1), "",
			[]string{"robot-nested.yaml", "velocty"}},
		{"ur5/robot-link.yaml", strings.Replace(string(robotYAML), "ee_link: ee_link", "ee_link: no_such_link", 1), "", []string{"robot-link.yaml", "no_such_link"}},
		// Keys that fit no kind: named, with the closest kind and its error.
		{"ur5/robot-typo.yaml", strings.Replace(string(robotYAML), "ee_link:", "ee_lnk:", 1), "",
			[]string{"robot-typo.yaml", `"ee_lnk"`, "fits none", "closest: a robot config"}},
		{"policy-typo.yaml", "robot: ur5\nsampeler: {steps: 5}\nloop: {rate: 50}\n", "", []string{"policy-typo.yaml", `"sampeler" (line 2) fits none`, "closest: a policy file", "want one of"}},
		{"mixed.yaml", "robot: ur5\ntask: {name: reach}\nepisode: {rate: 50}\nsampler: {steps: 5}\n", "", []string{"mixed.yaml:4", "closest: a task file", `unknown key "sampler"`}},
		{"list.yaml", "- robot: ur5\n", "", []string{"list.yaml:1", "not a mapping"}},
	} {
		t.Run(strings.ReplaceAll(c.name, "/", "-"), func(t *testing.T) {
			p := filepath.Join(dir, c.name)
			if strings.HasPrefix(c.name, "ur5/") {
				p = filepath.Join(arm, strings.TrimPrefix(c.name, "ur5/"))
			}
			if strings.HasPrefix(c.name, "ur5/") && c.body == string(robotYAML) {
				t.Fatal("the edit did not apply to the shipped robot.yaml")
			}
			if err := os.WriteFile(p, []byte(c.body), 0o644); err != nil {
				t.Fatal(err)
			}
			code, out, stderr := check(p)
			if c.kind != "" {
				if code != 0 || out != p+": ok ("+c.kind+")\n" {
					t.Errorf("exit %d, %q %q; want ok (%s)", code, out, stderr, c.kind)
				}
				return
			}
			if code != 2 || strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, "flowact: ") {
				t.Errorf("exit %d, stderr %q: want 2 and one line", code, stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr %q does not contain %q", stderr, w)
				}
			}
			if strings.Contains(stderr, "policy") && !strings.Contains(c.name, "policy") {
				t.Errorf("stderr %q blames the policy schema", stderr)
			}
		})
	}
}

// TestCheckpointRef resolves the three ways of naming a checkpoint.
func TestCheckpointRef(t *testing.T) {
	for _, c := range []struct {
		ref, dir string
		shipped  bool
	}{
		{"", "checkpoints/" + DefaultCheckpoint, true},
		{"shipped:other", "checkpoints/other", true},
		{"/tmp/ck", ".", false},
	} {
		fsys, dir := checkpointRef(c.ref)
		if dir != c.dir || (fsys == fs.FS(configs.FS)) != c.shipped {
			t.Errorf("%q: %v %q, want dir %q shipped %v", c.ref, fsys, dir, c.dir, c.shipped)
		}
	}
}

// TestPolicyRobotDirectory runs the shipped policy on a robot read from a directory on disk (a
// copy of the shipped UR5), as a user's own robot would be, and names a bad directory.
func TestPolicyRobotDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "my_arm")
	if err := os.CopyFS(dir, mustSub(t, configs.FS, "robots/ur5")); err != nil {
		t.Fatal(err)
	}
	shipped, err := os.ReadFile(filepath.Join("..", "..", "configs", "policies", "ur5-mlp.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	write := func(robotRef string) string {
		p := filepath.Join(t.TempDir(), "policy.yaml")
		b := strings.Replace(string(shipped), "robot: ur5", "robot: "+robotRef, 1)
		if b == string(shipped) {
			t.Fatal("the shipped policy has no 'robot: ur5' line")
		}
		if err := os.WriteFile(p, []byte(b), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pf, err := loadPolicyFile(write(dir))
	if err != nil {
		t.Fatal(err)
	}
	lp, err := loadPolicy(pf, "")
	if err != nil {
		t.Fatalf("policy on a robot directory: %v", err)
	}
	defer lp.Close()
	if got := lp.rb.Model.DoF(); got != 6 {
		t.Errorf("robot from %s has %d joints, want 6", dir, got)
	}
	missing := filepath.Join(t.TempDir(), "no_arm")
	if _, err := loadPolicyFile(write(missing)); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing robot directory: error %v, want one naming %s", err, missing)
	}
}

func mustSub(t *testing.T, fsys fs.FS, dir string) fs.FS {
	t.Helper()
	sub, err := fs.Sub(fsys, dir)
	if err != nil {
		t.Fatal(err)
	}
	return sub
}

// TestPolicyWeights: expert.weights accepts every precision the networks compute in (f32, f16,
// bf16) and "" (f32); TestBadConfigs has the refusals.
func TestPolicyWeights(t *testing.T) {
	dir := t.TempDir()
	for _, w := range []string{"", "f32", "f16", "bf16"} {
		p := filepath.Join(dir, "weights-"+w+".yaml")
		if err := os.WriteFile(p, []byte("robot: ur5\nexpert: {weights: \""+w+"\"}\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if code, out, stderr := runCLI(t, context.Background(), "--check-config", p); code != 0 || out != p+": ok (policy file)\n" {
			t.Errorf("weights %q: exit %d, %q %q", w, code, out, stderr)
		}
	}
}
