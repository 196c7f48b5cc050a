package urdf

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/flowact/flowact/robot"
)

// MaxSize is the largest URDF document Parse reads (bytes). Real robot descriptions are a few
// hundred kB at most once xacro has expanded them.
const MaxSize = 16 << 20

// Errors, wrapped with the joint or link they concern.
var (
	// ErrUnsupported marks valid URDF that flowact does not handle: floating and planar joints,
	// mimic joints, and unexpanded xacro.
	ErrUnsupported = errors.New("not supported")
	// ErrInvalid marks a document that is not a well-formed URDF robot.
	ErrInvalid = errors.New("invalid URDF")
)

// The XML schema: only what the kinematics and limits need. Elements that may appear once are
// slices so that a repeated one is an error, not a silent overwrite.
type xmlRobot struct {
	XMLName xml.Name
	Name    *string    `xml:"name,attr"`
	Links   []xmlLink  `xml:"link"`
	Joints  []xmlJoint `xml:"joint"`
	Other   []xmlAny   `xml:",any"`
}

type xmlAny struct{ XMLName xml.Name }

type xmlLink struct {
	Name *string `xml:"name,attr"`
}

type xmlRef struct {
	Link *string `xml:"link,attr"`
}

type xmlOrigin struct {
	XYZ *string `xml:"xyz,attr"`
	RPY *string `xml:"rpy,attr"`
}

type xmlAxis struct {
	XYZ *string `xml:"xyz,attr"`
}

type xmlLimit struct {
	Lower    *string `xml:"lower,attr"`
	Upper    *string `xml:"upper,attr"`
	Velocity *string `xml:"velocity,attr"`
	Effort   *string `xml:"effort,attr"`
}

type xmlSafety struct {
	SoftLower *string `xml:"soft_lower_limit,attr"`
	SoftUpper *string `xml:"soft_upper_limit,attr"`
	KPosition *string `xml:"k_position,attr"`
	KVelocity *string `xml:"k_velocity,attr"`
}

type xmlJoint struct {
	Name   *string     `xml:"name,attr"`
	Type   *string     `xml:"type,attr"`
	Parent []xmlRef    `xml:"parent"`
	Child  []xmlRef    `xml:"child"`
	Origin []xmlOrigin `xml:"origin"`
	Axis   []xmlAxis   `xml:"axis"`
	Limit  []xmlLimit  `xml:"limit"`
	Safety []xmlSafety `xml:"safety_controller"`
	Mimic  []xmlAny    `xml:"mimic"`
}

// ParseFile parses the URDF file at path; its errors name the file.
func ParseFile(path string) (*robot.Model, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("urdf: %w", err)
	}
	m, err := parse(data)
	if err != nil {
		return nil, fmt.Errorf("urdf: %s: %w", path, err)
	}
	return m, nil
}

// Parse reads a URDF document and returns its validated model: actuated joints in document
// order, fixed joints in document order, the root link found from the tree.
func Parse(r io.Reader) (*robot.Model, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("urdf: %w", err)
	}
	m, err := parse(data)
	if err != nil {
		return nil, fmt.Errorf("urdf: %w", err)
	}
	return m, nil
}

// parse is Parse without the package prefix on its errors.
func parse(data []byte) (*robot.Model, error) {
	if len(data) > MaxSize {
		return nil, fmt.Errorf("document larger than %d bytes: %w", MaxSize, ErrInvalid)
	}
	var doc xmlRobot
	dec := xml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if err == io.EOF {
			return nil, fmt.Errorf("empty document: %w", ErrInvalid)
		}
		return nil, fmt.Errorf("%w (%w)", err, ErrInvalid)
	}
	return build(&doc)
}

