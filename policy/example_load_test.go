package policy_test

import (
	"fmt"
	"log"

	"github.com/flowact/flowact/configs"
	"github.com/flowact/flowact/policy"
	"github.com/flowact/flowact/policy/chunk"
	"github.com/flowact/flowact/robot/urdf"
)

// Load the shipped checkpoint (inside the binary's embedded configs; policy.LoadDir reads one
// from disk) for the shipped UR5 and sample one chunk of joint targets from an observation.
func ExampleLoad() {
	model, rc, err := urdf.Shipped("ur5")
	if err != nil {
		log.Fatal(err)
	}
	ck, err := policy.Load(configs.FS, "checkpoints/ur5-mlp", model, policy.LoadConfig{EELink: rc.EELink})
	if err != nil {
		log.Fatal(err)
	}
	defer ck.Close()
	inf, err := ck.Expert(policy.SamplerConfig{Solver: "midpoint", Steps: 10}.Sampler(), 1)
	if err != nil {
		log.Fatal(err)
	}
	h, d := ck.Shape()
	width, _ := ck.CondShape()
	emb := make([]float32, width) // one token from your VLM
	req := &policy.Request{Seq: 1, Position: rc.HomePosition(model), Embedding: policy.Embedding{Tokens: 1, Width: width, Data: emb}}
	c := chunk.Chunk{Data: make([]float64, h*d)}
	if err := inf.Infer(&c, req); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d x %d chunk of %s actions, state %s; row 0 for tick %d\n", c.H, c.D, ck.Norm.Frame, ck.Norm.State, c.Start)
	// Output: 32 x 6 chunk of relative actions, state joints+ee; row 0 for tick 0
}
