package robot_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/flowact/flowact/robot"
)

func trans(x, y, z float64) robot.Pose {
	p := robot.Identity
	p.Pos = [3]float64{x, y, z}
	return p
}

func rev(name, parent, child string, origin robot.Pose, axis [3]float64) robot.Joint {
	return robot.Joint{Name: name, Type: robot.Revolute, Parent: parent, Child: child, Origin: origin, Axis: axis,
		Limits: robot.Limits{HasPosition: true, Lower: -2 * math.Pi, Upper: 2 * math.Pi, Velocity: 3}}
}

func fixed(name, parent, child string, origin robot.Pose) robot.Joint {
	return robot.Joint{Name: name, Type: robot.Fixed, Parent: parent, Child: child, Origin: origin}
}

var (
	xAxis = [3]float64{1, 0, 0}
	yAxis = [3]float64{0, 1, 0}
	zAxis = [3]float64{0, 0, 1}
)

// planar is a 2-link planar arm in the x-y plane: links of 0.5 m and 0.3 m, both joints about z.
func planar() *robot.Model {
	return &robot.Model{
		Name: "planar", Root: "base",
		Joints: []robot.Joint{
			rev("j1", "base", "l1", robot.Identity, zAxis),
			rev("j2", "l1", "l2", trans(0.5, 0, 0), zAxis),
		},
		Fixed: []robot.Joint{fixed("tool", "l2", "tip", trans(0.3, 0, 0))},
	}
}

// ur5 is the UR5 as ur_description describes it (origins with rpy, axes in the joint frames).
func ur5() *robot.Model {
	return &robot.Model{
		Name: "ur5", Root: "base_link",
		Joints: []robot.Joint{
			rev("shoulder_pan", "base_link", "shoulder_link", trans(0, 0, 0.089159), zAxis),
			rev("shoulder_lift", "shoulder_link", "upper_arm_link", robot.NewPose([3]float64{0, 0.13585, 0}, [3]float64{0, math.Pi / 2, 0}), yAxis),
			rev("elbow", "upper_arm_link", "forearm_link", trans(0, -0.1197, 0.425), yAxis),
			rev("wrist_1", "forearm_link", "wrist_1_link", robot.NewPose([3]float64{0, 0, 0.39225}, [3]float64{0, math.Pi / 2, 0}), yAxis),
			rev("wrist_2", "wrist_1_link", "wrist_2_link", trans(0, 0.093, 0), zAxis),
			rev("wrist_3", "wrist_2_link", "wrist_3_link", trans(0, 0, 0.09465), yAxis),
		},
		Fixed: []robot.Joint{fixed("ee_fixed", "wrist_3_link", "ee_link", robot.NewPose([3]float64{0, 0.0823, 0}, [3]float64{0, 0, math.Pi / 2}))},
	}
}

// ur5Screws are the UR5's joint axes in the base frame at q = 0, worked out by hand from the
// origins of ur5 (Ry(π/2) maps (x, y, z) to (z, y, -x)): a point on each axis and its direction.
// ur5Home is the ee_link pose at q = 0: position (0.81725, 0.19145, -0.005491) and rotation
// Ry(π) Rz(π/2).
var (
	ur5Points = [6][3]float64{
		{0, 0, 0.089159},
		{0, 0.13585, 0.089159},
		{0.425, 0.01615, 0.089159},
		{0.81725, 0.01615, 0.089159},
		{0.81725, 0.10915, 0.089159},
		{0.81725, 0.10915, -0.005491},
	}
	ur5Dirs = [6][3]float64{zAxis, yAxis, yAxis, yAxis, {0, 0, -1}, yAxis}
	ur5Home = robot.Pose{Pos: [3]float64{0.81725, 0.19145, -0.005491}, Rot: [9]float64{0, 1, 0, 1, 0, 0, 0, 0, -1}}
)

// poe is the product-of-exponentials forward kinematics (Lynch and Park, Modern Robotics, §4.1):
// T(q) = e^[S1]q1 ... e^[Sn]qn M, each factor a rotation by q about a fixed axis of the base
// frame through a point p: x -> R (x - p) + p.
func poe(points, dirs [][3]float64, home robot.Pose, q []float64) robot.Pose {
	t := robot.Identity
	for i := range q {
		r := robot.Pose{Rot: robot.RotAxisAngle(dirs[i], q[i])}
		rp := r.Rotate(points[i])
		r.Pos = [3]float64{points[i][0] - rp[0], points[i][1] - rp[1], points[i][2] - rp[2]}
		t = t.Mul(r)
	}
	return t.Mul(home)
}

