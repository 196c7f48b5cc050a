package episode

import (
	"time"

	"github.com/flowact/flowact/dataset"
	"github.com/flowact/flowact/robot"
)

// Episode converts r into a dataset episode of the robot named robotName whose first tick is at
// start (wall or ROS time; the simulation's own clock starts at the Unix epoch, which ROS tools
// treat as unset). Every stream is stamped with the tick at which the policy first saw each
// value, so dataset.Align at r.Rate, sample-and-hold, reproduces the observations of every
// record: states (one per distinct measurement, skipping repeats from dropped samples),
// embeddings (one per VLM frame) and actions (every command). The embeddings' data is shared
// with r.
func (r *Result) Episode(robotName string, start time.Time) *dataset.Episode {
	ep := &dataset.Episode{
		Meta: dataset.Meta{
			Version: dataset.MetaVersion, Task: r.Meta.Task, Instruction: r.Meta.Instruction,
			Seed: r.Seed, Success: r.Success, Robot: robotName, Joints: r.Joints, Rate: r.Rate,
		},
		States:  make([]dataset.JointState, 0, len(r.Records)),
		Actions: make([]dataset.Action, 0, len(r.Records)),
	}
	var lastState, lastEmb time.Duration = -1, -1
	for i := range r.Records {
		rec := &r.Records[i]
		at := start.Add(rec.T)
		if rec.StateAt != lastState {
			ep.States = append(ep.States, dataset.JointState{Stamp: at, Position: rec.Position, Velocity: rec.Velocity})
			lastState = rec.StateAt
		}
		if rec.Embedding != nil && rec.EmbeddingAt != lastEmb {
			ep.Embeddings = append(ep.Embeddings, robot.Embedding{Stamp: at, Tokens: r.Tokens, Width: r.Width, Data: rec.Embedding})
			lastEmb = rec.EmbeddingAt
		}
		ep.Actions = append(ep.Actions, dataset.Action{Stamp: at, Position: rec.Command})
	}
	return ep
}
