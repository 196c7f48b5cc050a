package norm_test

import (
	"fmt"

	"github.com/flowact/flowact/calib/norm"
)

func Example() {
	// One streaming pass over the rows (here joint positions of a 2-joint arm).
	acc := norm.NewAccumulator(2, 0, []string{"shoulder", "elbow"})
	for i := range 101 {
		if err := acc.Add([]float64{float64(i) / 100, -1}); err != nil {
			panic(err)
		}
	}
	st, err := acc.Stats()
	if err != nil {
		panic(err)
	}
	fmt.Printf("mean %.2f, q01 %.3f, q99 %.3f\n", st.Mean[0], st.Q01[0], st.Q99[0])

	// Normalize a 2-step chunk in place, and back.
	chunk := []float64{0.745, -1, 0.99, -1}
	st.Normalize(chunk, norm.Quantile)
	fmt.Printf("normalized %.3f\n", chunk)
	st.Unnormalize(chunk, norm.Quantile)
	fmt.Printf("restored %.3f\n", chunk)
	// Output:
	// mean 0.50, q01 0.010, q99 0.990
	// normalized [0.500 -1.000 1.000 -1.000]
	// restored [0.745 -1.000 0.990 -1.000]
}