func mustChain(t testing.TB, m *robot.Model, tip string) *robot.Chain {
	t.Helper()
	c, err := m.Chain(tip)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func poseErr(a, b robot.Pose) (pos, rot float64) {
	for i := range 3 {
		pos = math.Max(pos, math.Abs(a.Pos[i]-b.Pos[i]))
	}
	for i := range 9 {
		rot = math.Max(rot, math.Abs(a.Rot[i]-b.Rot[i]))
	}
	return pos, rot
}

func checkPose(t *testing.T, name string, got, want robot.Pose, tol float64) {
	t.Helper()
	if dp, dr := poseErr(got, want); dp > tol || dr > tol {
		t.Errorf("%s: pose\n got %+v\nwant %+v\n(position error %.3g, rotation error %.3g)", name, got, want, dp, dr)
	}
}

func TestChainPlanar(t *testing.T) {
	c := mustChain(t, planar(), "tip")
	for _, q := range [][]float64{{0, 0}, {math.Pi / 2, 0}, {0, math.Pi / 2}, {math.Pi / 4, -math.Pi / 2}, {-2.1, 1.3}} {
		// x = L1 cos q1 + L2 cos(q1+q2), y = L1 sin q1 + L2 sin(q1+q2), rotation Rz(q1+q2).
		s := q[0] + q[1]
		want := robot.Pose{
			Pos: [3]float64{0.5*math.Cos(q[0]) + 0.3*math.Cos(s), 0.5*math.Sin(q[0]) + 0.3*math.Sin(s), 0},
			Rot: robot.RotRPY(0, 0, s),
		}
		var got robot.Pose
		c.Pose(&got, q)
		checkPose(t, fmt.Sprint(q), got, want, 1e-12)
	}
	// Hand-computed: folded elbow (0, π) puts the tip at 0.5 - 0.3 = 0.2 m facing back.
	var got robot.Pose
	c.Pose(&got, []float64{0, math.Pi})
	checkPose(t, "folded", got, robot.Pose{Pos: [3]float64{0.2, 0, 0}, Rot: [9]float64{-1, 0, 0, 0, -1, 0, 0, 0, 1}}, 1e-12)
	if got, want := strings.Join(c.Links(), " "), "base l1 l2 tip"; got != want {
		t.Errorf("links %q, want %q", got, want)
	}
}

func TestChainUR5(t *testing.T) {
	m := ur5()
	c := mustChain(t, m, "ee_link")
	// Hand-computed poses: the home pose; the pan joint at π/2 turns it about z; the shoulder at
	// -π/2 points the arm straight up: the tip rises to 0.089159 + 0.81725 m.
	cases := []struct {
		q    []float64
		want robot.Pose
	}{
		{[]float64{0, 0, 0, 0, 0, 0}, ur5Home},
		{[]float64{math.Pi / 2, 0, 0, 0, 0, 0}, robot.Pose{Pos: [3]float64{-0.19145, 0.81725, -0.005491}, Rot: [9]float64{-1, 0, 0, 0, 1, 0, 0, 0, -1}}},
		{[]float64{0, -math.Pi / 2, 0, 0, 0, 0}, robot.Pose{Pos: [3]float64{0.09465, 0.19145, 0.906409}}},
	}
	// Ry(-π/2) maps (x, y, z) to (-z, y, x): the home rotation's columns turn accordingly.
	ry := robot.Pose{Rot: robot.RotAxisAngle(yAxis, -math.Pi/2)}
	cases[2].want.Rot = ry.Mul(ur5Home).Rot
	for _, tc := range cases {
		var got robot.Pose
		c.Pose(&got, tc.q)
		checkPose(t, fmt.Sprint(tc.q), got, tc.want, 1e-9)
	}
	// Random configurations against the product of exponentials.
	rng := rand.New(rand.NewPCG(1, 2))
	q := make([]float64, 6)
	for range 200 {
		for i := range q {
			q[i] = (rng.Float64()*2 - 1) * 2 * math.Pi
		}
		var got robot.Pose
		c.Pose(&got, q)
		checkPose(t, fmt.Sprint(q), got, poe(ur5Points[:], ur5Dirs[:], ur5Home, q), 1e-12)
	}
}

// tree is a model with a branch, a prismatic joint, rotated fixed joints and a non-unit axis: an
// arm (a1, a2) with a gripper (finger, prismatic) and a camera on a second branch (pan).
func tree() *robot.Model {
	return &robot.Model{
		Name: "tree", Root: "world",
		Joints: []robot.Joint{
			rev("a1", "base", "l1", robot.NewPose([3]float64{0.1, 0, 0.2}, [3]float64{0.3, -0.2, 0.5}), [3]float64{0, 0, 2}),
			rev("pan", "base", "cam_mount", trans(0, 0.2, 0.1), zAxis),
			rev("a2", "l1", "l2", robot.NewPose([3]float64{0, 0.05, 0.4}, [3]float64{-0.4, 0.1, 0}), [3]float64{1, 1, 0}),
			{Name: "finger", Type: robot.Prismatic, Parent: "hand", Child: "finger_link", Origin: trans(0.02, 0, 0.05), Axis: [3]float64{0, 0.6, 0.8},
				Limits: robot.Limits{HasPosition: true, Lower: 0, Upper: 0.04, Velocity: 0.1}},
		},
		Fixed: []robot.Joint{
			fixed("mount", "world", "base", robot.NewPose([3]float64{1, 2, 0}, [3]float64{0, 0, 0.7})),
			fixed("wrist", "l2", "hand", robot.NewPose([3]float64{0.3, 0, 0}, [3]float64{math.Pi / 2, 0, 0.2})),
			fixed("tcp", "finger_link", "tcp", robot.NewPose([3]float64{0, 0, 0.03}, [3]float64{0, 0.3, 0})),
		},
	}
}

// naivePose composes the joints of the path to tip by searching the model anew, a reference that
// shares nothing with Chain but the Pose algebra.
func naivePose(m *robot.Model, tip string, q []float64) robot.Pose {
	if tip == m.Root {
		return robot.Identity
	}
	for i, j := range m.Joints {
		if j.Child == tip {
			n := math.Hypot(math.Hypot(j.Axis[0], j.Axis[1]), j.Axis[2])
			a := [3]float64{j.Axis[0] / n, j.Axis[1] / n, j.Axis[2] / n}
			var mo robot.Pose
			if j.Type == robot.Prismatic {
				mo = trans(a[0]*q[i], a[1]*q[i], a[2]*q[i])
			} else {
				mo = robot.Pose{Rot: robot.RotAxisAngle(a, q[i])}
			}
			return naivePose(m, j.Parent, q).Mul(j.Origin).Mul(mo)
		}
	}
	for _, j := range m.Fixed {
		if j.Child == tip {
			return naivePose(m, j.Parent, q).Mul(j.Origin)
		}
	}
	panic("no link " + tip)
}

func TestChainTree(t *testing.T) {
	m := tree()
	rng := rand.New(rand.NewPCG(3, 4))
	q := make([]float64, m.DoF())
	for _, tip := range []string{"world", "base", "l1", "l2", "hand", "finger_link", "tcp", "cam_mount"} {
		c := mustChain(t, m, tip)
		for range 20 {
			for i := range q {
				q[i] = rng.Float64()*4 - 2
			}
			var got robot.Pose
			c.Pose(&got, q)
			checkPose(t, tip, got, naivePose(m, tip, q), 1e-12)
		}
	}
	if got := fmt.Sprint(mustChain(t, m, "tcp").Joints()); got != "[0 2 3]" {
		t.Errorf("tcp chain joints %s, want [0 2 3]", got)
	}
	if got := fmt.Sprint(mustChain(t, m, "cam_mount").Joints()); got != "[1]" {
		t.Errorf("cam_mount chain joints %s, want [1]", got)
	}
}

// fdJacobian is the central-difference Jacobian of c.Pose: linear rows from dp/dq, angular rows
// from the skew-symmetric dR/dq Rᵀ.
func fdJacobian(c *robot.Chain, q []float64, h float64) []float64 {
	n := len(q)
	j := make([]float64, 6*n)
	var p0, pp, pm robot.Pose
	c.Pose(&p0, q)
	qq := append([]float64(nil), q...)
	for i := range n {
		qq[i] = q[i] + h
		c.Pose(&pp, qq)
		qq[i] = q[i] - h
		c.Pose(&pm, qq)
		qq[i] = q[i]
		for r := range 3 {
			j[r*n+i] = (pp.Pos[r] - pm.Pos[r]) / (2 * h)
		}
		var w [9]float64 // dR/dq Rᵀ
		for a := range 3 {
			for b := range 3 {
				for k := range 3 {
					w[a*3+b] += (pp.Rot[a*3+k] - pm.Rot[a*3+k]) / (2 * h) * p0.Rot[b*3+k]
				}
			}
		}
		j[3*n+i], j[4*n+i], j[5*n+i] = w[7], w[2], w[3]
	}
	return j
}

func TestJacobianFiniteDifference(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, tc := range []struct {
		m   *robot.Model
		tip string
	}{{planar(), "tip"}, {ur5(), "ee_link"}, {ur5(), "forearm_link"}, {tree(), "tcp"}, {tree(), "cam_mount"}} {
		c := mustChain(t, tc.m, tc.tip)
		n := tc.m.DoF()
		q := make([]float64, n)
		got := make([]float64, 6*n)
		for range 20 {
			for i := range q {
				q[i] = rng.Float64()*4 - 2
			}
			c.Jacobian(got, q)
			// Central differences with h = 1e-6 are accurate to O(h²) ~ 1e-12 in truncation and
			// ~1e-10 in rounding (eps / h); 1e-8 leaves margin for both.
			want := fdJacobian(c, q, 1e-6)
			for k := range got {
				if math.Abs(got[k]-want[k]) > 1e-8 {
					t.Fatalf("%s/%s q=%v: J[%d][%d] = %g, finite difference %g", tc.m.Name, tc.tip, q, k/n, k%n, got[k], want[k])
				}
			}
		}
	}
	// Joints off the chain have zero columns: the camera pan does not move the tcp.
	m := tree()
	c := mustChain(t, m, "tcp")
	j := make([]float64, 6*m.DoF())
	for i := range j {
		j[i] = math.NaN()
	}
	c.Jacobian(j, make([]float64, m.DoF()))
	for r := range 6 {
		if v := j[r*m.DoF()+1]; v != 0 {
			t.Errorf("row %d of the pan column is %g, want 0", r, v)
		}
	}
}

func TestJointTransform(t *testing.T) {
	m := tree()
	q := []float64{0.3, -1.1, 0.7, 0.02}
	// Composing Transform along the path to the tcp is the chain's pose.
	want := naivePose(m, "tcp", q)
	byName := map[string]robot.Joint{}
	for _, j := range append(append([]robot.Joint(nil), m.Joints...), m.Fixed...) {
		byName[j.Name] = j
	}
	got := robot.Identity
	for _, name := range []string{"mount", "a1", "a2", "wrist", "finger", "tcp"} {
		j := byName[name]
		got = got.Mul(j.Transform(q[max(m.Index(name), 0)]))
	}
	checkPose(t, "composed transforms", got, want, 1e-12)

	// Rotations about ±x, ±y, ±z (Chain's fast path) agree with Rodrigues' formula.
	origin := robot.NewPose([3]float64{0.1, -0.2, 0.3}, [3]float64{0.4, -0.5, 0.6})
	for _, axis := range [][3]float64{xAxis, yAxis, zAxis, {-1, 0, 0}, {0, -1, 0}, {0, 0, -1}} {
		j := rev("j", "a", "b", origin, axis)
		for _, v := range []float64{-2.5, -0.3, 0, 1, 3} {
			checkPose(t, fmt.Sprint(axis, v), j.Transform(v), origin.Mul(robot.Pose{Rot: robot.RotAxisAngle(axis, v)}), 1e-15)
		}
	}
}

func TestKinematicsAllocs(t *testing.T) {
	m := ur5()
	c := mustChain(t, m, "ee_link")
	q := []float64{0.1, -0.5, 0.9, -1.2, 0.3, 2}
	var p robot.Pose
	j := make([]float64, 36)
	if a := testing.AllocsPerRun(100, func() { c.Pose(&p, q) }); a != 0 {
		t.Errorf("Pose: %v allocations, want 0", a)
	}
	if a := testing.AllocsPerRun(100, func() { c.Jacobian(j, q) }); a != 0 {
		t.Errorf("Jacobian: %v allocations, want 0", a)
	}
}

func TestChainErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(m *robot.Model)
		tip  string
		want string
	}{
		{"unknown link", func(*robot.Model) {}, "nope", `no link "nope"`},
		{"disconnected", func(m *robot.Model) {
			m.Fixed = append(m.Fixed, fixed("float", "island", "raft", robot.Identity))
		}, "raft", `link "raft" is not connected to root "base" (link "island" has no parent joint)`},
		{"two parents", func(m *robot.Model) {
			m.Fixed = append(m.Fixed, fixed("again", "base", "l2", robot.Identity))
		}, "tip", `link "l2" is the child of joints "j2" and "again"`},
		{"cycle", func(m *robot.Model) {
			m.Fixed = append(m.Fixed, fixed("loop_a", "c2", "c1", robot.Identity), fixed("loop_b", "c1", "c2", robot.Identity))
		}, "c1", `joints above link "c1" form a cycle`},
		{"root has a parent", func(m *robot.Model) {
			m.Fixed = append(m.Fixed, fixed("up", "tip", "base", robot.Identity))
		}, "tip", `root link "base" is the child of joint "up"`},
		{"zero axis", func(m *robot.Model) { m.Joints[1].Axis = [3]float64{} }, "tip", `joint "j2" has axis [0 0 0]`},
		{"NaN axis", func(m *robot.Model) { m.Joints[0].Axis[2] = math.NaN() }, "l2", `joint "j1" has axis`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := planar()
			tc.edit(m)
			_, err := m.Chain(tc.tip)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
	// The root itself is a valid (empty) chain.
	c := mustChain(t, planar(), "base")
	var p robot.Pose
	c.Pose(&p, []float64{1, 2})
	checkPose(t, "root", p, robot.Identity, 0)
}

func TestPoseAlgebra(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	randPose := func() robot.Pose {
		return robot.NewPose([3]float64{rng.NormFloat64(), rng.NormFloat64(), rng.NormFloat64()},
			[3]float64{rng.Float64()*6 - 3, rng.Float64()*3 - 1.5, rng.Float64()*6 - 3})
	}
	for range 100 {
		a, b, c := randPose(), randPose(), randPose()
		checkPose(t, "a a⁻¹", a.Mul(a.Inverse()), robot.Identity, 1e-12)
		checkPose(t, "a⁻¹ a", a.Inverse().Mul(a), robot.Identity, 1e-12)
		checkPose(t, "associativity", a.Mul(b).Mul(c), a.Mul(b.Mul(c)), 1e-12)
		p := [3]float64{rng.NormFloat64(), rng.NormFloat64(), rng.NormFloat64()}
		ab, abp := a.Mul(b).Apply(p), a.Apply(b.Apply(p))
		for i := range 3 {
			if math.Abs(ab[i]-abp[i]) > 1e-12 {
				t.Fatalf("(ab)p = %v, a(bp) = %v", ab, abp)
			}
		}
		// RPY round trip.
		r, pi, y := a.RPY()
		checkPose(t, "RPY", robot.Pose{Pos: a.Pos, Rot: robot.RotRPY(r, pi, y)}, a, 1e-12)
		// Quaternion of an axis-angle rotation is (sin(θ/2) axis, cos(θ/2)).
		axis := [3]float64{rng.NormFloat64(), rng.NormFloat64(), rng.NormFloat64()}
		n := math.Sqrt(axis[0]*axis[0] + axis[1]*axis[1] + axis[2]*axis[2])
		axis = [3]float64{axis[0] / n, axis[1] / n, axis[2] / n}
		th := rng.Float64() * math.Pi
		qx, qy, qz, qw := robot.Pose{Rot: robot.RotAxisAngle(axis, th)}.Quaternion()
		s, cth := math.Sincos(th / 2)
		want := [4]float64{s * axis[0], s * axis[1], s * axis[2], cth}
		for i, v := range [4]float64{qx, qy, qz, qw} {
			if math.Abs(v-want[i]) > 1e-12 {
				t.Fatalf("quaternion of %v rad about %v: %v, want %v", th, axis, [4]float64{qx, qy, qz, qw}, want)
			}
		}
		if got := (robot.Pose{Rot: robot.RotAxisAngle(axis, th)}).AngleTo(robot.Identity); math.Abs(got-th) > 1e-6 {
			t.Fatalf("AngleTo: %v, want %v", got, th)
		}
	}
	// RotRPY is Rz(yaw) Ry(pitch) Rx(roll).
	rz := robot.Pose{Rot: robot.RotAxisAngle(zAxis, 0.3)}
	ry := robot.Pose{Rot: robot.RotAxisAngle(yAxis, -0.7)}
	rx := robot.Pose{Rot: robot.RotAxisAngle(xAxis, 1.1)}
	checkPose(t, "RotRPY", robot.Pose{Rot: robot.RotRPY(1.1, -0.7, 0.3)}, rz.Mul(ry).Mul(rx), 1e-15)
	// Gimbal lock: pitch = π/2 still round-trips the rotation.
	g := robot.NewPose([3]float64{}, [3]float64{0.4, math.Pi / 2, -0.2})
	r, p, y := g.RPY()
	checkPose(t, "gimbal", robot.Pose{Rot: robot.RotRPY(r, p, y)}, g, 1e-9)
	// Quaternion of the 180° rotations exercise the non-trace branches.
	for _, axis := range [][3]float64{xAxis, yAxis, zAxis} {
		x, y, z, w := robot.Pose{Rot: robot.RotAxisAngle(axis, math.Pi)}.Quaternion()
		if math.Abs(x-axis[0])+math.Abs(y-axis[1])+math.Abs(z-axis[2])+math.Abs(w) > 1e-12 {
			t.Errorf("quaternion of π about %v: %v %v %v %v", axis, x, y, z, w)
		}
	}
}

func BenchmarkPose(b *testing.B) {
	c := mustChain(b, ur5(), "ee_link")
	q := []float64{0.1, -0.5, 0.9, -1.2, 0.3, 2}
	var p robot.Pose
	b.ReportAllocs()
	for b.Loop() {
		c.Pose(&p, q)
	}
}

func BenchmarkJacobian(b *testing.B) {
	c := mustChain(b, ur5(), "ee_link")
	q := []float64{0.1, -0.5, 0.9, -1.2, 0.3, 2}
	j := make([]float64, 36)
	b.ReportAllocs()
	for b.Loop() {
		c.Jacobian(j, q)
	}
}

func ExampleModel_Chain() {
	// A 2-link planar arm: 0.5 m and 0.3 m links turning about z.
	m := &robot.Model{
		Name: "planar", Root: "base",
		Joints: []robot.Joint{
			{Name: "shoulder", Type: robot.Continuous, Parent: "base", Child: "upper", Origin: robot.Identity, Axis: [3]float64{0, 0, 1}},
			{Name: "elbow", Type: robot.Continuous, Parent: "upper", Child: "fore", Origin: robot.NewPose([3]float64{0.5, 0, 0}, [3]float64{}), Axis: [3]float64{0, 0, 1}},
		},
		Fixed: []robot.Joint{{Name: "tool", Type: robot.Fixed, Parent: "fore", Child: "tip", Origin: robot.NewPose([3]float64{0.3, 0, 0}, [3]float64{})}},
	}
	c, err := m.Chain("tip")
	if err != nil {
		fmt.Println(err)
		return
	}
	q := []float64{math.Pi / 2, -math.Pi / 2}
	var p robot.Pose
	c.Pose(&p, q)
	fmt.Printf("tip at (%.2f, %.2f, %.2f)\n", p.Pos[0], p.Pos[1], p.Pos[2])
	j := make([]float64, 6*m.DoF())
	c.Jacobian(j, q)
	fmt.Printf("dx/dq = [%.2f %.2f], dy/dq = [%.2f %.2f]\n", j[0], j[1], j[2], j[3])
	// Output:
	// tip at (0.30, 0.50, 0.00)
	// dx/dq = [-0.50 0.00], dy/dq = [0.30 0.30]
}
