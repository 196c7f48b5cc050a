package calib

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/flowact/flowact/configs"
	"github.com/flowact/flowact/robot"
	"github.com/flowact/flowact/robot/urdf"
)

const goodFile = `version: 1
robot: arm5
lag: 147.144ms
joints:
  waist:       {id: 1, reduction: 1, offset: -3.14159, resolution: 4096, wrap: 4096}
  shoulder:    {id: 2, reduction: -1, offset: 2.5, resolution: 4096, wrap: 4096}
  elbow:       {id: 3, reduction: 1, offset: -2.5, resolution: 4096, wrap: 4096}
  wrist_pitch: {id: 4, reduction: 1, offset: -2.5, resolution: 4096, wrap: 4096}
  wrist_roll:  {id: 5, reduction: 1, offset: 0, resolution: 4096}
  finger:      {id: 6, reduction: 80, offset: 0.015}
ranges:
  waist: [600, 3500]
source: hand-written for the tests
`

func TestParseFile(t *testing.T) {
	f, err := ParseFile("good.yaml", []byte(goodFile))
	if err != nil {
		t.Fatal(err)
	}
	m, rc, err := urdf.Shipped("arm5")
	if err != nil {
		t.Fatal(err)
	}
	s, src, err := Resolve(m, f, rc.Motors, nil)
	if err != nil || src != FromFile {
		t.Fatalf("Resolve: %v, %v", src, err)
	}
	if tr := s.Transmission(1); tr.Reduction != -1 || tr.Offset != 2.5 || tr.ID != 2 {
		t.Errorf("shoulder %+v", tr)
	}
	if f.Lag != 147144*time.Microsecond {
		t.Errorf("lag %v, want 147.144ms", f.Lag)
	}
	data, err := f.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	g, err := ParseFile("again.yaml", data)
	if err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	if !reflect.DeepEqual(f, g) {
		t.Errorf("Marshal round trip: %+v, want %+v", g, f)
	}
}

