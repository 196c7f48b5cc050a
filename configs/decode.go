package configs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// MaxSize is the largest config file Decode accepts (bytes); flowact's are a few kB.
const MaxSize = 4 << 20

// ErrEmpty is returned (wrapped) for a file that holds no YAML document: empty, blank or only
// comments. A caller that accepts an all-defaults file checks errors.Is(err, ErrEmpty).
var ErrEmpty = errors.New("empty file")

// Error is one problem in a config file. Line is 1-based, 0 when unknown; Key is the dotted path
// of the offending key ("limits.joints.elbow.velocity", "motors.wrist[2]"), "" when unknown.
type Error struct {
	File   string
	Line   int
	Key    string
	Reason string
	Err    error // the underlying error, if any
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("configs: ")
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":" + strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(e.Key + ": ")
	}
	b.WriteString(e.Reason)
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// validator is what Decode calls after a successful decode.
type validator interface{ Validate() error }

// Decode decodes the YAML document data, read from the file name (used in messages only), into
// v, a non-nil pointer, strictly: unknown keys, repeated keys, mistyped values, several documents
// and empty files are errors (*Error values, joined when there are several). Then, if v has a
// Validate() error method, Decode returns its error wrapped with the file name. On error v may
// be partly filled.
func Decode(name string, data []byte, v any) (err error) {
	defer func() {
		// yaml.v3 has panicked on malformed input in the past; data must never crash the caller.
		if r := recover(); r != nil {
			err = &Error{File: name, Reason: fmt.Sprintf("malformed YAML (decoder panic: %v)", r)}
		}
	}()
	if len(data) > MaxSize {
		return &Error{File: name, Reason: fmt.Sprintf("larger than %d bytes", MaxSize)}
	}
	// First pass: the node tree, for syntax errors and to map lines to keys.
	var root yaml.Node
	nd := yaml.NewDecoder(bytes.NewReader(data))
	if err := nd.Decode(&root); err != nil {
		if err == io.EOF {
			return &Error{File: name, Reason: ErrEmpty.Error(), Err: ErrEmpty}
		}
		return syntaxError(name, err)
	}
	if isEmptyDoc(&root) {
		return &Error{File: name, Reason: ErrEmpty.Error(), Err: ErrEmpty}
	}
	var extra yaml.Node
	if err := nd.Decode(&extra); err != io.EOF {
		if err != nil {
			return syntaxError(name, err)
		}
		return &Error{File: name, Line: extra.Line, Reason: "a second YAML document (want one per file)"}
	}

	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return syntaxError(name, err)
		}
		keys := indexKeys(&root)
		errs := make([]error, 0, len(te.Errors))
		for _, msg := range te.Errors {
			errs = append(errs, typeError(name, msg, keys, reflect.TypeOf(v)))
		}
		return errors.Join(errs...)
	}
	if val, ok := v.(validator); ok {
		if err := val.Validate(); err != nil {
			return &Error{File: name, Reason: err.Error(), Err: err}
		}
	}
	return nil
}

func isEmptyDoc(n *yaml.Node) bool {
	if n.Kind == 0 {
		return true
	}
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		c := n.Content[0]
		return c.Kind == yaml.ScalarNode && c.Tag == "!!null" && c.Value == ""
	}
	return false
}

var (
	lineRe = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)
	// yaml.v3's messages for an unknown key ("field x not found in type pkg.T") and a repeated
	// one ("mapping key "x" already defined at line 3").
	unknownRe = regexp.MustCompile(`^field (.*) not found in type (.*)$`)
	repeatRe  = regexp.MustCompile(`^mapping key (".*") already defined at line (\d+)$`)
	// yaml.v3's message for a mistyped value: "cannot unmarshal !!str `fast` into float64", with
	// the value only for scalars.
	intoRe = regexp.MustCompile("^cannot unmarshal !!(\\w+)(?: (`.*`))? into (\\S+)$")
	// yamlTags names YAML's core tags for messages.
	yamlTags = map[string]string{"str": "a string", "int": "an integer", "float": "a number", "bool": "a boolean",
		"seq": "a list", "map": "a mapping", "null": "null", "timestamp": "a timestamp", "binary": "binary data"}
)

func syntaxError(name string, err error) error {
	msg := err.Error()
	if m := lineRe.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &Error{File: name, Line: line, Reason: m[2], Err: err}
	}
	return &Error{File: name, Reason: strings.TrimPrefix(msg, "yaml: "), Err: err}
}

