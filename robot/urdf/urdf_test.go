package urdf_test

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowact/flowact/configs"
	"github.com/flowact/flowact/robot"
	"github.com/flowact/flowact/robot/urdf"
)

// arm exercises every element Parse reads: a fixed mount with an rpy origin, a revolute joint
// with a non-unit axis and a safety controller, a continuous joint without limits, a prismatic
// joint, and the default axis.
const arm = `<?xml version="1.0"?>
<robot name="arm">
  <link name="world"/>
  <link name="base"/>
  <link name="upper"><visual><geometry><box size="1 1 1"/></geometry></visual></link>
  <link name="fore"/>
  <link name="slider"/>
  <link name="tool"/>
  <joint name="mount" type="fixed">
    <parent link="world"/><child link="base"/>
    <origin xyz="0 0 0.5" rpy="0 0 1.5707963267948966"/>
  </joint>
  <joint name="shoulder" type="revolute">
    <parent link="base"/><child link="upper"/>
    <origin xyz="0 0 0.1"/>
    <axis xyz="0 0 2"/>
    <limit lower="-2.8" upper="2.8" velocity="2.1" effort="87"/>
    <safety_controller soft_lower_limit="-2.7" soft_upper_limit="2.7" k_position="100" k_velocity="40"/>
  </joint>
  <joint name="elbow" type="continuous">
    <parent link="upper"/><child link="fore"/>
    <origin xyz="0.4 0 0" rpy="0.1 0.2 0.3"/>
    <axis xyz="0 1 0"/>
  </joint>
  <joint name="slide" type="prismatic">
    <parent link="fore"/><child link="slider"/>
    <limit lower="0" upper="0.04" velocity="0.2" effort="20"/>
  </joint>
  <joint name="tcp" type="fixed">
    <parent link="slider"/><child link="tool"/>
    <origin xyz="0 0 0.1"/>
  </joint>
  <transmission name="t1"><type>transmission_interface/SimpleTransmission</type></transmission>
</robot>`

func TestParse(t *testing.T) {
	m, err := urdf.Parse(strings.NewReader(arm))
	if err != nil {
		t.Fatal(err)
	}
	if m.Name != "arm" || m.Root != "world" {
		t.Errorf("name %q root %q", m.Name, m.Root)
	}
	if got := strings.Join(m.Names(), " "); got != "shoulder elbow slide" {
		t.Errorf("actuated joints %q, want document order", got)
	}
	if len(m.Fixed) != 2 || m.Fixed[0].Name != "mount" || m.Fixed[1].Name != "tcp" {
		t.Errorf("fixed joints %+v", m.Fixed)
	}
	sh := m.Joints[0]
	if sh.Type != robot.Revolute || sh.Parent != "base" || sh.Child != "upper" || sh.Axis != [3]float64{0, 0, 1} {
		t.Errorf("shoulder %+v", sh)
	}
	if want := (robot.Limits{HasPosition: true, Lower: -2.8, Upper: 2.8, Velocity: 2.1, Effort: 87}); sh.Limits != want {
		t.Errorf("shoulder limits %+v, want %+v", sh.Limits, want)
	}
	if want := (robot.SoftLimits{Lower: -2.7, Upper: 2.7, KPosition: 100, KVelocity: 40}); sh.Soft == nil || *sh.Soft != want {
		t.Errorf("shoulder soft limits %+v, want %+v", sh.Soft, want)
	}
	el := m.Joints[1]
	if el.Type != robot.Continuous || el.Limits != (robot.Limits{}) || el.Soft != nil {
		t.Errorf("elbow %+v", el)
	}
	if want := robot.NewPose([3]float64{0.4, 0, 0}, [3]float64{0.1, 0.2, 0.3}); el.Origin != want {
		t.Errorf("elbow origin %+v, want %+v", el.Origin, want)
	}
	sl := m.Joints[2]
	if sl.Type != robot.Prismatic || sl.Axis != [3]float64{1, 0, 0} || sl.Origin != robot.Identity {
		t.Errorf("slide %+v (want the default axis and origin)", sl)
	}
	if m.Fixed[0].Axis != [3]float64{} {
		t.Errorf("fixed joint axis %v, want zero", m.Fixed[0].Axis)
	}
	// Kinematics through the parsed tree: at q = (π/2, 0, 0.03) with the world-to-base yaw of
	// π/2, hand-computed: the base is at (0, 0, 0.5) facing +y, the shoulder rotates the arm
	// by another π/2 to face -x; the elbow's origin is 0.4 m along it: (-0.4, 0, 0.6).
	c, err := m.Chain("fore")
	if err != nil {
		t.Fatal(err)
	}
	var p robot.Pose
	c.Pose(&p, []float64{math.Pi / 2, 0, 0.03})
	for i, want := range [3]float64{-0.4, 0, 0.6} {
		if math.Abs(p.Pos[i]-want) > 1e-12 {
			t.Fatalf("fore at %v, want (-0.4, 0, 0.6)", p.Pos)
		}
	}
}

