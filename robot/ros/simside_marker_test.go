package ros

import (
	"testing"
	"time"

	"github.com/bluenviron/goroslib/v2/pkg/msgs/visualization_msgs"

	"github.com/flowact/flowact/robot"
)

// nopSink accepts and drops everything.
type nopSink struct{}

func (nopSink) WriteCommand(*robot.Command) error       { return nil }
func (nopSink) WriteTrajectory(*robot.Trajectory) error { return nil }

// TestSimSideMarkers checks the MarkerArray PublishMarkers builds: DELETEALL first, then each
// marker in the array's frame or its own, frame-locked when asked, with its pose, size and colour.
func TestSimSideMarkers(t *testing.T) {
	m := &robot.Model{Name: "arm", Root: "base", Joints: []robot.Joint{{Name: "j", Type: robot.Revolute, Parent: "base", Child: "link"}}}
	side, err := NewSimSide(SimSideConfig{Node: Config{Getenv: func(string) string { return "" }}}, m, nopSink{})
	if err != nil {
		t.Fatal(err)
	}
	stamp := time.Unix(9, 0)
	side.PublishMarkers(stamp, "base", []Marker{
		{NS: "targets", ID: 3, Shape: MarkerSphere, Pose: robot.Pose{Pos: [3]float64{1, 2, 3}, Rot: robot.Identity.Rot}, Scale: [3]float64{0.1, 0.1, 0.1}, RGBA: [4]float32{0, 1, 0, 1}},
		{NS: "arm", ID: 0, Shape: MarkerCylinder, Frame: "link", FrameLocked: true, Pose: robot.Identity, Scale: [3]float64{0.04, 0.04, 0.3}},
	})
	arr := side.markers.take()
	if arr == nil || len(arr.Markers) != 3 {
		t.Fatalf("marker array %+v", arr)
	}
	del, tg, arm := arr.Markers[0], arr.Markers[1], arr.Markers[2]
	if del.Action != int32(visualization_msgs.Marker_DELETEALL) {
		t.Errorf("first marker %+v, want DELETEALL", del)
	}
	if tg.Header.FrameId != "base" || tg.FrameLocked || tg.Ns != "targets" || tg.Id != 3 || tg.Type != int32(visualization_msgs.Marker_SPHERE) ||
		tg.Pose.Position.Z != 3 || tg.Pose.Orientation.W != 1 || tg.Color.G != 1 || !tg.Header.Stamp.Equal(stamp) {
		t.Errorf("target marker %+v", tg)
	}
	if arm.Header.FrameId != "link" || !arm.FrameLocked || arm.Type != int32(visualization_msgs.Marker_CYLINDER) || arm.Scale.Z != 0.3 {
		t.Errorf("arm marker %+v", arm)
	}
}
