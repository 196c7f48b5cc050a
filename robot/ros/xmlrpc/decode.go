package xmlrpc

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// MaxDepth is how deeply arrays and structs may nest in a decoded document. ROS parameter trees
// from YAML are rarely deeper than ten levels; the bound keeps a hostile body from exhausting
// the stack.
const MaxDepth = 100

// Decoding errors. Every error the decoder returns wraps ErrMalformed or, for a fault response,
// is a *Fault.
var (
	ErrMalformed = errors.New("xmlrpc: malformed document")
	ErrTooLarge  = errors.New("xmlrpc: body too large")
)

// dateTimeLayout is XML-RPC's dateTime.iso8601 form, as Python's xmlrpc.client writes it.
const dateTimeLayout = "20060102T15:04:05"

// dateTimeLayouts are the forms the decoder accepts: the XML-RPC one and ISO 8601's extended
// form, each with or without a zone.
var dateTimeLayouts = [...]string{dateTimeLayout, "2006-01-02T15:04:05", "20060102T15:04:05Z07:00", "2006-01-02T15:04:05Z07:00", "20060102T150405"}

// Call is a decoded method call.
type Call struct {
	Method string
	Params []Value
}

// Fault is an XML-RPC fault: the error a server returns instead of a value. It is returned as an
// error by DecodeResponse and Client.Call, and a Method may return one to choose the code.
type Fault struct {
	Code    int
	Message string
}

func (f *Fault) Error() string { return fmt.Sprintf("xmlrpc: fault %d: %s", f.Code, f.Message) }

// Fault codes for errors of the protocol itself, from the de facto "specification for fault code
// interoperability" (xmlrpc-epi, 2001) that most servers follow.
const (
	FaultParse          = -32700 // the request is not well-formed XML-RPC
	FaultInvalidRequest = -32600 // e.g. not a POST, or a body over the limit
	FaultMethodNotFound = -32601
	FaultInvalidParams  = -32602
	FaultInternal       = -32603 // a method failed without saying how
)

// decoder walks the tokens of one document.
type decoder struct {
	d *xml.Decoder
}

func newDecoder(data []byte) *decoder {
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	d.CharsetReader = charsetReader
	return &decoder{d: d}
}

// charsetReader accepts the encodings XML-RPC peers declare: UTF-8 (and its ASCII subset) as is,
// and ISO-8859-1, converted byte by byte.
func charsetReader(label string, r io.Reader) (io.Reader, error) {
	switch strings.ToLower(label) {
	case "utf-8", "utf8", "us-ascii", "ascii":
		return r, nil
	case "iso-8859-1", "latin1", "latin-1":
		b, err := io.ReadAll(r)
		if err != nil {
			return nil, err
		}
		out := make([]byte, 0, len(b)+len(b)/8)
		for _, c := range b {
			out = utf8.AppendRune(out, rune(c))
		}
		return bytes.NewReader(out), nil
	}
	return nil, fmt.Errorf("unsupported encoding %q", label)
}

func (p *decoder) errorf(format string, args ...any) error {
	return fmt.Errorf("xmlrpc: %s (near byte %d): %w", fmt.Sprintf(format, args...), p.d.InputOffset(), ErrMalformed)
}

// raw returns the next token. RawToken does not check that end tags match start tags: the
// parser does, by naming the end tag it expects at every step.
func (p *decoder) raw() (xml.Token, error) {
	t, err := p.d.RawToken()
	if err == io.EOF {
		return nil, io.EOF
	}
	if err != nil {
		return nil, fmt.Errorf("xmlrpc: %v: %w", err, ErrMalformed)
	}
	return t, nil
}

// next returns the next start or end element, skipping comments, processing instructions,
// directives and whitespace; other text is an error.
func (p *decoder) next() (xml.Token, error) {
	for {
		t, err := p.raw()
		if err != nil {
			if err == io.EOF {
				return nil, p.errorf("unexpected end of document")
			}
			return nil, err
		}
		switch t := t.(type) {
		case xml.StartElement, xml.EndElement:
			return t, nil
		case xml.CharData:
			if len(bytes.TrimSpace(t)) != 0 {
				return nil, p.errorf("unexpected text %q", clip(t))
			}
		}
	}
}

