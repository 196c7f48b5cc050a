package ros

import (
	"bytes"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/goroslib/v2/pkg/msgs/sensor_msgs"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/std_msgs"
	"github.com/bluenviron/goroslib/v2/pkg/protocommon"

	"github.com/flowact/flowact/robot"
)

// testModel is a 3-joint arm; only names and types matter here.
func testModel() *robot.Model {
	return &robot.Model{Name: "arm", Root: "base", Joints: []robot.Joint{
		{Name: "shoulder", Type: robot.Revolute},
		{Name: "elbow", Type: robot.Revolute},
		{Name: "wrist", Type: robot.Continuous},
	}}
}

func js(stamp time.Time, names []string, pos, vel, eff []float64) *sensor_msgs.JointState {
	return &sensor_msgs.JointState{Header: std_msgs.Header{Stamp: stamp}, Name: names, Position: pos, Velocity: vel, Effort: eff}
}

func TestJointStatesMerge(t *testing.T) {
	t0 := time.Unix(100, 0)
	now := t0
	clock := func() time.Time { return now }
	tests := []struct {
		name    string
		msgs    []*sensor_msgs.JointState
		wantErr []string // missing joints, nil when a state is expected
		pos     []float64
		vel     []float64
		stamp   time.Time
		stats   JointStateStats
	}{
		{name: "empty", wantErr: []string{"shoulder", "elbow", "wrist"}},
		{name: "partial then missing",
			msgs:    []*sensor_msgs.JointState{js(t0, []string{"elbow"}, []float64{1}, nil, nil)},
			wantErr: []string{"shoulder", "wrist"},
			stats:   JointStateStats{Messages: 1, Stored: 1}},
		{name: "full message out of order",
			msgs: []*sensor_msgs.JointState{js(t0, []string{"wrist", "shoulder", "elbow"}, []float64{3, 1, 2}, []float64{30, 10, 20}, nil)},
			pos:  []float64{1, 2, 3}, vel: []float64{10, 20, 30}, stamp: t0,
			stats: JointStateStats{Messages: 1, Stored: 1}},
		{name: "partials merge, unknown ignored, oldest stamp kept",
			msgs: []*sensor_msgs.JointState{
				js(t0, []string{"shoulder", "gripper"}, []float64{1, 9}, nil, nil),
				js(t0.Add(time.Second), []string{"elbow", "wrist"}, []float64{2, 3}, []float64{0.2, 0.3}, []float64{5, 6}),
			},
			pos: []float64{1, 2, 3}, vel: []float64{0, 0.2, 0.3}, stamp: t0,
			stats: JointStateStats{Messages: 2, Stored: 2, Overwritten: 1, Unknown: 1}},
		{name: "invalid lengths and NaN rejected",
			msgs: []*sensor_msgs.JointState{
				js(t0, []string{"shoulder", "elbow", "wrist"}, []float64{1, 2, 3}, nil, nil),
				js(t0, []string{"shoulder", "elbow"}, []float64{7}, nil, nil),
				js(t0, []string{"shoulder"}, []float64{7}, []float64{1, 2}, nil),
				js(t0, []string{"shoulder"}, []float64{math.NaN()}, nil, nil),
				js(t0, []string{"gripper"}, []float64{7}, nil, nil),
			},
			pos: []float64{1, 2, 3}, vel: []float64{0, 0, 0}, stamp: t0,
			stats: JointStateStats{Messages: 5, Stored: 1, Invalid: 3, Unknown: 1}},
		{name: "a joint named twice rejected",
			msgs: []*sensor_msgs.JointState{
				js(t0, []string{"shoulder", "elbow", "wrist"}, []float64{1, 2, 3}, nil, nil),
				js(t0.Add(time.Second), []string{"elbow", "wrist", "elbow"}, []float64{5, 6, 4}, nil, nil),
			},
			pos: []float64{1, 2, 3}, vel: []float64{0, 0, 0}, stamp: t0,
			stats: JointStateStats{Messages: 2, Stored: 1, Invalid: 1, Duplicate: 1}},
		{name: "zero header stamp uses receive time",
			msgs: []*sensor_msgs.JointState{js(time.Time{}, []string{"shoulder", "elbow", "wrist"}, []float64{1, 2, 3}, nil, nil)},
			pos:  []float64{1, 2, 3}, vel: []float64{0, 0, 0}, stamp: t0,
			stats: JointStateStats{Messages: 1, Stored: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			j := NewJointStates(testModel(), clock)
			for _, m := range tc.msgs {
				j.Store(m)
			}
			var st robot.State
			err := j.ReadState(&st)
			if tc.wantErr != nil {
				var me *MissingJointsError
				if !errors.As(err, &me) || !errors.Is(err, robot.ErrNoState) || !slices.Equal(me.Missing, tc.wantErr) {
					t.Fatalf("err = %v, want missing %q", err, tc.wantErr)
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(st.Position, tc.pos) || !slices.Equal(st.Velocity, tc.vel) || !st.Stamp.Equal(tc.stamp) {
					t.Errorf("state = %+v, want pos %v vel %v stamp %v", st, tc.pos, tc.vel, tc.stamp)
				}
			}
			if got := j.Stats(); got != tc.stats {
				t.Errorf("stats = %+v, want %+v", got, tc.stats)
			}
		})
	}
}

func TestJointStatesAges(t *testing.T) {
	t0 := time.Unix(100, 0)
	now := t0
	j := NewJointStates(testModel(), func() time.Time { return now })
	j.Store(js(t0, []string{"shoulder"}, []float64{1}, nil, nil))
	now = t0.Add(2 * time.Second)
	j.Store(js(t0, []string{"elbow"}, []float64{1}, nil, nil))
	got := j.Ages(nil, t0.Add(3*time.Second))
	want := []time.Duration{3 * time.Second, time.Second, -1}
	if !slices.Equal(got, want) {
		t.Errorf("ages = %v, want %v", got, want)
	}
}

// TestJointStatesNoAlloc proves the subscriber callback and the control loop's read allocate
// nothing once dst is sized.
func TestJointStatesNoAlloc(t *testing.T) {
	j := NewJointStates(testModel(), nil)
	m := js(time.Unix(1, 0), []string{"wrist", "elbow", "shoulder", "gripper"}, []float64{3, 2, 1, 0}, []float64{0, 0, 0, 0}, nil)
	j.Store(m)
	st := robot.NewState(3)
	if a := testing.AllocsPerRun(100, func() { j.Store(m) }); a != 0 {
		t.Errorf("Store allocates %v per call", a)
	}
	if a := testing.AllocsPerRun(100, func() {
		if err := j.ReadState(&st); err != nil {
			t.Fatal(err)
		}
	}); a != 0 {
		t.Errorf("ReadState allocates %v per call", a)
	}
}

func BenchmarkJointStatesStore(b *testing.B) {
	j := NewJointStates(testModel(), nil)
	m := js(time.Unix(1, 0), []string{"wrist", "elbow", "shoulder"}, []float64{3, 2, 1}, []float64{0, 0, 0}, []float64{0, 0, 0})
	b.ReportAllocs()
	for b.Loop() {
		j.Store(m)
	}
}

// FuzzJointStates feeds arbitrary wire bytes through goroslib's decoder into the mailbox: no
// panic, and a state, once complete, always has DoF finite positions.
func FuzzJointStates(f *testing.F) {
	f.Add(wire(f, js(time.Unix(1, 2), []string{"shoulder", "elbow", "wrist"}, []float64{1, 2, 3}, nil, nil)))
	f.Add(wire(f, js(time.Time{}, []string{"elbow", "x"}, []float64{1, 2}, []float64{0, 0}, []float64{1, 1})))
	f.Add([]byte{12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		var m sensor_msgs.JointState
		if protocommon.MessageDecode(bytes.NewReader(b), &m) != nil {
			return
		}
		j := NewJointStates(testModel(), nil)
		j.Store(&m)
		j.Store(js(time.Unix(5, 0), []string{"shoulder", "elbow", "wrist"}, []float64{1, 2, 3}, nil, nil))
		j.Store(&m)
		var st robot.State
		if err := j.ReadState(&st); err != nil {
			t.Fatal(err)
		}
		if len(st.Position) != 3 || len(st.Velocity) != 3 || len(st.Effort) != 3 {
			t.Fatalf("state %+v", st)
		}
		for _, p := range st.Position {
			if math.IsNaN(p) || math.IsInf(p, 0) {
				t.Fatalf("non-finite position in %v", st.Position)
			}
		}
	})
}

// TestJointStatesBeyondLimit: a message with a reading beyond a joint's limit is refused, and the
// next ReadState says so once (robot.ErrBadState, naming the joint), even when a good message
// came after it: a bad reading is never lost behind the robot's next one.
func TestJointStatesBeyondLimit(t *testing.T) {
	m := &robot.Model{Name: "arm", Joints: []robot.Joint{
		{Name: "a", Type: robot.Revolute, Limits: robot.Limits{HasPosition: true, Lower: -1, Upper: 1, Velocity: 1}},
		{Name: "b", Type: robot.Continuous, Limits: robot.Limits{Velocity: 1}},
	}}
	t0 := time.Unix(100, 0)
	j := NewJointStates(m, func() time.Time { return t0 })
	store := func(a, b float64) {
		j.Store(&sensor_msgs.JointState{Header: std_msgs.Header{Stamp: t0}, Name: []string{"a", "b"}, Position: []float64{a, b}})
	}
	st := robot.NewState(2)
	store(0.5, 7) // a continuous joint has no band
	if err := j.ReadState(&st); err != nil || st.Position[0] != 0.5 {
		t.Fatalf("good state: %v %v", err, st.Position)
	}
	store(1.005, 0) // within the tolerance
	store(4, 0)     // beyond
	store(0.2, 0)   // the robot's next, good reading
	err := j.ReadState(&st)
	if !errors.Is(err, robot.ErrBadState) || !strings.Contains(err.Error(), `joint "a": reading 4 outside [-1, 1]`) {
		t.Fatalf("after a reading beyond the limit: %v", err)
	}
	if err := j.ReadState(&st); err != nil || st.Position[0] != 0.2 {
		t.Errorf("the next read: %v %v, want the good state 0.2", err, st.Position)
	}
	if s := j.Stats(); s.Invalid != 1 || s.Beyond != 1 || s.Stored != 3 {
		t.Errorf("stats %+v", s)
	}
}
