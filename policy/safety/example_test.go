package safety_test

import (
	"fmt"

	"github.com/flowact/flowact/policy/safety"
	"github.com/flowact/flowact/robot"
)

// A target far beyond a joint's limit is approached at the limits and never passed.
func ExampleFilter() {
	m := &robot.Model{Name: "one", Joints: []robot.Joint{{Name: "j", Type: robot.Revolute,
		Limits: robot.Limits{HasPosition: true, Lower: -1, Upper: 1, Velocity: 1, Acceleration: 10}}}}
	lim, err := safety.Resolve(m, &safety.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	f := safety.NewFilter(lim, 0.01) // 100 Hz
	f.Reset([]float64{0.9})
	cmd := make([]float64, 1)
	for range 100 {
		f.Step(cmd, []float64{5})
	}
	fmt.Printf("%.3f, position clamps: %v\n", cmd[0], f.Count(0, safety.Position) > 0)
	// Output: 1.000, position clamps: true
}

// Config may tighten the model's limits, never loosen them.
func ExampleResolve() {
	m := &robot.Model{Name: "one", Joints: []robot.Joint{{Name: "j", Type: robot.Revolute,
		Limits: robot.Limits{HasPosition: true, Lower: -1, Upper: 1, Velocity: 1, Acceleration: 10}}}}
	_, err := safety.Resolve(m, &safety.Config{Joints: map[string]safety.JointConfig{"j": {Velocity: 2}}})
	fmt.Println(err)
	lim, _ := safety.Resolve(m, &safety.Config{VelocityScale: 0.5})
	fmt.Println(lim[0].Velocity)
	// Output:
	// safety: joint "j": velocity 2 would loosen the model's 1: safety: bad limits
	// 0.5
}
