package nn

import (
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/flowact/flowact/expert"
	"github.com/flowact/flowact/expert/ckpt"
	"github.com/flowact/flowact/expert/ode"
)

// maxAbs is the largest |a_i - b_i| and the largest |b_i|.
func maxAbs(a, b []float32) (diff, scale float64) {
	for i := range a {
		diff = math.Max(diff, math.Abs(float64(a[i])-float64(b[i])))
		scale = math.Max(scale, math.Abs(float64(b[i])))
	}
	return diff, scale
}

// relTol bounds the float32 rounding a conversion may add, relative to the largest value: the
// folded time weights are rounded once (2^-24 relative) and the features of 1 - t differ from
// those of t turned by the fold by a few float32 ulps; through two small random networks this
// stays below 1e-5 of the velocities' scale (measured: 1.4e-7 at most).
const relTol = 1e-5

// TestReverseTime: the rewritten network computes -v(x, 1 - t) at every t (0, 1 and between),
// for both architectures (the MLP also with a committed prefix); rewriting twice restores the
// weights to float32 rounding. The transformer's committed tokens carry the clean end's time
// (t = 1 here, tau = 0 in the other convention, which the fold maps it to): no evaluation of
// the original network at 1 - t reproduces that per-token time, so its prefix is checked by
// TestLoadT1Noise's round trip instead.
func TestReverseTime(t *testing.T) {
	for _, tn := range testNets() {
		t.Run(tn.name, func(t *testing.T) {
			orig, rev := randomNet(t, tn, 1), randomNet(t, tn, 1)
			defer orig.Close()
			defer rev.Close()
			if err := ReverseTime(rev); err != nil {
				t.Fatal(err)
			}
			r := rand.New(rand.NewPCG(3, 4))
			h, d := orig.Shape()
			prefixes := [][]float32{nil}
			if tn.name == "mlp" {
				prefixes = append(prefixes, randVec(r, 2*d))
			}
			for _, prefix := range prefixes {
				c := cond(r, tn, prefix)
				fo, err := orig.Bind(c)
				if err != nil {
					t.Fatal(err)
				}
				vo := make([]float32, h*d)
				vr := make([]float32, h*d)
				for _, tt := range []float64{0, 0.1, 0.37, 0.5, 0.999, 1} {
					x := randVec(r, h*d)
					fo.Velocity(vo, x, 1-tt)
					fr, err := rev.Bind(c)
					if err != nil {
						t.Fatal(err)
					}
					fr.Velocity(vr, x, tt)
					// The network rows: vr = -vo. Committed rows are the straight-path velocity at
					// each network's own t, not the network's output: skip them.
					rows := c.PrefixLen(d)
					neg := make([]float32, h*d)
					for i := range vo {
						neg[i] = -vo[i]
					}
					diff, scale := maxAbs(vr[rows*d:], neg[rows*d:])
					if diff > relTol*scale || scale == 0 {
						t.Errorf("prefix %d, t %g: |v'(x,t) + v(x,1-t)| = %g, scale %g", rows, tt, diff, scale)
					}
				}
			}
			if err := ReverseTime(rev); err != nil {
				t.Fatal(err)
			}
			ps, qs := orig.Params(), rev.Params()
			for i := range ps {
				diff, scale := maxAbs(qs[i].Data, ps[i].Data)
				if diff > 1e-6*math.Max(scale, 1) {
					t.Errorf("%s after two reversals: off by %g (scale %g)", ps[i].Name, diff, scale)
				}
			}
		})
	}
}

