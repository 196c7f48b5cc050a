package kern

import (
	"fmt"
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

// refGemm is the float64 reference: A (m×k, leading dimension lda) times B (k×n, row-major).
func refGemm(a []float32, lda int, b []float32, m, k, n int) []float64 {
	c := make([]float64, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s float64
			for p := 0; p < k; p++ {
				s += float64(a[i*lda+p]) * float64(b[p*n+j])
			}
			c[i*n+j] = s
		}
	}
	return c
}

// shapes covers every shape class: one row (matrix-vector), a few rows, rows that are not a
// multiple of any tile, k below and above a k block (256) with remainders, n below a panel and
// with a partial last panel, and the networks' own shapes.
var shapes = []struct{ m, k, n int }{
	{1, 1, 1}, {1, 7, 13}, {1, 300, 33}, {1, 1024, 1024}, {2, 5, 2}, {3, 17, 40}, {4, 8, 8},
	{5, 64, 130}, {7, 257, 31}, {13, 33, 65}, {12, 512, 32}, {25, 100, 17}, {51, 256, 256},
	{51, 256, 7}, {50, 1024, 256}, {64, 40, 97},
}

// rounded returns b as a matrix of precision p stores it.
func rounded(b []float32, p Precision) []float32 {
	out := append([]float32(nil), b...)
	for i, v := range out {
		switch p {
		case F16:
			out[i] = F16ToF32(F32ToF16(v))
		case BF16:
			out[i] = BF16ToF32(F32ToBF16(v))
		}
	}
	return out
}

func checkClose(t *testing.T, what string, got []float32, ldc int, want []float64, m, n int, tol float64) {
	t.Helper()
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			g, w := float64(got[i*ldc+j]), want[i*n+j]
			if d := math.Abs(g - w); !(d <= tol*(1+math.Abs(w))) {
				t.Fatalf("%s: c[%d,%d] = %v, want %v", what, i, j, g, w)
			}
		}
	}
}

func TestMulEveryArchAndShape(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, ar := range Archs() {
		for _, prec := range []Precision{F32, F16, BF16} {
			for _, s := range shapes {
				name := fmt.Sprintf("%s %v %dx%dx%d", ar.Name(), prec, s.m, s.k, s.n)
				a, b := randSlice(r, s.m*s.k), randSlice(r, s.k*s.n)
				w := ar.Pack(b, s.k, s.n, prec)
				// The reference sees the weights as stored.
				b = rounded(b, prec)
				want := refGemm(a, s.k, b, s.m, s.k, s.n)
				ws := make([]float32, w.Scratch(s.m))
				c := make([]float32, s.m*s.n)
				for i := range c {
					c[i] = float32(math.NaN()) // overwritten, never read
				}
				tol := 2e-6 * math.Sqrt(float64(s.k))
				w.MulTo(c, a, s.m, false, ws)
				checkClose(t, name, c, s.n, want, s.m, s.n, tol)
				// Accumulate: C += A·B doubles it.
				w.MulTo(c, a, s.m, true, ws)
				for i := range want {
					want[i] *= 2
				}
				checkClose(t, name+" acc", c, s.n, want, s.m, s.n, tol)
				if s.m*s.k*s.n < 1<<16 {
					if n := testing.AllocsPerRun(3, func() { w.MulTo(c, a, s.m, true, ws) }); n != 0 {
						t.Fatalf("%s: %v allocations per product", name, n)
					}
				}
			}
		}
	}
}

// TestMulStrided multiplies a block of a larger A into a block of a larger C; the rest of C is
// left alone.
func TestMulStrided(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, ar := range Archs() {
		m, k, n, lda, ldc := 9, 20, 37, 29, 45
		a, b := randSlice(r, m*lda), randSlice(r, k*n)
		c := randSlice(r, m*ldc)
		orig := append([]float32(nil), c...)
		w := ar.Pack(b, k, n, F32)
		w.Mul(c, ldc, a, lda, m, false, make([]float32, w.Scratch(m)))
		checkClose(t, ar.Name(), c, ldc, refGemm(a, lda, b, m, k, n), m, n, 1e-5)
		for i := 0; i < m; i++ {
			for j := n; j < ldc; j++ {
				if c[i*ldc+j] != orig[i*ldc+j] {
					t.Fatalf("%s: c[%d,%d] outside the product changed", ar.Name(), i, j)
				}
			}
		}
	}
}

