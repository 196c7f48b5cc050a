package onboard

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flowact/flowact/internal/rostest"
	"github.com/flowact/flowact/policy"
	"github.com/flowact/flowact/policy/chunk"
	"github.com/flowact/flowact/robot"
	"github.com/flowact/flowact/robot/ros"
	"github.com/flowact/flowact/robot/urdf"
)

// ramp is an Inferer whose chunk goes in a straight line in joint space from the observed
// position to a fixed target, reached at its last row: a plan whose end-effector path is a
// curve that ends at the target's forward kinematics.
type ramp struct {
	h      int
	target []float64
}

func (r *ramp) Shape() (int, int) { return r.h, len(r.target) }

func (r *ramp) Infer(dst *chunk.Chunk, req *policy.Request) error {
	if req.Embedding.Data == nil {
		return errors.New("no embedding")
	}
	d := len(r.target)
	dst.H, dst.D, dst.Start = r.h, d, req.Tick
	dst.Data = dst.Data[:r.h*d]
	for i := range r.h {
		w := float64(i+1) / float64(r.h)
		for j := range d {
			dst.Data[i*d+j] = req.Position[j] + w*(r.target[j]-req.Position[j])
		}
	}
	return nil
}

// pathListener prints, for every MarkerArray on the path topic, one JSON line: frame, and per
// namespace the marker type and the points.
const pathListener = `
import json, sys, rospy
from visualization_msgs.msg import MarkerArray
def cb(m):
    out = {}
    for k in m.markers:
        if k.action != 0:
            continue
        out[k.ns] = {"frame": k.header.frame_id, "type": k.type, "width": k.scale.x,
                     "points": [[p.x, p.y, p.z] for p in k.points]}
    print(json.dumps(out), flush=True)
rospy.init_node("path_listener", anonymous=True)
rospy.Subscriber(sys.argv[1], MarkerArray, cb)
rospy.spin()
`

type pathMarker struct {
	Frame  string       `json:"frame"`
	Type   int          `json:"type"`
	Width  float64      `json:"width"`
	Points [][3]float64 `json:"points"`
}

