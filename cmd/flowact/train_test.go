package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowact/flowact/dataset"
	"github.com/flowact/flowact/expert/ckpt"
	"github.com/flowact/flowact/expert/nn"
	"github.com/flowact/flowact/policy"
	"github.com/flowact/flowact/robot/urdf"
)

// trainTiny collects a few reach episodes and trains a tiny MLP on them for a few steps: enough
// to exercise every stage of the pipeline, not to learn the task.
func trainTiny(t *testing.T) (data, ck string, sum trainSummary) {
	t.Helper()
	data, ck = t.TempDir(), filepath.Join(t.TempDir(), "ck")
	collectInto(t, data, "reach", 4, "7")
	code, out, stderr := runCLI(t, context.Background(), "train", "--data", data, "--out", ck,
		"--steps", "6", "--batch", "8", "--hidden", "32", "--layers", "1", "--warmup", "2", "--ema", "0", "--val", "0.25", "--seed", "3", "--json")
	if code != 0 {
		t.Fatalf("train: exit %d: %s", code, stderr)
	}
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatalf("train --json: %v: %q", err, out)
	}
	return data, ck, sum
}

// TestTrain checks what train writes: a checkpoint that loads, with the normalization
// statistics and the provenance in its manifest, the JSON log and the loss plot.
func TestTrain(t *testing.T) {
	data, ck, sum := trainTiny(t)
	if sum.Episodes != 3 || sum.ValEps != 1 || sum.Steps != 6 || sum.Arch != "mlp" || !strings.HasPrefix(sum.DataHash, "sha256:") {
		t.Errorf("summary %+v", sum)
	}
	net, man, err := nn.LoadDir(ck, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer net.Close()
	if h, d := net.Shape(); h != 32 || d != 6 {
		t.Errorf("chunk %d x %d, want 32 x 6 (the default horizon)", h, d)
	}
	p := man.Provenance
	if p.Seed != 3 || p.Steps != 6 || p.DataHash != sum.DataHash || !strings.Contains(p.Note, "--seed 3") {
		t.Errorf("provenance %+v", p)
	}
	a, err := policy.DecodeNormalization(man.Norm)
	if err != nil {
		t.Fatal(err)
	}
	set, mode, frame := a.Set, a.Mode, a.Frame
	if err := set.Check(6, 6); err != nil || mode.String() != "mean_std" || frame != policy.Relative || set.State.Names[0] != "shoulder_pan_joint" {
		t.Errorf("norm %v, mode %v, frame %v, names %v", err, mode, frame, set.State.Names)
	}
	// The training bags' hash: the validation episode is not part of it.
	paths, _ := filepath.Glob(filepath.Join(data, "*.bag"))
	if all, _ := dataset.Hash(paths); all == sum.DataHash {
		t.Errorf("data hash covers the validation episode too")
	}
	log, err := os.ReadFile(filepath.Join(ck, "train.jsonl"))
	if err != nil || strings.Count(string(log), "\n") < 3 {
		t.Errorf("train.jsonl: %v, %q", err, log)
	}
	if png, err := os.ReadFile(filepath.Join(ck, "loss.png")); err != nil || len(png) < 8 || string(png[1:4]) != "PNG" {
		t.Errorf("loss.png: %v", err)
	}
	if !(sum.StepsPerSec > 0) || sum.Threads != 1 {
		t.Errorf("steps/s %v on %d threads", sum.StepsPerSec, sum.Threads)
	}
	// Training is reproducible from the seed: the same data and flags give the same weights,
	// on two matrix-product threads too.
	again := filepath.Join(t.TempDir(), "ck")
	if code, out, stderr := runCLI(t, context.Background(), "train", "--data", data, "--out", again, "--threads", "2",
		"--steps", "6", "--batch", "8", "--hidden", "32", "--layers", "1", "--warmup", "2", "--ema", "0", "--val", "0.25", "--seed", "3"); code != 0 || !strings.Contains(out, "steps/s on 2 thread(s)") {
		t.Fatalf("train again: exit %d, %q, %s", code, out, stderr)
	}
	w1, err1 := os.ReadFile(filepath.Join(ck, ckpt.WeightsFile))
	w2, err2 := os.ReadFile(filepath.Join(again, ckpt.WeightsFile))
	if err1 != nil || err2 != nil || string(w1) != string(w2) {
		t.Errorf("two runs from seed 3 wrote different weights (%v, %v)", err1, err2)
	}
	// Without validation episodes the summary says so instead of "validation loss 0.0000".
	code, out, stderr := runCLI(t, context.Background(), "train", "--data", data, "--out", filepath.Join(t.TempDir(), "ck"),
		"--steps", "2", "--batch", "4", "--hidden", "32", "--layers", "1", "--warmup", "1", "--val", "0")
	if code != 0 || !strings.Contains(out, "0 for validation") || !strings.Contains(out, "no validation set (--val 0 held out no episode)") || strings.Contains(out, "validation loss") {
		t.Errorf("train --val 0: exit %d, %q, %q", code, out, stderr)
	}
}

func TestTrainUsage(t *testing.T) {
	empty := t.TempDir()
	for _, args := range [][]string{
		{"train", "--out", empty},
		{"train", "--data", empty, "--out", filepath.Join(empty, "ck")},
		{"train", "--data", filepath.Join(empty, "nope"), "--out", filepath.Join(empty, "ck")},
		{"train", "--data", empty, "--out", empty, "--arch", "rnn"},
		{"train", "--data", empty, "--out", empty, "--steps", "0"},
		{"train", "--data", empty, "--out", empty, "--val", "1.5"},
		{"train", "--data", empty, "--out", empty, "--frame", "delta"},
		{"train", "--data", empty, "--out", empty, "--state", "joints+velocity"},
		{"train", "--data", empty, "--out", empty, "--weights-dtype", "BF16"},
		{"train", "--data", empty, "--out", empty, "--objective", "diffusion"},
	} {
		code, _, stderr := runCLI(t, context.Background(), args...)
		if code != 2 || strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, "flowact: ") {
			t.Errorf("%q: exit %d, stderr %q; want 2 and one line", args, code, stderr)
		}
	}
	// Sizes and rates that are zero, negative or out of range are refused with the flag's name,
	// before any data is read (0 was once taken silently as 256 x 3).
	for _, tc := range []struct{ flag, value, want string }{
		{"--hidden", "0", "train: --hidden 0: want a positive number"},
		{"--layers", "0", "train: --layers 0: want a positive number"},
		{"--hidden", "-8", "train: --hidden -8: want a positive number"},
		{"--batch", "-1", "train: --batch -1: want a positive number"},
		{"--horizon", "0", "train: --horizon 0: want a positive number"},
		{"--lr", "0", "train: --lr 0: want a positive learning rate"},
		{"--min-lr", "0.1", "train: --min-lr 0.1: want 0 <= --min-lr <= --lr (0.001)"},
		{"--warmup", "-1", "train: --warmup -1: want 0 (none) or more steps"},
		{"--ema", "1", "train: --ema 1: want 0 (raw weights) or a decay in (0, 1)"},
		{"--ema", "-0.5", "train: --ema -0.5: want 0 (raw weights) or a decay in (0, 1)"},
		{"--max-prefix", "-2", "train: --max-prefix -2: want 0 (none) or more steps"},
		{"--cold-prefix", "1", "train: --cold-prefix 1: want a share in [0, 1)"},
		{"--cold-prefix", "-0.1", "train: --cold-prefix -0.1: want a share in [0, 1)"},
		{"--cold-prefix", "NaN", "train: --cold-prefix NaN: want a share in [0, 1)"},
		{"--threads", "3", "train: --threads 3: want 1 or 2"},
	} {
		code, _, stderr := runCLI(t, context.Background(), "train", "--data", filepath.Join(empty, "nope"), "--out", empty, tc.flag, tc.value)
		if want := "flowact: " + tc.want + "\n"; code != 2 || stderr != want {
			t.Errorf("%s %s: exit %d, stderr %q; want 2 and %q", tc.flag, tc.value, code, stderr, want)
		}
	}
	// A cold-start share without prefixes: every example would be a cold start anyway.
	code, _, stderr := runCLI(t, context.Background(), "train", "--data", filepath.Join(empty, "nope"), "--out", empty, "--max-prefix", "0", "--cold-prefix", "0.2")
	if want := "flowact: train: --cold-prefix 0.2 needs --max-prefix above 0 (without prefixes every example is a cold start)\n"; code != 2 || stderr != want {
		t.Errorf("--max-prefix 0 --cold-prefix 0.2: exit %d, stderr %q; want 2 and %q", code, stderr, want)
	}
}

