package sim_test

import (
	"fmt"
	"time"

	"github.com/flowact/flowact/robot"
	"github.com/flowact/flowact/robot/urdf"
	"github.com/flowact/flowact/sim"
)

func Example() {
	m, rc, err := urdf.Shipped("ur5")
	if err != nil {
		panic(err)
	}
	s, err := sim.New(m, sim.Config{Initial: rc.HomePosition(m)}) // first-order lag, tau 50 ms
	if err != nil {
		panic(err)
	}
	target := rc.HomePosition(m)
	target[0] += 0.5
	if err := s.WriteCommand(&robot.Command{Position: target}); err != nil {
		panic(err)
	}
	st := robot.NewState(m.DoF())
	// The 50 ms lag, the 2 rad/s and 8 rad/s^2 limits of robot.yaml and the braking bound shape
	// the response: it stops at the target without overshoot.
	for range 4 {
		s.Step(250 * time.Millisecond)
		if err := s.ReadState(&st); err != nil {
			panic(err)
		}
		fmt.Printf("%v %.3f\n", st.Stamp.Sub(time.Unix(0, 0)), st.Position[0])
	}
	// Output:
	// 250ms 0.251
	// 500ms 0.496
	// 750ms 0.500
	// 1s 0.500
}