// TestPathMarkersOverROS runs the runtime, with its end-effector paths on, against the
// simulator node, with rospy as the peer that reads the markers: the plan's line strip ends at
// the forward kinematics of the inferer's target (its chunks' last row), in the robot's root
// frame; the executed one follows the arm from its start to the target, keeps at most
// PathHistory points, each at least pathStep from the last; holding removes the plan's path
// and keeps the executed one. The runtime also sets
// /robot_description, which rosgraph reads back.
func TestPathMarkersOverROS(t *testing.T) {
	rostest.RequirePython(t, "rospy", "visualization_msgs.msg")
	uri := embeddedMaster(t)
	m, rc, err := urdf.Shipped("ur5")
	if err != nil {
		t.Fatal(err)
	}
	desc, err := urdf.ShippedDescription("ur5")
	if err != nil {
		t.Fatal(err)
	}
	home := rc.HomePosition(m)
	target := slices.Clone(home)
	target[0] += 0.6 // rad: 0.3 s at the tightened 2 rad/s
	target[1] -= 0.3
	chain, err := m.Chain(rc.EELink)
	if err != nil {
		t.Fatal(err)
	}
	fk := func(q []float64) [3]float64 {
		var p robot.Pose
		chain.Pose(&p, q)
		return p.Pos
	}

	sn := startSimNode(t, uri, m, rc, false, 0)

	env := rostest.Env(t, uri)
	listener := rostest.Start(t, env, rostest.Python, "-c", pathListener, "/flowact/path_markers")

	const history = 8
	cfg := Config{
		ROS: ros.Config{MasterURI: uri, Host: "127.0.0.1", Embedding: ros.EmbeddingCustom, Getenv: noEnv, ConnectTimeout: 5 * time.Second,
			RobotDescription: desc,
			Topics:           ros.Topics{Command: rc.Topics.Command, Trajectory: rc.Topics.Trajectory, JointStates: rc.Topics.JointStates}},
		Loop:   policy.Config{Rate: 50, Threshold: 5},
		Start:  true,
		Logger: quiet(),
		EELink: rc.EELink, MarkerPeriod: 50 * time.Millisecond, PathHistory: history,
	}
	rt, err := New(cfg, m, &ramp{h: 25, target: target})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rt.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	<-rt.Ready()

	got := rostest.Run(t, env, 30*time.Second, rostest.Python, "-c",
		"import rosgraph, sys; sys.stdout.write(rosgraph.Master('/test').getParam('/robot_description'))")
	if got != desc {
		t.Errorf("/robot_description, as rosgraph reads it: %.300q, want the UR5's description %.300q", got, desc)
	}

	// Wait until the arm is at the target and the listener has printed the paths since.
	want := fk(target)
	st := robot.NewState(m.DoF())
	eventually(t, 30*time.Second, "the arm reaches the target", func() bool {
		sn.Sim().TrueStateTo(&st)
		return dist(fk(st.Position), want) < 1e-3
	})
	var last map[string]pathMarker
	sawExecuted, sawPlan := 0, 0
	eventually(t, 30*time.Second, "the listener prints the executed path ending at the target", func() bool {
		for _, line := range strings.Split(listener.Stdout(), "\n") {
			var msg map[string]pathMarker
			if json.Unmarshal([]byte(line), &msg) != nil {
				continue
			}
			if _, ok := msg[NSPlan]; ok {
				sawPlan++
			}
			if _, ok := msg[NSExecuted]; ok {
				sawExecuted++
			}
			last = msg
		}
		ex, ok := last[NSExecuted]
		return ok && len(ex.Points) > 0 && dist(ex.Points[len(ex.Points)-1], want) < 2e-3
	})
	if sawPlan == 0 {
		t.Fatalf("no plan in %d marker arrays", sawExecuted)
	}
	for _, ns := range []string{NSPlan, NSExecuted} {
		mk, ok := last[ns]
		if !ok {
			t.Errorf("the last marker array has no %s path: %v", ns, last)
			continue
		}
		if mk.Frame != m.Root || mk.Type != 4 || mk.Width != pathWidth || len(mk.Points) < 2 {
			t.Errorf("%s: frame %q type %d width %g, %d points; want %q, 4 (LINE_STRIP), %g, at least 2", ns, mk.Frame, mk.Type, mk.Width, len(mk.Points), m.Root, pathWidth)
		}
	}
	plan := last[NSPlan].Points
	if d := dist(plan[len(plan)-1], want); d > 1e-9 {
		t.Errorf("the plan ends %.3g m from the target's forward kinematics", d)
	}
	ex := last[NSExecuted].Points
	if len(ex) > history {
		t.Errorf("executed path of %d points, want at most %d", len(ex), history)
	}
	for i := 1; i < len(ex); i++ {
		if d := dist(ex[i-1], ex[i]); d < pathStep {
			t.Errorf("executed points %d and %d %.3g m apart, want at least %g", i-1, i, d, pathStep)
		}
	}
	if math.IsNaN(ex[0][0]) {
		t.Error("NaN in the executed path")
	}

	// Holding executes no plan: the plan's path goes, the executed one stays.
	before := len(strings.Split(listener.Stdout(), "\n"))
	if err := rt.Loop().Hold(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "a marker array without the plan after ~hold", func() bool {
		lines := strings.Split(listener.Stdout(), "\n")
		for _, line := range lines[min(before, len(lines)):] {
			var msg map[string]pathMarker
			if json.Unmarshal([]byte(line), &msg) != nil {
				continue
			}
			_, plan := msg[NSPlan]
			_, executed := msg[NSExecuted]
			if !plan && executed {
				return true
			}
		}
		return false
	})
}
