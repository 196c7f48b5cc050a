package calib_test

import (
	"fmt"
	"math"

	"github.com/flowact/flowact/calib"
	"github.com/flowact/flowact/robot"
)

// A servo with a 4096-tick single-turn encoder, mounted mirrored, on a joint that travels
// ±1.5 rad: tick 2048 at joint 0.
func ExampleSet() {
	m := &robot.Model{Name: "one", Root: "base", Joints: []robot.Joint{{
		Name: "elbow", Type: robot.Revolute, Parent: "base", Child: "arm", Origin: robot.Identity, Axis: [3]float64{0, 1, 0},
		Limits: robot.Limits{HasPosition: true, Lower: -1.5, Upper: 1.5, Velocity: 3},
	}}}
	s, err := calib.NewSet(m, map[string]calib.Transmission{
		"elbow": {ID: 3, Reduction: -1, Offset: math.Pi, Resolution: 4096, Wrap: 4096},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	ticks, q := make([]float64, 1), make([]float64, 1)
	for _, joint := range []float64{-1.5, 0, 0.5, 1.5} {
		s.PositionToMotor(ticks, []float64{joint})
		s.PositionToJoint(q, ticks)
		fmt.Printf("joint %+.4f rad -> tick %4.0f -> joint %+.4f rad\n", joint, ticks[0], q[0])
	}
	// The same servo homed with its zero inside the travel is refused.
	_, err = calib.NewSet(m, map[string]calib.Transmission{"elbow": {Reduction: -1, Offset: 0.5, Resolution: 4096, Wrap: 4096}})
	fmt.Println(err)
	// Output:
	// joint -1.5000 rad -> tick 3026 -> joint -1.5002 rad
	// joint +0.0000 rad -> tick 2048 -> joint +0.0000 rad
	// joint +0.5000 rad -> tick 1722 -> joint +0.5001 rad
	// joint +1.5000 rad -> tick 1070 -> joint +1.5002 rad
	// calib: joint "elbow": offset: 0.5: the counter wraps at joint value 0.5, inside the travel [-1.5, 1.5]; move the offset so that the wrap falls outside it
}