// TestMulTransposedA multiplies by the transpose of a stored matrix (A's element (i, p) at
// a[p·lda + i]), for one row and several.
func TestMulTransposedA(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	for _, ar := range Archs() {
		for _, m := range []int{1, 5, 14} {
			k, n, lda := 19, 40, 17
			at := randSlice(r, k*lda) // k rows of lda, A's row i is column i
			a := make([]float32, m*k)
			for i := 0; i < m; i++ {
				for p := 0; p < k; p++ {
					a[i*k+p] = at[p*lda+i]
				}
			}
			b := randSlice(r, k*n)
			w := ar.Pack(b, k, n, F32)
			c := make([]float32, m*n)
			w.MulStrided(c, n, at, 1, lda, m, false, make([]float32, w.Scratch(m)))
			checkClose(t, ar.Name()+" transposed", c, n, refGemm(a, k, b, m, k, n), m, n, 1e-5)
		}
	}
}

// TestPoolBitIdentical: two threads give the same bits as one (each element is summed in the
// same order), the product allocates nothing, and Close is idempotent.
func TestPoolBitIdentical(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	p := NewPool(2)
	defer p.Close()
	for _, ar := range Archs() {
		for i, s := range []struct{ m, k, n int }{{51, 256, 256}, {1, 1024, 512}, {3, 200, 300}, {1, 200, 1000}, {1, 256, 9728}, {7, 300, 70}} {
			a, b := randSlice(r, s.m*s.k), randSlice(r, s.k*s.n)
			bias := randSlice(r, s.n)
			w := ar.Pack(b, s.k, s.n, Precision(i%3)) // F32, F16, BF16 in turn
			ws := make([]float32, w.Scratch(s.m))
			c1, c2 := make([]float32, s.m*s.n), make([]float32, s.m*s.n)
			NewPool(1).Linear(c1, w, bias, a, s.m, ws)
			p.Linear(c2, w, bias, a, s.m, ws)
			for i := range c1 {
				if math.Float32bits(c1[i]) != math.Float32bits(c2[i]) {
					t.Fatalf("%s %v: two threads differ at %d: %v vs %v", ar.Name(), s, i, c2[i], c1[i])
				}
			}
			if n := testing.AllocsPerRun(10, func() { p.Linear(c2, w, bias, a, s.m, ws) }); n != 0 {
				t.Fatalf("%s %v: Linear allocates %v per call", ar.Name(), s, n)
			}
		}
	}
	p.Close()
	p.Close()
	if NewPool(1).Threads() != 1 {
		t.Fatal("threads")
	}
}

// TestF16 checks the conversions against each other on every half value, and the kernels'
// hardware conversion (a k = 1 product by 1) against F16ToF32.
func TestF16(t *testing.T) {
	all := make([]float32, 0, 1<<16)
	for h := 0; h < 1<<16; h++ {
		f := F16ToF32(uint16(h))
		if f != f {
			if F32ToF16(f)&0x7c00 != 0x7c00 || F32ToF16(f)&0x3ff == 0 {
				t.Fatalf("NaN %#x does not stay NaN", h)
			}
			all = append(all, 0)
			continue
		}
		if back := F32ToF16(f); back != uint16(h) {
			t.Fatalf("%#x -> %v -> %#x", h, f, back)
		}
		all = append(all, f)
	}
	// Rounding to nearest even between two neighbours: 1 + 2^-11 is a tie, rounds to 1.
	if F32ToF16(1+1.0/2048) != 0x3c00 || F32ToF16(1+3.0/2048) != 0x3c02 || F32ToF16(70000) != 0x7c00 {
		t.Fatal("rounding")
	}
	for _, ar := range Archs() {
		w := ar.Pack(all, 1, len(all), F16)
		c := make([]float32, len(all))
		w.MulTo(c, []float32{1}, 1, false, make([]float32, w.Scratch(1)))
		for i := range all {
			if c[i] != all[i] { // by value: 0 + 1·(-0) is +0
				t.Fatalf("%s: half %#x converts to %v, want %v", ar.Name(), i, c[i], all[i])
			}
		}
	}
}

