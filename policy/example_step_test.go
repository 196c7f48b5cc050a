package policy_test

import (
	"fmt"
	"time"

	"github.com/flowact/flowact/policy"
	"github.com/flowact/flowact/policy/chunk"
	"github.com/flowact/flowact/robot"
)

// arm is a user's own robot: a position-controlled arm that reaches each command at once.
type arm struct {
	model *robot.Model
	pos   []float64
	now   *time.Time
}

func (a *arm) Model() *robot.Model { return a.model }
func (a *arm) ReadState(st *robot.State) error {
	copy(st.Position, a.pos)
	st.Stamp = *a.now
	return nil
}
func (a *arm) WriteCommand(c *robot.Command) error { copy(a.pos, c.Position); return nil }

// toward stands in for the expert: every chunk holds one target.
type toward []float64

func (t toward) Shape() (h, d int) { return 20, len(t) }
func (t toward) Infer(dst *chunk.Chunk, req *policy.Request) error {
	dst.H, dst.D, dst.Start, dst.Data = 20, len(t), req.Tick, dst.Data[:20*len(t)]
	for i := range dst.Data {
		dst.Data[i] = t[i%len(t)]
	}
	return nil
}

// ExampleLoop_Step runs the control loop on a custom driver for 2 s of robot time, stepping it
// in the caller's own schedule with 50 ms of simulated inference, then reads its telemetry.
func ExampleLoop_Step() {
	lim := robot.Limits{HasPosition: true, Lower: -1, Upper: 1, Velocity: 1, Acceleration: 5, Jerk: 50}
	model := &robot.Model{Name: "arm2", Joints: []robot.Joint{
		{Name: "a", Type: robot.Revolute, Limits: lim}, {Name: "b", Type: robot.Revolute, Limits: lim}}}
	now := time.Unix(0, 0)
	a := &arm{model: model, pos: []float64{0, 0}, now: &now}
	l, err := policy.New(policy.Config{Rate: 100}, policy.Deps{Driver: a, Inferer: toward{0.5, -0.3}})
	if err != nil {
		fmt.Println(err)
		return
	}
	l.Start()
	for range 200 {
		l.PutEmbedding(&policy.Embedding{Stamp: now, Tokens: 1, Width: 1, Data: []float32{0}})
		if err := l.Step(now); err != nil {
			fmt.Println(err)
			return
		}
		l.InferPending(50 * time.Millisecond)
		now = now.Add(10 * time.Millisecond)
	}
	s := l.Snapshot()
	fmt.Printf("at %.3f, %.3f: %d ticks, %d chunks, each %.0f ticks late, %s\n",
		a.pos[0], a.pos[1], s.Counters.Ticks, s.Counters.Chunks, s.Hist.Delay.Quantile(0.5), s.Message)
	// Output:
	// at 0.500, -0.300: 200 ticks, 22 chunks, each 5 ticks late, running
}
