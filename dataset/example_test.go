package dataset_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/flowact/flowact/dataset"
	"github.com/flowact/flowact/robot"
)

func Example() {
	dir, err := os.MkdirTemp("", "flowact-dataset")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "episode_0000.bag")

	// Record an episode as it happens: a 2-joint arm at 10 Hz for 1 s, one embedding.
	joints := []string{"shoulder", "elbow"}
	w, err := dataset.Create(path, dataset.WriterConfig{Joints: joints})
	if err != nil {
		panic(err)
	}
	start := time.Unix(1700000000, 0)
	_ = w.WriteEmbedding(&robot.Embedding{Stamp: start, Tokens: 1, Width: 2, Data: []float32{0.5, -0.5}})
	for i := range 11 {
		t := start.Add(time.Duration(i) * 100 * time.Millisecond)
		_ = w.WriteState(&dataset.JointState{Stamp: t, Position: []float64{0.1 * float64(i), 0}})
		_ = w.WriteAction(&dataset.Action{Stamp: t, Position: []float64{0.1 * float64(i+1), 0}})
	}
	if err := w.WriteMeta(&dataset.Meta{Task: "reach", Instruction: "reach the red target", Success: true,
		Robot: "arm2", Joints: joints, Rate: 10}, start.Add(time.Second)); err != nil {
		panic(err)
	}
	if err := w.Close(); err != nil {
		panic(err)
	}

	// Read it back aligned at the control rate and take the last sample with a 3-step chunk.
	a, err := dataset.Load(path, dataset.Config{})
	if err != nil {
		panic(err)
	}
	var s dataset.Sample
	a.SampleTo(&s, a.N-1, 3)
	fmt.Printf("%s: %d ticks at %g Hz, %d joints\n", a.Meta.Task, a.N, a.Rate, a.D)
	fmt.Printf("state %.1f, actions %.1f, mask %v\n", s.State, s.Action, s.Mask)
	// Output:
	// reach: 11 ticks at 10 Hz, 2 joints
	// state [1.0 0.0], actions [1.1 0.0 1.1 0.0 1.1 0.0], mask [1 0 0]
}

func ExampleExamples() {
	dir, err := os.MkdirTemp("", "flowact-examples")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	// Five 1-second episodes of a 1-joint arm at 20 Hz.
	start := time.Unix(1700000000, 0)
	for e := range 5 {
		ep := &dataset.Episode{Meta: dataset.Meta{Task: "reach", Success: true, Joints: []string{"j"}, Rate: 20},
			Embeddings: []robot.Embedding{{Stamp: start, Tokens: 2, Width: 8, Data: make([]float32, 16)}}}
		for i := range 21 {
			t := start.Add(time.Duration(i) * 50 * time.Millisecond)
			ep.States = append(ep.States, dataset.JointState{Stamp: t, Position: []float64{float64(e)}})
			ep.Actions = append(ep.Actions, dataset.Action{Stamp: t, Position: []float64{float64(e) + 0.1}})
		}
		if err := dataset.WriteEpisode(filepath.Join(dir, fmt.Sprintf("ep%d.bag", e)), ep, dataset.WriterConfig{}); err != nil {
			panic(err)
		}
	}
	paths, err := dataset.List(dir)
	if err != nil {
		panic(err)
	}
	train, val := dataset.Split(paths, 0.2, 1)
	fmt.Printf("%d training and %d validation episodes\n", len(train), len(val))

	// Load the training episodes, count their statistics (21 ticks of offsets of up to 10 actions
	// each: 165 per episode) and draw an example of 10 relative actions.
	eps, err := dataset.LoadEpisodes(train, dataset.Config{}, dataset.Successful)
	if err != nil {
		panic(err)
	}
	x, err := dataset.NewExamples(eps, dataset.ExamplesConfig{Horizon: 10, Relative: true})
	if err != nil {
		panic(err)
	}
	var states, actions count
	if err := x.AccumulateTo(&states, &actions); err != nil {
		panic(err)
	}
	h, d, tokens, width, sd := x.Shape()
	emb, state, action := make([]float32, tokens*width), make([]float64, sd), make([]float64, h*d)
	n := x.DrawTo(rand.New(rand.NewPCG(1, 0)), emb, state, action)
	fmt.Printf("%d ticks; %d states and %d relative actions counted\n", x.Samples(), states, actions)
	fmt.Printf("an example: %d x %d embedding, state %.1f, %d recorded of %d actions, the first %.1f\n", tokens, width, state, n, h, action[0])
	// Output:
	// 4 training and 1 validation episodes
	// 84 ticks; 84 states and 660 relative actions counted
	// an example: 2 x 8 embedding, state [3.0], 10 recorded of 10 actions, the first 0.1
}

// count is a norm.Accumulator stand-in (an Adder) that counts rows.
type count int

func (c *count) Add([]float64) error { *c++; return nil }
