package blas32

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"

	"github.com/flowact/flowact/expert/nn/internal/kern"
)

// TestSgemmMatchesGonum compares every transpose combination, alpha and beta (0 with a NaN in C,
// which must not be read) with gonum's Sgemm.
func TestSgemmMatchesGonum(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	var im Implementation
	var ref gonum.Implementation
	rnd := func(n int) []float32 {
		s := make([]float32, n)
		for i := range s {
			s[i] = float32(r.NormFloat64())
		}
		return s
	}
	for _, s := range []struct{ m, n, k int }{{1, 1, 1}, {3, 70, 5}, {40, 33, 64}, {1, 300, 9}, {64, 256, 256}} {
		for _, tA := range []blas.Transpose{blas.NoTrans, blas.Trans} {
			for _, tB := range []blas.Transpose{blas.NoTrans, blas.Trans} {
				for _, ab := range [][2]float32{{1, 0}, {1, 1}, {0.5, -2}} {
					lda, ldb, ldc := s.k+2, s.n+1, s.n+3
					ar, br := s.m, s.k
					if tA != blas.NoTrans {
						lda, ar = s.m+2, s.k
					}
					if tB != blas.NoTrans {
						ldb, br = s.k+1, s.n
					}
					a, b, c := rnd(ar*lda), rnd(br*ldb), rnd(s.m*ldc)
					want := append([]float32(nil), c...)
					if ab[1] == 0 {
						c[0] = float32(math.NaN())
					}
					im.Sgemm(tA, tB, s.m, s.n, s.k, ab[0], a, lda, b, ldb, ab[1], c, ldc)
					ref.Sgemm(tA, tB, s.m, s.n, s.k, ab[0], a, lda, b, ldb, ab[1], want, ldc)
					for i := range c {
						if d := math.Abs(float64(c[i] - want[i])); !(d <= 1e-5*(1+math.Abs(float64(want[i])))*math.Sqrt(float64(s.k))) {
							t.Fatalf("%v tA %v tB %v alpha, beta %v: c[%d] = %v, gonum %v", s, tA, tB, ab, i, c[i], want[i])
						}
					}
				}
			}
		}
	}
}

// TestSgemmTwoThreads: with two threads, products large enough to split give the same bits as
// on one thread (every element summed in the same order), in every transpose combination.
func TestSgemmTwoThreads(t *testing.T) {
	r := rand.New(rand.NewPCG(2, 2))
	var one, two Implementation
	two.SetThreads(2)
	defer two.Close()
	rnd := func(n int) []float32 {
		s := make([]float32, n)
		for i := range s {
			s[i] = float32(r.NormFloat64())
		}
		return s
	}
	mr, _ := kern.Best().Tile()
	// Split in two row blocks, too small to split, and a row count whose second block would be
	// one row (not split: a single row takes the matrix-vector kernels, other bits).
	shapes := []struct{ m, n, k int }{{128, 256, 64}, {51, 300, 40}, {7, 33, 5}, {mr + 1, 512, 256}}
	for _, s := range shapes {
		for _, tA := range []blas.Transpose{blas.NoTrans, blas.Trans} {
			for _, tB := range []blas.Transpose{blas.NoTrans, blas.Trans} {
				lda, ldb := s.k, s.n
				if tA != blas.NoTrans {
					lda = s.m
				}
				if tB != blas.NoTrans {
					ldb = s.k
				}
				a, b, c := rnd(s.m*s.k), rnd(s.k*s.n), rnd(s.m*s.n)
				c2 := append([]float32(nil), c...)
				c3 := append([]float32(nil), c...)
				one.Sgemm(tA, tB, s.m, s.n, s.k, 1, a, lda, b, ldb, 1, c, s.n)
				two.Sgemm(tA, tB, s.m, s.n, s.k, 1, a, lda, b, ldb, 1, c2, s.n)
				// And as after a stall of the worker: the caller alone, one part.
				two.pool.RunAlone(1)
				two.Sgemm(tA, tB, s.m, s.n, s.k, 1, a, lda, b, ldb, 1, c3, s.n)
				for i := range c {
					if math.Float32bits(c[i]) != math.Float32bits(c2[i]) || math.Float32bits(c[i]) != math.Float32bits(c3[i]) {
						t.Fatalf("%v tA %v tB %v: c[%d] = %v on two threads, %v on the caller alone, %v on one", s, tA, tB, i, c2[i], c3[i], c[i])
					}
				}
			}
		}
	}
	if runtime.GOMAXPROCS(0) < 2 {
		return
	}
	if n := two.Threads(); n != 2 {
		t.Errorf("%d threads after SetThreads(2)", n)
	}
	// The first two shapes split, in all 4 transpose combinations, twice.
	if two.split != 16 {
		t.Errorf("%d products split in two row blocks, want 16", two.split)
	}
}

// BenchmarkSgemm times the products of a training step of the default expert (batch 128, width
// 256): forward X·W, and the two backward products dY·Wᵀ and Xᵀ·dY, on one and two threads.
//
//	go test -run '^$' -bench Sgemm ./expert/nn/blas32/
func BenchmarkSgemm(b *testing.B) {
	r := rand.New(rand.NewPCG(3, 3))
	rnd := func(n int) []float32 {
		s := make([]float32, n)
		for i := range s {
			s[i] = float32(r.NormFloat64())
		}
		return s
	}
	const batch, w = 128, 256
	x, wt, dy, c := rnd(batch*w), rnd(w*w), rnd(batch*w), make([]float32, w*w)
	for _, threads := range []int{1, 2} {
		var im Implementation
		im.SetThreads(threads)
		for _, p := range []struct {
			name   string
			tA, tB blas.Transpose
			m, a   []float32
		}{{"forward", blas.NoTrans, blas.NoTrans, x, wt}, {"input-grad", blas.NoTrans, blas.Trans, dy, wt}, {"weight-grad", blas.Trans, blas.NoTrans, x, dy}} {
			b.Run(fmt.Sprintf("%s/threads-%d", p.name, threads), func(b *testing.B) {
				m, k := batch, w
				if p.tA == blas.Trans {
					m, k = w, batch
				}
				for range b.N {
					im.Sgemm(p.tA, p.tB, m, w, k, 1, p.m, len(p.m)/max(m, k)*0+map[bool]int{true: m, false: k}[p.tA == blas.Trans], p.a, w, 0, c, w)
				}
				b.ReportMetric(2*float64(m*k*w)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
		im.Close()
	}
}
