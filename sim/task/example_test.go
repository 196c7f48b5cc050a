package task_test

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/flowact/flowact/sim/task"
)

func Example() {
	rb, err := task.ShippedRobot("panda") // configs/robots/panda: model, end-effector link, home
	if err != nil {
		panic(err)
	}
	tk, err := task.New(task.Config{Name: "reach", Reach: task.ReachConfig{Targets: 4}})
	if err != nil {
		panic(err)
	}
	if err := tk.Reset(rand.New(rand.NewPCG(1, 1)), rb); err != nil {
		panic(err)
	}
	var g task.Truth
	tk.TruthTo(&g, 0)
	fmt.Println(tk.Instruction(), tk.TimeLimit())
	fmt.Println(tk.Update(time.Second, rb.EEPos(rb.Home)), tk.Update(2*time.Second, g.Goal), tk.Success())
	// Output:
	// go to the purple sphere 6s
	// false true true
}
