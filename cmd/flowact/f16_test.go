package main

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/flowact/flowact/expert"
)

// TestF16ShippedCheckpoint compares the shipped checkpoint's velocity field with half-precision
// weight matrices (expert.weights: f16) and with float32 ones over many random inputs: noise-
// scale actions, normalized states and embeddings, t uniform on [0, 1). The checkpoint stores
// its weights as F16, so converting them back to half precision loses nothing and the kernels
// sum in the same order: the difference is expected to be 0; the bound (1e-3 of the largest
// velocity, an order below the float32-trained networks' cost in expert/nn's TestF16Weights)
// is what half precision may cost a checkpoint whose weights are not F16-exact.
func TestF16ShippedCheckpoint(t *testing.T) {
	t.Parallel()
	diff, scale := shippedDiff(t, "f16")
	if !(scale > 0) || diff > 1e-3*scale {
		t.Errorf("half-precision weights change the velocity by %.3g (largest velocity %.3g)", diff, scale)
	}
}

// TestBF16ShippedCheckpoint is TestF16ShippedCheckpoint with bfloat16 weight matrices
// (expert.weights: bf16). Its weights (F16: 11 significant bits) lose 3 bits in bfloat16's 8,
// so the difference is not 0; it is bounded as in expert/nn's TestF16Weights, by 20 unit
// roundoffs (20·2^-8) of the largest velocity.
func TestBF16ShippedCheckpoint(t *testing.T) {
	t.Parallel()
	diff, scale := shippedDiff(t, "bf16")
	if !(scale > 0) || !(diff > 0) || diff > 20*0x1p-8*scale {
		t.Errorf("bfloat16 weights change the velocity by %.3g (largest velocity %.3g)", diff, scale)
	}
}

// shippedDiff returns the largest difference between the shipped policy's velocities with
// weights w and with float32 weights, over 100 random inputs, and the largest float32 velocity.
func shippedDiff(t *testing.T, w string) (diff, scale float64) {
	pf, err := loadPolicyFile(DefaultPolicy)
	if err != nil {
		t.Fatal(err)
	}
	f32 := *pf
	f32.Expert.Weights = "f32"
	f16 := *pf
	f16.Expert.Weights = w
	l32, err := loadPolicy(&f32, "")
	if err != nil {
		t.Fatal(err)
	}
	defer l32.Close()
	l16, err := loadPolicy(&f16, "")
	if err != nil {
		t.Fatal(err)
	}
	defer l16.Close()
	if l32.ck.Weights() != "f32" || l16.ck.Weights() != w {
		t.Fatalf("weights %s and %s, want f32 and %s", l32.ck.Weights(), l16.ck.Weights(), w)
	}
	m32, m16 := l32.ck.Model(), l16.ck.Model()
	h, d := m32.Shape()
	width, state := l32.ck.CondShape()
	const inputs, tokens = 100, 4
	r := rand.New(rand.NewPCG(19, 16))
	normal := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(r.NormFloat64())
		}
		return v
	}
	v32, v16 := make([]float32, h*d), make([]float32, h*d)
	for range inputs {
		c := &expert.Condition{Tokens: tokens, Width: width, Embedding: normal(tokens * width), State: normal(state)}
		x, tt := normal(h*d), r.Float64()
		for _, e := range []struct {
			m expert.Model
			v []float32
		}{{m32, v32}, {m16, v16}} {
			f, err := e.m.Bind(c)
			if err != nil {
				t.Fatal(err)
			}
			f.Velocity(e.v, x, tt)
		}
		for i := range v32 {
			if !isFinite32(v16[i]) {
				t.Fatalf("%s velocity %v at %d", w, v16[i], i)
			}
			diff = math.Max(diff, math.Abs(float64(v16[i]-v32[i])))
			scale = math.Max(scale, math.Abs(float64(v32[i])))
		}
	}
	t.Logf("shipped checkpoint, %s weights, %d inputs: max |v_%s - v32| = %.3g, max |v32| = %.3g", w, inputs, w, diff, scale)
	return diff, scale
}

func isFinite32(v float32) bool { return !math.IsNaN(float64(v)) && !math.IsInf(float64(v), 0) }
