package train

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/flowact/flowact/expert/nn"
)

// builder builds gorgonia expressions with a sticky error, so graph code reads like the math.
type builder struct {
	g      *G.ExprGraph
	params map[string]*G.Node
	order  []*G.Node // parameters in the network's order
	err    error
}

func newBuilder(net nn.Net) *builder {
	b := &builder{g: G.NewGraph(), params: map[string]*G.Node{}}
	for _, p := range net.Params() {
		shape := p.Shape
		if len(shape) == 1 {
			// Biases are row matrices here, so they broadcast over rows; the data is shared.
			shape = []int{1, shape[0]}
		}
		t := tensor.New(tensor.WithShape(shape...), tensor.WithBacking(p.Data))
		n := G.NewMatrix(b.g, tensor.Float32, G.WithShape(shape...), G.WithName(p.Name), G.WithValue(t))
		b.params[p.Name] = n
		b.order = append(b.order, n)
	}
	return b
}

// input makes an input matrix node whose value is backed by data (owned by the caller, who
// rewrites it before every run).
func (b *builder) input(name string, data []float32, rows, cols int) *G.Node {
	t := tensor.New(tensor.WithShape(rows, cols), tensor.WithBacking(data))
	return G.NewMatrix(b.g, tensor.Float32, G.WithShape(rows, cols), G.WithName(name), G.WithValue(t))
}

func (b *builder) p(name string) *G.Node {
	n, ok := b.params[name]
	if !ok && b.err == nil {
		b.err = fmt.Errorf("train: graph needs parameter %q the network does not have", name)
	}
	return n
}

func (b *builder) do(n *G.Node, err error) *G.Node {
	if err != nil && b.err == nil {
		b.err = err
	}
	return n
}

func (b *builder) mul(x, y *G.Node) *G.Node {
	if b.err != nil {
		return nil
	}
	return b.do(G.Mul(x, y))
}

func (b *builder) add(x, y *G.Node) *G.Node {
	if b.err != nil {
		return nil
	}
	return b.do(G.Add(x, y))
}

func (b *builder) sub(x, y *G.Node) *G.Node {
	if b.err != nil {
		return nil
	}
	return b.do(G.Sub(x, y))
}

func (b *builder) had(x, y *G.Node) *G.Node {
	if b.err != nil {
		return nil
	}
	return b.do(G.HadamardProd(x, y))
}

// addRow adds a 1 x n row to every row of x.
func (b *builder) addRow(x, row *G.Node) *G.Node {
	if b.err != nil {
		return nil
	}
	return b.do(G.BroadcastAdd(x, row, nil, []byte{0}))
}

// linear is x·W + b with the parameters prefix.w and prefix.b.
func (b *builder) linear(x *G.Node, prefix string) *G.Node {
	return b.addRow(b.mul(x, b.p(prefix+".w")), b.p(prefix+".b"))
}

func (b *builder) silu(x *G.Node) *G.Node {
	if b.err != nil {
		return nil
	}
	return b.had(x, b.do(G.ApplyOp(sigmoidOp{}, x)))
}

// gelu is the tanh approximation, as kern.GELU: 0.5 x (1 + tanh(c (x + a x³))).
func (b *builder) gelu(x *G.Node) *G.Node {
	if b.err != nil {
		return nil
	}
	cube := b.had(b.had(x, x), x)
	inner := b.add(b.scale(x, 0.7978845608028654), b.scale(cube, 0.7978845608028654*0.044715))
	th := b.do(G.Tanh(inner))
	half := b.scale(x, 0.5)
	return b.add(half, b.had(half, th))
}

// scale multiplies x by the constant s.
func (b *builder) scale(x *G.Node, s float32) *G.Node {
	if b.err != nil {
		return nil
	}
	return b.do(G.Mul(x, G.NewConstant(s)))
}

// layerNorm normalizes the rows of x (r x n) without affine parameters, as kern.LayerNorm.
// Row means are products with a constant column of 1/n and are spread back over the row by a
// product with a constant row of ones: plain matrix products.
func (b *builder) layerNorm(x *G.Node) *G.Node {
	if b.err != nil {
		return nil
	}
	r, n := x.Shape()[0], x.Shape()[1]
	id := b.g.AllNodes().Len()
	avg := G.NewConstant(tensor.New(tensor.WithShape(n, 1), tensor.WithBacking(fill(n, 1/float32(n)))), G.WithName(fmt.Sprintf("avg%d", id)))
	ones := G.NewConstant(tensor.New(tensor.WithShape(1, n), tensor.WithBacking(fill(n, 1))), G.WithName(fmt.Sprintf("ones%d", id)))
	eps := G.NewConstant(tensor.New(tensor.WithShape(r, 1), tensor.WithBacking(fill(r, lnEps))), G.WithName(fmt.Sprintf("eps%d", id)))
	mean := b.mul(b.mul(x, avg), ones) // r x n, each row its mean
	xc := b.sub(x, mean)
	vr := b.mul(b.had(xc, xc), avg)
	// 1/sqrt as Inverse(Sqrt): gorgonia v0.9.18's InverseSqrt has a wrong gradient.
	inv := b.do(G.Inverse(b.do(G.Sqrt(b.add(vr, eps))))) // r x 1
	return b.had(xc, b.mul(inv, ones))
}

