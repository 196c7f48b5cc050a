package policy_test

import (
	"cmp"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flowact/flowact/calib/norm"
	"github.com/flowact/flowact/configs"
	"github.com/flowact/flowact/expert/ckpt"
	"github.com/flowact/flowact/expert/nn"
	"github.com/flowact/flowact/policy"
	"github.com/flowact/flowact/policy/chunk"
	"github.com/flowact/flowact/robot"
	"github.com/flowact/flowact/robot/urdf"
)

func shippedRobot(t *testing.T, name string) (*robot.Model, robot.Config) {
	t.Helper()
	m, rc, err := urdf.Shipped(name)
	if err != nil {
		t.Fatal(err)
	}
	return m, rc
}

// request is an observation of model at its home position with a constant embedding.
func request(m *robot.Model, rc robot.Config, width int) *policy.Request {
	emb := make([]float32, width)
	for i := range emb {
		emb[i] = float32(i%7) / 7
	}
	return &policy.Request{Seq: 1, Position: rc.HomePosition(m), Embedding: policy.Embedding{Stamp: time.Unix(1, 0), Tokens: 1, Width: width, Data: emb}}
}

// TestLoadShipped loads the shipped checkpoint for the shipped UR5 and samples a chunk: its
// shape, its frame and state input as the manifest says, finite actions near the arm (a
// trained relative-frame expert moves it by less than a radian in 0.64 s), the same chunk
// from the same seed and another from another seed.
func TestLoadShipped(t *testing.T) {
	m, rc := shippedRobot(t, "ur5")
	ck, err := policy.Load(configs.FS, "checkpoints/ur5-mlp", m, policy.LoadConfig{EELink: rc.EELink})
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	h, d := ck.Shape()
	if h != 32 || d != 6 || ck.Norm.Frame != policy.Relative || ck.Manifest.Architecture != nn.ArchMLP {
		t.Fatalf("shape %d x %d, frame %v, arch %s; want 32 x 6, relative, mlp", h, d, ck.Norm.Frame, ck.Manifest.Architecture)
	}
	width, state := ck.CondShape()
	if state != ck.Norm.State.Dim(d) {
		t.Errorf("state input %d values, the %s input has %d", state, ck.Norm.State, ck.Norm.State.Dim(d))
	}
	sample := func(seed uint64) []float64 {
		e, err := ck.Expert(policy.SamplerConfig{Solver: "midpoint"}.Sampler(), seed)
		if err != nil {
			t.Fatal(err)
		}
		c := chunk.Chunk{Data: make([]float64, h*d)}
		req := request(m, rc, width)
		if err := e.Infer(&c, req); err != nil {
			t.Fatal(err)
		}
		if c.H != h || c.D != d {
			t.Fatalf("chunk %d x %d", c.H, c.D)
		}
		for i, v := range c.Data {
			if math.IsNaN(v) || math.Abs(v-req.Position[i%d]) > 1 {
				t.Fatalf("action %d = %v, from %v", i, v, req.Position[i%d])
			}
		}
		return c.Data
	}
	a, b, other := sample(7), sample(7), sample(8)
	if !slices.Equal(a, b) {
		t.Error("the same seed gave two chunks")
	}
	if slices.Equal(a, other) {
		t.Error("seeds 7 and 8 gave the same chunk")
	}
}

// writeCheckpoint writes a small random MLP checkpoint for d joints with normalization nz
// (nil: none) to a new directory and returns it.
func writeCheckpoint(t *testing.T, d, stateDim int, nz json.RawMessage) string {
	t.Helper()
	cfg, err := json.Marshal(nn.MLPConfig{H: 4, D: d, Embed: 8, State: stateDim, Hidden: 16, Layers: 1})
	if err != nil {
		t.Fatal(err)
	}
	net, err := nn.New(nn.ArchMLP, cfg, 1, rand.New(rand.NewPCG(1, 1)))
	if err != nil {
		t.Fatal(err)
	}
	defer net.Close()
	dir := filepath.Join(t.TempDir(), "ck")
	m := ckpt.Manifest{Architecture: nn.ArchMLP, Config: cfg, Scheduler: ckpt.Component{Name: "CondOT"},
		TimeDist: ckpt.Component{Name: "Uniform"}, Norm: nz, Weights: ckpt.FileRef{DType: ckpt.DTypeF32}}
	if err := ckpt.Save(dir, m, nn.Tensors(net), nil); err != nil {
		t.Fatal(err)
	}
	return dir
}

