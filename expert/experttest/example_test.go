package experttest_test

import (
	"fmt"

	"github.com/flowact/flowact/expert/experttest"
	"github.com/flowact/flowact/expert/path"
)

// The exact velocity field toward a two-mode mixture, and the target's log density.
func ExampleNewField() {
	target := experttest.Mixture{N: 1, Weights: []float64{0.5, 0.5}, Components: []experttest.Gaussian{
		{Mean: []float64{-1}, Std: []float64{0.1}},
		{Mean: []float64{1}, Std: []float64{0.1}},
	}}
	f, err := experttest.NewField(path.CondOT{}, experttest.Gaussian{}, target)
	if err != nil {
		panic(err)
	}
	v := make([]float32, 1)
	f.Velocity(v, []float32{0}, 0) // at t = 0 the velocity is E[x1] - x = 0
	fmt.Printf("u_0(0) = %.3f\n", v[0])
	f.Velocity(v, []float32{0.45}, 0.5) // halfway: 86% posterior on the +1 mode, 14% on -1
	fmt.Printf("u_0.5(0.45) = %.3f\n", v[0])
	fmt.Printf("log p(1) = %.3f\n", target.LogProb([]float32{1}))
	// Output:
	// u_0(0) = 0.000
	// u_0.5(0.45) = 0.528
	// log p(1) = 0.690
}