// TestTrainHelp: train --help gives the command that trained the shipped checkpoint, as the
// checkpoint's README has it.
func TestTrainHelp(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "configs", "checkpoints", "ur5-mlp", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var recipe string
	for line := range strings.Lines(string(readme)) {
		if l := strings.TrimSpace(line); strings.HasPrefix(l, "./flowact train ") {
			recipe = strings.TrimPrefix(l, "./")
		}
	}
	if recipe == "" {
		t.Fatal("no ./flowact train line in the checkpoint's README")
	}
	code, out, _ := runCLI(t, context.Background(), "train", "--help")
	if code != 0 || !strings.Contains(out, "\n  "+recipe+"\n") {
		t.Errorf("train --help does not give the shipped recipe %q:\n%s", recipe, out)
	}
}

// TestTrainEndEffectorState trains with --state joints+ee: the manifest says so, the state
// statistics have the joints and then ee_x, ee_y, ee_z, whose mean is the end effector's mean
// position over the training ticks (near home for a few reach episodes), and eval runs the
// checkpoint (its expert computes the end effector's position from each joint state).
func TestTrainEndEffectorState(t *testing.T) {
	ck, net, man := trainQuick(t, "13", "--state", "joints+ee")
	net.Close()
	a, err := policy.DecodeNormalization(man.Norm)
	if err != nil {
		t.Fatal(err)
	}
	names := a.Set.State.Names
	if a.State != policy.JointsEE || len(names) != 9 || names[6] != "ee_x" || names[8] != "ee_z" || a.Set.Action.Dim() != 6 {
		t.Fatalf("norm: state %v, state names %v, %d action dims; want joints+ee, 6 joints then ee_x..ee_z, 6", a.State, names, a.Set.Action.Dim())
	}
	rb, err := taskRobot("ur5")
	if err != nil {
		t.Fatal(err)
	}
	home := rb.EEPos(rb.Home)
	for i := range 3 {
		if m := a.Set.State.Mean[6+i]; math.Abs(m-home[i]) > 0.3 {
			t.Errorf("ee mean %v, home at %v: not end-effector positions (m)", a.Set.State.Mean[6:], home)
		}
	}
	r := evalRun(t, "--checkpoint", ck, "--task", "reach", "--episodes", "1")
	if r.Episodes != 1 || r.Chunks == 0 {
		t.Errorf("eval of the end-effector checkpoint: %d episodes, %d chunks", r.Episodes, r.Chunks)
	}
}

