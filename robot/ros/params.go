package ros

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/flowact/flowact/robot/ros/xmlrpc"
)

// Parameters. goroslib v2.1.4 reads and writes scalar parameters only; these go to the
// parameter server through flowact's own XML-RPC codec (robot/ros/xmlrpc), so lists and
// dictionaries (XML-RPC structs) work both ways.

// ErrNoParam is returned by Node.Param for a key the parameter server does not have.
var ErrNoParam = errors.New("ros: parameter not set")

// ParseParam types a parameter value written on a command line the way rosparam and rospy do:
// as YAML. Scalars become bool, int, double or string values, sequences arrays, mappings
// structs. Integers outside int32 become doubles (XML-RPC integers are 32-bit); null and
// non-string mapping keys are errors.
func ParseParam(text string) (xmlrpc.Value, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
		return xmlrpc.Value{}, fmt.Errorf("ros: parameter %q: %w", text, err)
	}
	if len(doc.Content) == 0 { // empty text
		return xmlrpc.String(text), nil
	}
	v, err := yamlValue(doc.Content[0], 0)
	if err != nil {
		return xmlrpc.Value{}, fmt.Errorf("ros: parameter %q: %w", text, err)
	}
	return v, nil
}

func yamlValue(y *yaml.Node, depth int) (xmlrpc.Value, error) {
	if depth > xmlrpc.MaxDepth {
		return xmlrpc.Value{}, errors.New("nested too deeply")
	}
	switch y.Kind {
	case yaml.AliasNode:
		return yamlValue(y.Alias, depth+1)
	case yaml.SequenceNode:
		vs := make([]xmlrpc.Value, len(y.Content))
		for i, c := range y.Content {
			v, err := yamlValue(c, depth+1)
			if err != nil {
				return xmlrpc.Value{}, err
			}
			vs[i] = v
		}
		return xmlrpc.Array(vs...), nil
	case yaml.MappingNode:
		ms := make([]xmlrpc.Member, 0, len(y.Content)/2)
		for i := 0; i+1 < len(y.Content); i += 2 {
			k := y.Content[i]
			if k.Kind != yaml.ScalarNode || (k.Tag != "!!str" && k.Tag != "!!int") {
				return xmlrpc.Value{}, fmt.Errorf("mapping key %q is not a name", k.Value)
			}
			v, err := yamlValue(y.Content[i+1], depth+1)
			if err != nil {
				return xmlrpc.Value{}, err
			}
			ms = append(ms, xmlrpc.Member{Name: k.Value, Value: v})
		}
		return xmlrpc.Struct(ms...), nil
	case yaml.ScalarNode:
		switch y.Tag {
		case "!!bool":
			var b bool
			err := y.Decode(&b)
			return xmlrpc.Bool(b), err
		case "!!int":
			var i int64
			if err := y.Decode(&i); err == nil && i == int64(int32(i)) {
				return xmlrpc.Int(i), nil
			}
			var f float64
			err := y.Decode(&f)
			return xmlrpc.Double(f), err
		case "!!float":
			var f float64
			err := y.Decode(&f)
			return xmlrpc.Double(f), err
		case "!!null":
			return xmlrpc.Value{}, errors.New("null has no XML-RPC representation in ROS")
		}
		return xmlrpc.String(y.Value), nil
	}
	return xmlrpc.Value{}, fmt.Errorf("unsupported YAML node kind %v", y.Kind)
}

// masterCall calls a Master or Parameter API method of nm's master, through rpc, as nm's node,
// and unwraps rosmaster's [code, statusMessage, value] answer. Node and SimSide use it for what
// goroslib lacks: parameters of any shape, and deleting one.
func masterCall(ctx context.Context, rpc *xmlrpc.Client, nm *names, method string, params ...xmlrpc.Value) (int64, string, xmlrpc.Value, error) {
	args := append([]xmlrpc.Value{xmlrpc.String(nm.node)}, params...)
	res, err := rpc.Call(ctx, nm.cfg.MasterURI, method, args...)
	if err != nil {
		return 0, "", xmlrpc.Value{}, fmt.Errorf("ros: %s: %w", method, err)
	}
	a, ok := res.AsArray()
	if !ok || len(a) != 3 {
		return 0, "", xmlrpc.Value{}, fmt.Errorf("ros: %s: malformed answer %v", method, res)
	}
	code, ok1 := a[0].AsInt()
	msg, ok2 := a[1].AsString()
	if !ok1 || !ok2 {
		return 0, "", xmlrpc.Value{}, fmt.Errorf("ros: %s: malformed answer %v", method, res)
	}
	return code, msg, a[2], nil
}

