package kern

import (
	"math"
	"math/rand/v2"
	"testing"
)

func randSlice(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.NormFloat64())
	}
	return s
}

func refGemm(a, b []float32, m, k, n int) []float64 {
	c := make([]float64, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s float64
			for p := 0; p < k; p++ {
				s += float64(a[i*k+p]) * float64(b[p*n+j])
			}
			c[i*n+j] = s
		}
	}
	return c
}

func TestGemm(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	pool := NewPool(2)
	defer pool.Close()
	for _, tc := range []struct{ m, k, n int }{
		{1, 1, 1}, {1, 7, 13}, {3, 5, 2}, {4, 8, 8}, {5, 17, 33}, {9, 64, 130}, {51, 256, 768}, {1, 1024, 1024},
	} {
		a, b := randSlice(r, tc.m*tc.k), randSlice(r, tc.k*tc.n)
		want := refGemm(a, b, tc.m, tc.k, tc.n)
		c := make([]float32, tc.m*tc.n)
		Gemm(c, a, b, tc.m, tc.k, tc.n, false)
		tol := 1e-5 * math.Sqrt(float64(tc.k))
		for i := range c {
			if d := math.Abs(float64(c[i]) - want[i]); d > tol*(1+math.Abs(want[i])) {
				t.Fatalf("%v: c[%d] = %v, want %v", tc, i, c[i], want[i])
			}
		}
		// Accumulate: C += A·B doubles the product.
		Gemm(c, a, b, tc.m, tc.k, tc.n, true)
		for i := range c {
			if d := math.Abs(float64(c[i]) - 2*want[i]); d > 2*tol*(1+math.Abs(want[i])) {
				t.Fatalf("%v acc: c[%d] = %v, want %v", tc, i, c[i], 2*want[i])
			}
		}
		// Two threads give bit-identical results: each element is summed in the same order.
		c2 := make([]float32, tc.m*tc.n)
		pool.Gemm(c2, a, b, tc.m, tc.k, tc.n, false)
		c1 := make([]float32, tc.m*tc.n)
		Gemm(c1, a, b, tc.m, tc.k, tc.n, false)
		for i := range c1 {
			if c1[i] != c2[i] {
				t.Fatalf("%v: pool differs at %d: %v vs %v", tc, i, c2[i], c1[i])
			}
		}
	}
}

func TestLayerNormSoftmaxActivations(t *testing.T) {
	x := []float32{1, 2, 3, 4, -1, -1, -1, -1}
	LayerNorm(x, x, 2, 4, 0)
	s := float32(1 / math.Sqrt(1.25))
	want := []float32{-1.5 * s, -0.5 * s, 0.5 * s, 1.5 * s, 0, 0, 0, 0}
	for i := range x {
		if math.Abs(float64(x[i]-want[i])) > 1e-6 {
			t.Fatalf("layer norm %v, want %v", x, want)
		}
	}
	p := []float32{0, float32(math.Log(3))}
	Softmax(p)
	if math.Abs(float64(p[0])-0.25) > 1e-7 || math.Abs(float64(p[1])-0.75) > 1e-7 {
		t.Fatalf("softmax %v", p)
	}
	a := []float32{0, 1, -1, 20}
	SiLU(a)
	wantS := []float64{0, 1 / (1 + math.Exp(-1)), -1 / (1 + math.Exp(1)), 20}
	for i := range a {
		if math.Abs(float64(a[i])-wantS[i]) > 1e-6 {
			t.Fatalf("silu %v want %v", a, wantS)
		}
	}
	g := []float32{0, 1, -3}
	GELU(g)
	// Reference values of the tanh-GELU: 0.841192 at 1 and -0.003638 at -3.
	if g[0] != 0 || math.Abs(float64(g[1])-0.8411920) > 1e-6 || math.Abs(float64(g[2])+0.0036374) > 1e-6 {
		t.Fatalf("gelu %v", g)
	}
}

func TestAttention(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	tq, tk, heads, dh := 5, 7, 3, 4
	w := heads * dh
	q, k, v := randSlice(r, tq*w), randSlice(r, tk*w), randSlice(r, tk*w)
	out := make([]float32, tq*w)
	Attention(out, q, k, v, tq, tk, heads, dh, make([]float32, tk))
	for h := 0; h < heads; h++ {
		for i := 0; i < tq; i++ {
			s := make([]float64, tk)
			var mx, sum float64 = math.Inf(-1), 0
			for j := range s {
				for c := 0; c < dh; c++ {
					s[j] += float64(q[i*w+h*dh+c]) * float64(k[j*w+h*dh+c])
				}
				s[j] /= math.Sqrt(float64(dh))
				mx = math.Max(mx, s[j])
			}
			for j := range s {
				s[j] = math.Exp(s[j] - mx)
				sum += s[j]
			}
			for c := 0; c < dh; c++ {
				var o float64
				for j := range s {
					o += s[j] / sum * float64(v[j*w+h*dh+c])
				}
				if got := float64(out[i*w+h*dh+c]); math.Abs(got-o) > 1e-5 {
					t.Fatalf("head %d query %d col %d: %v want %v", h, i, c, got, o)
				}
			}
		}
	}
}

func TestPoolNoAllocsAndClose(t *testing.T) {
	p := NewPool(2)
	r := rand.New(rand.NewPCG(5, 6))
	a, b := randSlice(r, 64*128), randSlice(r, 128*256)
	c := make([]float32, 64*256)
	if n := testing.AllocsPerRun(10, func() { p.Gemm(c, a, b, 64, 128, 256, false) }); n != 0 {
		t.Fatalf("Gemm allocates %v per call", n)
	}
	p.Close()
	p.Close()
	if NewPool(1).Threads() != 1 || NewPool(2).Threads() != 2 {
		t.Fatal("threads")
	}
}