// stats returns statistics of dim dimensions named names (nil: unnamed).
func stats(t *testing.T, dim int, names []string) norm.Stats {
	t.Helper()
	a := norm.NewAccumulator(dim, 0, names)
	row := make([]float64, dim)
	for k := range 3 {
		for i := range row {
			row[i] = float64(k + i)
		}
		if err := a.Add(row); err != nil {
			t.Fatal(err)
		}
	}
	s, err := a.Stats()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func artifact(t *testing.T, n *policy.Normalization) json.RawMessage {
	t.Helper()
	b, err := n.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestLoadChecks: every way a checkpoint can fail to fit is a *CheckpointError naming it and
// the problem; a good one loads, and a joints+ee one computes the end effector's position.
func TestLoadChecks(t *testing.T) {
	m, rc := shippedRobot(t, "ur5")
	names := m.Names()
	good := &policy.Normalization{Set: &norm.Set{Version: norm.Version, State: stats(t, 6, names), Action: stats(t, 6, names)}, Frame: policy.Relative}
	ee := &policy.Normalization{Set: &norm.Set{Version: norm.Version, State: stats(t, 9, nil), Action: stats(t, 6, names)}, State: policy.JointsEE}
	swapped := slices.Clone(names)
	swapped[0], swapped[1] = swapped[1], swapped[0]
	otherOrder := &policy.Normalization{Set: &norm.Set{Version: norm.Version, State: stats(t, 6, nil), Action: stats(t, 6, swapped)}}
	five := &policy.Normalization{Set: &norm.Set{Version: norm.Version, State: stats(t, 5, nil), Action: stats(t, 5, nil)}}

	for _, c := range []struct {
		name     string
		dir      string
		cfg      policy.LoadConfig
		want     string // in the error; "" loads
		sentinel error
	}{
		{"good", writeCheckpoint(t, 6, 6, artifact(t, good)), policy.LoadConfig{}, "", nil},
		{"joints+ee", writeCheckpoint(t, 6, 9, artifact(t, ee)), policy.LoadConfig{EELink: rc.EELink}, "", nil},
		{"joints+ee without a link", writeCheckpoint(t, 6, 9, artifact(t, ee)), policy.LoadConfig{}, "EELink", nil},
		{"joints+ee, unknown link", writeCheckpoint(t, 6, 9, artifact(t, ee)), policy.LoadConfig{EELink: "nope"}, "nope", nil},
		{"no statistics", writeCheckpoint(t, 6, 6, nil), policy.LoadConfig{}, "no normalization statistics", nil},
		{"unknown frame", writeCheckpoint(t, 6, 6, json.RawMessage(`{"mode":"mean_std","stats":{},"frame":"polar"}`)), policy.LoadConfig{}, "polar", nil},
		{"unknown state input", writeCheckpoint(t, 6, 6, json.RawMessage(`{"mode":"mean_std","stats":{},"state":"joints+vel"}`)), policy.LoadConfig{}, "joints+vel", nil},
		{"unknown key", writeCheckpoint(t, 6, 6, json.RawMessage(`{"mode":"mean_std","stats":{},"extra":1}`)), policy.LoadConfig{}, "extra", nil},
		{"statistics of another state", writeCheckpoint(t, 6, 6, artifact(t, ee)), policy.LoadConfig{EELink: rc.EELink}, "takes a state of 6 values", nil},
		{"another joint order", writeCheckpoint(t, 6, 6, artifact(t, otherOrder)), policy.LoadConfig{}, "trained on joints", nil},
		{"another robot", writeCheckpoint(t, 5, 5, artifact(t, five)), policy.LoadConfig{}, "acts on 5 joints", nil},
		{"no directory", filepath.Join(t.TempDir(), "missing"), policy.LoadConfig{}, "no such directory", nil},
		{"bad threads", writeCheckpoint(t, 6, 6, artifact(t, good)), policy.LoadConfig{Threads: -1}, "threads", policy.ErrConfig},
		{"half-precision weights", writeCheckpoint(t, 6, 6, artifact(t, good)), policy.LoadConfig{Weights: "f16"}, "", nil},
		{"bfloat16 weights", writeCheckpoint(t, 6, 6, artifact(t, good)), policy.LoadConfig{Weights: "bf16"}, "", nil},
		{"unknown weights", writeCheckpoint(t, 6, 6, artifact(t, good)), policy.LoadConfig{Weights: "fp16"}, `weights: "fp16" is not f32, f16 or bf16`, policy.ErrConfig},
	} {
		t.Run(c.name, func(t *testing.T) {
			ck, err := policy.LoadDir(c.dir, m, c.cfg)
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				defer ck.Close()
				if want := cmp.Or(c.cfg.Weights, "f32"); ck.Weights() != want {
					t.Fatalf("weights %q, want %q", ck.Weights(), want)
				}
				e, err := ck.Expert(nil, 1)
				if err != nil {
					t.Fatal(err)
				}
				dst := chunk.Chunk{Data: make([]float64, 4*6)}
				if err := e.Infer(&dst, request(m, rc, 8)); err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				ck.Close()
				t.Fatalf("loaded; want an error with %q", c.want)
			}
			var ce *policy.CheckpointError
			if c.sentinel != nil {
				if !errors.Is(err, c.sentinel) {
					t.Errorf("%v: want %v", err, c.sentinel)
				}
			} else if !errors.As(err, &ce) || ce.Name != c.dir {
				t.Errorf("%v: want a *CheckpointError naming %s", err, c.dir)
			}
			if !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q: want one line with %q", err, c.want)
			}
		})
	}
	if _, err := policy.Load(os.DirFS(t.TempDir()), ".", nil, policy.LoadConfig{}); !errors.Is(err, policy.ErrConfig) {
		t.Errorf("nil model: %v", err)
	}
}