// ResolveName resolves a parameter, topic or service name for this node ("/a" global, "a"
// under the namespace, "~a" under the node name) and applies the remaps.
func (n *Node) ResolveName(name string) (string, error) {
	r, err := n.nm.resolveName(name)
	if err != nil {
		return "", fmt.Errorf("ros: %w", err)
	}
	if to, ok := n.nm.remaps[r]; ok {
		r = to
	}
	return r, nil
}

// Param reads a parameter (any type: scalar, list, dictionary) from the parameter server. key
// resolves like ResolveName. A missing key gives an error wrapping ErrNoParam.
func (n *Node) Param(ctx context.Context, key string) (xmlrpc.Value, error) {
	k, err := n.ResolveName(key)
	if err != nil {
		return xmlrpc.Value{}, err
	}
	code, msg, v, err := masterCall(ctx, n.rpc, n.nm, "getParam", xmlrpc.String(k))
	if err != nil {
		return xmlrpc.Value{}, err
	}
	if code != 1 {
		return xmlrpc.Value{}, fmt.Errorf("%w: %s: %s", ErrNoParam, k, msg)
	}
	return v, nil
}

// SetParam writes a parameter; key resolves like ResolveName.
func (n *Node) SetParam(ctx context.Context, key string, v xmlrpc.Value) error {
	k, err := n.ResolveName(key)
	if err != nil {
		return err
	}
	return setParam(ctx, n.rpc, n.nm, k, v)
}

// setParam sets key (resolved) to v on nm's parameter server, as nm's node.
func setParam(ctx context.Context, rpc *xmlrpc.Client, nm *names, key string, v xmlrpc.Value) error {
	code, msg, _, err := masterCall(ctx, rpc, nm, "setParam", xmlrpc.String(key), v)
	if err != nil {
		return err
	}
	if code != 1 {
		return fmt.Errorf("ros: setParam %s: %s", key, msg)
	}
	return nil
}

// RobotDescriptionParam is the parameter a robot's URDF is set as, resolved in the node's
// namespace (the ROS 1 convention rviz and robot_state_publisher follow).
const RobotDescriptionParam = "robot_description"

// offerDescription sets nm's Config.RobotDescription as the robot_description parameter unless
// the parameter server has one: one that differs is kept, and logged (a warning when it
// describes another robot).
func offerDescription(ctx context.Context, rpc *xmlrpc.Client, nm *names, log *slog.Logger) error {
	desc := nm.cfg.RobotDescription
	if desc == "" {
		return nil
	}
	key, err := nm.resolveName(RobotDescriptionParam)
	if err != nil {
		return fmt.Errorf("ros: %s: %w", RobotDescriptionParam, err)
	}
	if to, ok := nm.remaps[key]; ok {
		key = to
	}
	code, _, v, err := masterCall(ctx, rpc, nm, "getParam", xmlrpc.String(key))
	if err != nil {
		return err
	}
	if code != 1 {
		return setParam(ctx, rpc, nm, key, xmlrpc.String(desc))
	}
	have, _ := v.AsString()
	switch mine, theirs := urdfRobotName(desc), urdfRobotName(have); {
	case have == desc:
	case mine != theirs:
		log.Warn("ros: "+key+" describes another robot: kept (rosparam delete "+key+" to have this node set it)", "have", theirs, "this", mine)
	default:
		log.Info("ros: "+key+" already set: kept", "robot", theirs)
	}
	return nil
}

// urdfRobotName is the name attribute of a URDF's <robot> element ("" if it has none).
func urdfRobotName(text string) string {
	d := xml.NewDecoder(strings.NewReader(text))
	for {
		tok, err := d.Token()
		if err != nil {
			return ""
		}
		if se, ok := tok.(xml.StartElement); ok {
			if se.Name.Local != "robot" {
				return ""
			}
			for _, a := range se.Attr {
				if a.Name.Local == "name" {
					return a.Value
				}
			}
			return ""
		}
	}
}

// ParamFloat64s reads a list of numbers (ints or doubles), e.g. per-joint gains.
func (n *Node) ParamFloat64s(ctx context.Context, key string) ([]float64, error) {
	v, err := n.Param(ctx, key)
	if err != nil {
		return nil, err
	}
	return Float64s(v)
}

// Float64s converts an XML-RPC array of ints and doubles to float64s.
func Float64s(v xmlrpc.Value) ([]float64, error) {
	a, ok := v.AsArray()
	if !ok {
		return nil, fmt.Errorf("ros: parameter %v is a %v, not a list", v, v.Kind())
	}
	out := make([]float64, len(a))
	for i, e := range a {
		if f, ok := e.AsDouble(); ok {
			out[i] = f
		} else if k, ok := e.AsInt(); ok {
			out[i] = float64(k)
		} else {
			return nil, fmt.Errorf("ros: parameter list element %d is %v, not a number", i, e)
		}
	}
	return out, nil
}
