package train

import (
	"fmt"
	"hash"
	"hash/fnv"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/flowact/flowact/expert/nn"
)

// sigmoidOp is the logistic function as a gorgonia operation computed with expert/nn's
// vectorized float32 kernels (nn.Sigmoid) instead of gorgonia's element-by-element math.Exp.
// Its gradient is symbolic: grad ∘ s ∘ (1 - s) with s the op's output.
type sigmoidOp struct{}

var _ G.SDOp = sigmoidOp{}

func (sigmoidOp) Arity() int { return 1 }

func (sigmoidOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	return hm.NewFnType(a, a)
}

func (sigmoidOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	if len(ds) != 1 {
		return nil, fmt.Errorf("train: sigmoid takes one input, got %d", len(ds))
	}
	s, ok := ds[0].(tensor.Shape)
	if !ok {
		return nil, fmt.Errorf("train: sigmoid input shape is %T", ds[0])
	}
	return s.Clone(), nil
}

func (sigmoidOp) Do(vs ...G.Value) (G.Value, error) {
	if len(vs) != 1 {
		return nil, fmt.Errorf("train: sigmoid takes one input, got %d", len(vs))
	}
	in, ok := vs[0].(*tensor.Dense)
	if !ok || in.Dtype() != tensor.Float32 {
		return nil, fmt.Errorf("train: sigmoid of %T, want a float32 tensor", vs[0])
	}
	out := in.Clone().(*tensor.Dense)
	nn.Sigmoid(out.Data().([]float32))
	return out, nil
}

func (sigmoidOp) ReturnsPtr() bool     { return false }
func (sigmoidOp) CallsExtern() bool    { return false }
func (sigmoidOp) OverwritesInput() int { return -1 }
func (sigmoidOp) String() string       { return "flowactSigmoid" }

func (o sigmoidOp) WriteHash(h hash.Hash) { fmt.Fprint(h, o.String()) }

func (o sigmoidOp) Hashcode() uint32 {
	h := fnv.New32a()
	o.WriteHash(h)
	return h.Sum32()
}

func (sigmoidOp) DiffWRT(inputs int) []bool { return []bool{true} }

func (sigmoidOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	ss, err := G.HadamardProd(output, output)
	if err != nil {
		return nil, err
	}
	d, err := G.Sub(output, ss) // s - s² = s (1 - s)
	if err != nil {
		return nil, err
	}
	g, err := G.HadamardProd(grad, d)
	if err != nil {
		return nil, err
	}
	return G.Nodes{g}, nil
}
