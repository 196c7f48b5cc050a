package ode_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/flowact/flowact/expert"
	"github.com/flowact/flowact/expert/experttest"
	"github.com/flowact/flowact/expert/ode"
	"github.com/flowact/flowact/expert/path"
)

// exampleField is the exact CondOT field toward N((1, -1), 0.1^2 I): a stand-in for a bound model.
func exampleField() expert.Field {
	target := experttest.Mixture{N: 2, Components: []experttest.Gaussian{{Mean: []float64{1, -1}, Std: []float64{0.1, 0.1}}}}
	f, err := experttest.NewField(path.CondOT{}, experttest.Gaussian{}, target)
	if err != nil {
		panic(err)
	}
	return f
}

// Sampling a chunk: noise from a seed, 10 Euler steps (pi0's sampler), the same chunk every time.
func ExampleFixed() {
	f := exampleField()
	x0 := make([]float32, f.Dim())
	expert.Noise(x0, rand.New(rand.NewPCG(1, 2)))
	s := &ode.Fixed{Method: ode.Heun, Steps: 10}
	chunk := make([]float32, f.Dim())
	if err := s.Sample(chunk, x0, f); err != nil {
		panic(err)
	}
	fmt.Printf("%.2f\n", chunk)
	// Output: [1.04 -0.99]
}

// The adaptive solver reports its cost.
func ExampleDormandPrince() {
	f := exampleField()
	x0 := []float32{0.5, 0.5}
	s := &ode.DormandPrince{RTol: 1e-5, ATol: 1e-5}
	chunk := make([]float32, 2)
	st, err := s.Solve(context.Background(), chunk, x0, f)
	if err != nil {
		panic(err)
	}
	fmt.Printf("%.3f after %d steps, %d evaluations\n", chunk, st.Steps, st.Evals)
	// Output: [1.050 -0.950] after 6 steps, 50 evaluations
}

// A deadline: when time runs out, the sampler returns its best guess of the final chunk.
func ExampleFixed_Solve() {
	f := exampleField()
	ctx, cancel := context.WithDeadline(context.Background(), time.Now()) // already past
	defer cancel()
	chunk := make([]float32, 2)
	_, err := (&ode.Fixed{Method: ode.RK4}).Solve(ctx, chunk, []float32{0.5, 0.5}, f)
	fmt.Println(errors.Is(err, ode.ErrStopped), errors.Is(err, context.DeadlineExceeded))
	fmt.Printf("x1_hat at t = 0: %.2f\n", chunk) // E[x1], the target's mean
	// Output:
	// true true
	// x1_hat at t = 0: [1.00 -1.00]
}

// The log density of a chunk under the field, by integrating back to the noise.
func ExampleLikelihood() {
	f := exampleField()
	l := &ode.Likelihood{Steps: 32}
	lp, st, err := l.LogProb([]float32{1.05, -0.95}, f)
	if err != nil {
		panic(err)
	}
	exact := experttest.Mixture{N: 2, Components: []experttest.Gaussian{{Mean: []float64{1, -1}, Std: []float64{0.1, 0.1}}}}
	fmt.Printf("log p = %.4f (exact %.4f), %d evaluations\n", lp, exact.LogProb([]float32{1.05, -0.95}), st.Evals)
	// Output: log p = 2.5173 (exact 2.5173), 640 evaluations
}

// The stochastic sampler: Song et al.'s reverse SDE from the same field.
func ExampleSDE() {
	f := exampleField()
	s := &ode.SDE{Steps: 50, Noise: 1, Rand: rand.New(rand.NewPCG(3, 4))}
	chunk := make([]float32, 2)
	if err := s.Sample(chunk, []float32{0.5, 0.5}, f); err != nil {
		panic(err)
	}
	fmt.Printf("%.1f\n", chunk)
	// Output: [1.1 -0.9]
}
