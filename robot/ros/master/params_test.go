package master

import (
	"slices"
	"testing"

	"github.com/flowact/flowact/robot/ros/xmlrpc"
)

func TestResolve(t *testing.T) {
	tests := []struct{ name, caller, want string }{
		{"/a/b", "/n", "/a/b"},
		{"//a//b/", "/n", "/a/b"},
		{"a", "/n", "/a"},
		{"a/b", "/ns/n", "/ns/a/b"},
		{"~p", "/ns/n", "/ns/n/p"},
		{"~/p/", "/ns/n", "/ns/n/p"},
		{"", "/ns/n", "/ns/"},
		{"", "/n", "/"},
		{"/", "/n", "/"},
		{"x", "", "/x"},
	}
	for _, tc := range tests {
		if got := resolve(tc.name, tc.caller); got != tc.want {
			t.Errorf("resolve(%q, %q) = %q, want %q", tc.name, tc.caller, got, tc.want)
		}
	}
	for in, want := range map[string]string{"/a/b": "/a/", "/a": "/", "/a/b/": "/a/", "": "/", "/": "/"} {
		if got := namespace(in); got != want {
			t.Errorf("namespace(%q) = %q, want %q", in, got, want)
		}
	}
}

// tree builds a parameter tree from (key, value) sets applied in order.
func tree(t *testing.T, sets ...any) *paramTree {
	t.Helper()
	p := newParamTree()
	for i := 0; i < len(sets); i += 2 {
		if err := p.set(sets[i].(string), sets[i+1].(xmlrpc.Value)); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

func st(kv ...any) xmlrpc.Value {
	ms := make([]xmlrpc.Member, 0, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		ms = append(ms, xmlrpc.Member{Name: kv[i].(string), Value: kv[i+1].(xmlrpc.Value)})
	}
	return xmlrpc.Struct(ms...)
}

var (
	i1 = xmlrpc.Int(1)
	i2 = xmlrpc.Int(2)
	i3 = xmlrpc.Int(3)
)

func TestParamTreeGetSet(t *testing.T) {
	tests := []struct {
		name string
		sets []any
		key  string
		want xmlrpc.Value
		ok   bool
	}{
		{"scalar", []any{"/a", i1}, "/a", i1, true},
		{"missing", []any{"/a", i1}, "/b", xmlrpc.Value{}, false},
		{"namespace made on the way", []any{"/a/b/c", i1}, "/a", st("b", st("c", i1)), true},
		{"namespace in insertion order", []any{"/n/z", i1, "/n/a", i2, "/n/m", i3}, "/n", st("z", i1, "a", i2, "m", i3), true},
		{"root", []any{"/a", i1}, "/", st("a", i1), true},
		{"dict replaces namespace", []any{"/n/old", i1, "/n", st("x", i2)}, "/n", st("x", i2), true},
		{"leaf replaced by namespace", []any{"/a", i1, "/a/b", i2}, "/a", st("b", i2), true},
		{"under a leaf is missing", []any{"/a", i1}, "/a/b", xmlrpc.Value{}, false},
		{"list stays a leaf", []any{"/l", xmlrpc.Array(st("x", i1))}, "/l", xmlrpc.Array(st("x", i1)), true},
		{"list is not descended", []any{"/l", xmlrpc.Array(st("x", i1))}, "/l/x", xmlrpc.Value{}, false},
		{"trailing slash", []any{"/a/b", i1}, "/a/b/", i1, true},
		{"empty dict", []any{"/e", st()}, "/e", st(), true},
		{"set the root", []any{"/old", i1, "/", st("new", i2)}, "/", st("new", i2), true},
		{"repeated member keeps the last", []any{"/d", st("k", i1, "k", i2)}, "/d/k", i2, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := tree(t, tc.sets...)
			got, ok := p.get(tc.key)
			if ok != tc.ok || ok && !xmlrpc.Equal(got, tc.want) {
				t.Fatalf("get(%q) = %v, %v; want %v, %v", tc.key, got, ok, tc.want, tc.ok)
			}
			if p.has(tc.key) != tc.ok {
				t.Fatalf("has(%q) = %v", tc.key, !tc.ok)
			}
		})
	}
	if err := newParamTree().set("/", i1); err == nil {
		t.Error("setting the root to a scalar succeeded")
	}
}

func TestParamTreeDeleteAndNames(t *testing.T) {
	p := tree(t, "/a/b", i1, "/a/c/d", i2, "/e", i3, "/empty", st())
	if got, want := p.names(), []string{"/a/b", "/a/c/d", "/e"}; !slices.Equal(got, want) {
		t.Fatalf("names = %v, want %v", got, want)
	}
	for _, tc := range []struct {
		key string
		ok  bool
	}{{"/a/c", true}, {"/a/c", false}, {"/e/x", false}, {"/nope/x", false}, {"/", false}, {"/a/b/", true}} {
		if got := p.del(tc.key); got != tc.ok {
			t.Errorf("del(%q) = %v, want %v", tc.key, got, tc.ok)
		}
	}
	if got, _ := p.get("/"); !xmlrpc.Equal(got, st("a", st(), "e", i3, "empty", st())) {
		t.Fatalf("after deletes: %v", got)
	}
}

// TestSearchParam checks the example of rosmaster's searchParam documentation and the upward
// walk.
func TestSearchParam(t *testing.T) {
	p := tree(t,
		"/robot_description/arm", i1, "/robot_description/base", i1,
		"/pr2/robot_description/base", i1,
		"/pr2/foo/private", i2,
		"/top", i3)
	tests := []struct {
		caller, key, want string
		ok                bool
	}{
		{"/pr2/foo", "robot_description", "/pr2/robot_description", true},
		{"/pr2/foo", "robot_description/arm", "/pr2/robot_description/arm", true}, // first-segment match, need not exist
		{"/other/node", "robot_description/arm", "/robot_description/arm", true},
		{"/pr2/foo", "private", "/pr2/foo/private", true}, // the caller's private namespace first
		{"/a/b/c", "top", "/top", true},
		{"/a/b/c", "missing", "", false},
		{"/n", "/top", "/top", true},
		{"/n", "/nope", "", false},
	}
	for _, tc := range tests {
		got, ok := p.search(tc.caller, tc.key)
		if got != tc.want || ok != tc.ok {
			t.Errorf("search(%q, %q) = %q, %v; want %q, %v", tc.caller, tc.key, got, ok, tc.want, tc.ok)
		}
	}
}
