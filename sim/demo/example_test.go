package demo_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/flowact/flowact/sim/demo"
	"github.com/flowact/flowact/sim/task"
)

func Example() {
	rb, err := task.ShippedRobot("ur5") // configs/robots/ur5: model, end-effector link, home
	if err != nil {
		panic(err)
	}
	ex, err := demo.New(demo.Config{}, rb, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		panic(err)
	}
	ex.Reset(rb.Home)
	g := task.Truth{Goal: rb.EEPos(rb.Home)}
	g.Goal[2] -= 0.2 // 20 cm down
	q := make([]float64, len(rb.Home))
	for t := time.Duration(0); t <= 2*time.Second; t += 20 * time.Millisecond { // 50 Hz
		ex.CommandTo(q, t, &g)
	}
	p := rb.EEPos(q)
	d := math.Sqrt((p[0]-g.Goal[0])*(p[0]-g.Goal[0]) + (p[1]-g.Goal[1])*(p[1]-g.Goal[1]) + (p[2]-g.Goal[2])*(p[2]-g.Goal[2]))
	fmt.Printf("a %v motion; the commanded end effector ends %.1f mm from the goal\n", ex.Duration(), 1000*d)
	// Output:
	// a 1s motion; the commanded end effector ends 0.0 mm from the goal
}
