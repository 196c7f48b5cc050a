// Package xmlrpc is the XML-RPC codec, server dispatcher and client that the embedded ROS master
// speaks. goroslib's own codec cannot decode structs or system.multicall, both of which the ROS
// tools send (roslaunch uploads parameter trees as structs in a multicall; rospy unregisters
// through a multicall), hence this package.
//
// # Values
//
// A Value is a small immutable tagged union (Kind, then AsInt, AsString, ... accessors) covering
// every type of the XML-RPC specification (http://xmlrpc.com/spec.md): int / i4 (and i8 on
// decode), boolean, string (also untyped text directly inside <value>, whitespace kept), double,
// base64, dateTime.iso8601, array and struct, plus the <nil/> extension. ROS itself never sends
// nil. Struct members keep their wire order; lookups by name take the first match. Arrays and
// structs returned by the accessors alias the Value and are read-only, so Values can be shared
// between goroutines without copying.
//
// # Decoding
//
// DecodeCall and DecodeResponse parse whole documents held in memory (bodies are bounded by
// MaxBodyBytes, 64 MiB by default, before they are parsed) with encoding/xml in strict mode:
// entities and character references are honoured, comments and processing instructions skipped,
// UTF-8, ASCII and ISO-8859-1 declarations accepted. Nesting deeper than MaxDepth (100) is
// refused. Every error wraps ErrMalformed or ErrTooLarge and names the element and the byte
// offset; a fault response decodes to a *Fault error.
//
// # Encoding
//
// AppendCall, AppendResponse, AppendFault and AppendValue append to a caller-owned buffer. Ints
// outside int32 are written as <i8> (Python reads it; XmlRpc++ does not). Doubles are written as
// the shortest decimal that reads back to the same float64, with the exponent and inf / nan
// spellings that Python's float() and C's strtod accept. Characters XML 1.0 cannot carry
// (control characters other than tab, newline and carriage return; invalid UTF-8) become U+FFFD.
//
// # Serving and calling
//
// Mux maps method names to Methods and serves HTTP POSTs; it answers system.multicall (results
// as one-element arrays, failures as {faultCode, faultString} structs, as Python's
// SimpleXMLRPCServer does; nested multicalls refused) and system.listMethods. Fault codes for
// protocol errors follow the xmlrpc-epi interoperability convention (-32700 parse error, -32601
// unknown method, ...). gzip-encoded request bodies are accepted.
//
// Client calls a server with a per-call timeout and a response size bound, over its own
// connection pool (Close drops it).
package xmlrpc
