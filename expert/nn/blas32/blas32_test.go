package blas32

import (
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
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
	for _, s := range []struct{ m, n, k int }{{128, 256, 64}, {51, 300, 40}, {7, 33, 5}} {
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
				one.Sgemm(tA, tB, s.m, s.n, s.k, 1, a, lda, b, ldb, 1, c, s.n)
				two.Sgemm(tA, tB, s.m, s.n, s.k, 1, a, lda, b, ldb, 1, c2, s.n)
				for i := range c {
					if math.Float32bits(c[i]) != math.Float32bits(c2[i]) {
						t.Fatalf("%v tA %v tB %v: c[%d] = %v on two threads, %v on one", s, tA, tB, i, c2[i], c[i])
					}
				}
			}
		}
	}
	if n := two.Threads(); n != 2 && runtime.GOMAXPROCS(0) >= 2 {
		t.Errorf("%d threads after SetThreads(2)", n)
	}
}