func TestActivations(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	x := randSlice(r, 203)
	for i := range x {
		x[i] *= 6
	}
	x[0], x[1], x[2], x[3] = 0, -100, 100, 20
	for _, ar := range Archs() {
		s, g, e := append([]float32(nil), x...), append([]float32(nil), x...), append([]float32(nil), x...)
		sg := append([]float32(nil), x...)
		ar.Sigmoid(sg)
		ar.SiLU(s)
		ar.GELU(g)
		ar.ExpSub(e, 1.5)
		for i, v := range x {
			vf := float64(v)
			ws := vf / (1 + math.Exp(-vf))
			u := geluC * (vf + geluA*vf*vf*vf)
			wg := 0.5 * vf * (1 + math.Tanh(u))
			we := math.Exp(vf - 1.5)
			for _, c := range []struct {
				name      string
				got, want float64
			}{{"silu", float64(s[i]), ws}, {"gelu", float64(g[i]), wg}, {"exp", float64(e[i]), we},
				{"sigmoid", float64(sg[i]), 1 / (1 + math.Exp(-vf))}} {
				if c.name == "exp" && vf-1.5 > 88 {
					continue // clamped: e^88.3 at most
				}
				if d := math.Abs(c.got - c.want); !(d <= 2e-6*math.Abs(c.want)+1e-30) && !(d < 1e-6) {
					t.Fatalf("%s %s(%v) = %v, want %v", ar.Name(), c.name, v, c.got, c.want)
				}
			}
		}
		p := []float32{0, float32(math.Log(3))}
		ar.Softmax(p)
		if math.Abs(float64(p[0])-0.25) > 1e-7 || math.Abs(float64(p[1])-0.75) > 1e-7 {
			t.Fatalf("%s: softmax %v", ar.Name(), p)
		}
	}
}

func TestLayerNorm(t *testing.T) {
	x := []float32{1, 2, 3, 4, 5, -1, -1, -1, -1, -1}
	LayerNorm(x, x, 2, 5, 0)
	s := float32(1 / math.Sqrt(2))
	want := []float32{-2 * s, -s, 0, s, 2 * s, 0, 0, 0, 0, 0}
	for i := range x {
		if math.Abs(float64(x[i]-want[i])) > 1e-6 {
			t.Fatalf("layer norm %v, want %v", x, want)
		}
	}
	y := []float32{1, 2, 3, 4, 5}
	LayerNormMod(y, y, []float32{1, 1, 1, 1, 1}, []float32{1, 0, 0, 0, -1}, 1, 5, 0, 0)
	for i, w := range []float32{1 - 4*s, 1 - s, 1, 1 + s, 1} {
		if math.Abs(float64(y[i]-w)) > 1e-6 {
			t.Fatalf("modulated %v", y)
		}
	}
}

func TestAttention(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, ar := range Archs() {
		for _, sz := range []struct{ tq, tk, heads, dh int }{{5, 7, 3, 4}, {51, 16, 4, 64}, {1, 1, 1, 3}} {
			tq, tk, heads, dh := sz.tq, sz.tk, sz.heads, sz.dh
			w := heads * dh
			q, k, v := randSlice(r, tq*w), randSlice(r, tk*w), randSlice(r, tk*w)
			out := make([]float32, tq*w)
			at := ar.NewAttention(tq+3, tk+5, dh)
			at.Run(out, w, q, w, k, w, v, w, tq, tk, heads)
			if n := testing.AllocsPerRun(3, func() { at.Run(out, w, q, w, k, w, v, w, tq, tk, heads) }); n != 0 {
				t.Fatalf("attention allocates %v", n)
			}
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
						if got := float64(out[i*w+h*dh+c]); math.Abs(got-o) > 1e-5*(1+math.Abs(o)) {
							t.Fatalf("%s %v head %d query %d col %d: %v want %v", ar.Name(), sz, h, i, c, got, o)
						}
					}
				}
			}
		}
	}
}

// TestBestIsSIMDWhereAvailable: Best is the first of Archs, and Generic is always offered.
func TestBestIsSIMDWhereAvailable(t *testing.T) {
	as := Archs()
	if Best() != as[0] || as[len(as)-1] != Generic {
		t.Fatalf("archs %v, best %s", as, Best().Name())
	}
	t.Logf("implementations: %d, best %s", len(as), Best().Name())
}
