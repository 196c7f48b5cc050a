package dataset_test

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/flowact/flowact/dataset"
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
	_ = w.WriteEmbedding(&dataset.Embedding{Stamp: start, Tokens: 1, Width: 2, Data: []float32{0.5, -0.5}})
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

func ExampleLoader() {
	dir, err := os.MkdirTemp("", "flowact-loader")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	// Five 1-second episodes of a 1-joint arm at 20 Hz.
	start := time.Unix(1700000000, 0)
	for e := range 5 {
		ep := &dataset.Episode{Meta: dataset.Meta{Task: "reach", Joints: []string{"j"}, Rate: 20},
			Embeddings: []dataset.Embedding{{Stamp: start, Tokens: 2, Width: 8, Data: make([]float32, 16)}}}
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

	l, err := dataset.NewLoader(train, dataset.LoaderConfig{Horizon: 10, BatchSize: 16, Resident: 2, Seed: 1})
	if err != nil {
		panic(err)
	}
	var b dataset.Batch
	samples, batches := 0, 0
	for {
		if err := l.Next(&b); err == io.EOF {
			break
		} else if err != nil {
			panic(err)
		}
		if batches == 0 {
			fmt.Printf("first batch: %d x %d x %d embeddings, %d x %d states, %d x %d x %d action chunks\n",
				b.N, b.Tokens, b.Width, b.N, b.D, b.N, b.H, b.D)
		}
		samples += b.N
		batches++
	}
	fmt.Printf("epoch 0: %d samples in %d batches\n", samples, batches)
	// Output:
	// 4 training and 1 validation episodes
	// first batch: 16 x 2 x 8 embeddings, 16 x 1 states, 16 x 10 x 1 action chunks
	// epoch 0: 84 samples in 6 batches
}
