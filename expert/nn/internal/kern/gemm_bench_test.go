package kern

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// benchShapes are the networks' products: the transformer's at 51 tokens, the MLP's
// matrix-vector products and a training-sized one.
var benchShapes = []struct{ m, k, n int }{
	{51, 256, 256}, {51, 256, 1024}, {51, 1024, 256}, {1, 1024, 1024}, {1, 933, 1024}, {128, 256, 256},
	{1, 256, 9728}, // the transformer expert's modulation vectors (9 per block of 4, and 2)
	// Matrix-vector products whose weights sit in L2 and come from memory (32 MB as float32):
	// where half-precision weights pay (docs/benchmarks.md, "On a quiet machine").
	{1, 256, 256}, {1, 2048, 4096},
}

func reportGFLOPS(b *testing.B, m, k, n int) {
	b.ReportMetric(2*float64(m*k*n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

// BenchmarkMul times C = A·B with B packed, per implementation, float32, half-precision and
// bfloat16 weights, on one thread and two (Pool).
//
//	go test -run '^$' -bench Mul -count 5 ./expert/nn/internal/kern/
func BenchmarkMul(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	for _, ar := range Archs() {
		for _, prec := range []Precision{F32, F16, BF16} {
			for _, th := range []int{1, 2} {
				p := NewPool(th)
				for _, s := range benchShapes {
					a, bb := randSlice(r, s.m*s.k), randSlice(r, s.k*s.n)
					c := make([]float32, s.m*s.n)
					w := ar.Pack(bb, s.k, s.n, prec)
					ws := make([]float32, w.Scratch(s.m))
					b.Run(fmt.Sprintf("%s/%s/threads=%d/%dx%dx%d", ar.Name(), prec, th, s.m, s.k, s.n), func(b *testing.B) {
						b.ReportAllocs()
						for i := 0; i < b.N; i++ {
							p.MulTo(w, c, a, s.m, false, ws)
						}
						reportGFLOPS(b, s.m, s.k, s.n)
					})
				}
				p.Close()
			}
		}
	}
}

// BenchmarkGonumSgemm is gonum's Sgemm on the same shapes, for comparison with the pure-Go
// implementation (gonum uses its SSE assembly on amd64 unless built with -tags noasm).
func BenchmarkGonumSgemm(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	var impl gonum.Implementation
	for _, s := range benchShapes {
		a, bb := randSlice(r, s.m*s.k), randSlice(r, s.k*s.n)
		c := make([]float32, s.m*s.n)
		b.Run(fmt.Sprintf("%dx%dx%d", s.m, s.k, s.n), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				impl.Sgemm(blas.NoTrans, blas.NoTrans, s.m, s.n, s.k, 1, a, s.k, bb, s.n, 0, c, s.n)
			}
			reportGFLOPS(b, s.m, s.k, s.n)
		})
	}
}

// BenchmarkPeak reports each implementation's measured FMA peak.
func BenchmarkPeak(b *testing.B) {
	for _, ar := range Archs() {
		if ar.peak == nil {
			continue
		}
		b.Run(ar.Name(), func(b *testing.B) {
			var g float64
			for i := 0; i < b.N; i++ {
				g = ar.PeakGFLOPS(20 * time.Millisecond)
			}
			b.ReportMetric(g, "GFLOP/s")
		})
	}
}

func BenchmarkActivations(b *testing.B) {
	x := randSlice(rand.New(rand.NewPCG(1, 1)), 51*1024)
	for _, ar := range Archs() {
		b.Run(ar.Name()+"/gelu", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				ar.GELU(x)
				x[0] = 1 // keep the values bounded
			}
			b.ReportMetric(float64(len(x))*float64(b.N)/b.Elapsed().Seconds()/1e9, "Gelem/s")
		})
	}
}
