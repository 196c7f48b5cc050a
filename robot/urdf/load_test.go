package urdf_test

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/flowact/flowact/configs"
	"github.com/flowact/flowact/robot"
	"github.com/flowact/flowact/robot/urdf"
)

// TestShipped loads and checks every robot in configs.FS.
func TestShipped(t *testing.T) {
	names, err := configs.Robots()
	if err != nil {
		t.Fatal(err)
	}
	if len(names) < 3 {
		t.Fatalf("robots %v, want at least ur5, panda and arm5", names)
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			m, cfg, err := urdf.Shipped(name)
			if err != nil {
				t.Fatal(err)
			}
			if err := cfg.Validate(); err != nil {
				t.Error(err)
			}
			if cfg.Topics.JointStates == "" || cfg.Topics.Command == "" || cfg.Topics.Trajectory == "" {
				t.Errorf("topics %+v", cfg.Topics)
			}
			// Every actuated joint has every limit the safety filter uses.
			for _, j := range m.Joints {
				l := j.Limits
				if j.Type != robot.Continuous && !l.HasPosition {
					t.Errorf("joint %q has no position limits", j.Name)
				}
				if l.Velocity <= 0 || l.Acceleration <= 0 || l.Jerk <= 0 || l.Effort <= 0 {
					t.Errorf("joint %q: limits %+v: want velocity, acceleration, jerk and effort", j.Name, l)
				}
				if _, ok := cfg.Motors[j.Name]; !ok {
					t.Errorf("joint %q has no motor", j.Name)
				}
			}
			// The overrides tighten at least one URDF limit.
			raw := parseShippedURDF(t, name, cfg.URDF)
			tightened := 0
			for i, j := range m.Joints {
				a, b := j.Limits, raw.Joints[i].Limits
				if a.Lower > b.Lower || a.Upper < b.Upper || a.Velocity < b.Velocity || a.Effort < b.Effort {
					tightened++
				}
			}
			if tightened == 0 {
				t.Error("robot.yaml tightens no URDF limit")
			}
			// The home pose is inside the limits and the end effector reachable.
			c, err := m.Chain(cfg.EELink)
			if err != nil {
				t.Fatal(err)
			}
			var p robot.Pose
			c.Pose(&p, cfg.HomePosition(m))
			for _, v := range p.Pos {
				if math.IsNaN(v) || math.Abs(v) > 2 {
					t.Errorf("home end-effector position %v", p.Pos)
				}
			}
		})
	}
}

