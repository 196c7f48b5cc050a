package nn_test

import (
	"fmt"
	"math/rand/v2"

	"github.com/flowact/flowact/expert"
	"github.com/flowact/flowact/expert/nn"
)

// An MLP expert bound to a condition is a velocity field; integrating it from noise at t = 0 to
// t = 1 gives a chunk. The committed prefix comes out exactly.
func ExampleNewMLP() {
	net, err := nn.NewMLP(nn.MLPConfig{H: 4, D: 2, Embed: 8, State: 3}, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		panic(err)
	}
	defer net.Close()
	cond := &expert.Condition{
		Tokens: 2, Width: 8, Embedding: make([]float32, 16),
		State:  []float32{0.1, 0.2, 0.3},
		Prefix: []float32{0.5, -0.5}, // step 0 is committed
	}
	f, err := net.Bind(cond)
	if err != nil {
		panic(err)
	}
	x := make([]float32, f.Dim())
	expert.Noise(x, rand.New(rand.NewPCG(3, 4)))
	v := make([]float32, f.Dim())
	const steps = 10
	for k := 0; k < steps; k++ { // Euler; expert/ode has better samplers
		f.Velocity(v, x, float64(k)/steps)
		for i := range x {
			x[i] += v[i] / steps
		}
	}
	fmt.Println(f.Dim(), x[0], x[1])
	// Output: 8 0.5 -0.5
}
