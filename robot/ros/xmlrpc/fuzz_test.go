package xmlrpc

import (
	"errors"
	"testing"
)

// FuzzDecode feeds arbitrary bytes to both decoders. They must never panic, must fail only with
// ErrMalformed (or a *Fault for a fault response), and whatever they accept must survive an
// encode and decode round trip unchanged.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(call(param("<int>1</int>") + param("text") + param("<struct><member><name>a</name><value><array><data><value><double>1.5</double></value></data></array></value></member></struct>"))))
	f.Add([]byte(`<methodCall><methodName>system.multicall</methodName><params><param><value><array><data><value><struct><member><name>methodName</name><value>getPid</value></member><member><name>params</name><value><array><data><value>/n</value></data></array></value></member></struct></value></data></array></value></param></params></methodCall>`))
	f.Add([]byte(`<?xml version="1.0"?><methodResponse><params><param><value><array><data><value><i4>1</i4></value><value></value><value><base64>aGk=</base64></value></data></array></value></param></params></methodResponse>`))
	f.Add([]byte(`<methodResponse><fault><value><struct><member><name>faultCode</name><value><int>1</int></value></member><member><name>faultString</name><value>x</value></member></struct></value></fault></methodResponse>`))
	f.Add([]byte(call(param("<dateTime.iso8601>20200101T00:00:00</dateTime.iso8601>") + param("<nil/>") + param("<boolean>1</boolean>"))))
	f.Fuzz(func(t *testing.T, data []byte) {
		if c, err := DecodeCall(data); err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("DecodeCall error %v does not wrap ErrMalformed", err)
			}
		} else {
			again, err := DecodeCall(AppendCall(nil, c.Method, c.Params...))
			if err != nil {
				t.Fatalf("re-encoded call does not decode: %v", err)
			}
			if again.Method != c.Method || len(again.Params) != len(c.Params) {
				t.Fatalf("round trip changed the call: %q %v -> %q %v", c.Method, c.Params, again.Method, again.Params)
			}
			for i := range c.Params {
				if !Equal(c.Params[i], again.Params[i]) {
					t.Fatalf("round trip changed param %d: %v -> %v", i, c.Params[i], again.Params[i])
				}
			}
		}
		v, err := DecodeResponse(data)
		var fault *Fault
		switch {
		case errors.As(err, &fault):
			_, err2 := DecodeResponse(AppendFault(nil, fault))
			var f2 *Fault
			if !errors.As(err2, &f2) || *f2 != *fault {
				t.Fatalf("fault round trip: %v -> %v", fault, err2)
			}
		case err != nil:
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("DecodeResponse error %v does not wrap ErrMalformed", err)
			}
		default:
			again, err := DecodeResponse(AppendResponse(nil, v))
			if err != nil || !Equal(again, v) {
				t.Fatalf("response round trip: %v -> %v, %v", v, again, err)
			}
		}
	})
}
