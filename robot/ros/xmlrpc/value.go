package xmlrpc

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Kind is the XML-RPC type of a Value.
type Kind uint8

const (
	// KindNil is the zero Value: the <nil/> extension. ROS never sends it; it decodes and
	// encodes for interoperability with servers that enable it.
	KindNil      Kind = iota
	KindInt           // <int> or <i4> (<i8> is accepted on decode)
	KindBool          // <boolean>
	KindString        // <string>, or untyped text inside <value>
	KindDouble        // <double>
	KindBase64        // <base64>
	KindDateTime      // <dateTime.iso8601>, second resolution, no time zone (read as UTC)
	KindArray         // <array>
	KindStruct        // <struct>
)

var kindNames = [...]string{"nil", "int", "boolean", "string", "double", "base64", "dateTime.iso8601", "array", "struct"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Value is one XML-RPC value: a small tagged union. The zero Value is nil. Values are
// immutable once built: the slices returned by Array and Struct alias the Value and must not be
// modified, so a Value may be shared between goroutines freely.
type Value struct {
	kind Kind
	i    int64   // KindInt; KindBool (0 or 1); KindDateTime (Unix seconds, UTC)
	f    float64 // KindDouble
	s    string  // KindString; KindBase64 (the raw bytes)
	a    []Value // KindArray
	m    []Member
}

// Member is one named field of a struct, in wire order.
type Member struct {
	Name  string
	Value Value
}

// Nil returns the nil Value (the zero Value).
func Nil() Value { return Value{} }

// Int returns an int Value. XML-RPC's <int> is 32 bits: values outside int32 encode as <i8>,
// which Python's xmlrpc.client reads but roscpp's XmlRpc++ does not.
func Int(v int64) Value { return Value{kind: KindInt, i: v} }

// Bool returns a boolean Value.
func Bool(v bool) Value {
	if v {
		return Value{kind: KindBool, i: 1}
	}
	return Value{kind: KindBool}
}

// String returns a string Value.
func String(s string) Value { return Value{kind: KindString, s: s} }

// Double returns a double Value.
func Double(f float64) Value { return Value{kind: KindDouble, f: f} }

// Bytes returns a base64 Value holding a copy of b.
func Bytes(b []byte) Value { return Value{kind: KindBase64, s: string(b)} }

// Time returns a dateTime.iso8601 Value: t in UTC, truncated to the second.
func Time(t time.Time) Value { return Value{kind: KindDateTime, i: t.Unix()} }

// Array returns an array Value holding vs (not copied: the caller gives up vs).
func Array(vs ...Value) Value {
	if vs == nil {
		vs = []Value{}
	}
	return Value{kind: KindArray, a: vs}
}

// Struct returns a struct Value holding ms in the given order (not copied).
func Struct(ms ...Member) Value {
	if ms == nil {
		ms = []Member{}
	}
	return Value{kind: KindStruct, m: ms}
}

// Strings returns an array of string Values.
func Strings(ss []string) Value {
	vs := make([]Value, len(ss))
	for i, s := range ss {
		vs[i] = String(s)
	}
	return Array(vs...)
}

// Kind returns v's type.
func (v Value) Kind() Kind { return v.kind }

// IsNil reports whether v is nil.
func (v Value) IsNil() bool { return v.kind == KindNil }

// AsInt returns v's integer and whether v is an int.
func (v Value) AsInt() (int64, bool) { return v.i, v.kind == KindInt }

// AsBool returns v's boolean and whether v is a boolean.
func (v Value) AsBool() (bool, bool) { return v.i != 0, v.kind == KindBool }

// AsString returns v's text and whether v is a string.
func (v Value) AsString() (string, bool) {
	if v.kind != KindString {
		return "", false
	}
	return v.s, true
}

// AsDouble returns v's float and whether v is a double.
func (v Value) AsDouble() (float64, bool) { return v.f, v.kind == KindDouble }

// AsBytes returns a copy of v's bytes and whether v is base64.
func (v Value) AsBytes() ([]byte, bool) {
	if v.kind != KindBase64 {
		return nil, false
	}
	return []byte(v.s), true
}

// AsTime returns v's time (UTC) and whether v is a dateTime.iso8601.
func (v Value) AsTime() (time.Time, bool) {
	if v.kind != KindDateTime {
		return time.Time{}, false
	}
	return time.Unix(v.i, 0).UTC(), true
}

// AsArray returns v's elements (read-only, aliasing v) and whether v is an array.
func (v Value) AsArray() ([]Value, bool) { return v.a, v.kind == KindArray }

// AsStruct returns v's members (read-only, aliasing v) and whether v is a struct.
func (v Value) AsStruct() ([]Member, bool) { return v.m, v.kind == KindStruct }

// Field returns the value of the first member called name of struct v.
func (v Value) Field(name string) (Value, bool) {
	for i := range v.m {
		if v.m[i].Name == name {
			return v.m[i].Value, true
		}
	}
	return Value{}, false
}

// Equal reports whether a and b have the same kind and contents. Doubles compare bit for bit, so
// a NaN equals the same NaN; struct members compare in order.
func Equal(a, b Value) bool {
	if a.kind != b.kind {
		return false
	}
	switch a.kind {
	case KindNil:
		return true
	case KindInt, KindBool, KindDateTime:
		return a.i == b.i
	case KindDouble:
		return math.Float64bits(a.f) == math.Float64bits(b.f)
	case KindString, KindBase64:
		return a.s == b.s
	case KindArray:
		return slices.EqualFunc(a.a, b.a, Equal)
	case KindStruct:
		return slices.EqualFunc(a.m, b.m, func(x, y Member) bool { return x.Name == y.Name && Equal(x.Value, y.Value) })
	}
	return false
}

// String formats v for logs and test failures, in a Python-like notation: strings quoted,
// structs as {k: v}, arrays as [a, b]. Long values are not abbreviated.
func (v Value) String() string {
	var sb strings.Builder
	v.format(&sb)
	return sb.String()
}

func (v Value) format(sb *strings.Builder) {
	switch v.kind {
	case KindNil:
		sb.WriteString("nil")
	case KindInt:
		sb.WriteString(strconv.FormatInt(v.i, 10))
	case KindBool:
		sb.WriteString(strconv.FormatBool(v.i != 0))
	case KindString:
		sb.WriteString(strconv.Quote(v.s))
	case KindDouble:
		sb.WriteString(strconv.FormatFloat(v.f, 'g', -1, 64))
	case KindBase64:
		fmt.Fprintf(sb, "base64(%d bytes)", len(v.s))
	case KindDateTime:
		sb.WriteString(time.Unix(v.i, 0).UTC().Format(dateTimeLayout))
	case KindArray:
		sb.WriteByte('[')
		for i, e := range v.a {
			if i > 0 {
				sb.WriteString(", ")
			}
			e.format(sb)
		}
		sb.WriteByte(']')
	case KindStruct:
		sb.WriteByte('{')
		for i, m := range v.m {
			if i > 0 {
				sb.WriteString(", ")
			}
			sb.WriteString(strconv.Quote(m.Name))
			sb.WriteString(": ")
			m.Value.format(sb)
		}
		sb.WriteByte('}')
	default:
		sb.WriteString(v.kind.String())
	}
}
