package train

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/flowact/flowact/expert/nn"
)

// TestGradientFiniteDifference checks the graph's gradients against central differences of its
// loss for a few entries of every parameter.
func TestGradientFiniteDifference(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	nets := []nn.Net{}
	m, err := nn.NewMLP(nn.MLPConfig{H: 3, D: 2, Embed: 4, State: 2, Hidden: 8, Layers: 2, TimeFeatures: 4, TimeWidth: 6, CondWidth: 5}, r)
	if err != nil {
		t.Fatal(err)
	}
	nets = append(nets, m)
	tf, err := nn.NewTransformer(nn.TransformerConfig{H: 3, D: 2, Embed: 4, State: 2, Width: 8, Layers: 1, Heads: 2, MLPRatio: 2, TimeFeatures: 4}, r)
	if err != nil {
		t.Fatal(err)
	}
	nets = append(nets, tf)
	for _, net := range nets {
		randomize(net, r)
		src := &fixedSource{b: parityBatch(r, 4, 3, 2, 2, 4, 2)}
		tr, err := New(net, Config{Steps: 1, BatchSize: 4, MaxPrefix: 1, Seed: 3})
		if err != nil {
			t.Fatal(err)
		}
		loss := func() float64 {
			if _, err := tr.prepare(src, tr.stepRand(0)); err != nil {
				t.Fatal(err)
			}
			l, err := tr.run()
			if err != nil {
				t.Fatal(err)
			}
			return l
		}
		loss()
		if _, err := tr.prepare(src, tr.stepRand(0)); err != nil {
			t.Fatal(err)
		}
		if err := tr.vm.RunAll(); err != nil {
			t.Fatal(err)
		}
		grads := map[string][]float32{}
		for _, n := range tr.b.order {
			g, _ := n.Grad()
			grads[n.Name()] = append([]float32(nil), g.Data().([]float32)...)
		}
		tr.reset()
		for _, p := range net.Params() {
			for _, j := range []int{0, len(p.Data) / 2, len(p.Data) - 1} {
				old := p.Data[j]
				const h = 1e-2
				p.Data[j] = old + h
				lp := loss()
				p.Data[j] = old - h
				lm := loss()
				p.Data[j] = old
				fd := (lp - lm) / (2 * h)
				g := float64(grads[p.Name][j])
				if math.Abs(fd-g) > 2e-3+0.02*math.Abs(fd) {
					t.Errorf("%s %s[%d]: gradient %.5g, finite difference %.5g", net.Arch(), p.Name, j, g, fd)
				}
			}
		}
		tr.Close()
	}
}

// fixedSource returns the same batch every time.
type fixedSource struct{ b *Batch }

func (f *fixedSource) Next(dst *Batch, _ *rand.Rand) error {
	*dst = *f.b
	return nil
}
