package node_test

import (
	"fmt"
	"log"

	"github.com/flowact/flowact/robot/ros"
	"github.com/flowact/flowact/robot/urdf"
	"github.com/flowact/flowact/sim/node"
	"github.com/flowact/flowact/sim/task"
)

// A UR5 at 100 Hz with a reach scene, on the topics of its robot.yaml; Run(ctx) would register
// it with the master and step it until ctx ends (connect ctx to SIGINT and SIGTERM).
func Example() {
	m, rc, err := urdf.Shipped("ur5")
	if err != nil {
		log.Fatal(err)
	}
	n, err := node.New(m, rc, node.Config{
		Rate: 100,
		Task: task.Config{Name: "reach"}, Seed: 3, Embedding: true,
		ROS: ros.SimSideConfig{Node: ros.Config{
			MasterURI: "http://127.0.0.1:11311/",
			Getenv:    func(string) string { return "" }, // this example ignores ROS_NAMESPACE & co.
		}},
	})
	if err != nil {
		log.Fatal(err)
	}
	t := n.Topics()
	fmt.Println(n.Name(), "at", n.Rate(), "Hz")
	fmt.Println("out:", t.JointStates, t.TF, t.TFStatic, t.Markers, t.Embedding)
	fmt.Println("in: ", t.Command, t.Trajectory)
	fmt.Printf("task: %q\n", n.Instruction())
	// Output:
	// /flowact_sim at 100 Hz
	// out: /joint_states /tf /tf_static /flowact/markers /flowact/embedding
	// in:  /joint_group_pos_controller/command /scaled_pos_joint_traj_controller/command
	// task: "move to the purple one"
}
