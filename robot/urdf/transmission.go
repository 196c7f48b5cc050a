package urdf

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"

	"github.com/flowact/flowact/robot"
)

// Transmission is one ros_control SimpleTransmission of a URDF: one joint driven by one actuator
// through motor = Reduction · (joint - Offset) (motor rad per joint rad, or per m; a negative
// Reduction flips the direction). Package calib binds it to the joint.
type Transmission struct {
	Name      string // the <transmission name>
	Joint     string // <joint name>
	Actuator  string // <actuator name>
	Reduction float64
	Offset    float64 // <joint><offset>, rad or m; 0 when absent
}

// The ros_control schema (http://wiki.ros.org/urdf/XML/Transmission), and its older pr2 form
// where the type is an attribute and <mechanicalReduction> sits in <transmission> itself.
type xmlTransRobot struct {
	XMLName       xml.Name
	Transmissions []xmlTransmission `xml:"transmission"`
}

type xmlTransmission struct {
	Name      *string       `xml:"name,attr"`
	TypeAttr  *string       `xml:"type,attr"`
	Type      []string      `xml:"type"`
	Joints    []xmlTransEnd `xml:"joint"`
	Actuators []xmlTransEnd `xml:"actuator"`
	Reduction []string      `xml:"mechanicalReduction"`
}

type xmlTransEnd struct {
	Name      *string  `xml:"name,attr"`
	Reduction []string `xml:"mechanicalReduction"`
	Offset    []string `xml:"offset"`
}

// SimpleTransmission is the type flowact reads; the pr2 name is its older spelling.
var simpleTypes = map[string]bool{
	"transmission_interface/SimpleTransmission": true,
	"pr2_mechanism_model/SimpleTransmission":    true,
	"SimpleTransmission":                        true,
}

// ParseTransmissions reads the <transmission> elements of a URDF document (other elements are
// ignored; Parse reads those). Only SimpleTransmission is supported: other types are refused
// with ErrUnsupported, and a transmission without a name, with other than one joint and one
// actuator, or without a finite non-zero mechanicalReduction is ErrInvalid, naming it. A joint
// driven by two transmissions is ErrInvalid. The result is in document order.
func ParseTransmissions(r io.Reader) ([]Transmission, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("urdf: %w", err)
	}
	tr, err := parseTransmissions(data)
	if err != nil {
		return nil, fmt.Errorf("urdf: %w", err)
	}
	return tr, nil
}

// LoadTransmissions reads the transmissions of the URDF that cfg (a robot.yaml in directory dir
// of fsys, as LoadConfig returned it) names. Errors name the file.
func LoadTransmissions(fsys fs.FS, dir string, cfg robot.Config) ([]Transmission, error) {
	file := cfg.URDF
	if file == "" {
		file = path.Base(dir) + ".urdf"
	}
	file = path.Join(dir, file)
	data, err := fs.ReadFile(fsys, file)
	if err != nil {
		return nil, fmt.Errorf("urdf: %w", err)
	}
	tr, err := parseTransmissions(data)
	if err != nil {
		return nil, fmt.Errorf("urdf: %s: %w", file, err)
	}
	return tr, nil
}

func parseTransmissions(data []byte) ([]Transmission, error) {
	if len(data) > MaxSize {
		return nil, fmt.Errorf("document larger than %d bytes: %w", MaxSize, ErrInvalid)
	}
	var doc xmlTransRobot
	if err := xml.NewDecoder(bytes.NewReader(data)).Decode(&doc); err != nil {
		if err == io.EOF {
			return nil, fmt.Errorf("empty document: %w", ErrInvalid)
		}
		return nil, fmt.Errorf("%w (%w)", err, ErrInvalid)
	}
	if doc.XMLName.Local != "robot" {
		return nil, fmt.Errorf("root element <%s>, want <robot>: %w", doc.XMLName.Local, ErrInvalid)
	}
	out := make([]Transmission, 0, len(doc.Transmissions))
	byJoint := make(map[string]string, len(doc.Transmissions))
	for i := range doc.Transmissions {
		t, err := transmission(&doc.Transmissions[i], i)
		if err != nil {
			return nil, err
		}
		if other, dup := byJoint[t.Joint]; dup {
			return nil, fmt.Errorf("transmission %q: joint %q is also driven by transmission %q: %w", t.Name, t.Joint, other, ErrInvalid)
		}
		byJoint[t.Joint] = t.Name
		out = append(out, t)
	}
	return out, nil
}

func transmission(x *xmlTransmission, i int) (Transmission, error) {
	var t Transmission
	if x.Name == nil || *x.Name == "" {
		return t, fmt.Errorf("transmission %d has no name: %w", i+1, ErrInvalid)
	}
	t.Name = *x.Name
	fail := func(err error, format string, args ...any) (Transmission, error) {
		return Transmission{}, fmt.Errorf("transmission %q: %s: %w", t.Name, fmt.Sprintf(format, args...), err)
	}
	var typ string
	switch {
	case len(x.Type) > 1:
		return fail(ErrInvalid, "%d <type> elements", len(x.Type))
	case len(x.Type) == 1:
		typ = strings.TrimSpace(x.Type[0])
	case x.TypeAttr != nil:
		typ = strings.TrimSpace(*x.TypeAttr)
	default:
		return fail(ErrInvalid, "no <type>")
	}
	if !simpleTypes[typ] {
		return fail(ErrUnsupported, "type %q (flowact reads SimpleTransmission: one joint, one actuator)", typ)
	}
	if len(x.Joints) != 1 || len(x.Actuators) != 1 {
		return fail(ErrInvalid, "%d <joint> and %d <actuator> elements, want one of each", len(x.Joints), len(x.Actuators))
	}
	j, a := x.Joints[0], x.Actuators[0]
	if j.Name == nil || *j.Name == "" {
		return fail(ErrInvalid, "<joint> has no name")
	}
	if a.Name == nil || *a.Name == "" {
		return fail(ErrInvalid, "<actuator> has no name")
	}
	t.Joint, t.Actuator = *j.Name, *a.Name
	red := append(append([]string(nil), a.Reduction...), x.Reduction...)
	switch len(red) {
	case 0:
		return fail(ErrInvalid, "actuator %q: no <mechanicalReduction>", t.Actuator)
	case 1:
	default:
		return fail(ErrInvalid, "actuator %q: %d <mechanicalReduction> elements", t.Actuator, len(red))
	}
	v, err := number(red[0])
	if err != nil {
		return fail(err, "actuator %q: <mechanicalReduction>", t.Actuator)
	}
	if v == 0 {
		return fail(ErrInvalid, "actuator %q: <mechanicalReduction> is 0", t.Actuator)
	}
	t.Reduction = v
	switch len(j.Offset) {
	case 0:
	case 1:
		if t.Offset, err = number(j.Offset[0]); err != nil {
			return fail(err, "joint %q: <offset>", t.Joint)
		}
	default:
		return fail(ErrInvalid, "joint %q: %d <offset> elements", t.Joint, len(j.Offset))
	}
	return t, nil
}