func clip(b []byte) string {
	if len(b) > 32 {
		return string(b[:32]) + "..."
	}
	return string(b)
}

// start consumes the start element name.
func (p *decoder) start(name string) error {
	t, err := p.next()
	if err != nil {
		return err
	}
	if s, ok := t.(xml.StartElement); !ok || s.Name.Local != name {
		return p.errorf("want <%s>, got %s", name, describe(t))
	}
	return nil
}

// end consumes the end element name.
func (p *decoder) end(name string) error {
	t, err := p.next()
	if err != nil {
		return err
	}
	if e, ok := t.(xml.EndElement); !ok || e.Name.Local != name {
		return p.errorf("want </%s>, got %s", name, describe(t))
	}
	return nil
}

func describe(t xml.Token) string {
	switch t := t.(type) {
	case xml.StartElement:
		return "<" + t.Name.Local + ">"
	case xml.EndElement:
		return "</" + t.Name.Local + ">"
	}
	return fmt.Sprintf("%T", t)
}

// text reads the character data of element name up to its end tag; nested elements are errors.
func (p *decoder) text(name string) (string, error) {
	var buf []byte
	var one string // the common case of a single text token needs no buffer
	n := 0
	for {
		t, err := p.raw()
		if err != nil {
			if err == io.EOF {
				return "", p.errorf("unexpected end of document inside <%s>", name)
			}
			return "", err
		}
		switch t := t.(type) {
		case xml.CharData:
			if n == 0 {
				one = string(t)
			} else {
				if n == 1 {
					buf = append(buf, one...)
				}
				buf = append(buf, t...)
			}
			n++
		case xml.EndElement:
			if t.Name.Local != name {
				return "", p.errorf("want </%s>, got </%s>", name, t.Name.Local)
			}
			if n > 1 {
				return string(buf), nil
			}
			return one, nil
		case xml.StartElement:
			return "", p.errorf("unexpected <%s> inside <%s>", t.Name.Local, name)
		}
	}
}

// eof checks that nothing but whitespace, comments and processing instructions follows.
func (p *decoder) eof() error {
	for {
		t, err := p.raw()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		switch t := t.(type) {
		case xml.StartElement, xml.EndElement:
			return p.errorf("trailing %s after the document", describe(t))
		case xml.CharData:
			if len(bytes.TrimSpace(t)) != 0 {
				return p.errorf("trailing text after the document")
			}
		}
	}
}

// value parses the inside of a <value> element whose start tag was consumed, and its end tag.
func (p *decoder) value(depth int) (Value, error) {
	if depth > MaxDepth {
		return Value{}, p.errorf("values nest deeper than %d", MaxDepth)
	}
	var untyped []byte
	for {
		t, err := p.raw()
		if err != nil {
			if err == io.EOF {
				return Value{}, p.errorf("unexpected end of document inside <value>")
			}
			return Value{}, err
		}
		switch t := t.(type) {
		case xml.CharData:
			untyped = append(untyped, t...)
		case xml.EndElement:
			if t.Name.Local != "value" {
				return Value{}, p.errorf("want </value>, got </%s>", t.Name.Local)
			}
			return String(string(untyped)), nil // untyped text is a string, whitespace kept
		case xml.StartElement:
			if len(bytes.TrimSpace(untyped)) != 0 {
				return Value{}, p.errorf("text %q before <%s> in <value>", clip(untyped), t.Name.Local)
			}
			v, err := p.typed(t.Name.Local, depth)
			if err != nil {
				return Value{}, err
			}
			return v, p.end("value")
		}
	}
}

