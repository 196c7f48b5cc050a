package train

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/blas/gonum"
	G "gorgonia.org/gorgonia"

	"github.com/flowact/flowact/expert/nn"
)

// randSource fills batches with normal values: a stand-in for a dataset of the same shapes.
type randSource struct{ h, d, tokens, width, state int }

func (s randSource) Next(b *Batch, r *rand.Rand) error {
	b.resize(s.h, s.d, s.tokens, s.width, s.state)
	for _, x := range [][]float32{b.Actions, b.Embedding, b.State} {
		for i := range x {
			x[i] = float32(r.NormFloat64())
		}
	}
	return nil
}

// BenchmarkTrainStep times optimizer steps of `flowact train`'s default expert (MLP, hidden 256,
// 3 blocks, batch 128, H = 32, 7 joints, 16 x 64 embedding, state 7) and of a transformer of
// the same width and depth at batch 16 (gorgonia's graph for batch 128 holds several GB), with
// gorgonia on gonum's BLAS and on expert/nn's kernels (blas32) on one and two threads, and on one
// thread with the whole differentiated graph compiled (unpruned: the gradients of inputs and
// constants too, as before the trainer pruned them). Besides
// steps/s (wall) it reports cpu-ms/step: the process's CPU time per step, all threads, which a
// loaded machine stretches less than wall time.
//
//	go test -run '^$' -bench TrainStep -benchtime 20x ./expert/train/
func BenchmarkTrainStep(b *testing.B) {
	src := randSource{h: 32, d: 7, tokens: 16, width: 64, state: 7}
	// mlp is the default expert (3 blocks), mlp6 the shipped checkpoint's depth (--layers 6).
	for _, arch := range []string{nn.ArchMLP, "mlp6", nn.ArchTransformer} {
		for _, impl := range []string{"gonum", "unpruned", "kernels", "kernels2"} {
			threads := 1
			if impl == "kernels2" {
				threads = 2
			}
			b.Run(fmt.Sprintf("%s/%s", arch, impl), func(b *testing.B) {
				var net nn.Net
				var err error
				r := rand.New(rand.NewPCG(1, 1))
				switch arch {
				case nn.ArchMLP, "mlp6":
					layers := 3
					if arch == "mlp6" {
						layers = 6
					}
					net, err = nn.NewMLP(nn.MLPConfig{H: src.h, D: src.d, Embed: src.width, State: src.state, Hidden: 256, Layers: layers}, r)
				default:
					net, err = nn.NewTransformer(nn.TransformerConfig{H: src.h, D: src.d, Embed: src.width, State: src.state, Width: 256, Layers: 3}, r)
				}
				if err != nil {
					b.Fatal(err)
				}
				defer net.Close()
				batch := 128
				if arch == nn.ArchTransformer {
					batch = 16
				}
				tr, err := New(net, Config{Steps: 1 << 30, BatchSize: batch, EMA: 0.999, Threads: threads})
				if err != nil {
					b.Fatal(err)
				}
				defer tr.Close()
				defer kernelBLAS.SetThreads(1)
				tr.keepAll = impl == "unpruned"
				if impl == "gonum" {
					G.Use(gonum.Implementation{})
					defer G.Use(kernelBLAS)
				}
				tr.cfg.Steps = 1 // build the graph: one untimed step
				if err := tr.Run(context.Background(), src, nil); err != nil {
					b.Fatal(err)
				}
				b.ResetTimer()
				cpu0 := cpuSeconds()
				tr.cfg.Steps = 1 + b.N
				if err := tr.Run(context.Background(), src, nil); err != nil {
					b.Fatal(err)
				}
				cpu := cpuSeconds() - cpu0
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "steps/s")
				if cpu > 0 {
					b.ReportMetric(cpu*1e3/float64(b.N), "cpu-ms/step")
				}
			})
		}
	}
}
