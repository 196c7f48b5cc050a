package nn

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/flowact/flowact/expert"
)

// The reference configurations of issue 3: an MLP of 3 hidden layers of 1024 and a transformer
// of width 256, 4 layers, 4 heads, MLP ratio 4, both for chunks of 50 x 7 with 16 condition
// tokens and a state of 7.
func refMLP(threads int) (*MLP, error) {
	return NewMLP(MLPConfig{H: 50, D: 7, Embed: 512, State: 7, Hidden: 1024, Layers: 3, Threads: threads}, rand.New(rand.NewPCG(1, 1)))
}

func refTransformer(threads int) (*Transformer, error) {
	return NewTransformer(TransformerConfig{H: 50, D: 7, Embed: 256, State: 7, Width: 256, Layers: 4, Heads: 4, MLPRatio: 4, Threads: threads}, rand.New(rand.NewPCG(1, 1)))
}

type flopper interface {
	Net
	FLOPs(tokens int) (bind, velocity int64)
}

// benchChunk measures one chunk: Bind, then 10 Euler steps (the ODE's evaluations), at batch 1.
// It reports GFLOP/s from the analytic count.
func benchChunk(b *testing.B, net flopper, tokens, width int) {
	defer net.Close()
	r := rand.New(rand.NewPCG(2, 2))
	c := &expert.Condition{Tokens: tokens, Width: width, Embedding: randVec(r, tokens*width), State: randVec(r, 7)}
	h, d := net.Shape()
	x, v := make([]float32, h*d), make([]float32, h*d)
	const steps = 10
	// Warm up: the first Bind sizes the workspace; later chunks allocate nothing.
	if _, err := net.Bind(c); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuSeconds()
	for i := 0; i < b.N; i++ {
		expert.Noise(x, r)
		f, err := net.Bind(c)
		if err != nil {
			b.Fatal(err)
		}
		for k := 0; k < steps; k++ {
			f.Velocity(v, x, float64(k)/steps)
			for j := range x {
				x[j] += v[j] / steps
			}
		}
	}
	cpu := cpuSeconds() - cpu0
	bind, vel := net.FLOPs(tokens)
	flops := float64(bind+steps*vel) * float64(b.N)
	b.ReportMetric(flops/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/chunk")
	// CPU time of all threads per chunk: on a loaded machine wall time stretches, this does not.
	if cpu > 0 {
		b.ReportMetric(cpu*1e3/float64(b.N), "cpu-ms/chunk")
	}
}

func BenchmarkChunk(b *testing.B) {
	for _, th := range []int{1, 2} {
		b.Run(fmt.Sprintf("mlp/threads=%d", th), func(b *testing.B) {
			net, err := refMLP(th)
			if err != nil {
				b.Fatal(err)
			}
			benchChunk(b, net, 16, 512)
		})
		b.Run(fmt.Sprintf("transformer/threads=%d", th), func(b *testing.B) {
			net, err := refTransformer(th)
			if err != nil {
				b.Fatal(err)
			}
			benchChunk(b, net, 16, 256)
		})
	}
}

// TestFLOPsAtReference pins the analytic counts of the reference configurations, so that the
// benchmarks' GFLOP/s mean what the README says: about 8.6 MFLOP per MLP evaluation and 390 MFLOP
// per transformer evaluation.
func TestFLOPsAtReference(t *testing.T) {
	m, err := refMLP(1)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	_, vm := m.FLOPs(16)
	// time MLP 64·128 + 128·128, input (350+50)·1024, FiLM 3·2·128·1024, blocks 3·1024², out 1024·350
	if want := int64(2 * (64*128 + 128*128 + 400*1024 + 3*2*128*1024 + 3*1024*1024 + 1024*350)); vm != want {
		t.Fatalf("mlp velocity FLOPs %d, want %d", vm, want)
	}
	tr, err := refTransformer(1)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	_, vt := tr.FLOPs(16)
	t.Logf("per evaluation: mlp %.2f MFLOP, transformer %.1f MFLOP", float64(vm)/1e6, float64(vt)/1e6)
	if vt < 350e6 || vt > 420e6 {
		t.Fatalf("transformer velocity FLOPs %d outside the hand estimate 350-420 M", vt)
	}
}
