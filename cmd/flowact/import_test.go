package main

import (
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/flowact/flowact/expert"
	"github.com/flowact/flowact/expert/ckpt"
	"github.com/flowact/flowact/expert/nn"
	"github.com/flowact/flowact/expert/ode"
	"github.com/flowact/flowact/expert/path"
)

// writeT1Checkpoint writes the checkpoint in dir as one in the t = 1 noise convention, with
// the scheduler and training-time distribution sched and dist (stated on that axis): the
// network converted the other way (nn.ReverseTime), the manifest saying t1_noise.
func writeT1Checkpoint(t *testing.T, dir, out string, sched, dist ckpt.Component) {
	t.Helper()
	c, err := ckpt.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	net, err := nn.Load(c, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer net.Close()
	if err := nn.ReverseTime(net); err != nil {
		t.Fatal(err)
	}
	m := c.Manifest
	m.Scheduler, m.TimeDist = sched, dist
	m.Weights, m.TrainState = ckpt.FileRef{DType: m.Weights.DType}, nil
	if err := ckpt.Save(out, m, nn.Tensors(net), nil); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(out, ckpt.ManifestFile)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	raw["time_convention"] = ckpt.TimeConventionT1Noise
	if b, err = json.Marshal(raw); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestImport: a trained checkpoint written in the t = 1 noise convention imports to a flowact
// checkpoint that gives the original's chunks to float tolerance, with the manifest's time
// distribution reversed and its statistics kept; eval runs on the t1_noise checkpoint directly
// (converted at load); a flowact checkpoint, a used --out and a scheduler without a reverse are
// refused.
func TestImport(t *testing.T) {
	_, ck, _ := trainTiny(t)
	t1 := filepath.Join(t.TempDir(), "t1")
	writeT1Checkpoint(t, ck, t1, ckpt.Component{Name: "CondOT"}, ckpt.Component{Name: "Beta", Params: json.RawMessage(`{"A":1.5,"B":1}`)})
	out := filepath.Join(t.TempDir(), "imported")
	code, stdout, stderr := runCLI(t, context.Background(), "import", "--checkpoint", t1, "--out", out)
	if code != 0 || !strings.Contains(stdout, "imported") {
		t.Fatalf("import: exit %d, %q %q", code, stdout, stderr)
	}
	orig, err := ckpt.Load(ck)
	if err != nil {
		t.Fatal(err)
	}
	imp, err := ckpt.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	m := imp.Manifest
	var dist path.Beta
	var normA, normB any
	if json.Unmarshal(m.TimeDist.Params, &dist) != nil || json.Unmarshal(m.Norm, &normA) != nil || json.Unmarshal(orig.Manifest.Norm, &normB) != nil {
		t.Fatalf("imported manifest: time dist %s, norm %.40s", m.TimeDist.Params, m.Norm)
	}
	if m.TimeConvention != ckpt.TimeConvention || m.TimeDist.Name != "Beta" || dist != (path.Beta{A: 1, B: 1.5}) ||
		!reflect.DeepEqual(normA, normB) || !strings.Contains(m.Provenance.Note, "imported by flowact import") {
		t.Errorf("imported manifest: convention %q, time dist %s %+v, note %q, same norm %v", m.TimeConvention, m.TimeDist.Name, dist,
			m.Provenance.Note, reflect.DeepEqual(normA, normB))
	}
	a, err := nn.Load(orig, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := nn.Load(imp, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	r := rand.New(rand.NewPCG(9, 9))
	h, d := a.Shape()
	width, state := a.CondShape()
	for trial := range 3 {
		c := &expert.Condition{Tokens: 1, Width: width, Embedding: randFloats(r, width), State: randFloats(r, state)}
		x0 := randFloats(r, h*d)
		want, got := chunkOf(t, a, c, x0), chunkOf(t, b, c, x0)
		var diff, scale float64
		for i := range want {
			diff = math.Max(diff, math.Abs(float64(got[i])-float64(want[i])))
			scale = math.Max(scale, math.Abs(float64(want[i])))
		}
		// float32 rounding of the folded time weights; see expert/nn's TestLoadT1Noise.
		if diff > 1e-5*math.Max(scale, 1) {
			t.Errorf("trial %d: the imported chunk is off by %g (scale %g)", trial, diff, scale)
		}
	}
	// The t1_noise checkpoint runs as it is, converted at load.
	if r := evalRun(t, "--checkpoint", t1, "--task", "reach", "--episodes", "1", "--seed", "5"); r.Episodes != 1 || r.Chunks == 0 {
		t.Errorf("eval on the t1_noise checkpoint: %+v", r)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"import", "--checkpoint", ck, "--out", filepath.Join(t.TempDir(), "x")}, "nothing to import"},
		{[]string{"import", "--checkpoint", t1, "--out", out}, "--overwrite"},
		{[]string{"import", "--checkpoint", t1}, "--out"},
	} {
		code, _, stderr := runCLI(t, context.Background(), c.args...)
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("%q: exit %d, %q; want 2 and %q", c.args, code, stderr, c.want)
		}
	}
	if code, _, stderr := runCLI(t, context.Background(), "import", "--checkpoint", t1, "--out", out, "--overwrite"); code != 0 {
		t.Errorf("import --overwrite: exit %d: %s", code, stderr)
	}
	for name, c := range map[string]struct {
		sched, dist ckpt.Component
		want        string
	}{
		"cosine": {ckpt.Component{Name: "Cosine"}, ckpt.Component{Name: "Uniform"}, "only CondOT"},
		"cutoff": {ckpt.Component{Name: "CondOT"}, ckpt.Component{Name: "Beta", Params: json.RawMessage(`{"A":1.5,"B":1,"S":0.999}`)}, "cutoff"},
	} {
		dir := filepath.Join(t.TempDir(), name)
		writeT1Checkpoint(t, ck, dir, c.sched, c.dist)
		code, _, stderr := runCLI(t, context.Background(), "import", "--checkpoint", dir, "--out", filepath.Join(t.TempDir(), "x"))
		if code != 2 || !strings.Contains(stderr, c.want) || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%s: exit %d, %q; want 2 and one line about %q", name, code, stderr, c.want)
		}
	}
}

func randFloats(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.NormFloat64())
	}
	return s
}

func chunkOf(t *testing.T, n nn.Net, c *expert.Condition, x0 []float32) []float32 {
	t.Helper()
	f, err := n.Bind(c)
	if err != nil {
		t.Fatal(err)
	}
	dst := make([]float32, len(x0))
	if err := (&ode.Fixed{Steps: 10}).Sample(dst, x0, f); err != nil {
		t.Fatal(err)
	}
	return dst
}