// TestNormalizationRoundTrip: Encode then DecodeNormalization gives back the artifact, and an
// artifact without frame or state (older checkpoints) is absolute joints.
func TestNormalizationRoundTrip(t *testing.T) {
	n := &policy.Normalization{Set: &norm.Set{Version: norm.Version, State: stats(t, 5, nil), Action: stats(t, 2, nil)}, Mode: norm.Quantile, Frame: policy.Relative, State: policy.JointsEE}
	b := artifact(t, n)
	got, err := policy.DecodeNormalization(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Mode != n.Mode || got.Frame != n.Frame || got.State != n.State || got.Set.State.Dim() != 5 {
		t.Errorf("round trip: %+v, want %+v", got, n)
	}
	stats, _ := n.Set.Encode()
	old, err := policy.DecodeNormalization(json.RawMessage(`{"mode":"mean_std","stats":` + string(stats) + `}`))
	if err != nil || old.Frame != policy.Absolute || old.State != policy.Joints {
		t.Errorf("artifact without frame and state: %+v, %v", old, err)
	}
}

func TestStateInput(t *testing.T) {
	for _, s := range []policy.StateInput{policy.Joints, policy.JointsEE} {
		if got, err := policy.ParseStateInput(s.String()); err != nil || got != s {
			t.Errorf("%v: parsed as %v, %v", s, got, err)
		}
	}
	if s, err := policy.ParseStateInput(""); err != nil || s != policy.Joints {
		t.Errorf(`"": %v, %v`, s, err)
	}
	if _, err := policy.ParseStateInput("ee"); err == nil {
		t.Error(`"ee" parsed`)
	}
	if policy.Joints.Dim(6) != 6 || policy.JointsEE.Dim(6) != 6+policy.EEStateDim {
		t.Error("Dim")
	}
}

func TestSamplerConfig(t *testing.T) {
	for _, c := range []struct {
		cfg policy.SamplerConfig
		ok  bool
	}{
		{policy.SamplerConfig{}, true},
		{policy.SamplerConfig{Solver: "RK4", Steps: 5}, true},
		{policy.SamplerConfig{Solver: "heun"}, true},
		{policy.SamplerConfig{Solver: "rk45"}, false},
		{policy.SamplerConfig{Steps: -1}, false},
		{policy.SamplerConfig{Steps: 1001}, false},
	} {
		if err := c.cfg.Validate(); (err == nil) != c.ok {
			t.Errorf("%+v: %v", c.cfg, err)
		}
	}
	if s := (policy.SamplerConfig{Solver: "Heun", Steps: 3}).Sampler(); s.Method.String() != "heun" || s.Steps != 3 {
		t.Errorf("sampler %v %d", s.Method, s.Steps)
	}
}