// trainQuick collects two reach episodes from seed, trains a tiny network on them for two steps
// with the extra flags, and returns the checkpoint's directory, its network and its manifest.
func trainQuick(t *testing.T, seed string, extra ...string) (string, nn.Net, *ckpt.Manifest) {
	t.Helper()
	data, ck := t.TempDir(), filepath.Join(t.TempDir(), "ck")
	collectInto(t, data, "reach", 2, seed)
	args := append([]string{"train", "--data", data, "--out", ck,
		"--steps", "2", "--batch", "4", "--hidden", "32", "--layers", "1", "--warmup", "1", "--ema", "0", "--val", "0"}, extra...)
	code, _, stderr := runCLI(t, context.Background(), args...)
	if code != 0 {
		t.Fatalf("train: exit %d: %s", code, stderr)
	}
	net, man, err := nn.LoadDir(ck, 1)
	if err != nil {
		t.Fatal(err)
	}
	return ck, net, man
}

// TestTrainRegression: --objective regression writes a checkpoint whose manifest says so and
// whose provenance names the flag (a resume with other flags is then refused), and the policy
// loads it as a regressor; the default is flow matching.
func TestTrainRegression(t *testing.T) {
	_, netF, manF := trainQuick(t, "3")
	netF.Close()
	ck, netR, manR := trainQuick(t, "3", "--objective", "regression")
	netR.Close()
	if manF.Objective != ckpt.ObjectiveFlowMatching || manR.Objective != ckpt.ObjectiveRegression {
		t.Fatalf("objectives %q and %q", manF.Objective, manR.Objective)
	}
	if !strings.Contains(manR.Provenance.Note, "--objective regression") || strings.Contains(manF.Provenance.Note, "--objective") {
		t.Errorf("provenance notes %q and %q", manF.Provenance.Note, manR.Provenance.Note)
	}
	m, rc, err := urdf.Shipped("ur5")
	if err != nil {
		t.Fatal(err)
	}
	pc, err := policy.LoadDir(ck, m, policy.LoadConfig{EELink: rc.EELink})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if !pc.Regressor() {
		t.Error("the regression checkpoint does not load as a regressor")
	}
}

