package xmlrpc

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
)

// DefaultMaxBodyBytes bounds a request or response body when no other limit is given: large
// enough for a robot_description URDF of a few megabytes uploaded by roslaunch, small enough
// that a runaway client cannot exhaust memory.
const DefaultMaxBodyBytes = 64 << 20

// Method handles one XML-RPC method. params alias the decoded request and may be kept (Values
// are immutable). A returned *Fault is sent as is; any other error is sent as a FaultInternal
// fault carrying its text.
type Method func(ctx context.Context, params []Value) (Value, error)

// Mux dispatches XML-RPC calls to Methods by name and serves them over HTTP. It answers
// system.multicall (each call's result wrapped in a one-element array, or its fault struct, as
// Python's SimpleXMLRPCServer does) and system.listMethods itself.
//
// Register every method with Handle before serving; a Mux is then safe for concurrent use.
type Mux struct {
	// MaxBodyBytes bounds a request body after decompression; 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64

	methods map[string]Method
	bufs    sync.Pool // *[]byte request/response buffers
}

// NewMux returns an empty Mux.
func NewMux() *Mux { return &Mux{methods: map[string]Method{}} }

// Handle registers m under name. It panics if name is empty, taken, or one of the system.
// methods the Mux answers itself: those are programmer errors.
func (x *Mux) Handle(name string, m Method) {
	if name == "" || m == nil {
		panic("xmlrpc: Handle with empty name or nil method")
	}
	if name == "system.multicall" || name == "system.listMethods" {
		panic("xmlrpc: " + name + " is served by the Mux itself")
	}
	if _, dup := x.methods[name]; dup {
		panic("xmlrpc: method " + name + " registered twice")
	}
	x.methods[name] = m
}

// Methods returns the registered method names and the system ones, sorted.
func (x *Mux) Methods() []string {
	names := []string{"system.listMethods", "system.multicall"}
	for n := range x.methods {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Dispatch runs one call, answering the system methods itself.
func (x *Mux) Dispatch(ctx context.Context, c Call) (Value, error) {
	switch c.Method {
	case "system.multicall":
		return x.multicall(ctx, c.Params)
	case "system.listMethods":
		return Strings(x.Methods()), nil
	}
	m, ok := x.methods[c.Method]
	if !ok {
		return Value{}, &Fault{Code: FaultMethodNotFound, Message: fmt.Sprintf("method %q is not supported", c.Method)}
	}
	return m(ctx, c.Params)
}

// multicall runs system.multicall: params is one array of {methodName, params} structs. A call
// that fails does not stop the others. Nested multicalls are refused, which bounds the work one
// request can ask for by its size.
func (x *Mux) multicall(ctx context.Context, params []Value) (Value, error) {
	if len(params) != 1 || params[0].Kind() != KindArray {
		return Value{}, &Fault{Code: FaultInvalidParams, Message: "system.multicall takes one array of {methodName, params} structs"}
	}
	calls, _ := params[0].AsArray()
	out := make([]Value, len(calls))
	for i, c := range calls {
		name, ok1 := c.Field("methodName")
		args, ok2 := c.Field("params")
		method, ok3 := name.AsString()
		list, ok4 := args.AsArray()
		var v Value
		var err error
		switch {
		case c.Kind() != KindStruct || !ok1 || !ok3:
			err = &Fault{Code: FaultInvalidParams, Message: fmt.Sprintf("system.multicall: call %d has no string methodName", i)}
		case !ok2 || !ok4:
			err = &Fault{Code: FaultInvalidParams, Message: fmt.Sprintf("system.multicall: call %d (%s) has no params array", i, method)}
		case method == "system.multicall":
			err = &Fault{Code: FaultInvalidRequest, Message: "system.multicall: nested multicall refused"}
		default:
			v, err = x.Dispatch(ctx, Call{Method: method, Params: list})
		}
		if err != nil {
			out[i] = asFault(err).value()
		} else {
			out[i] = Array(v)
		}
	}
	return Array(out...), nil
}

// asFault turns a method's error into the fault sent for it.
func asFault(err error) *Fault {
	var f *Fault
	if errors.As(err, &f) {
		return f
	}
	return &Fault{Code: FaultInternal, Message: err.Error()}
}

// ServeHTTP decodes a POSTed method call, dispatches it and writes the response. Protocol
// errors (a malformed body, one over MaxBodyBytes) are answered with faults, with HTTP status
// 200 as XML-RPC requires; only a method other than POST gets an HTTP error.
func (x *Mux) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "XML-RPC takes POST", http.StatusMethodNotAllowed)
		return
	}
	bp, _ := x.bufs.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	defer func() {
		if cap(*bp) <= 1<<20 { // keep small buffers only, so one big upload does not pin memory
			x.bufs.Put(bp)
		}
	}()
	limit := x.MaxBodyBytes
	if limit <= 0 {
		limit = DefaultMaxBodyBytes
	}
	body, err := readBody((*bp)[:0], r.Body, r.Header.Get("Content-Encoding"), limit)
	*bp = body[:0]
	var out []byte
	if err != nil {
		code := FaultInvalidRequest
		if !errors.Is(err, ErrTooLarge) {
			code = FaultParse
		}
		out = AppendFault(body[len(body):], &Fault{Code: code, Message: err.Error()})
	} else if call, err := DecodeCall(body); err != nil {
		out = AppendFault(body[len(body):], &Fault{Code: FaultParse, Message: err.Error()})
	} else if v, err := x.Dispatch(r.Context(), call); err != nil {
		out = AppendFault(body[len(body):], asFault(err))
	} else {
		out = AppendResponse(body[len(body):], v)
	}
	if cap(out) > cap(*bp) {
		*bp = out[:0]
	}
	h := w.Header()
	h.Set("Content-Type", "text/xml")
	h.Set("Content-Length", strconv.Itoa(len(out)))
	w.Write(out) //nolint:errcheck // the peer hung up; nothing to do
}

// readBody appends the body to dst, gunzipping it if encoding says so, and fails with
// ErrTooLarge past limit bytes.
func readBody(dst []byte, r io.Reader, encoding string, limit int64) ([]byte, error) {
	switch encoding {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(r)
		if err != nil {
			return dst, fmt.Errorf("xmlrpc: gzip body: %v", err)
		}
		defer zr.Close()
		r = zr
	default:
		return dst, fmt.Errorf("xmlrpc: unsupported Content-Encoding %q", encoding)
	}
	lr := io.LimitedReader{R: r, N: limit + 1}
	for {
		if len(dst) == cap(dst) {
			dst = append(dst, 0)[:len(dst)]
		}
		n, err := lr.Read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+n]
		if int64(len(dst)) > limit {
			return dst, fmt.Errorf("xmlrpc: body exceeds %d bytes: %w", limit, ErrTooLarge)
		}
		if err == io.EOF {
			return dst, nil
		}
		if err != nil {
			return dst, fmt.Errorf("xmlrpc: reading body: %v", err)
		}
	}
}