func build(doc *xmlRobot) (*robot.Model, error) {
	if doc.XMLName.Local != "robot" {
		return nil, fmt.Errorf("root element <%s>, want <robot>: %w", doc.XMLName.Local, ErrInvalid)
	}
	for _, o := range doc.Other {
		if o.XMLName.Space == "http://www.ros.org/wiki/xacro" || o.XMLName.Space == "xacro" {
			return nil, fmt.Errorf("<xacro:%s>: run xacro first: %w", o.XMLName.Local, ErrUnsupported)
		}
	}
	if doc.Name == nil || *doc.Name == "" {
		return nil, fmt.Errorf("<robot> has no name: %w", ErrInvalid)
	}
	m := &robot.Model{Name: *doc.Name}

	links := make(map[string]bool, len(doc.Links))
	for i, l := range doc.Links {
		if l.Name == nil || *l.Name == "" {
			return nil, fmt.Errorf("link %d has no name: %w", i+1, ErrInvalid)
		}
		if links[*l.Name] {
			return nil, fmt.Errorf("link %q appears twice: %w", *l.Name, ErrInvalid)
		}
		links[*l.Name] = true
	}
	if len(links) == 0 {
		return nil, fmt.Errorf("robot %q has no links: %w", m.Name, ErrInvalid)
	}

	seen := make(map[string]bool, len(doc.Joints))
	parentOf := make(map[string]*robot.Joint, len(doc.Joints)) // child link -> joint
	var all []robot.Joint
	for i := range doc.Joints {
		j, err := joint(&doc.Joints[i], i)
		if err != nil {
			return nil, err
		}
		if seen[j.Name] {
			return nil, fmt.Errorf("joint %q appears twice: %w", j.Name, ErrInvalid)
		}
		seen[j.Name] = true
		if !links[j.Parent] {
			return nil, fmt.Errorf("joint %q: parent link %q is not declared: %w", j.Name, j.Parent, ErrInvalid)
		}
		if !links[j.Child] {
			return nil, fmt.Errorf("joint %q: child link %q is not declared: %w", j.Name, j.Child, ErrInvalid)
		}
		all = append(all, j)
	}
	for i := range all {
		j := &all[i]
		if p := parentOf[j.Child]; p != nil {
			return nil, fmt.Errorf("link %q is the child of joints %q and %q: %w", j.Child, p.Name, j.Name, ErrInvalid)
		}
		parentOf[j.Child] = j
	}

	// The root is the one link that is no joint's child; every other link must reach it.
	var roots []string
	for _, l := range doc.Links {
		if parentOf[*l.Name] == nil {
			roots = append(roots, *l.Name)
		}
	}
	switch {
	case len(roots) > 1:
		return nil, fmt.Errorf("robot %q has %d root links (%s): want one tree: %w", m.Name, len(roots), quoteList(roots), ErrInvalid)
	case len(roots) == 0:
		// Every link has a parent: walking up from any link ends on a cycle.
		j := &all[0]
		for range all {
			j = parentOf[j.Parent]
		}
		return nil, fmt.Errorf("robot %q has no root link: joint %q is on a cycle: %w", m.Name, j.Name, ErrInvalid)
	}
	m.Root = roots[0]
	for _, l := range doc.Links {
		// Walk up from each link; with one root, a walk that does not end there is on a cycle.
		steps := 0
		for link := *l.Name; link != m.Root; steps++ {
			j := parentOf[link]
			if steps > len(all) {
				return nil, fmt.Errorf("joint %q is on a cycle (not connected to root link %q): %w", j.Name, m.Root, ErrInvalid)
			}
			link = j.Parent
		}
	}

	for _, j := range all {
		if j.Type.Actuated() {
			m.Joints = append(m.Joints, j)
		} else {
			m.Fixed = append(m.Fixed, j)
		}
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return m, nil
}

func quoteList(s []string) string {
	q := make([]string, len(s))
	for i, v := range s {
		q[i] = strconv.Quote(v)
	}
	return strings.Join(q, ", ")
}

// joint converts one <joint>; i is its 0-based position for error messages when it has no name.
func joint(x *xmlJoint, i int) (robot.Joint, error) {
	var j robot.Joint
	if x.Name == nil || *x.Name == "" {
		return j, fmt.Errorf("joint %d has no name: %w", i+1, ErrInvalid)
	}
	j.Name = *x.Name
	fail := func(err error, format string, args ...any) (robot.Joint, error) {
		return robot.Joint{}, fmt.Errorf("joint %q: %s: %w", j.Name, fmt.Sprintf(format, args...), err)
	}
	if x.Type == nil {
		return fail(ErrInvalid, "no type")
	}
	switch *x.Type {
	case "revolute":
		j.Type = robot.Revolute
	case "continuous":
		j.Type = robot.Continuous
	case "prismatic":
		j.Type = robot.Prismatic
	case "fixed":
		j.Type = robot.Fixed
	case "floating", "planar":
		return fail(ErrUnsupported, "type %q (flowact models serial robots on a fixed base)", *x.Type)
	default:
		return fail(ErrInvalid, "unknown type %q", *x.Type)
	}
	if len(x.Mimic) > 0 {
		return fail(ErrUnsupported, "<mimic>: a mimic joint is not independently actuated; model the mechanism with one actuated joint")
	}
	for _, e := range []struct {
		name string
		n    int
	}{{"parent", len(x.Parent)}, {"child", len(x.Child)}, {"origin", len(x.Origin)}, {"axis", len(x.Axis)}, {"limit", len(x.Limit)}, {"safety_controller", len(x.Safety)}} {
		if e.n > 1 {
			return fail(ErrInvalid, "%d <%s> elements", e.n, e.name)
		}
	}
	if len(x.Parent) == 0 || x.Parent[0].Link == nil || *x.Parent[0].Link == "" {
		return fail(ErrInvalid, "no <parent link>")
	}
	if len(x.Child) == 0 || x.Child[0].Link == nil || *x.Child[0].Link == "" {
		return fail(ErrInvalid, "no <child link>")
	}
	j.Parent, j.Child = *x.Parent[0].Link, *x.Child[0].Link
	if j.Parent == j.Child {
		return fail(ErrInvalid, "parent and child are both link %q", j.Parent)
	}

	j.Origin = robot.Identity
	if len(x.Origin) == 1 {
		xyz, err := vec3(x.Origin[0].XYZ, [3]float64{})
		if err != nil {
			return fail(err, "<origin xyz>")
		}
		rpy, err := vec3(x.Origin[0].RPY, [3]float64{})
		if err != nil {
			return fail(err, "<origin rpy>")
		}
		j.Origin = robot.NewPose(xyz, rpy)
	}

	// URDF's default axis is (1, 0, 0); fixed joints have none.
	j.Axis = [3]float64{1, 0, 0}
	if len(x.Axis) == 1 && j.Type != robot.Fixed {
		a, err := vec3(x.Axis[0].XYZ, [3]float64{1, 0, 0})
		if err != nil {
			return fail(err, "<axis xyz>")
		}
		n := math.Sqrt(a[0]*a[0] + a[1]*a[1] + a[2]*a[2])
		if !(n > 1e-9) || math.IsInf(n, 0) {
			return fail(ErrInvalid, "<axis xyz> %v is not a direction", a)
		}
		j.Axis = [3]float64{a[0] / n, a[1] / n, a[2] / n}
	}
	if j.Type == robot.Fixed {
		j.Axis = [3]float64{}
	}

	switch {
	case len(x.Limit) == 1 && j.Type != robot.Fixed:
		l := x.Limit[0]
		attrs := []struct {
			name     string
			s        *string
			dst      *float64
			required bool
		}{
			{"lower", l.Lower, &j.Limits.Lower, false},
			{"upper", l.Upper, &j.Limits.Upper, false},
			{"velocity", l.Velocity, &j.Limits.Velocity, true},
			{"effort", l.Effort, &j.Limits.Effort, true},
		}
		for _, a := range attrs {
			if a.s == nil {
				if a.required {
					return fail(ErrInvalid, "<limit> has no %s", a.name)
				}
				continue
			}
			v, err := number(*a.s)
			if err != nil {
				return fail(err, "<limit %s>", a.name)
			}
			*a.dst = v
		}
		if j.Limits.Velocity < 0 || j.Limits.Effort < 0 {
			return fail(ErrInvalid, "<limit> velocity %g and effort %g must not be negative", j.Limits.Velocity, j.Limits.Effort)
		}
		if j.Type == robot.Continuous {
			j.Limits.Lower, j.Limits.Upper = 0, 0 // URDF ignores them on continuous joints
		} else {
			j.Limits.HasPosition = true
			if j.Limits.Lower > j.Limits.Upper {
				return fail(ErrInvalid, "<limit> lower %g above upper %g", j.Limits.Lower, j.Limits.Upper)
			}
		}
	case j.Type == robot.Revolute || j.Type == robot.Prismatic:
		return fail(ErrInvalid, "a %v joint needs <limit>", j.Type)
	}

	if len(x.Safety) == 1 && j.Type != robot.Fixed {
		s := x.Safety[0]
		var soft robot.SoftLimits
		if s.KVelocity == nil {
			return fail(ErrInvalid, "<safety_controller> has no k_velocity")
		}
		for _, a := range []struct {
			name string
			s    *string
			dst  *float64
		}{
			{"soft_lower_limit", s.SoftLower, &soft.Lower},
			{"soft_upper_limit", s.SoftUpper, &soft.Upper},
			{"k_position", s.KPosition, &soft.KPosition},
			{"k_velocity", s.KVelocity, &soft.KVelocity},
		} {
			if a.s == nil {
				continue
			}
			v, err := number(*a.s)
			if err != nil {
				return fail(err, "<safety_controller %s>", a.name)
			}
			*a.dst = v
		}
		if j.Limits.HasPosition && soft.Lower > soft.Upper {
			return fail(ErrInvalid, "<safety_controller> soft_lower_limit %g above soft_upper_limit %g", soft.Lower, soft.Upper)
		}
		j.Soft = &soft
	}
	return j, nil
}

// vec3 parses "x y z" (whitespace separated); a nil attribute gives def.
func vec3(s *string, def [3]float64) ([3]float64, error) {
	if s == nil {
		return def, nil
	}
	f := strings.Fields(*s)
	if len(f) != 3 {
		return def, fmt.Errorf("%q is not three numbers: %w", *s, ErrInvalid)
	}
	var v [3]float64
	for i := range v {
		x, err := number(f[i])
		if err != nil {
			return def, err
		}
		v[i] = x
	}
	return v, nil
}

// number parses a finite float.
func number(s string) (float64, error) {
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%q is not a finite number: %w", s, ErrInvalid)
	}
	return v, nil
}
