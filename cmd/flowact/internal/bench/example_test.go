package bench_test

import (
	"context"
	"fmt"
	"time"

	"github.com/flowact/flowact/cmd/flowact/internal/bench"
	"github.com/flowact/flowact/policy/chunk"
)

// Expert times chunks of a network; the timings depend on the machine, the evaluations and FLOPs
// per chunk do not.
func ExampleExpert() {
	small := bench.Sizes{H: 8, D: 3, Tokens: 4, State: 3, MLPHidden: 32, MLPLayers: 2, MLPEmbed: 16,
		TFWidth: 32, TFLayers: 1, TFHeads: 2, TFMLPRatio: 2, TFEmbed: 16}
	r, err := bench.Expert(context.Background(), bench.ExpertConfig{Arch: "mlp", Solver: "rk4", Steps: 5,
		Sizes: small, Duration: 10 * time.Millisecond})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s %s: %g evaluations, %.3f MFLOP per chunk, timed: %v\n", r.Arch, r.Solver, r.Evals, r.MFLOP, r.MsMedian > 0)
	// Output:
	// mlp rk4: 20 evaluations, 1.801 MFLOP per chunk, timed: true
}

// Tick times the control tick of a real policy.Loop on a fake robot.
func ExampleTick() {
	r, err := bench.Tick(context.Background(), bench.TickConfig{Strategy: chunk.Prefix, Joints: 6, H: 20,
		Duration: 10 * time.Millisecond, MinTicks: 500, MaxTicks: 500})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s: %d ticks timed, %d overruns, timed: %v\n", r.Strategy, r.Ticks, r.Overruns, r.NsMedian > 0)
	// Output:
	// prefix: 500 ticks timed, 0 overruns, timed: true
}
