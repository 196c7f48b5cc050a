package sim_test

import (
	"math"
	"testing"
	"time"

	"github.com/flowact/flowact/robot"
	"github.com/flowact/flowact/robot/robottest"
	"github.com/flowact/flowact/robot/urdf"
	"github.com/flowact/flowact/sim"
)

// TestDriverConformance runs the robot.Driver contract suite on the simulator for every shipped
// robot, with a first-order lag, an underdamped second-order lag, and sensor latency.
func TestDriverConformance(t *testing.T) {
	cfgs := []struct {
		name  string
		cfg   sim.Config
		fresh bool
	}{
		{"first-order", sim.Config{}, false},
		{"second-order", sim.Config{Lag: sim.Lag{Order: 2, Frequency: 30, Damping: 0.4}}, false},
		{"latency", sim.Config{Faults: sim.Faults{StateLatency: 25 * time.Millisecond}}, true},
	}
	for _, name := range []string{"ur5", "panda", "arm5"} {
		m, rc, err := urdf.Shipped(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cfgs {
			t.Run(name+"/"+c.name, func(t *testing.T) {
				c.cfg.Initial = rc.HomePosition(m)
				s, err := sim.New(m, c.cfg)
				if err != nil {
					t.Fatal(err)
				}
				robottest.TestDriver(t, s, robottest.Options{
					Step:            s.Step,
					Fresh:           c.fresh,
					ClampsPosition:  true,
					VelocityLimited: true,
				})
			})
		}
	}
}

// TestSceneMatchesKinematics composes the scene's frames from the root to the end effector and
// compares the result with the model's forward kinematics.
func TestSceneMatchesKinematics(t *testing.T) {
	for _, name := range []string{"ur5", "panda", "arm5"} {
		m, rc, err := urdf.Shipped(name)
		if err != nil {
			t.Fatal(err)
		}
		q := rc.HomePosition(m)
		for i := range q {
			q[i] += 0.1 * float64(i+1) // off home, inside the limits of every shipped arm
		}
		s, err := sim.New(m, sim.Config{Initial: q})
		if err != nil {
			t.Fatal(err)
		}
		var sc sim.Scene
		s.SceneTo(&sc)
		parent := map[string]sim.Frame{}
		for _, f := range sc.Frames {
			parent[f.Child] = f
		}
		pose := robot.Identity
		for link := rc.EELink; link != m.Root; {
			f, ok := parent[link]
			if !ok {
				t.Fatalf("%s: no frame has child %q", name, link)
			}
			pose = f.Pose.Mul(pose)
			link = f.Parent
		}
		chain, err := m.Chain(rc.EELink)
		if err != nil {
			t.Fatal(err)
		}
		var st robot.State
		s.TrueStateTo(&st)
		var want robot.Pose
		chain.Pose(&want, st.Position)
		rot := 0.0
		for i := range want.Rot {
			rot = max(rot, math.Abs(pose.Rot[i]-want.Rot[i]))
		}
		if d := pose.Dist(want); d > 1e-12 || rot > 1e-12 {
			t.Errorf("%s: frames compose to %v, FK gives %v", name, pose.Pos, want.Pos)
		}
	}
}