// modulate is x ∘ (1 + scale) + shift.
func (b *builder) modulate(x, shift, scale *G.Node) *G.Node {
	return b.add(b.add(x, b.had(x, scale)), shift)
}

// lnEps matches nn's LayerNorm epsilon.
const lnEps = 1e-6

func fill(n int, v float32) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = v
	}
	return s
}

// graph is a network's training graph over a batch of B chunks.
type graph interface {
	// set writes one step's inputs: the network input chunks x (B·H·D; committed rows already
	// clean), the flow time of each chunk, the committed length of each chunk and the batch's
	// conditions.
	set(x []float32, t []float64, d []int, bt *Batch)
	// velocity is the B x (H·D) output node.
	velocity() *G.Node
}

// mlpGraph mirrors nn.MLP.
type mlpGraph struct {
	cfg          nn.MLPConfig
	xin, tf, cin []float32
	v            *G.Node
}

func newMLPGraph(b *builder, cfg nn.MLPConfig, batch int) *mlpGraph {
	hd := cfg.H * cfg.D
	m := &mlpGraph{
		cfg: cfg,
		xin: make([]float32, batch*(hd+cfg.H)),
		tf:  make([]float32, batch*cfg.TimeFeatures),
		cin: make([]float32, batch*(cfg.Embed+cfg.State)),
	}
	xin := b.input("xin", m.xin, batch, hd+cfg.H)
	tf := b.input("tf", m.tf, batch, cfg.TimeFeatures)
	cin := b.input("cin", m.cin, batch, cfg.Embed+cfg.State)
	te := b.silu(b.linear(b.silu(b.linear(tf, "time.fc1")), "time.fc2"))
	ce := b.silu(b.linear(cin, "cond"))
	h := b.linear(xin, "in")
	for l := 0; l < cfg.Layers; l++ {
		pre := fmt.Sprintf("blocks.%d.", l)
		scale := b.add(b.mul(te, b.p(pre+"scale.wt")), b.addRow(b.mul(ce, b.p(pre+"scale.wc")), b.p(pre+"scale.b")))
		shift := b.add(b.mul(te, b.p(pre+"shift.wt")), b.addRow(b.mul(ce, b.p(pre+"shift.wc")), b.p(pre+"shift.b")))
		u := b.silu(b.modulate(b.layerNorm(h), shift, scale))
		h = b.add(h, b.linear(u, pre+"fc"))
	}
	m.v = b.linear(b.layerNorm(h), "out")
	return m
}

func (m *mlpGraph) velocity() *G.Node { return m.v }

func (m *mlpGraph) set(x []float32, t []float64, d []int, bt *Batch) {
	cfg := m.cfg
	hd, xw, F := cfg.H*cfg.D, cfg.H*cfg.D+cfg.H, cfg.TimeFeatures
	in := cfg.Embed + cfg.State
	for i := range t {
		row := m.xin[i*xw : (i+1)*xw]
		copy(row, x[i*hd:(i+1)*hd])
		for s := 0; s < cfg.H; s++ {
			row[hd+s] = 0
			if s < d[i] {
				row[hd+s] = 1
			}
		}
		nn.TimeFeatures(m.tf[i*F:(i+1)*F], t[i])
		bt.pooled(m.cin[i*in:i*in+cfg.Embed], i)
		copy(m.cin[i*in+cfg.Embed:(i+1)*in], bt.State[i*bt.StateDim:(i+1)*bt.StateDim])
	}
}

// newGraph builds net's training graph for batches of B chunks with the given number of
// condition tokens.
func newGraph(b *builder, net nn.Net, batch, tokens int) (graph, error) {
	var g graph
	switch n := net.(type) {
	case *nn.MLP:
		g = newMLPGraph(b, n.Config(), batch)
	case *nn.Transformer:
		g = newTransformerGraph(b, n.Config(), batch, tokens)
	default:
		return nil, fmt.Errorf("train: no graph for architecture %q", net.Arch())
	}
	if b.err != nil {
		return nil, b.err
	}
	return g, nil
}