// TestTrainF16 writes the weights as half precision: the same training as F32 (same seed) gives
// a weights file about half the size whose every weight is the F32 weight rounded to the nearest
// half, and the manifest says F16.
func TestTrainF16(t *testing.T) {
	_, net32, man32 := trainQuick(t, "9")
	defer net32.Close()
	ck16, net16, man16 := trainQuick(t, "9", "--weights-dtype", "f16")
	defer net16.Close()
	if man32.Weights.DType != ckpt.DTypeF32 || man16.Weights.DType != ckpt.DTypeF16 {
		t.Fatalf("weights dtypes %q and %q", man32.Weights.DType, man16.Weights.DType)
	}
	w32, w16 := nn.Tensors(net32), nn.Tensors(net16)
	var n int
	for i := range w32 {
		for j, v := range w32[i].Data {
			n++
			if got, want := w16[i].Data[j], float32(float16Round(v)); got != want {
				t.Fatalf("%s[%d]: F16 checkpoint has %g, F32 %g rounds to %g", w32[i].Name, j, got, v, want)
			}
		}
	}
	fi, err := os.Stat(filepath.Join(ck16, ckpt.WeightsFile))
	if err != nil {
		t.Fatal(err)
	}
	if data := fi.Size(); data > int64(2*n+4096) {
		t.Errorf("F16 weights file %d bytes for %d weights", data, n)
	}
}

// float16Round rounds v to the nearest half-precision value by float64 arithmetic, ties to
// even: an independent reference for the checkpoint writer (normal range only, which is where
// a trained network's weights are, besides exact zeros).
func float16Round(v float32) float64 {
	x := float64(v)
	if x == 0 {
		return x
	}
	e := math.Floor(math.Log2(math.Abs(x)))
	e = max(e, -14) // subnormal halves share the smallest normal's spacing
	ulp := math.Ldexp(1, int(e)-10)
	return math.RoundToEven(x/ulp) * ulp
}

// TestTrainTransformer trains the other architecture for a few steps and loads it back.
func TestTrainTransformer(t *testing.T) {
	_, net, man := trainQuick(t, "9", "--arch", "transformer")
	defer net.Close()
	if man.Architecture != nn.ArchTransformer || net.Arch() != nn.ArchTransformer {
		t.Errorf("architecture %q", man.Architecture)
	}
}

