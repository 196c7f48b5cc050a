package urdf_test

import (
	"io/fs"
	"math"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/flowact/flowact/configs"
	"github.com/flowact/flowact/robot"
	"github.com/flowact/flowact/robot/urdf"
)

// TestDescribe: a shipped robot's description (its URDF has no visual geometry, so it is
// generated) reads back to the same kinematics and limits as the model, and draws a stick
// figure: a sphere per link and a cylinder per joint offset.
func TestDescribe(t *testing.T) {
	names, err := configs.Robots()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			m, _, err := urdf.Shipped(name)
			if err != nil {
				t.Fatal(err)
			}
			desc, err := urdf.ShippedDescription(name)
			if err != nil {
				t.Fatal(err)
			}
			back, err := urdf.Parse(strings.NewReader(desc))
			if err != nil {
				t.Fatalf("the description does not parse: %v\n%s", err, desc)
			}
			if back.Name != m.Name || back.Root != m.Root || len(back.Joints) != len(m.Joints) || len(back.Fixed) != len(m.Fixed) {
				t.Fatalf("read back as %s (root %s, %d+%d joints), want %s (root %s, %d+%d)", back.Name, back.Root, len(back.Joints), len(back.Fixed), m.Name, m.Root, len(m.Joints), len(m.Fixed))
			}
			all := func(m *robot.Model) []robot.Joint { return append(append([]robot.Joint(nil), m.Joints...), m.Fixed...) }
			got, want := all(back), all(m)
			for i := range want {
				g, w := got[i], want[i]
				if g.Name != w.Name || g.Type != w.Type || g.Parent != w.Parent || g.Child != w.Child || g.Axis != w.Axis {
					t.Errorf("joint %d: %+v, want %+v", i, g, w)
				}
				if d := g.Origin.Dist(w.Origin); d > 1e-12 || g.Origin.AngleTo(w.Origin) > 1e-9 {
					t.Errorf("joint %s: origin %v, want %v", w.Name, g.Origin, w.Origin)
				}
				gl, wl := g.Limits, w.Limits
				wl.Acceleration, wl.Jerk = 0, 0 // robot.yaml's, not URDF's
				if gl != wl {
					t.Errorf("joint %s: limits %+v, want %+v", w.Name, gl, wl)
				}
			}
			sticks := 0
			for _, j := range want {
				if p := j.Origin.Pos; math.Sqrt(p[0]*p[0]+p[1]*p[1]+p[2]*p[2]) >= 1e-6 {
					sticks++
				}
			}
			if n := strings.Count(desc, "<cylinder "); n != sticks {
				t.Errorf("%d cylinders, want one per joint offset: %d", n, sticks)
			}
			if n := strings.Count(desc, "<sphere "); n != len(want)+1 {
				t.Errorf("%d spheres, want one per link: %d", n, len(want)+1)
			}
		})
	}
}

// TestLoadDescriptionKeepsVisuals: a URDF with visual geometry of its own is the description
// as it is, byte for byte.
func TestLoadDescriptionKeepsVisuals(t *testing.T) {
	yml, err := fs.ReadFile(configs.FS, "robots/ur5/robot.yaml")
	if err != nil {
		t.Fatal(err)
	}
	src, err := fs.ReadFile(configs.FS, "robots/ur5/ur5.urdf")
	if err != nil {
		t.Fatal(err)
	}
	withMesh := strings.Replace(string(src), `<link name="base_link"/>`,
		`<link name="base_link"><visual><geometry><mesh filename="package://ur_description/meshes/ur5/visual/base.dae"/></geometry></visual></link>`, 1)
	if withMesh == string(src) {
		t.Fatal("the shipped UR5 URDF changed: no <link name=\"base_link\"/> to give a mesh")
	}
	fsys := fstest.MapFS{"arm/robot.yaml": {Data: yml}, "arm/ur5.urdf": {Data: []byte(withMesh)}}
	// robot.yaml names its URDF or defaults to <dir>.urdf; the shipped one names none.
	if !strings.Contains(string(yml), "urdf:") {
		fsys["arm/arm.urdf"] = &fstest.MapFile{Data: []byte(withMesh)}
	}
	got, err := urdf.LoadDescription(fsys, "arm")
	if err != nil {
		t.Fatal(err)
	}
	if got != withMesh {
		t.Errorf("the description is not the URDF as given:\n%s", got)
	}
}
