package refnet

import (
	"fmt"
	"testing"

	"github.com/flowact/flowact/expert/nn"
)

// BenchmarkChunk times one chunk of each reference network (Bind and 10 Euler steps, batch 1),
// with float32, half-precision and bfloat16 weights, on one and two threads.
//
//	go test -run '^$' -bench Chunk -benchtime 20x ./expert/nn/refnet/
func BenchmarkChunk(b *testing.B) {
	c, x0 := Normal(1, Cond), Normal(2, H*D)
	for _, kind := range []string{"mlp", "transformer"} {
		for _, prec := range []nn.Precision{nn.F32, nn.F16, nn.BF16} {
			for th := 1; th <= 2; th++ {
				b.Run(fmt.Sprintf("%s/%v/threads=%d", kind, prec, th), func(b *testing.B) {
					var n Net
					if kind == "mlp" {
						n = NewMLP(3, prec, th)
					} else {
						n = NewTransformer(3, prec, th)
					}
					defer n.Close()
					x, v := make([]float32, H*D), make([]float32, H*D)
					b.ReportAllocs()
					b.ResetTimer()
					for i := 0; i < b.N; i++ {
						copy(x, x0)
						Chunk(n, c, x, v)
					}
					b.ReportMetric(float64(ChunkFLOPs(n))*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
					if t, ok := n.(*Transformer); ok {
						b.ReportMetric(float64(t.pool.Stalls()), "stalls")
					}
				})
			}
		}
	}
}