func TestParseFileRefuses(t *testing.T) {
	for _, tc := range []struct {
		name, data string
		want       []string
	}{
		{"unknown key", strings.Replace(goodFile, "resolution: 4096, wrap: 4096}\n  shoulder", "resolution: 4096, wrap: 4096, gain: 2}\n  shoulder", 1), []string{"bad.yaml", "joints.waist", `unknown key "gain"`}},
		{"unknown top key", goodFile + "latency: 3\n", []string{"bad.yaml", `"latency"`}},
		{"version 2", strings.Replace(goodFile, "version: 1", "version: 2", 1), []string{"bad.yaml", "version: 2, want 1"}},
		{"no version", strings.Replace(goodFile, "version: 1\n", "", 1), []string{"bad.yaml", "version: 0"}},
		{"no robot", strings.Replace(goodFile, "robot: arm5\n", "", 1), []string{"bad.yaml", "robot: missing"}},
		{"zero reduction", strings.Replace(goodFile, "reduction: -1,", "reduction: 0,", 1), []string{"bad.yaml", `joint "shoulder"`, "reduction"}},
		{"wrap without encoder", strings.Replace(goodFile, "offset: 0.015}", "offset: 0.015, wrap: 10}", 1), []string{"bad.yaml", `joint "finger"`, "wrap"}},
		{"string offset", strings.Replace(goodFile, "offset: 2.5", "offset: left", 1), []string{"bad.yaml", "joints.shoulder"}},
		{"range of no joint", goodFile[:len(goodFile)-len("source: hand-written for the tests\n")] + "  thumb: [1, 2]\n", []string{"bad.yaml", "ranges.thumb"}},
		{"empty", "", []string{"bad.yaml", "empty"}},
		{"negative lag", strings.Replace(goodFile, "lag: 147.144ms", "lag: -5ms", 1), []string{"bad.yaml", "lag: -5ms not in [0, 10s]"}},
		{"lag of a minute", strings.Replace(goodFile, "lag: 147.144ms", "lag: 1m", 1), []string{"bad.yaml", "lag: 1m0s not in [0, 10s]"}},
		{"lag without unit", strings.Replace(goodFile, "lag: 147.144ms", "lag: fast", 1), []string{"bad.yaml", "lag"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseFile("bad.yaml", []byte(tc.data))
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
	// Valid on its own, wrong for the model: the wrap inside the shoulder's travel, a file for
	// another robot.
	m, rc, err := urdf.Shipped("arm5")
	if err != nil {
		t.Fatal(err)
	}
	f, err := ParseFile("f.yaml", []byte(strings.Replace(goodFile, "offset: 2.5", "offset: 0", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := Resolve(m, f, rc.Motors, nil); err == nil || !strings.Contains(err.Error(), `joint "shoulder": offset: 0: the counter wraps`) {
		t.Errorf("wrap inside the travel: %v", err)
	}
	f.Joints["shoulder"] = Transmission{ID: 2, Reduction: -1, Offset: 2.5, Resolution: 4096, Wrap: 4096}
	f.Robot = "ur5"
	if _, _, err := Resolve(m, f, rc.Motors, nil); !errors.Is(err, ErrFile) {
		t.Errorf("file of another robot: %v", err)
	}
}

func TestNominal(t *testing.T) {
	m, rc, err := urdf.Shipped("arm5")
	if err != nil {
		t.Fatal(err)
	}
	s, src, err := Resolve(m, nil, rc.Motors, nil)
	if err != nil || src != FromNominal {
		t.Fatalf("%v %v", src, err)
	}
	if tr := s.Transmission(m.Index("shoulder")); tr.Reduction != -1 || tr.ID != 2 {
		t.Errorf("shoulder from robot.yaml: %+v", tr)
	}
	// From the URDF for the joints it covers, robot.yaml for the rest.
	motors := map[string]robot.Motor{}
	for k, v := range rc.Motors {
		motors[k] = v
	}
	delete(motors, "elbow")
	tr := []urdf.Transmission{{Name: "elbow_trans", Joint: "elbow", Actuator: "elbow_motor", Reduction: -2, Offset: 0.25}}
	s, _, err = Resolve(m, nil, motors, tr)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Transmission(m.Index("elbow")); got.Reduction != -2 || got.Offset != 0.25 || got.ID != -1 {
		t.Errorf("elbow from the URDF: %+v", got)
	}
	// One source per joint; full cover; none at all.
	if _, _, err := Resolve(m, nil, rc.Motors, tr); err == nil || !strings.Contains(err.Error(), "both URDF <transmission \"elbow_trans\"> and robot.yaml motors.elbow") {
		t.Errorf("joint in both: %v", err)
	}
	delete(motors, "waist")
	if _, _, err := Resolve(m, nil, motors, tr); err == nil || !strings.Contains(err.Error(), `joint "waist": no transmission`) {
		t.Errorf("partial cover: %v", err)
	}
	if s, src, err := Resolve(m, nil, nil, nil); s != nil || src != FromNone || err != nil {
		t.Errorf("no source: %v %v %v", s, src, err)
	}
}

func FuzzParseFile(f *testing.F) {
	f.Add([]byte(goodFile))
	f.Add([]byte("version: 1\nrobot: x\njoints: {a: {reduction: 1}}\n"))
	f.Add([]byte("version: 1\nrobot: x\njoints: {a: {reduction: 1, resolution: 4096, wrap: 4096, offset: 1e308}}\n"))
	f.Add([]byte("version: [1\n"))
	m := oneJoint(robot.Revolute, -1, 1)
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := ParseFile("fuzz.yaml", data)
		if err != nil {
			var ce *configs.Error
			if !errors.As(err, &ce) || ce.File != "fuzz.yaml" {
				t.Fatalf("error %v does not name the file", err)
			}
			return
		}
		if err := file.Validate(); err != nil {
			t.Fatalf("parsed, then invalid: %v", err)
		}
		tr, ok := file.Joints["j"]
		if !ok {
			return
		}
		s, err := NewSet(m, map[string]Transmission{"j": tr})
		if err != nil {
			return
		}
		// Whatever was accepted converts without panicking and inverts.
		q, u, back := []float64{0.3}, make([]float64, 1), make([]float64, 1)
		s.PositionToMotor(u, q)
		s.PositionToJoint(back, u)
		if tol := 0.5/abs(tr.Scale()) + 1e-9; tr.Resolution > 0 && abs(back[0]-q[0]) > tol {
			t.Fatalf("%+v: 0.3 -> %v -> %v", tr, u[0], back[0])
		}
		data2, err := file.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseFile("again.yaml", data2); err != nil {
			t.Fatalf("Marshal output refused: %v\n%s", err, data2)
		}
	})
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}