// typed parses the element name (start tag consumed) inside a <value>, through its end tag.
func (p *decoder) typed(name string, depth int) (Value, error) {
	switch name {
	case "array":
		return p.array(depth)
	case "struct":
		return p.structure(depth)
	case "nil":
		return Value{}, p.end("nil")
	}
	s, err := p.text(name)
	if err != nil {
		return Value{}, err
	}
	switch name {
	case "string":
		return String(s), nil
	case "int", "i4", "i8":
		i, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return Value{}, p.errorf("bad <%s> %q", name, clip([]byte(s)))
		}
		return Int(i), nil
	case "boolean":
		switch strings.TrimSpace(s) {
		case "1", "true":
			return Bool(true), nil
		case "0", "false":
			return Bool(false), nil
		}
		return Value{}, p.errorf("bad <boolean> %q: want 0 or 1", clip([]byte(s)))
	case "double":
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return Value{}, p.errorf("bad <double> %q", clip([]byte(s)))
		}
		return Double(f), nil
	case "base64":
		b, err := decodeBase64(s)
		if err != nil {
			return Value{}, p.errorf("bad <base64>: %v", err)
		}
		return Value{kind: KindBase64, s: string(b)}, nil
	case "dateTime.iso8601":
		s = strings.TrimSpace(s)
		for _, layout := range dateTimeLayouts {
			if t, err := time.Parse(layout, s); err == nil {
				return Time(t), nil
			}
		}
		return Value{}, p.errorf("bad <dateTime.iso8601> %q", clip([]byte(s)))
	}
	return Value{}, p.errorf("unknown type <%s>", name)
}

// decodeBase64 decodes standard base64, ignoring the line breaks and spaces encoders insert.
func decodeBase64(s string) ([]byte, error) {
	clean := strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '\n', '\r':
			return -1
		}
		return r
	}, s)
	if len(clean)%4 != 0 {
		return base64.RawStdEncoding.DecodeString(strings.TrimRight(clean, "="))
	}
	return base64.StdEncoding.DecodeString(clean)
}

func (p *decoder) array(depth int) (Value, error) {
	t, err := p.next()
	if err != nil {
		return Value{}, err
	}
	if e, ok := t.(xml.EndElement); ok && e.Name.Local == "array" {
		return Array(), nil // <array/> without <data>: lenient, as Python is
	}
	if s, ok := t.(xml.StartElement); !ok || s.Name.Local != "data" {
		return Value{}, p.errorf("want <data> in <array>, got %s", describe(t))
	}
	vs := []Value{}
	for {
		t, err := p.next()
		if err != nil {
			return Value{}, err
		}
		if e, ok := t.(xml.EndElement); ok && e.Name.Local == "data" {
			break
		}
		if s, ok := t.(xml.StartElement); !ok || s.Name.Local != "value" {
			return Value{}, p.errorf("want <value> in <data>, got %s", describe(t))
		}
		v, err := p.value(depth + 1)
		if err != nil {
			return Value{}, err
		}
		vs = append(vs, v)
	}
	return Array(vs...), p.end("array")
}

func (p *decoder) structure(depth int) (Value, error) {
	ms := []Member{}
	for {
		t, err := p.next()
		if err != nil {
			return Value{}, err
		}
		if e, ok := t.(xml.EndElement); ok && e.Name.Local == "struct" {
			return Struct(ms...), nil
		}
		if s, ok := t.(xml.StartElement); !ok || s.Name.Local != "member" {
			return Value{}, p.errorf("want <member> in <struct>, got %s", describe(t))
		}
		m, err := p.member(depth)
		if err != nil {
			return Value{}, err
		}
		ms = append(ms, m)
	}
}

// member parses <name> and <value>, in either order, through </member>.
func (p *decoder) member(depth int) (Member, error) {
	var m Member
	haveName, haveValue := false, false
	for {
		t, err := p.next()
		if err != nil {
			return m, err
		}
		switch t := t.(type) {
		case xml.EndElement:
			if t.Name.Local != "member" {
				return m, p.errorf("want </member>, got </%s>", t.Name.Local)
			}
			if !haveName || !haveValue {
				return m, p.errorf("struct member without <name> or <value>")
			}
			return m, nil
		case xml.StartElement:
			switch {
			case t.Name.Local == "name" && !haveName:
				if m.Name, err = p.text("name"); err != nil {
					return m, err
				}
				haveName = true
			case t.Name.Local == "value" && !haveValue:
				if m.Value, err = p.value(depth + 1); err != nil {
					return m, err
				}
				haveValue = true
			default:
				return m, p.errorf("unexpected <%s> in <member>", t.Name.Local)
			}
		}
	}
}

