package onboard_test

import (
	"context"
	"log"
	"os/signal"
	"syscall"

	"github.com/flowact/flowact/cmd/flowact/internal/onboard"
	"github.com/flowact/flowact/policy"
	"github.com/flowact/flowact/robot/ros"
	"github.com/flowact/flowact/robot/urdf"
)

// The runtime of `flowact run`: a policy loop on a ROS node, stopped by SIGINT or SIGTERM (the
// robot brakes to rest, the node unregisters, Run returns nil). The inferer would be
// policy.NewExpert(net, sampler, normalizer, seed) with a checkpoint loaded by expert/nn. (Not
// run by go test: it needs a ROS master.)
func Example() {
	var inf policy.Inferer // policy.NewExpert(...)
	model, rc, err := urdf.Shipped("ur5")
	if err != nil {
		log.Fatal(err)
	}
	cfg := onboard.Config{
		ROS: ros.Config{
			MasterURI: "http://127.0.0.1:11311/",
			Topics:    ros.Topics{JointStates: rc.Topics.JointStates, Command: rc.Topics.Command, Trajectory: rc.Topics.Trajectory},
		},
		Loop:  policy.Config{Rate: 50},
		Start: true,
	}
	rt, err := onboard.New(cfg, model, inf)
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := rt.Run(ctx); err != nil {
		log.Fatal(err)
	}
}
