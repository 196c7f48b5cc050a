package robot

import "math"

// Pose algebra. A Pose T maps coordinates in a child frame to its parent frame: a point p in the
// child frame is T.Rot p + T.Pos in the parent. Composition reads left to right along a chain,
// parent first: T_root_tip = T_root_a.Mul(T_a_tip). All methods take and return values (a Pose is
// 96 bytes), allocate nothing and do not check that Rot is a rotation.

// NewPose returns the pose with translation xyz (m) and URDF roll-pitch-yaw angles rpy (rad):
// fixed-axis rotations about x by roll, then y by pitch, then z by yaw, that is
// Rot = Rz(yaw) Ry(pitch) Rx(roll) (URDF <origin xyz rpy>).
func NewPose(xyz, rpy [3]float64) Pose {
	return Pose{Pos: xyz, Rot: RotRPY(rpy[0], rpy[1], rpy[2])}
}

// RotRPY returns Rz(yaw) Ry(pitch) Rx(roll), row-major.
func RotRPY(roll, pitch, yaw float64) [9]float64 {
	sr, cr := math.Sincos(roll)
	sp, cp := math.Sincos(pitch)
	sy, cy := math.Sincos(yaw)
	return [9]float64{
		cy * cp, cy*sp*sr - sy*cr, cy*sp*cr + sy*sr,
		sy * cp, sy*sp*sr + cy*cr, sy*sp*cr - cy*sr,
		-sp, cp * sr, cp * cr,
	}
}

// RotAxisAngle returns the rotation by angle (rad, right-handed) about the unit vector axis
// (Rodrigues' formula).
func RotAxisAngle(axis [3]float64, angle float64) [9]float64 {
	s, c := math.Sincos(angle)
	v := 1 - c
	x, y, z := axis[0], axis[1], axis[2]
	return [9]float64{
		c + x*x*v, x*y*v - z*s, x*z*v + y*s,
		y*x*v + z*s, c + y*y*v, y*z*v - x*s,
		z*x*v - y*s, z*y*v + x*s, c + z*z*v,
	}
}

// RotZTo returns a rotation taking the z axis to the unit vector u (the axis of a cylinder in a
// URDF or a marker): about z × u = (-u_y, u_x, 0) by acos(u_z), and about x by pi when u = -z.
func RotZTo(u [3]float64) [9]float64 {
	s := math.Hypot(u[0], u[1])
	if s < 1e-12 {
		if u[2] > 0 {
			return Identity.Rot
		}
		return RotAxisAngle([3]float64{1, 0, 0}, math.Pi)
	}
	return RotAxisAngle([3]float64{-u[1] / s, u[0] / s, 0}, math.Atan2(s, u[2]))
}

// Mul returns the composition a b: first b, then a (a maps b's parent frame to its own parent).
func (a Pose) Mul(b Pose) Pose {
	var r Pose
	r.Rot = mulRot(&a.Rot, &b.Rot)
	r.Pos = a.Apply(b.Pos)
	return r
}

// Inverse returns the pose a⁻¹, with a.Mul(a.Inverse()) = Identity.
func (a Pose) Inverse() Pose {
	var r Pose
	R := &a.Rot
	r.Rot = [9]float64{R[0], R[3], R[6], R[1], R[4], R[7], R[2], R[5], R[8]}
	p := a.Pos
	r.Pos = [3]float64{
		-(R[0]*p[0] + R[3]*p[1] + R[6]*p[2]),
		-(R[1]*p[0] + R[4]*p[1] + R[7]*p[2]),
		-(R[2]*p[0] + R[5]*p[1] + R[8]*p[2]),
	}
	return r
}

// Apply maps the point p from a's child frame to its parent frame: Rot p + Pos.
func (a Pose) Apply(p [3]float64) [3]float64 {
	v := a.Rotate(p)
	return [3]float64{v[0] + a.Pos[0], v[1] + a.Pos[1], v[2] + a.Pos[2]}
}

// Rotate maps the free vector v (a direction, a velocity) from a's child frame to its parent
// frame: Rot v.
func (a Pose) Rotate(v [3]float64) [3]float64 {
	R := &a.Rot
	return [3]float64{
		R[0]*v[0] + R[1]*v[1] + R[2]*v[2],
		R[3]*v[0] + R[4]*v[1] + R[5]*v[2],
		R[6]*v[0] + R[7]*v[1] + R[8]*v[2],
	}
}

