package train_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"

	"github.com/flowact/flowact/expert/nn"
	"github.com/flowact/flowact/expert/train"
)

// Train a small MLP expert on a toy, save a checkpoint, and load it for inference.
func ExampleTrainer() {
	toy := train.Bimodal{H: 4, Slope: 1, Std: 0.1}
	net, err := nn.NewMLP(nn.MLPConfig{H: 4, D: 1, Embed: 1, State: 1, Hidden: 16, Layers: 1}, rand.New(rand.NewPCG(1, 1)))
	if err != nil {
		panic(err)
	}
	defer net.Close()
	tr, err := train.New(net, train.Config{Steps: 20, BatchSize: 16, Seed: 7, EMA: 0.9, MaxPrefix: 2})
	if err != nil {
		panic(err)
	}
	defer tr.Close()
	if err := tr.Run(context.Background(), toy, nil); err != nil {
		panic(err)
	}
	dir, err := os.MkdirTemp("", "expert")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	if err := tr.Save(dir, train.SaveInfo{DataHash: "toy"}); err != nil {
		panic(err)
	}
	loaded, man, err := nn.LoadDir(dir, 1)
	if err != nil {
		panic(err)
	}
	defer loaded.Close()
	fmt.Println(man.Architecture, man.Scheduler.Name, man.TimeDist.Name, man.Provenance.Steps)
	// Output: mlp CondOT Uniform 20
}
