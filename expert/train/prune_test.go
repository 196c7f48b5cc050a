package train

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/flowact/flowact/expert/nn"
)

// TestPrunedGraph trains the same small MLP and transformer (prefix masking on) twice from the
// same seed, once compiling the whole differentiated graph and once only what the loss and the
// parameters' gradients need: the pruned machine has fewer nodes (the input and constant
// gradients are gone) and the losses, gradient norms and weights are equal bit for bit.
func TestPrunedGraph(t *testing.T) {
	src := randSource{h: 4, d: 3, tokens: 2, width: 6, state: 3}
	for _, arch := range []string{nn.ArchMLP, nn.ArchTransformer} {
		t.Run(arch, func(t *testing.T) {
			var weights [2][]float32
			var hist [2][]Point
			var nodes [2][2]int
			for i, keep := range []bool{true, false} {
				r := rand.New(rand.NewPCG(5, 5))
				var net nn.Net
				var err error
				if arch == nn.ArchMLP {
					net, err = nn.NewMLP(nn.MLPConfig{H: src.h, D: src.d, Embed: src.width, State: src.state, Hidden: 16, Layers: 2, TimeFeatures: 8, TimeWidth: 8, CondWidth: 8}, r)
				} else {
					net, err = nn.NewTransformer(nn.TransformerConfig{H: src.h, D: src.d, Embed: src.width, State: src.state, Width: 8, Layers: 1, Heads: 2, MLPRatio: 2, TimeFeatures: 8}, r)
				}
				if err != nil {
					t.Fatal(err)
				}
				defer net.Close()
				tr, err := New(net, Config{Steps: 6, BatchSize: 4, LR: 1e-2, Clip: 1, EMA: 0.9, Seed: 3, MaxPrefix: 2, LogEvery: 1, Now: fixedClock()})
				if err != nil {
					t.Fatal(err)
				}
				defer tr.Close()
				tr.keepAll = keep
				if err := tr.Run(context.Background(), src, nil); err != nil {
					t.Fatal(err)
				}
				hist[i] = tr.History
				nodes[i] = [2]int{tr.graphNodes, tr.runNodes}
				for _, p := range net.Params() {
					weights[i] = append(weights[i], p.Data...)
				}
			}
			t.Logf("%s: graph %d nodes, whole machine %d, pruned %d", arch, nodes[1][0], nodes[0][1], nodes[1][1])
			if nodes[0][1] != nodes[0][0] || nodes[1][1] >= nodes[1][0] {
				t.Errorf("nodes (graph, run): whole %v, pruned %v: want all, then fewer", nodes[0], nodes[1])
			}
			sameRuns(t, [2]string{"whole", "pruned"}, hist, weights, 6)
		})
	}
}
