package ckpt_test

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/flowact/flowact/expert/ckpt"
)

func ExampleSave() {
	dir, err := os.MkdirTemp("", "ckpt")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	m := ckpt.Manifest{
		Architecture: "mlp",
		Config:       json.RawMessage(`{"h":1,"d":2}`),
		Scheduler:    ckpt.Component{Name: "CondOT"},
		TimeDist:     ckpt.Component{Name: "Uniform"},
	}
	w := []ckpt.Tensor{{Name: "out.b", Shape: []int{2}, Data: []float32{0.25, -1}}}
	if err := ckpt.Save(dir, m, w, nil); err != nil {
		panic(err)
	}
	c, err := ckpt.Load(dir) // checks version, convention, checksum and structure
	if err != nil {
		panic(err)
	}
	b, err := c.Tensor("out.b", 2)
	fmt.Println(c.Manifest.TimeConvention, b, err)
	_, err = c.Tensor("out.w", 2, 2)
	fmt.Println(err)
	// Output:
	// t0_noise [0.25 -1] <nil>
	// ckpt: model.safetensors: tensor "out.w": missing tensor
}
