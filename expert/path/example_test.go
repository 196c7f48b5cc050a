package path_test

import (
	"fmt"
	"math/rand/v2"

	"github.com/flowact/flowact/expert/experttest"
	"github.com/flowact/flowact/expert/path"
)

// A training pair for the flow-matching loss: x_t and the velocity the model must predict there.
func ExampleAffine_Sample() {
	r := rand.New(rand.NewPCG(1, 2))
	x1 := []float32{0.5, -1}  // a (normalized) action chunk from the data
	x0 := []float32{0.2, 0.4} // noise, normally drawn with expert.Noise
	t := path.Pi0Beta().Sample(r)
	xt, target := make([]float32, 2), make([]float32, 2)
	path.Affine{Scheduler: path.CondOT{}}.Sample(xt, target, x0, x1, t)
	fmt.Println(target) // x1 - x0 for CondOT, whatever t is
	// Output: [0.3 -1.4]
}

// The anytime estimate: where the sample would end if the velocity stayed as it is now.
func ExampleX1HatTo() {
	x, v := []float32{0.1, 0.2}, []float32{1, -2}
	x1hat := make([]float32, 2)
	path.X1HatTo(x1hat, x, v, path.CondOT{}, 0.5) // x + (1 - t) v
	fmt.Println(x1hat)
	// Output: [0.6 -0.8]
}

// Converting an epsilon-predicting model's output to the velocity an ODE sampler needs.
func ExampleConvert() {
	c := path.Cosine{}.At(0.5)
	p, q := path.Convert(c, path.Noise, path.Velocity) // v = p x + q eps
	fmt.Printf("v = %.4f x + %.4f eps\n", p, q)
	// Output: v = 1.5708 x + -2.2214 eps
}

// Sampling a field trained along CondOT on the cosine path.
func ExampleReschedule() {
	target := experttest.Mixture{N: 1, Components: []experttest.Gaussian{{Mean: []float64{2}, Std: []float64{0.5}}}}
	trained, _ := experttest.NewField(path.CondOT{}, experttest.Gaussian{}, target)
	f := path.Reschedule(trained, path.CondOT{}, path.Cosine{})
	tr, rho := f.Time(0.5) // cosine time 0.5 is CondOT time 0.5 (equal SNR 1), scaled by sqrt(2)
	fmt.Printf("t_r = %.3f, rho = %.4f\n", tr, rho)
	// Output: t_r = 0.500, rho = 1.4142
}
