package train

import (
	"context"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/flowact/flowact/expert/nn"
)

// TestThreadsSameResult trains the same MLP from the same seed on one thread and on two: the
// losses, gradient norms and weights are equal bit for bit. The products (batch 64 by width
// 64 by 64) are large enough to run as two row blocks, and the optimizer's update runs as two
// halves either way.
func TestThreadsSameResult(t *testing.T) {
	if runtime.GOMAXPROCS(0) < 2 {
		t.Skip("one processor: a pool has one thread")
	}
	src := randSource{h: 8, d: 3, tokens: 2, width: 16, state: 3}
	var weights [2][]float32
	var hist [2][]Point
	for i, threads := range []int{1, 2} {
		net, err := nn.NewMLP(nn.MLPConfig{H: src.h, D: src.d, Embed: src.width, State: src.state, Hidden: 64, Layers: 2,
			TimeFeatures: 8, TimeWidth: 8, CondWidth: 8}, rand.New(rand.NewPCG(5, 5)))
		if err != nil {
			t.Fatal(err)
		}
		defer net.Close()
		tr, err := New(net, Config{Steps: 5, BatchSize: 64, LR: 1e-2, Clip: 0.5, EMA: 0.9, Seed: 3, MaxPrefix: 2,
			LogEvery: 1, Threads: threads, Now: fixedClock()})
		if err != nil {
			t.Fatal(err)
		}
		defer tr.Close()
		if n := kernelBLAS.Threads(); n != threads {
			t.Fatalf("the products run on %d threads, want %d", n, threads)
		}
		if err := tr.Run(context.Background(), src, nil); err != nil {
			t.Fatal(err)
		}
		hist[i] = tr.History
		for _, p := range net.Params() {
			weights[i] = append(weights[i], p.Data...)
		}
	}
	kernelBLAS.SetThreads(1)
	sameRuns(t, [2]string{"one thread", "two"}, hist, weights, 5)
}

// sameRuns checks that two runs (named by label) logged steps log points each and that their
// losses, gradient norms and weights are equal bit for bit.
func sameRuns(t *testing.T, label [2]string, hist [2][]Point, weights [2][]float32, steps int) {
	t.Helper()
	if len(hist[0]) != steps || len(hist[1]) != steps {
		t.Fatalf("%d and %d log points, want %d", len(hist[0]), len(hist[1]), steps)
	}
	for s := range hist[0] {
		a, b := hist[0][s], hist[1][s]
		if math.Float64bits(a.Loss) != math.Float64bits(b.Loss) || math.Float64bits(a.GradNorm) != math.Float64bits(b.GradNorm) {
			t.Errorf("step %d: loss %v / %v, gradient norm %v / %v (%s / %s)", a.Step, a.Loss, b.Loss, a.GradNorm, b.GradNorm, label[0], label[1])
		}
	}
	if len(weights[0]) != len(weights[1]) {
		t.Fatalf("%d and %d weights", len(weights[0]), len(weights[1]))
	}
	for k := range weights[0] {
		if math.Float32bits(weights[0][k]) != math.Float32bits(weights[1][k]) {
			t.Fatalf("weight %d: %v %s, %v %s", k, weights[0][k], label[0], weights[1][k], label[1])
		}
	}
}
