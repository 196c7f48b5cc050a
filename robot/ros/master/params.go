package master

import (
	"slices"
	"strings"

	"github.com/flowact/flowact/robot/ros/xmlrpc"
)

// paramNode is one node of the parameter tree: a namespace (a dict, dict != nil) or a leaf
// value. Leaves hold any XML-RPC value but a struct; lists stay leaves even when they contain
// structs, as in rosmaster (a list is never descended into).
type paramNode struct {
	dict  *dict
	value xmlrpc.Value
}

// dict keeps its keys in insertion order, as Python's dicts do, so that getParam returns a
// namespace in the order it was written.
type dict struct {
	keys []string
	kids map[string]*paramNode
}

func newDict() *dict { return &dict{kids: map[string]*paramNode{}} }

func (d *dict) set(k string, n *paramNode) {
	if _, ok := d.kids[k]; !ok {
		d.keys = append(d.keys, k)
	}
	d.kids[k] = n
}

func (d *dict) del(k string) {
	delete(d.kids, k)
	d.keys = slices.DeleteFunc(d.keys, func(s string) bool { return s == k })
}

// fromValue builds a tree node from v: structs become namespaces (a repeated member name keeps
// the last value, as a Python dict does), everything else a leaf.
func fromValue(v xmlrpc.Value) *paramNode {
	ms, ok := v.AsStruct()
	if !ok {
		return &paramNode{value: v}
	}
	d := newDict()
	for _, m := range ms {
		d.set(m.Name, fromValue(m.Value))
	}
	return &paramNode{dict: d}
}

// toValue converts n back to an XML-RPC value; namespaces become structs.
func (n *paramNode) toValue() xmlrpc.Value {
	if n.dict == nil {
		return n.value
	}
	ms := make([]xmlrpc.Member, len(n.dict.keys))
	for i, k := range n.dict.keys {
		ms[i] = xmlrpc.Member{Name: k, Value: n.dict.kids[k].toValue()}
	}
	return xmlrpc.Struct(ms...)
}

// errRootNotDict is returned by set for a non-struct value at "/": a caller error.
const errRootNotDict = argError("cannot set root of parameter tree to non-dictionary")

// paramTree is the parameter server's store. Keys are global names; it is not safe for
// concurrent use (the Master locks it).
type paramTree struct {
	root *paramNode
}

func newParamTree() *paramTree { return &paramTree{root: &paramNode{dict: newDict()}} }

// get returns the value at key; a namespace comes back as a struct of its subtree.
func (t *paramTree) get(key string) (xmlrpc.Value, bool) {
	n := t.lookup(key)
	if n == nil {
		return xmlrpc.Value{}, false
	}
	return n.toValue(), true
}

func (t *paramTree) has(key string) bool { return t.lookup(key) != nil }

func (t *paramTree) lookup(key string) *paramNode {
	n := t.root
	for _, seg := range segments(key) {
		if n.dict == nil {
			return nil
		}
		if n = n.dict.kids[seg]; n == nil {
			return nil
		}
	}
	return n
}

// set stores v at key, replacing whatever was there (a struct replaces the whole namespace).
// Missing namespaces on the way are created and leaves on the way replaced by namespaces.
func (t *paramTree) set(key string, v xmlrpc.Value) error {
	segs := segments(key)
	if len(segs) == 0 {
		if v.Kind() != xmlrpc.KindStruct {
			return errRootNotDict
		}
		t.root = fromValue(v)
		return nil
	}
	n := t.root
	for _, seg := range segs[:len(segs)-1] {
		next := n.dict.kids[seg]
		if next == nil || next.dict == nil {
			next = &paramNode{dict: newDict()}
			n.dict.set(seg, next)
		}
		n = next
	}
	n.dict.set(segs[len(segs)-1], fromValue(v))
	return nil
}

// del removes key and its subtree; it reports false if key was not set. The root cannot be
// deleted.
func (t *paramTree) del(key string) bool {
	segs := segments(key)
	if len(segs) == 0 {
		return false
	}
	n := t.root
	for _, seg := range segs[:len(segs)-1] {
		if n = n.dict.kids[seg]; n == nil || n.dict == nil {
			return false
		}
	}
	last := segs[len(segs)-1]
	if _, ok := n.dict.kids[last]; !ok {
		return false
	}
	n.dict.del(last)
	return true
}

// names lists the full names of every leaf, depth first in insertion order. Empty namespaces
// have no leaves and are not listed, as in rosmaster.
func (t *paramTree) names() []string {
	var out []string
	var walk func(prefix string, d *dict)
	walk = func(prefix string, d *dict) {
		for _, k := range d.keys {
			n := d.kids[k]
			name := join(prefix, k)
			if n.dict != nil {
				walk(name, n.dict)
			} else {
				out = append(out, name)
			}
		}
	}
	walk("/", t.root.dict)
	return out
}

// search implements searchParam for a caller named ns (a global node name): the search starts in
// the caller's own private namespace and moves up to the root; the first namespace holding the
// key's first segment wins, and the key is returned joined to that namespace whether or not the
// rest of it exists. A global key is returned if set. It reports false if nothing matches.
func (t *paramTree) search(ns, key string) (string, bool) {
	if key[0] == '/' {
		if t.has(key) {
			return key, true
		}
		return "", false
	}
	first := segments(key)
	if len(first) == 0 {
		return "", false
	}
	head := first[0]
	if t.has(join(ns, head)) {
		return join(ns, key), true
	}
	parts := segments(ns)
	for i := len(parts) - 1; i >= 0; i-- {
		prefix := "/" + strings.Join(parts[:i], "/")
		if t.has(join(prefix, head)) {
			return join(prefix, key), true
		}
	}
	return "", false
}