// doc wraps joints and links into a robot document with links a, b, c.
func doc(body string) string {
	return `<robot name="r"><link name="a"/><link name="b"/><link name="c"/>` + body + `</robot>`
}

const (
	jab = `<joint name="j1" type="revolute"><parent link="a"/><child link="b"/><limit velocity="1" effort="1" lower="-1" upper="1"/></joint>`
	jbc = `<joint name="j2" type="fixed"><parent link="b"/><child link="c"/></joint>`
)

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		is        error
		want      string
	}{
		{"empty", ``, urdf.ErrInvalid, "empty document"},
		{"not xml", `hello`, urdf.ErrInvalid, "urdf:"},
		{"truncated", `<robot name="r"><link name="a"/>`, urdf.ErrInvalid, "unexpected EOF"},
		{"wrong root element", `<sdf name="r"/>`, urdf.ErrInvalid, "root element <sdf>"},
		{"robot without name", `<robot><link name="a"/></robot>`, urdf.ErrInvalid, "<robot> has no name"},
		{"no links", `<robot name="r"/>`, urdf.ErrInvalid, `robot "r" has no links`},
		{"link without name", `<robot name="r"><link/></robot>`, urdf.ErrInvalid, "link 1 has no name"},
		{"duplicate link", `<robot name="r"><link name="a"/><link name="a"/></robot>`, urdf.ErrInvalid, `link "a" appears twice`},
		{"no actuated joints", doc(jbc + `<joint name="j0" type="fixed"><parent link="a"/><child link="b"/></joint>`), nil, `model "r" has no actuated joints`},
		{"joint without name", doc(`<joint type="fixed"><parent link="a"/><child link="b"/></joint>`), urdf.ErrInvalid, "joint 1 has no name"},
		{"duplicate joint", doc(jab + strings.Replace(jbc, `"j2"`, `"j1"`, 1)), urdf.ErrInvalid, `joint "j1" appears twice`},
		{"joint without type", doc(`<joint name="j"><parent link="a"/><child link="b"/></joint>`), urdf.ErrInvalid, `joint "j": no type`},
		{"unknown type", doc(`<joint name="j" type="ball"><parent link="a"/><child link="b"/></joint>`), urdf.ErrInvalid, `joint "j": unknown type "ball"`},
		{"floating", doc(`<joint name="j" type="floating"><parent link="a"/><child link="b"/></joint>`), urdf.ErrUnsupported, `joint "j": type "floating"`},
		{"planar", doc(`<joint name="j" type="planar"><parent link="a"/><child link="b"/></joint>`), urdf.ErrUnsupported, `joint "j": type "planar"`},
		{"mimic", doc(jab + `<joint name="m" type="revolute"><parent link="b"/><child link="c"/><mimic joint="j1"/><limit velocity="1" effort="1"/></joint>`), urdf.ErrUnsupported, `joint "m": <mimic>`},
		{"xacro", `<robot name="r" xmlns:xacro="http://www.ros.org/wiki/xacro"><xacro:macro name="m"/><link name="a"/></robot>`, urdf.ErrUnsupported, "<xacro:macro>: run xacro first"},
		{"no parent", doc(`<joint name="j" type="fixed"><child link="b"/></joint>`), urdf.ErrInvalid, `joint "j": no <parent link>`},
		{"no child", doc(`<joint name="j" type="fixed"><parent link="a"/></joint>`), urdf.ErrInvalid, `joint "j": no <child link>`},
		{"two parents elements", doc(`<joint name="j" type="fixed"><parent link="a"/><parent link="c"/><child link="b"/></joint>`), urdf.ErrInvalid, `joint "j": 2 <parent> elements`},
		{"self loop", doc(`<joint name="j" type="fixed"><parent link="a"/><child link="a"/></joint>`), urdf.ErrInvalid, `joint "j": parent and child are both link "a"`},
		{"undeclared parent", doc(`<joint name="j" type="fixed"><parent link="x"/><child link="b"/></joint>`), urdf.ErrInvalid, `joint "j": parent link "x" is not declared`},
		{"undeclared child", doc(`<joint name="j" type="fixed"><parent link="a"/><child link="y"/></joint>`), urdf.ErrInvalid, `joint "j": child link "y" is not declared`},
		{"two parent joints", doc(jab + `<joint name="j3" type="fixed"><parent link="c"/><child link="b"/></joint>`), urdf.ErrInvalid, `link "b" is the child of joints "j1" and "j3"`},
		{"two roots", doc(jab), urdf.ErrInvalid, `2 root links ("a", "c")`},
		{"all on a cycle", doc(jab + jbc + `<joint name="j3" type="fixed"><parent link="c"/><child link="a"/></joint>`), urdf.ErrInvalid, "no root link: joint"},
		{"cycle beside the tree", `<robot name="r"><link name="a"/><link name="b"/><link name="c"/><link name="d"/>` + jab +
			`<joint name="x1" type="fixed"><parent link="c"/><child link="d"/></joint><joint name="x2" type="fixed"><parent link="d"/><child link="c"/></joint></robot>`,
			urdf.ErrInvalid, `is on a cycle (not connected to root link "a")`},
		{"bad xyz", doc(`<joint name="j" type="fixed"><parent link="a"/><child link="b"/><origin xyz="0 0"/></joint>`), urdf.ErrInvalid, `joint "j": <origin xyz>: "0 0" is not three numbers`},
		{"bad rpy", doc(`<joint name="j" type="fixed"><parent link="a"/><child link="b"/><origin rpy="0 x 0"/></joint>`), urdf.ErrInvalid, `joint "j": <origin rpy>: "x" is not a finite number`},
		{"NaN origin", doc(`<joint name="j" type="fixed"><parent link="a"/><child link="b"/><origin xyz="NaN 0 0"/></joint>`), urdf.ErrInvalid, `"NaN" is not a finite number`},
		{"zero axis", doc(`<joint name="j" type="continuous"><parent link="a"/><child link="b"/><axis xyz="0 0 0"/></joint>`), urdf.ErrInvalid, `joint "j": <axis xyz> [0 0 0] is not a direction`},
		{"huge axis", doc(`<joint name="j" type="continuous"><parent link="a"/><child link="b"/><axis xyz="1e308 1e308 0"/></joint>`), urdf.ErrInvalid, `joint "j": <axis xyz>`},
		{"revolute without limit", doc(`<joint name="j" type="revolute"><parent link="a"/><child link="b"/></joint>`), urdf.ErrInvalid, `joint "j": a revolute joint needs <limit>`},
		{"prismatic without limit", doc(`<joint name="j" type="prismatic"><parent link="a"/><child link="b"/></joint>`), urdf.ErrInvalid, `joint "j": a prismatic joint needs <limit>`},
		{"limit without velocity", doc(`<joint name="j" type="revolute"><parent link="a"/><child link="b"/><limit effort="1"/></joint>`), urdf.ErrInvalid, `joint "j": <limit> has no velocity`},
		{"limit without effort", doc(`<joint name="j" type="revolute"><parent link="a"/><child link="b"/><limit velocity="1"/></joint>`), urdf.ErrInvalid, `joint "j": <limit> has no effort`},
		{"bad limit number", doc(`<joint name="j" type="revolute"><parent link="a"/><child link="b"/><limit velocity="fast" effort="1"/></joint>`), urdf.ErrInvalid, `joint "j": <limit velocity>: "fast"`},
		{"negative velocity", doc(`<joint name="j" type="revolute"><parent link="a"/><child link="b"/><limit velocity="-1" effort="1"/></joint>`), urdf.ErrInvalid, `joint "j": <limit> velocity -1`},
		{"crossed limits", doc(`<joint name="j" type="revolute"><parent link="a"/><child link="b"/><limit lower="1" upper="-1" velocity="1" effort="1"/></joint>`), urdf.ErrInvalid, `joint "j": <limit> lower 1 above upper -1`},
		{"two limits", doc(`<joint name="j" type="revolute"><parent link="a"/><child link="b"/><limit velocity="1" effort="1"/><limit velocity="1" effort="1"/></joint>`), urdf.ErrInvalid, `joint "j": 2 <limit> elements`},
		{"safety without k_velocity", doc(`<joint name="j" type="revolute"><parent link="a"/><child link="b"/><limit velocity="1" effort="1"/><safety_controller k_position="1"/></joint>`), urdf.ErrInvalid, `joint "j": <safety_controller> has no k_velocity`},
		{"bad soft limit", doc(`<joint name="j" type="revolute"><parent link="a"/><child link="b"/><limit velocity="1" effort="1"/><safety_controller k_velocity="1" soft_lower_limit="inf"/></joint>`), urdf.ErrInvalid, `joint "j": <safety_controller soft_lower_limit>`},
		{"crossed soft limits", doc(`<joint name="j" type="revolute"><parent link="a"/><child link="b"/><limit velocity="1" effort="1"/><safety_controller k_velocity="1" soft_lower_limit="0.5"/></joint>`), urdf.ErrInvalid, `soft_lower_limit 0.5 above soft_upper_limit 0`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := urdf.Parse(strings.NewReader(tc.doc))
			if err == nil || !strings.Contains(err.Error(), tc.want) || (tc.is != nil && !errors.Is(err, tc.is)) {
				t.Fatalf("error %v\nwant one containing %q (is %v)", err, tc.want, tc.is)
			}
			if !strings.HasPrefix(err.Error(), "urdf: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
}

func TestParseTooLarge(t *testing.T) {
	big := strings.NewReader(`<robot name="r">` + strings.Repeat(" ", urdf.MaxSize) + `</robot>`)
	if _, err := urdf.Parse(big); !errors.Is(err, urdf.ErrInvalid) || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("error %v", err)
	}
}

func TestParseFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "arm.urdf")
	if err := os.WriteFile(path, []byte(arm), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := urdf.ParseFile(path)
	if err != nil || m.DoF() != 3 {
		t.Fatalf("ParseFile: %v, %v", m, err)
	}
	bad := filepath.Join(dir, "bad.urdf")
	if err := os.WriteFile(bad, []byte(doc(jab)), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := urdf.ParseFile(bad); err == nil || !strings.Contains(err.Error(), "urdf: "+bad+": ") {
		t.Errorf("error %v does not name the file", err)
	}
	if _, err := urdf.ParseFile(filepath.Join(dir, "missing.urdf")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(arm)
	f.Add(doc(jab + jbc))
	f.Add(doc(jab + jbc + `<joint name="j3" type="fixed"><parent link="c"/><child link="a"/></joint>`))
	f.Add(doc(`<joint name="j" type="revolute"><parent link="a"/><child link="b"/><limit velocity="1" effort="1"/><safety_controller k_velocity="1" soft_lower_limit="0.5"/></joint>`))
	f.Add(`<robot name="r" xmlns:xacro="http://www.ros.org/wiki/xacro"><xacro:macro name="m"/></robot>`)
	for _, name := range []string{"ur5", "panda", "arm5"} {
		data, err := fs.ReadFile(configs.FS, "robots/"+name+"/"+name+".urdf")
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(data))
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := urdf.Parse(strings.NewReader(s))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "urdf: ") {
				t.Fatalf("error without prefix: %v", err)
			}
			return
		}
		// A parsed model is valid and every link's chain works.
		if err := m.Validate(); err != nil {
			t.Fatal(err)
		}
		q := make([]float64, m.DoF())
		for _, j := range append(append([]robot.Joint(nil), m.Joints...), m.Fixed...) {
			c, err := m.Chain(j.Child)
			if err != nil {
				t.Fatalf("chain to %q: %v", j.Child, err)
			}
			var p robot.Pose
			c.Pose(&p, q)
		}
	})
}

func ExampleParse() {
	m, err := urdf.Parse(strings.NewReader(arm))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(m.Name, m.Root, m.Names())
	l := m.Joints[0].Limits
	fmt.Printf("%s: [%g, %g] rad, %g rad/s\n", m.Joints[0].Name, l.Lower, l.Upper, l.Velocity)
	// Output:
	// arm world [shoulder elbow slide]
	// shoulder: [-2.8, 2.8] rad, 2.1 rad/s
}