// Quaternion returns the unit quaternion of a.Rot in ROS order (x, y, z, w), with w >= 0
// (Shepperd's method: pivot on the largest diagonal term for accuracy).
func (a Pose) Quaternion() (x, y, z, w float64) {
	R := &a.Rot
	tr := R[0] + R[4] + R[8]
	switch {
	case tr >= R[0] && tr >= R[4] && tr >= R[8]:
		s := 2 * math.Sqrt(1+tr) // s = 4w
		w = s / 4
		x = (R[7] - R[5]) / s
		y = (R[2] - R[6]) / s
		z = (R[3] - R[1]) / s
	case R[0] >= R[4] && R[0] >= R[8]:
		s := 2 * math.Sqrt(1+R[0]-R[4]-R[8]) // s = 4x
		w = (R[7] - R[5]) / s
		x = s / 4
		y = (R[1] + R[3]) / s
		z = (R[2] + R[6]) / s
	case R[4] >= R[8]:
		s := 2 * math.Sqrt(1+R[4]-R[0]-R[8]) // s = 4y
		w = (R[2] - R[6]) / s
		x = (R[1] + R[3]) / s
		y = s / 4
		z = (R[5] + R[7]) / s
	default:
		s := 2 * math.Sqrt(1+R[8]-R[0]-R[4]) // s = 4z
		w = (R[3] - R[1]) / s
		x = (R[2] + R[6]) / s
		y = (R[5] + R[7]) / s
		z = s / 4
	}
	if w < 0 {
		x, y, z, w = -x, -y, -z, -w
	}
	n := math.Sqrt(x*x + y*y + z*z + w*w)
	return x / n, y / n, z / n, w / n
}

// RPY returns URDF roll, pitch, yaw angles of a.Rot (the inverse of RotRPY, with pitch in
// [-π/2, π/2]; at pitch = ±π/2 roll and yaw are not unique and roll is returned as 0).
func (a Pose) RPY() (roll, pitch, yaw float64) {
	R := &a.Rot
	pitch = math.Asin(math.Max(-1, math.Min(1, -R[6])))
	if math.Abs(R[6]) > 1-1e-12 {
		// Gimbal lock: only yaw - roll (pitch = π/2) or yaw + roll (pitch = -π/2) is defined.
		return 0, pitch, math.Atan2(-R[1], R[4])
	}
	return math.Atan2(R[7], R[8]), pitch, math.Atan2(R[3], R[0])
}

// AngleTo returns the angle (rad, in [0, π]) of the rotation that takes a's orientation to b's.
func (a Pose) AngleTo(b Pose) float64 {
	// trace(Ra^T Rb) = 1 + 2 cos θ.
	tr := 0.0
	for i := range 9 {
		tr += a.Rot[i] * b.Rot[i]
	}
	return math.Acos(math.Max(-1, math.Min(1, (tr-1)/2)))
}

// Dist returns the distance (m) between the origins of a and b.
func (a Pose) Dist(b Pose) float64 {
	dx, dy, dz := a.Pos[0]-b.Pos[0], a.Pos[1]-b.Pos[1], a.Pos[2]-b.Pos[2]
	return math.Sqrt(dx*dx + dy*dy + dz*dz)
}

func mulRot(a, b *[9]float64) [9]float64 {
	return [9]float64{
		a[0]*b[0] + a[1]*b[3] + a[2]*b[6], a[0]*b[1] + a[1]*b[4] + a[2]*b[7], a[0]*b[2] + a[1]*b[5] + a[2]*b[8],
		a[3]*b[0] + a[4]*b[3] + a[5]*b[6], a[3]*b[1] + a[4]*b[4] + a[5]*b[7], a[3]*b[2] + a[4]*b[5] + a[5]*b[8],
		a[6]*b[0] + a[7]*b[3] + a[8]*b[6], a[6]*b[1] + a[7]*b[4] + a[8]*b[7], a[6]*b[2] + a[7]*b[5] + a[8]*b[8],
	}
}
