package robot

import (
	"fmt"
	"math"
)

// Chain is the kinematic chain from a model's root link to one tip link, through fixed and
// actuated joints. It is immutable after Model.Chain returns it and safe for concurrent use; it
// copies what it needs from the model, so later changes to the model do not affect it.
//
// Forward kinematics compose, from the root, each joint's Origin and then its motion: a rotation
// by q about Axis (revolute, continuous) or a translation by q along Axis (prismatic), as URDF
// defines them.
type Chain struct {
	base, tip string
	dof       int       // the model's DoF: len(q) for Pose and Jacobian
	segs      []segment // the actuated joints on the chain, root first
	tail      Pose      // fixed transform from the last actuated joint's moved frame to the tip
	links     []string  // the links from base to tip
}

// segment is one actuated joint of a chain with the fixed transform that precedes it: pre takes
// the previous actuated joint's moved frame (or the root) to this joint's frame at zero value.
type segment struct {
	pre   Pose
	typ   JointType
	axis  [3]float64
	index int // model-order index into q
	// principal is 1, 2 or 3 when a revolute axis is ±x, ±y or ±z (sign is its sign), for a
	// cheaper rotation; 0 otherwise.
	principal int
	sign      float64
}

// Chain returns the kinematic chain from m.Root to the link tip. It fails, naming the link, when
// tip is not a link of the model or is not connected to the root, and when a link is the child of
// two joints or the joints form a cycle.
func (m *Model) Chain(tip string) (*Chain, error) {
	// parent joint of each child link; index >= 0 is an actuated joint, < 0 is Fixed[-index-1].
	type edge struct {
		j     *Joint
		index int
	}
	parent := make(map[string]edge, len(m.Joints)+len(m.Fixed))
	add := func(j *Joint, index int) error {
		if e, dup := parent[j.Child]; dup {
			return fmt.Errorf("robot: model %q: link %q is the child of joints %q and %q", m.Name, j.Child, e.j.Name, j.Name)
		}
		parent[j.Child] = edge{j, index}
		return nil
	}
	for i := range m.Joints {
		if err := add(&m.Joints[i], i); err != nil {
			return nil, err
		}
	}
	for i := range m.Fixed {
		if err := add(&m.Fixed[i], -1); err != nil {
			return nil, err
		}
	}
	if _, ok := parent[m.Root]; ok {
		return nil, fmt.Errorf("robot: model %q: root link %q is the child of joint %q", m.Name, m.Root, parent[m.Root].j.Name)
	}

	// Walk from the tip up to the root.
	var path []edge
	links := []string{tip}
	for link := tip; link != m.Root; {
		e, ok := parent[link]
		if !ok {
			if link == tip && !m.hasLink(tip) {
				return nil, fmt.Errorf("robot: model %q has no link %q", m.Name, tip)
			}
			return nil, fmt.Errorf("robot: model %q: link %q is not connected to root %q (link %q has no parent joint)", m.Name, tip, m.Root, link)
		}
		if len(path) > len(m.Joints)+len(m.Fixed) {
			return nil, fmt.Errorf("robot: model %q: joints above link %q form a cycle", m.Name, tip)
		}
		path = append(path, e)
		link = e.j.Parent
		links = append(links, link)
	}

	c := &Chain{base: m.Root, tip: tip, dof: len(m.Joints)}
	for i, j := 0, len(links)-1; i < j; i, j = i+1, j-1 {
		links[i], links[j] = links[j], links[i]
	}
	c.links = links
	acc := Identity // fixed transform accumulated since the last actuated joint
	for k := len(path) - 1; k >= 0; k-- {
		e := path[k]
		acc = acc.Mul(e.j.Origin)
		if e.index < 0 {
			continue
		}
		axis := e.j.Axis
		n := math.Sqrt(axis[0]*axis[0] + axis[1]*axis[1] + axis[2]*axis[2])
		if !(n > 0) || math.IsInf(n, 0) {
			return nil, fmt.Errorf("robot: model %q: joint %q has axis %v, not a direction", m.Name, e.j.Name, axis)
		}
		axis = [3]float64{axis[0] / n, axis[1] / n, axis[2] / n}
		c.segs = append(c.segs, newSegment(acc, e.j.Type, axis, e.index))
		acc = Identity
	}
	c.tail = acc
	return c, nil
}

func (m *Model) hasLink(name string) bool {
	if name == m.Root {
		return true
	}
	for _, js := range [][]Joint{m.Joints, m.Fixed} {
		for i := range js {
			if js[i].Parent == name || js[i].Child == name {
				return true
			}
		}
	}
	return false
}

// Base returns the chain's first link, the model's root.
func (c *Chain) Base() string { return c.base }

// Tip returns the chain's last link.
func (c *Chain) Tip() string { return c.tip }

// Links returns the links from the base to the tip, in a new slice.
func (c *Chain) Links() []string { return append([]string(nil), c.links...) }

// DoF returns the number of joint values Pose and Jacobian take: the model's DoF, not only the
// joints on the chain.
func (c *Chain) DoF() int { return c.dof }

// Joints returns the model-order indices of the actuated joints on the chain, root first, in a
// new slice.
func (c *Chain) Joints() []int {
	idx := make([]int, len(c.segs))
	for i := range c.segs {
		idx[i] = c.segs[i].index
	}
	return idx
}

// Pose sets *dst to the pose of the tip link's frame in the root frame at joint values q (all
// actuated joints of the model, in model order; joints off the chain are ignored). It allocates
// nothing and panics if len(q) != DoF.
func (c *Chain) Pose(dst *Pose, q []float64) {
	if len(q) != c.dof {
		panic(fmt.Sprintf("robot: Chain.Pose: %d joint values for %d joints", len(q), c.dof))
	}
	t := Identity
	for i := range c.segs {
		s := &c.segs[i]
		mulTo(&t, &t, &s.pre)
		s.move(&t, q[s.index])
	}
	mulTo(dst, &t, &c.tail)
}

