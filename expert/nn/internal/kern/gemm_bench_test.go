package kern

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

func BenchmarkGemm(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	for _, s := range []struct{ m, k, n int }{{51, 256, 256}, {51, 256, 1024}, {51, 1024, 256}, {1, 1024, 1024}, {1, 400, 1024}} {
		a, bb := randSlice(r, s.m*s.k), randSlice(r, s.k*s.n)
		c := make([]float32, s.m*s.n)
		b.Run(fmt.Sprintf("%dx%dx%d", s.m, s.k, s.n), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				Gemm(c, a, bb, s.m, s.k, s.n, false)
			}
			b.ReportMetric(2*float64(s.m*s.k*s.n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