// typeError turns one of yaml.v3's type errors into an *Error that names the file, line and key,
// in the file's terms rather than Go's: an unknown key lists the keys allowed beside it, and a
// mistyped value says what kind of value the key takes. root is the type decoded into.
func typeError(name, msg string, keys keyIndex, root reflect.Type) error {
	e := &Error{File: name, Reason: msg}
	m := lineRe.FindStringSubmatch(msg)
	if m == nil {
		return e
	}
	e.Line, _ = strconv.Atoi(m[1])
	e.Reason = m[2]
	e.Key = keys.deepest[e.Line]
	switch {
	case unknownRe.MatchString(e.Reason):
		s := unknownRe.FindStringSubmatch(e.Reason)
		if p, ok := keys.named[lineKey{e.Line, s[1]}]; ok {
			// In a flow mapping several keys share a line: name the one that is unknown.
			e.Key = p
		}
		e.Reason = fmt.Sprintf("unknown key %q", s[1])
		parent, _ := splitLast(e.Key)
		if known := keysOf(typeAt(root, parent)); len(known) > 0 {
			e.Reason += fmt.Sprintf(" (want one of: %s)", strings.Join(known, ", "))
		}
	case intoRe.MatchString(e.Reason):
		s := intoRe.FindStringSubmatch(e.Reason)
		if p, ok := keys.valued[lineKey{e.Line, strings.Trim(s[2], "`")}]; ok && s[2] != "" {
			// In a flow mapping several keys share a line: name the one holding the value.
			e.Key = p
		}
		want := kindOf(typeAt(root, e.Key))
		if parent, _ := splitLast(e.Key); want == "" && typeAt(root, e.Key) == nil && e.Key != "" {
			// A block mapping or list given to a scalar key: the line is its first child's.
			if want = kindOf(typeAt(root, parent)); want != "" {
				e.Key = parent
			}
		}
		if want != "" {
			got, ok := yamlTags[s[1]]
			if !ok {
				got = "!!" + s[1]
			}
			if s[2] != "" {
				e.Reason = fmt.Sprintf("%s is %s, want %s", s[2], got, want)
			} else {
				e.Reason = fmt.Sprintf("got %s, want %s", got, want)
			}
		}
	case repeatRe.MatchString(e.Reason):
		s := repeatRe.FindStringSubmatch(e.Reason)
		e.Reason = fmt.Sprintf("key %s repeated (first at line %s)", s[1], s[2])
	}
	return e
}

// keyIndex locates keys of a document by line: deepest maps each line to the dotted path of the
// deepest key (or sequence item) on it, the first among keys of the same depth (flow style);
// named maps a line and a key's name to that key's path.
type keyIndex struct {
	deepest map[int]string
	named   map[lineKey]string
	valued  map[lineKey]string // a line and a scalar value to the key holding it
}

type lineKey struct {
	line int
	name string
}

func indexKeys(root *yaml.Node) keyIndex {
	named := make(map[lineKey]string)
	valued := make(map[lineKey]string)
	type entry struct {
		path  string
		depth int
	}
	found := make(map[int]entry)
	mark := func(line int, path string, depth int) {
		if e, ok := found[line]; !ok || depth > e.depth {
			found[line] = entry{path, depth}
		}
	}
	var walk func(n *yaml.Node, path string, depth int)
	walk = func(n *yaml.Node, path string, depth int) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path, depth)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, val := n.Content[i], n.Content[i+1]
				p := k.Value
				if path != "" {
					p = path + "." + k.Value
				}
				mark(k.Line, p, depth+1)
				if _, ok := named[lineKey{k.Line, k.Value}]; !ok {
					named[lineKey{k.Line, k.Value}] = p
				}
				if val.Kind == yaml.ScalarNode {
					if _, ok := valued[lineKey{val.Line, val.Value}]; !ok {
						valued[lineKey{val.Line, val.Value}] = p
					}
				}
				walk(val, p, depth+1)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				p := fmt.Sprintf("%s[%d]", path, i)
				if n.Style&yaml.FlowStyle == 0 {
					// Items of a flow sequence share the key's line: an error there is the key's.
					mark(c.Line, p, depth+1)
				}
				walk(c, p, depth+1)
			}
		}
	}
	walk(root, "", 0)
	deepest := make(map[int]string, len(found))
	for line, e := range found {
		deepest[line] = e.path
	}
	return keyIndex{deepest: deepest, named: named, valued: valued}
}

