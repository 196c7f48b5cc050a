package xmlrpc_test

import (
	"context"
	"fmt"
	"net/http/httptest"

	"github.com/flowact/flowact/robot/ros/xmlrpc"
)

func ExampleMux() {
	mux := xmlrpc.NewMux()
	mux.Handle("getPid", func(_ context.Context, params []xmlrpc.Value) (xmlrpc.Value, error) {
		caller, ok := params[0].AsString()
		if !ok {
			return xmlrpc.Value{}, &xmlrpc.Fault{Code: xmlrpc.FaultInvalidParams, Message: "caller_id must be a string"}
		}
		return xmlrpc.Array(xmlrpc.Int(1), xmlrpc.String("hello "+caller), xmlrpc.Int(42)), nil
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	cl, err := xmlrpc.NewClient(xmlrpc.ClientConfig{})
	if err != nil {
		panic(err)
	}
	defer cl.Close()
	v, err := cl.Call(context.Background(), srv.URL, "getPid", xmlrpc.String("/node"))
	fmt.Println(v, err)
	// system.multicall comes with every Mux.
	v, err = cl.Call(context.Background(), srv.URL, "system.multicall", xmlrpc.Array(
		xmlrpc.Struct(xmlrpc.Member{Name: "methodName", Value: xmlrpc.String("getPid")},
			xmlrpc.Member{Name: "params", Value: xmlrpc.Array(xmlrpc.String("/a"))}),
		xmlrpc.Struct(xmlrpc.Member{Name: "methodName", Value: xmlrpc.String("getPid")},
			xmlrpc.Member{Name: "params", Value: xmlrpc.Array(xmlrpc.Int(7))}),
	))
	fmt.Println(v, err)
	// Output:
	// [1, "hello /node", 42] <nil>
	// [[[1, "hello /a", 42]], {"faultCode": -32602, "faultString": "caller_id must be a string"}] <nil>
}

func ExampleDecodeCall() {
	c, err := xmlrpc.DecodeCall([]byte(`<?xml version="1.0"?>
<methodCall><methodName>setParam</methodName><params>
<param><value>/roslaunch</value></param>
<param><value><string>/ctl/pid</string></value></param>
<param><value><struct>
  <member><name>p</name><value><double>10.0</double></value></member>
  <member><name>joints</name><value><array><data><value>j1</value><value>j2</value></data></array></value></member>
</struct></value></param>
</params></methodCall>`))
	if err != nil {
		panic(err)
	}
	fmt.Println(c.Method, c.Params)
	p, _ := c.Params[2].Field("p")
	f, ok := p.AsDouble()
	fmt.Println(f, ok)
	// Output:
	// setParam ["/roslaunch" "/ctl/pid" {"p": 10, "joints": ["j1", "j2"]}]
	// 10 true
}