func parseShippedURDF(t *testing.T, name, file string) *robot.Model {
	t.Helper()
	data, err := fs.ReadFile(configs.FS, "robots/"+name+"/"+file)
	if err != nil {
		t.Fatal(err)
	}
	m, err := urdf.Parse(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestShippedPoses checks the shipped kinematics against poses worked out by hand or published.
func TestShippedPoses(t *testing.T) {
	for _, tc := range []struct {
		robot string
		q     []float64 // nil: the home pose of robot.yaml
		pos   [3]float64
		quat  [4]float64 // x, y, z, w
	}{
		// UR5 at q = 0: the arm stretched along x; d1 - d5 = 0.089159 - 0.09465 high, y offset
		// 0.13585 - 0.1197 + 0.093 + 0.0823 (ur_description's layout).
		{"ur5", []float64{0, 0, 0, 0, 0, 0}, [3]float64{0.81725, 0.19145, -0.005491}, [4]float64{math.Sqrt2 / 2, math.Sqrt2 / 2, 0, 0}},
		// UR5 home: upper arm up (0.089159 + 0.425), forearm forward (0.39225), wrist 2 forward
		// (0.09465), the tool pointing down 0.0823: Ry(π/2) turns the tool's x axis to -z.
		{"ur5", nil, [3]float64{0.4869, 0.10915, 0.514159 - 0.0823}, [4]float64{0, math.Sqrt2 / 2, 0, math.Sqrt2 / 2}},
		// Panda's ready pose: Franka's documented O_T_EE, (0.307, 0, 0.487) pointing down.
		{"panda", nil, [3]float64{0.30689, 0, 0.48688}, [4]float64{1, 0, 0, 0}},
		// arm5 at q = 0: upper arm up, forearm and gripper along x:
		// x = 0.04975 + 0.25 + 0.065 + 0.09, z = 0.072 + 0.03865 + 0.25.
		{"arm5", []float64{0, 0, 0, 0, 0, 0.02}, [3]float64{0.45475, 0, 0.36065}, [4]float64{0, 0, 0, 1}},
	} {
		m, cfg, err := urdf.Shipped(tc.robot)
		if err != nil {
			t.Fatal(err)
		}
		c, err := m.Chain(cfg.EELink)
		if err != nil {
			t.Fatal(err)
		}
		q := tc.q
		if q == nil {
			q = cfg.HomePosition(m)
		}
		var p robot.Pose
		c.Pose(&p, q)
		x, y, z, w := p.Quaternion()
		// 1e-5 m: the published Panda figures are given to 10 µm.
		for i := range 3 {
			if math.Abs(p.Pos[i]-tc.pos[i]) > 1e-5 {
				t.Errorf("%s at %v: position %v, want %v", tc.robot, q, p.Pos, tc.pos)
				break
			}
		}
		if d := math.Abs(x*tc.quat[0] + y*tc.quat[1] + z*tc.quat[2] + w*tc.quat[3]); d < 1-1e-9 {
			t.Errorf("%s at %v: quaternion %v, want %v", tc.robot, q, [4]float64{x, y, z, w}, tc.quat)
		}
	}
}

func TestLoadConfigErrors(t *testing.T) {
	const urdfDoc = `<robot name="bot"><link name="a"/><link name="b"/><link name="tip"/>
<joint name="j" type="revolute"><parent link="a"/><child link="b"/><limit lower="-1" upper="1" velocity="2" effort="3"/></joint>
<joint name="t" type="fixed"><parent link="b"/><child link="tip"/></joint></robot>`
	const okYAML = "ee_link: tip\nlimits:\n  joints:\n    j: {velocity: 1, acceleration: 5, jerk: 50}\n"
	fsys := func(yaml string, files ...string) fstest.MapFS {
		m := fstest.MapFS{"bots/bot/robot.yaml": {Data: []byte(yaml)}, "bots/bot/bot.urdf": {Data: []byte(urdfDoc)}}
		for i := 0; i+1 < len(files); i += 2 {
			m[files[i]] = &fstest.MapFile{Data: []byte(files[i+1])}
		}
		return m
	}
	m, cfg, err := urdf.LoadConfig(fsys(okYAML), "bots/bot")
	if err != nil {
		t.Fatal(err)
	}
	if l := m.Joints[0].Limits; l.Velocity != 1 || l.Acceleration != 5 || l.Jerk != 50 {
		t.Errorf("limits %+v: overrides not applied", l)
	}
	if cfg.Topics.Command != robot.DefaultCommandTopic {
		t.Errorf("topics %+v: defaults not filled", cfg.Topics)
	}

	for _, tc := range []struct {
		name string
		fsys fstest.MapFS
		want string
	}{
		{"no robot.yaml", fstest.MapFS{"bots/bot/bot.urdf": {Data: []byte(urdfDoc)}}, "bots/bot/robot.yaml"},
		{"unknown key", fsys(okYAML + "colour: red\n"), `configs: bots/bot/robot.yaml:5: colour: unknown key "colour"`},
		{"empty robot.yaml", fsys(""), "bots/bot/robot.yaml: empty file"},
		{"missing ee_link", fsys("topics: {command: /c}\n"), "bots/bot/robot.yaml: robot: bad config: ee_link: missing"},
		{"no URDF", fsys("ee_link: tip\nurdf: other.urdf\n"), "bots/bot/other.urdf"},
		{"bad URDF", fsys("ee_link: tip\nurdf: bad.urdf\n", "bots/bot/bad.urdf", `<robot name="x"/>`), `urdf: bots/bot/bad.urdf: robot "x" has no links`},
		{"loosening", fsys("ee_link: tip\nlimits:\n  joints:\n    j: {velocity: 3}\n"), `bots/bot/robot.yaml: robot: limits of joint "j": velocity: would loosen`},
		{"unknown joint", fsys("ee_link: tip\nlimits:\n  joints:\n    k: {jerk: 3}\n"), `limits of joint "k": not an actuated joint`},
		{"unknown ee_link", fsys("ee_link: hand\n"), `ee_link: robot: model "bot" has no link "hand"`},
		{"home outside", fsys("ee_link: tip\nhome: {j: 1.5}\n"), "home.j: 1.5 outside the position limits [-1, 1]"},
		{"home outside tightened", fsys("ee_link: tip\nhome: {j: 0.8}\nlimits: {joints: {j: {upper: 0.5}}}\n"), "home.j: 0.8 outside the position limits [-1, 0.5]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := urdf.LoadConfig(tc.fsys, "bots/bot")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v\nwant one containing %q", err, tc.want)
			}
		})
	}
	if _, _, err := urdf.Shipped("../secrets"); err == nil {
		t.Error("Shipped accepted a path")
	}
	if _, _, err := urdf.Shipped("nope"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Shipped(nope): %v", err)
	}
}

func ExampleShipped() {
	m, cfg, err := urdf.Shipped("panda")
	if err != nil {
		fmt.Println(err)
		return
	}
	c, err := m.Chain(cfg.EELink)
	if err != nil {
		fmt.Println(err)
		return
	}
	var p robot.Pose
	c.Pose(&p, cfg.HomePosition(m))
	fmt.Printf("%s: %d joints, %s %.3f m forward and %.3f m up at home\n", m.Name, m.DoF(), cfg.EELink, p.Pos[0], p.Pos[2])
	// Output:
	// panda: 7 joints, panda_hand_tcp 0.307 m forward and 0.487 m up at home
}