// DecodeCall decodes a <methodCall> document.
func DecodeCall(data []byte) (Call, error) {
	p := newDecoder(data)
	var c Call
	if err := p.start("methodCall"); err != nil {
		return c, err
	}
	if err := p.start("methodName"); err != nil {
		return c, err
	}
	name, err := p.text("methodName")
	if err != nil {
		return c, err
	}
	c.Method = strings.TrimSpace(name)
	if c.Method == "" {
		return c, p.errorf("empty <methodName>")
	}
	t, err := p.next()
	if err != nil {
		return c, err
	}
	if s, ok := t.(xml.StartElement); ok && s.Name.Local == "params" {
		if c.Params, err = p.params(); err != nil {
			return c, err
		}
		t, err = p.next()
		if err != nil {
			return c, err
		}
	}
	if e, ok := t.(xml.EndElement); !ok || e.Name.Local != "methodCall" {
		return c, p.errorf("want </methodCall>, got %s", describe(t))
	}
	return c, p.eof()
}

// params parses <param><value>...</value></param>* through </params>.
func (p *decoder) params() ([]Value, error) {
	vs := []Value{}
	for {
		t, err := p.next()
		if err != nil {
			return nil, err
		}
		if e, ok := t.(xml.EndElement); ok && e.Name.Local == "params" {
			return vs, nil
		}
		if s, ok := t.(xml.StartElement); !ok || s.Name.Local != "param" {
			return nil, p.errorf("want <param> in <params>, got %s", describe(t))
		}
		if err := p.start("value"); err != nil {
			return nil, err
		}
		v, err := p.value(0)
		if err != nil {
			return nil, err
		}
		if err := p.end("param"); err != nil {
			return nil, err
		}
		vs = append(vs, v)
	}
}

// DecodeResponse decodes a <methodResponse> document. A fault response gives a *Fault error.
// A response with empty <params> gives the nil Value.
func DecodeResponse(data []byte) (Value, error) {
	p := newDecoder(data)
	if err := p.start("methodResponse"); err != nil {
		return Value{}, err
	}
	t, err := p.next()
	if err != nil {
		return Value{}, err
	}
	s, ok := t.(xml.StartElement)
	if !ok || (s.Name.Local != "params" && s.Name.Local != "fault") {
		return Value{}, p.errorf("want <params> or <fault>, got %s", describe(t))
	}
	if s.Name.Local == "fault" {
		if err := p.start("value"); err != nil {
			return Value{}, err
		}
		v, err := p.value(0)
		if err != nil {
			return Value{}, err
		}
		if err := p.end("fault"); err != nil {
			return Value{}, err
		}
		if err := p.end("methodResponse"); err != nil {
			return Value{}, err
		}
		if err := p.eof(); err != nil {
			return Value{}, err
		}
		return Value{}, faultFrom(v, p)
	}
	vs, err := p.params()
	if err != nil {
		return Value{}, err
	}
	if len(vs) > 1 {
		return Value{}, p.errorf("response has %d params, want 1", len(vs))
	}
	if err := p.end("methodResponse"); err != nil {
		return Value{}, err
	}
	if err := p.eof(); err != nil {
		return Value{}, err
	}
	if len(vs) == 0 {
		return Value{}, nil
	}
	return vs[0], nil
}

// faultFrom reads the {faultCode, faultString} struct of a fault response.
func faultFrom(v Value, p *decoder) error {
	code, ok1 := v.Field("faultCode")
	msg, ok2 := v.Field("faultString")
	c, ok3 := code.AsInt()
	s, ok4 := msg.AsString()
	if v.Kind() != KindStruct || !ok1 || !ok2 || !ok3 || !ok4 {
		return p.errorf("fault is not a {faultCode int, faultString string} struct: %v", v)
	}
	return &Fault{Code: int(c), Message: s}
}