func newSegment(pre Pose, typ JointType, axis [3]float64, index int) segment {
	s := segment{pre: pre, typ: typ, axis: axis, index: index}
	if typ != Prismatic {
		for k := range 3 {
			if math.Abs(axis[k]) == 1 {
				s.principal, s.sign = k+1, axis[k]
			}
		}
	}
	return s
}

// move composes t with the joint's own motion at value v: t = t · motion(v).
func (s *segment) move(t *Pose, v float64) {
	if s.principal != 0 {
		// A rotation about a coordinate axis mixes two columns of t.Rot.
		sn, cs := math.Sincos(s.sign * v)
		a, b := 0, 1 // z: columns x, y
		switch s.principal {
		case 1:
			a, b = 1, 2 // x: columns y, z
		case 2:
			a, b = 2, 0 // y: columns z, x (R_y turns z toward x)
		}
		R := &t.Rot
		for r := 0; r < 9; r += 3 {
			ca, cb := R[r+a], R[r+b]
			R[r+a] = cs*ca + sn*cb
			R[r+b] = cs*cb - sn*ca
		}
		return
	}
	if s.typ == Prismatic {
		R, a := &t.Rot, &s.axis
		t.Pos[0] += (R[0]*a[0] + R[1]*a[1] + R[2]*a[2]) * v
		t.Pos[1] += (R[3]*a[0] + R[4]*a[1] + R[5]*a[2]) * v
		t.Pos[2] += (R[6]*a[0] + R[7]*a[1] + R[8]*a[2]) * v
		return
	}
	r := RotAxisAngle(s.axis, v)
	t.Rot = mulRot(&t.Rot, &r)
}

// mulTo sets *dst = a · b; dst may alias a or b.
func mulTo(dst, a, b *Pose) {
	R, v := &a.Rot, &b.Pos
	p := [3]float64{
		R[0]*v[0] + R[1]*v[1] + R[2]*v[2] + a.Pos[0],
		R[3]*v[0] + R[4]*v[1] + R[5]*v[2] + a.Pos[1],
		R[6]*v[0] + R[7]*v[1] + R[8]*v[2] + a.Pos[2],
	}
	dst.Rot = mulRot(&a.Rot, &b.Rot)
	dst.Pos = p
}

// Jacobian writes into dst the 6 x DoF geometric Jacobian of the tip at joint values q, row-major,
// in the root frame: rows 0-2 map joint velocities to the linear velocity of the tip frame's
// origin, rows 3-5 to its angular velocity; column i belongs to actuated joint i in model order
// and is zero for joints not on the chain. For a revolute joint with axis z (root frame) through
// the point p, the column is (z × (p_tip - p), z); for a prismatic joint it is (z, 0)
// (Siciliano et al., Robotics: Modelling, Planning and Control, §3.1). It allocates nothing and
// panics if len(q) != DoF or len(dst) != 6 DoF.
func (c *Chain) Jacobian(dst []float64, q []float64) {
	n := c.dof
	if len(q) != n || len(dst) != 6*n {
		panic(fmt.Sprintf("robot: Chain.Jacobian: %d joint values and %d entries for %d joints", len(q), len(dst), n))
	}
	clear(dst)
	// One pass down the chain: each column gets its joint's axis z (angular rows) and origin p
	// (linear rows, for now); then, with the tip known, the linear rows become z × (tip - p).
	t := Identity
	for i := range c.segs {
		s := &c.segs[i]
		mulTo(&t, &t, &s.pre)
		// The joint's axis and origin do not move with its own value.
		z := t.Rotate(s.axis)
		col := s.index
		if s.typ == Prismatic {
			dst[0*n+col], dst[1*n+col], dst[2*n+col] = z[0], z[1], z[2]
		} else {
			dst[0*n+col], dst[1*n+col], dst[2*n+col] = t.Pos[0], t.Pos[1], t.Pos[2]
			dst[3*n+col], dst[4*n+col], dst[5*n+col] = z[0], z[1], z[2]
		}
		s.move(&t, q[s.index])
	}
	var tip Pose
	mulTo(&tip, &t, &c.tail)
	for i := range c.segs {
		s := &c.segs[i]
		if s.typ == Prismatic {
			continue
		}
		col := s.index
		z := [3]float64{dst[3*n+col], dst[4*n+col], dst[5*n+col]}
		r := [3]float64{tip.Pos[0] - dst[0*n+col], tip.Pos[1] - dst[1*n+col], tip.Pos[2] - dst[2*n+col]}
		dst[0*n+col] = z[1]*r[2] - z[2]*r[1]
		dst[1*n+col] = z[2]*r[0] - z[0]*r[2]
		dst[2*n+col] = z[0]*r[1] - z[1]*r[0]
	}
}

// Transform returns the pose of j's child link in its parent link's frame at joint value q:
// Origin, then the joint's motion (a rotation by q about Axis, a translation by q along Axis; none
// for a fixed joint). This is what a /tf broadcaster publishes per joint. Axis need not be unit.
func (j *Joint) Transform(q float64) Pose {
	if j.Type == Fixed {
		return j.Origin
	}
	a := j.Axis
	if n := math.Sqrt(a[0]*a[0] + a[1]*a[1] + a[2]*a[2]); n > 0 {
		a = [3]float64{a[0] / n, a[1] / n, a[2] / n}
	}
	s := newSegment(Identity, j.Type, a, 0)
	t := j.Origin
	s.move(&t, q)
	return t
}
