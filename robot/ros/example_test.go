package ros_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/flowact/flowact/robot"
	"github.com/flowact/flowact/robot/ros"
)

func arm() *robot.Model {
	return &robot.Model{Name: "arm", Root: "base", Joints: []robot.Joint{
		{Name: "shoulder", Type: robot.Revolute}, {Name: "elbow", Type: robot.Revolute},
	}}
}

// A ROS command line configures the node like roscpp's ros::init: remaps, __ns, __name and
// private parameters; other arguments come back untouched. New does no I/O. The default topic
// names are global, so a namespace moves only the private names (services, parameters).
func ExampleConfig_ParseArgs() {
	cfg := ros.Config{Getenv: func(string) string { return "" }} // ignore this shell's ROS_*
	rest, err := cfg.ParseArgs([]string{"run", "__ns:=/robot1", "/joint_states:=/arm/joint_states", "_rate:=50"})
	if err != nil {
		log.Fatal(err)
	}
	n, err := ros.New(cfg, arm(), ros.Handlers{})
	if err != nil {
		log.Fatal(err)
	}
	t := n.Topics()
	fmt.Println(rest, n.Name())
	fmt.Println(t.JointStates, t.Command, t.Start)
	// Output:
	// [run] /robot1/flowact
	// /arm/joint_states /flowact/command /robot1/flowact/start
}

// Run the node until SIGINT or SIGTERM; it waits for the master, re-registers after a master
// restart and unregisters on the way out. The driver goes to the control loop.
func ExampleNode_Run() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	n, err := ros.New(ros.Config{}, arm(), ros.Handlers{
		Hold: func() (string, error) { return "holding", nil },
	})
	if err != nil {
		log.Fatal(err)
	}
	go func() {
		d := n.Driver()
		st := robot.NewState(d.Model().DoF())
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			if d.ReadState(&st) != nil {
				continue // no joint state yet
			}
			_ = d.WriteCommand(&robot.Command{Position: st.Position})
		}
	}()
	if err := n.Run(ctx); err != nil {
		log.Fatal(err)
	}
}
