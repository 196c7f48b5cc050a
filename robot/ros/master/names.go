package master

import "strings"

// ROS graph resource names (http://wiki.ros.org/Names), resolved the way rosgraph.names does for
// the master: relative names against the caller's namespace, private (~) names against the
// caller's own name. No remapping: the master never remaps.

// canonical removes empty segments and any trailing slash: "//a//b/" is "/a/b". "/" stays "/",
// relative names stay relative.
func canonical(name string) string {
	if name == "" || name == "/" {
		return name
	}
	var sb strings.Builder
	sb.Grow(len(name))
	if name[0] == '/' {
		sb.WriteByte('/')
	}
	first := true
	for seg := range strings.SplitSeq(name, "/") {
		if seg == "" {
			continue
		}
		if !first {
			sb.WriteByte('/')
		}
		sb.WriteString(seg)
		first = false
	}
	if sb.Len() == 0 {
		return "/"
	}
	return sb.String()
}

// namespace returns the namespace of name with a trailing slash: "/a/b" is in "/a/", "/a" and
// "" are in "/".
func namespace(name string) string {
	name = strings.TrimSuffix(name, "/")
	i := strings.LastIndexByte(name, '/')
	if i < 0 {
		return "/"
	}
	return name[:i+1]
}

// resolve resolves name for the node callerID: "" is callerID's namespace; global names are
// canonicalized; "~x" is callerID/x; "x" is namespace(callerID)/x.
func resolve(name, callerID string) string {
	if name == "" {
		return namespace(callerID)
	}
	name = canonical(name)
	switch {
	case name[0] == '/':
		return name
	case name[0] == '~':
		return canonical(callerID + "/" + name[1:])
	}
	return namespace(callerID) + name
}

// join joins namespace ns and a relative name.
func join(ns, name string) string {
	if strings.HasSuffix(ns, "/") {
		return ns + name
	}
	return ns + "/" + name
}

// segments splits a global name into its non-empty parts: "/a//b/" gives [a b], "/" none.
func segments(key string) []string {
	var out []string
	for seg := range strings.SplitSeq(key, "/") {
		if seg != "" {
			out = append(out, seg)
		}
	}
	return out
}

// nsKey is a parameter subscription key: canonical with a trailing slash, "/" for the root.
func nsKey(key string) string {
	if key == "/" {
		return key
	}
	return canonical(key) + "/"
}