// TestLoadT1Noise writes a checkpoint in the t = 1 noise convention, made by converting a
// flowact network the other way, and checks that (1) the network as written is a t = 1 noise
// model: integrating it from tau = 1 (noise) to tau = 0 by Euler steps gives the flowact
// network's chunk, and (2) Load converts it: flowact's Euler sampler on the loaded network
// gives the same chunks as on the original, to float tolerance, for both architectures, with
// and without a committed prefix.
func TestLoadT1Noise(t *testing.T) {
	for _, tn := range testNets() {
		t.Run(tn.name, func(t *testing.T) {
			orig, other := randomNet(t, tn, 1), randomNet(t, tn, 1)
			defer orig.Close()
			defer other.Close()
			// other becomes the t = 1 noise model: u(x, tau) = -v(x, 1 - tau).
			if err := ReverseTime(other); err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			writeT1(t, dir, other)
			back, man, err := LoadDir(dir, 1)
			if err != nil {
				t.Fatal(err)
			}
			defer back.Close()
			if man.TimeConvention != ckpt.TimeConventionT1Noise {
				t.Fatalf("manifest convention %q", man.TimeConvention)
			}
			r := rand.New(rand.NewPCG(5, 6))
			h, d := orig.Shape()
			const steps = 10
			for trial := range 4 {
				var prefix []float32
				if trial == 3 {
					prefix = randVec(r, 2*d) // committed rows: the round trip keeps them
				}
				c := cond(r, tn, prefix)
				x0 := randVec(r, h*d)
				want := sample(t, orig, c, x0, steps)
				got := sample(t, back, c, x0, steps)
				if diff, scale := maxAbs(got, want); diff > relTol*math.Max(scale, 1) {
					t.Errorf("trial %d: the loaded t1_noise checkpoint's chunk is off by %g (scale %g)", trial, diff, scale)
				}
				if prefix != nil {
					continue // the other convention's committed tokens: see TestReverseTime
				}
				// The checkpoint's own convention: Euler from tau = 1 to 0 on the network as
				// written (x_{tau-h} = x_tau - h u(x_tau, tau)).
				f, err := other.Bind(c)
				if err != nil {
					t.Fatal(err)
				}
				x, u := append([]float32(nil), x0...), make([]float32, h*d)
				for i := range steps {
					tau := 1 - float64(i)/steps
					f.Velocity(u, x, tau)
					for j := range x {
						x[j] -= float32(1.0/steps) * u[j]
					}
				}
				if diff, scale := maxAbs(x, want); diff > relTol*math.Max(scale, 1) {
					t.Errorf("trial %d: integrating the t1_noise network from tau 1 to 0 is off by %g (scale %g): not a t = 1 noise model", trial, diff, scale)
				}
			}
		})
	}
}

// writeT1 saves net as a checkpoint whose manifest says t1_noise (ckpt.Save writes t0_noise;
// the manifest carries no checksum of its own, so the field is edited).
func writeT1(t *testing.T, dir string, net Net) {
	t.Helper()
	cfg, err := ConfigJSON(net)
	if err != nil {
		t.Fatal(err)
	}
	m := ckpt.Manifest{Architecture: net.Arch(), Config: cfg, Scheduler: ckpt.Component{Name: "CondOT"}, TimeDist: ckpt.Component{Name: "Uniform"}}
	if err := ckpt.Save(dir, m, Tensors(net), nil); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, ckpt.ManifestFile)
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

func sample(t *testing.T, n Net, c *expert.Condition, x0 []float32, steps int) []float32 {
	t.Helper()
	f, err := n.Bind(c)
	if err != nil {
		t.Fatal(err)
	}
	dst := make([]float32, len(x0))
	s := &ode.Fixed{Steps: steps}
	if err := s.Sample(dst, x0, f); err != nil {
		t.Fatal(err)
	}
	return dst
}

// TestReverseTimeRefuses: a network without the layers the conversion rewrites is refused.
func TestReverseTimeRefuses(t *testing.T) {
	if err := ReverseTime(noTimeNet{}); !errors.Is(err, ckpt.ErrConvention) {
		t.Errorf("a network without time.fc1: %v, want ErrConvention", err)
	}
}

// noTimeNet is a Net whose parameters lack time.fc1 and out.
type noTimeNet struct{ Net }

func (noTimeNet) Arch() string { return "other" }
func (noTimeNet) Params() []Param {
	return []Param{{Name: "w", Shape: []int{2, 2}, Data: make([]float32, 4)}}
}