// splitLast splits a dotted key path into its parent and its last key: "a.b[2].c" gives
// "a.b[2]" and "c"; "c" gives "" and "c".
func splitLast(p string) (parent, last string) {
	if i := strings.LastIndexByte(p, '.'); i >= 0 {
		return p[:i], p[i+1:]
	}
	return "", p
}

// typeAt returns the Go type that holds the value at the dotted key path p ("" is the
// document, "joints.elbow", "steps[1].velocity") when a document is decoded into a value of type
// t, or nil when the path does not resolve (a map key holding a dot, a custom unmarshaler).
func typeAt(t reflect.Type, p string) reflect.Type {
	if t == nil {
		return nil
	}
	parts := strings.FieldsFunc(strings.ReplaceAll(p, "[", ".["), func(r rune) bool { return r == '.' })
	for _, part := range parts {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		switch {
		case strings.HasPrefix(part, "["):
			if t.Kind() != reflect.Slice && t.Kind() != reflect.Array {
				return nil
			}
			t = t.Elem()
		case t.Kind() == reflect.Map:
			t = t.Elem()
		case t.Kind() == reflect.Struct:
			if t = fieldType(t, part); t == nil {
				return nil
			}
		default:
			return nil
		}
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// yamlFields calls f with the YAML key and type of each field of struct t, as yaml.v3 names
// them: the tag's name, else the lowercased field name; inline structs contribute their fields.
func yamlFields(t reflect.Type, f func(key string, ft reflect.Type) bool) bool {
	for i := range t.NumField() {
		sf := t.Field(i)
		tag := sf.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if !sf.IsExported() || name == "-" {
			continue
		}
		if strings.Contains(","+opts+",", ",inline,") {
			ft := sf.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct && !yamlFields(ft, f) {
				return false
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(sf.Name)
		}
		if !f(name, sf.Type) {
			return false
		}
	}
	return true
}

func fieldType(t reflect.Type, key string) (found reflect.Type) {
	yamlFields(t, func(k string, ft reflect.Type) bool {
		if k == key {
			found = ft
			return false
		}
		return true
	})
	return found
}

// keysOf lists the YAML keys a struct type takes, in declaration order; nil for other types.
func keysOf(t reflect.Type) []string {
	if t == nil || t.Kind() != reflect.Struct {
		return nil
	}
	var keys []string
	yamlFields(t, func(k string, _ reflect.Type) bool { keys = append(keys, k); return true })
	return keys
}

// kindOf names the kind of YAML value a Go type takes ("a number", "a list"), or "" when that
// is not clear from the type (an interface, a type with its own unmarshaler).
func kindOf(t reflect.Type) string {
	if t == nil || t.Implements(unmarshalerType) || reflect.PointerTo(t).Implements(unmarshalerType) {
		return ""
	}
	if t == reflect.TypeFor[time.Duration]() {
		return "a duration (like 1.5s or 300ms)"
	}
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "a mapping of keys to values"
	}
	return ""
}

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

// Keys lists the top-level keys a document decoded into v (a struct or a pointer to one) may
// have, in declaration order, as yaml.v3 names them; nil when v is not a struct.
func Keys(v any) []string {
	t := reflect.TypeOf(v)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return keysOf(t)
}

// TopKeys returns the keys of the YAML document data's top-level mapping, in file order, and
// the line of each; name is the file's, for messages. An empty document is an error wrapping
// ErrEmpty; a document that is not a mapping is an error.
func TopKeys(name string, data []byte) (keys []string, lines []int, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &Error{File: name, Reason: fmt.Sprintf("malformed YAML (decoder panic: %v)", r)}
		}
	}()
	if len(data) > MaxSize {
		return nil, nil, &Error{File: name, Reason: fmt.Sprintf("larger than %d bytes", MaxSize)}
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, nil, syntaxError(name, err)
	}
	if isEmptyDoc(&root) {
		return nil, nil, &Error{File: name, Reason: ErrEmpty.Error(), Err: ErrEmpty}
	}
	doc := &root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		doc = doc.Content[0]
	}
	if doc.Kind != yaml.MappingNode {
		return nil, nil, &Error{File: name, Line: doc.Line, Reason: "not a mapping of keys to values"}
	}
	for i := 0; i+1 < len(doc.Content); i += 2 {
		keys = append(keys, doc.Content[i].Value)
		lines = append(lines, doc.Content[i].Line)
	}
	return keys, lines, nil
}