// TestTrainRecordedBags trains on bags as a user's `rosbag record` leaves them: other topic
// names, no episode metadata, and (in the second case) no command topic. Without --rate such
// bags cannot be aligned, which is a one-line error.
func TestTrainRecordedBags(t *testing.T) {
	src := t.TempDir()
	collectInto(t, src, "reach", 3, "11")
	paths, err := dataset.List(src)
	if err != nil || len(paths) != 3 {
		t.Fatalf("collected bags: %v %v", paths, err)
	}
	topics := dataset.Topics{JointStates: "/arm/joint_states", Embedding: "/vlm/embedding", Command: "/arm/command"}
	data := t.TempDir()
	for i, p := range paths {
		ep, err := dataset.Read(p, dataset.Config{})
		if err != nil {
			t.Fatal(err)
		}
		w, err := dataset.Create(filepath.Join(data, fmt.Sprintf("rec%d.bag", i)), dataset.WriterConfig{Topics: topics, Joints: ep.Meta.Joints})
		if err != nil {
			t.Fatal(err)
		}
		for k := range ep.States {
			if err := w.WriteState(&ep.States[k]); err != nil {
				t.Fatal(err)
			}
		}
		for k := range ep.Embeddings {
			if err := w.WriteEmbedding(&ep.Embeddings[k]); err != nil {
				t.Fatal(err)
			}
		}
		for k := range ep.Actions {
			if err := w.WriteAction(&ep.Actions[k]); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	common := []string{"train", "--data", data, "--joint-states-topic", topics.JointStates, "--embedding-topic", topics.Embedding,
		"--steps", "4", "--batch", "8", "--hidden", "32", "--layers", "1", "--warmup", "1", "--ema", "0", "--val", "0", "--json"}

	code, _, stderr := runCLI(t, context.Background(), append(common, "--command-topic", topics.Command, "--out", filepath.Join(t.TempDir(), "ck"))...)
	if code != 2 || !strings.Contains(stderr, "control rate unknown") || !strings.HasSuffix(stderr, "; give the rate with --rate HZ\n") ||
		strings.Contains(stderr, "Config.") || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
		t.Fatalf("no --rate: exit %d, stderr %q; want one line about the rate naming --rate", code, stderr)
	}
	// The command topic under its default name is missing: the message names the flags that help.
	code, _, stderr = runCLI(t, context.Background(), append(common, "--rate", "50", "--out", filepath.Join(t.TempDir(), "ck"))...)
	if code != 2 || !strings.Contains(stderr, "topic /flowact/command: topic missing") ||
		!strings.HasSuffix(stderr, "; --command-topic names it, --actions next-state does without it\n") ||
		strings.Contains(stderr, "Config.") || strings.Contains(stderr, "ActionsFrom") {
		t.Fatalf("no command topic: exit %d, stderr %q", code, stderr)
	}
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"command", []string{"--command-topic", topics.Command}},
		{"next-state", []string{"--actions", "next-state"}},
	} {
		ck := filepath.Join(t.TempDir(), "ck")
		args := append(append(append([]string{}, common...), tc.args...), "--rate", "50", "--out", ck)
		code, out, stderr := runCLI(t, context.Background(), args...)
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", tc.name, code, stderr)
		}
		var sum trainSummary
		if err := json.Unmarshal([]byte(out), &sum); err != nil {
			t.Fatalf("%s: %v: %q", tc.name, err, out)
		}
		if sum.Episodes != 3 {
			t.Errorf("%s: trained on %d episodes, want all 3 (bags without metadata are demonstrations)", tc.name, sum.Episodes)
		}
		if _, _, err := nn.LoadDir(ck, 1); err != nil {
			t.Errorf("%s: checkpoint does not load: %v", tc.name, err)
		}
	}
}
