package dataset_test

import (
	"fmt"
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
