package train

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/flowact/flowact/expert/nn"
)

// transformerGraph mirrors nn.Transformer over B chunks of T = H + 1 tokens (H action tokens,
// then the state token) and Tk condition tokens each. Rows are tokens: row b·T + i.
//
// Token assembly and the selection of action rows are products with constant 0/1 matrices, and
// multi-head attention masks the keys and values to each head's columns (a head's scores
// Q·(K∘M_h)ᵀ sum over its own columns only): both keep the graph to matrix products, elementwise
// operations, reshapes and a row softmax, whose gradients the finite-difference test checks.
type transformerGraph struct {
	cfg                nn.TransformerConfig
	batch, tokens      int
	xa, st, emb, tf    []float32
	v                  *G.Node
	tfeat, tfeatFilled []float32
}

func (b *builder) constant(name string, data []float32, shape ...int) *G.Node {
	return G.NewConstant(tensor.New(tensor.WithShape(shape...), tensor.WithBacking(data)), G.WithName(fmt.Sprintf("%s%d", name, b.g.AllNodes().Len())))
}

func newTransformerGraph(b *builder, cfg nn.TransformerConfig, B, tk int) *transformerGraph {
	H, D, F := cfg.H, cfg.D, cfg.TimeFeatures
	T := H + 1
	g := &transformerGraph{cfg: cfg, batch: B, tokens: tk,
		xa:  make([]float32, B*H*D),
		st:  make([]float32, B*cfg.State),
		emb: make([]float32, B*tk*cfg.Embed),
		tf:  make([]float32, B*T*F),
	}
	xa := b.input("xa", g.xa, B*H, D)
	st := b.input("st", g.st, B, cfg.State)
	emb := b.input("emb", g.emb, B*tk, cfg.Embed)
	tf := b.input("tf", g.tf, B*T, F)

	// Selection matrices: action row b·H + i -> token row b·T + i; state b -> token b·T + H;
	// token row b·T + i -> position i.
	sa := make([]float32, B*T*B*H)
	saT := make([]float32, B*H*B*T)
	ss := make([]float32, B*T*B)
	pos := make([]float32, B*T*T)
	for bb := 0; bb < B; bb++ {
		for i := 0; i < H; i++ {
			sa[(bb*T+i)*B*H+bb*H+i] = 1
			saT[(bb*H+i)*B*T+bb*T+i] = 1
		}
		ss[(bb*T+H)*B+bb] = 1
		for i := 0; i < T; i++ {
			pos[(bb*T+i)*T+i] = 1
		}
	}
	x := b.add(b.add(
		b.mul(b.constant("sa", sa, B*T, B*H), b.linear(xa, "act")),
		b.mul(b.constant("ss", ss, B*T, B), b.linear(st, "state"))),
		b.mul(b.constant("pos", pos, B*T, T), b.p("pos")))

	c := b.silu(b.linear(b.silu(b.linear(tf, "time.fc1")), "time.fc2"))
	for l := 0; l < cfg.Layers; l++ {
		pre := fmt.Sprintf("blocks.%d.", l)
		var mod [9]*G.Node
		for k, n := range nn.AdaNames() {
			mod[k] = b.linear(c, pre+"ada."+n)
		}
		u := b.modulate(b.layerNorm(x), mod[0], mod[1])
		a := g.attention(b, b.linear(u, pre+"attn.q"), b.linear(u, pre+"attn.k"), b.linear(u, pre+"attn.v"), T)
		x = b.add(x, b.had(mod[2], b.linear(a, pre+"attn.o")))

		u = b.modulate(b.layerNorm(x), mod[3], mod[4])
		a = g.attention(b, b.linear(u, pre+"cross.q"), b.linear(emb, pre+"cross.k"), b.linear(emb, pre+"cross.v"), tk)
		x = b.add(x, b.had(mod[5], b.linear(a, pre+"cross.o")))

		u = b.modulate(b.layerNorm(x), mod[6], mod[7])
		h := b.gelu(b.linear(u, pre+"mlp.fc1"))
		x = b.add(x, b.had(mod[8], b.linear(h, pre+"mlp.fc2")))
	}
	u := b.modulate(b.layerNorm(x), b.linear(c, "final.shift"), b.linear(c, "final.scale"))
	y := b.mul(b.constant("saT", saT, B*H, B*T), b.linear(u, "out")) // B·H x D
	if b.err == nil {
		g.v = b.do(G.Reshape(y, tensor.Shape{B, H * D}))
	}
	return g
}

// attention is multi-head attention of the B·T query rows q over tk key rows per chunk (k, v
// are B·tk x Width), as kern.Attention.
func (g *transformerGraph) attention(b *builder, q, k, v *G.Node, tk int) *G.Node {
	if b.err != nil {
		return nil
	}
	cfg := g.cfg
	B, T, W := g.batch, cfg.H+1, cfg.Width
	dh := W / cfg.Heads
	q3 := b.do(G.Reshape(q, tensor.Shape{B, T, W}))
	k3 := b.do(G.Reshape(k, tensor.Shape{B, tk, W}))
	v3 := b.do(G.Reshape(v, tensor.Shape{B, tk, W}))
	var out *G.Node
	for h := 0; h < cfg.Heads; h++ {
		mask := make([]float32, B*tk*W)
		for r := 0; r < B*tk; r++ {
			for j := h * dh; j < (h+1)*dh; j++ {
				mask[r*W+j] = 1
			}
		}
		mh := b.constant("head", mask, B, tk, W)
		s := b.do(G.BatchedMatMul(q3, b.had(k3, mh), false, true)) // B x T x tk
		s = b.scale(s, float32(1/math.Sqrt(float64(dh))))
		p := b.do(G.SoftMax(b.do(G.Reshape(s, tensor.Shape{B * T, tk}))))
		p = b.do(G.Reshape(p, tensor.Shape{B, T, tk}))
		oh := b.do(G.BatchedMatMul(p, b.had(v3, mh))) // B x T x W, head h's columns
		if out == nil {
			out = oh
		} else {
			out = b.add(out, oh)
		}
	}
	return b.do(G.Reshape(out, tensor.Shape{B * T, W}))
}

func (g *transformerGraph) velocity() *G.Node { return g.v }

func (g *transformerGraph) set(x []float32, t []float64, d []int, bt *Batch) {
	cfg := g.cfg
	H, F, T := cfg.H, cfg.TimeFeatures, cfg.H+1
	copy(g.xa, x)
	copy(g.st, bt.State)
	copy(g.emb, bt.Embedding)
	if g.tfeat == nil {
		g.tfeat = make([]float32, F)
		g.tfeatFilled = make([]float32, F)
		nn.TimeFeatures(g.tfeatFilled, 1)
	}
	for b := range t {
		nn.TimeFeatures(g.tfeat, t[b])
		for i := 0; i < T; i++ {
			row := g.tf[(b*T+i)*F : (b*T+i+1)*F]
			if i < H && i < d[b] {
				copy(row, g.tfeatFilled) // committed tokens are clean: t = 1
			} else {
				copy(row, g.tfeat)
			}
		}
	}
}
