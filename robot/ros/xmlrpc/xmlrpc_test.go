package xmlrpc

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func call(params string) string {
	return `<?xml version='1.0'?><methodCall><methodName>m</methodName><params>` + params + `</params></methodCall>`
}

func param(v string) string { return "<param><value>" + v + "</value></param>" }

func TestDecodeValues(t *testing.T) {
	tests := []struct {
		name string
		in   string // the inside of <value>
		want Value
	}{
		{"int", "<int>42</int>", Int(42)},
		{"i4 negative", "<i4>-7</i4>", Int(-7)},
		{"i8", "<i8>9000000000</i8>", Int(9000000000)},
		{"int spaces", "<int> 5 </int>", Int(5)},
		{"true", "<boolean>1</boolean>", Bool(true)},
		{"false", "<boolean>0</boolean>", Bool(false)},
		{"string", "<string>a &amp; b &lt;c&gt;</string>", String("a & b <c>")},
		{"empty string", "<string/>", String("")},
		{"untyped", "hello world", String("hello world")},
		{"untyped keeps spaces", "  x  ", String("  x  ")},
		{"untyped empty", "", String("")},
		{"char refs", "<string>&#13;&#x41;\u00e9</string>", String("\rA\u00e9")},
		{"cdata", "<string><![CDATA[<raw>]]></string>", String("<raw>")},
		{"double", "<double>-1.5e3</double>", Double(-1500)},
		{"double inf", "<double>inf</double>", Double(math.Inf(1))},
		{"base64", "<base64>aGVs\nbG8=</base64>", Bytes([]byte("hello"))},
		{"base64 unpadded", "<base64>aGVsbG8</base64>", Bytes([]byte("hello"))},
		{"datetime", "<dateTime.iso8601>19980717T14:08:55</dateTime.iso8601>", Time(time.Date(1998, 7, 17, 14, 8, 55, 0, time.UTC))},
		{"datetime dashed", "<dateTime.iso8601>1998-07-17T14:08:55</dateTime.iso8601>", Time(time.Date(1998, 7, 17, 14, 8, 55, 0, time.UTC))},
		{"nil", "<nil/>", Nil()},
		{"array", "<array><data><value><int>1</int></value><value>two</value></data></array>", Array(Int(1), String("two"))},
		{"empty array", "<array><data/></array>", Array()},
		{"array whitespace", "\n <array>\n <data>\n <value><int>1</int></value>\n </data>\n </array>\n", Array(Int(1))},
		{"struct", "<struct><member><name>a</name><value><int>1</int></value></member><member><value>v</value><name>b</name></member></struct>", Struct(Member{"a", Int(1)}, Member{"b", String("v")})},
		{"empty struct", "<struct/>", Struct()},
		{"nested", "<struct><member><name>l</name><value><array><data><value><struct><member><name>x</name><value><double>0.5</double></value></member></struct></value></data></array></value></member></struct>",
			Struct(Member{"l", Array(Struct(Member{"x", Double(0.5)}))})},
		{"comment", "<!-- c --><int>3</int>", Int(3)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := DecodeCall([]byte(call(param(tc.in))))
			if err != nil {
				t.Fatal(err)
			}
			if len(c.Params) != 1 || !Equal(c.Params[0], tc.want) {
				t.Fatalf("got %v, want %v", c.Params, tc.want)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	deep := strings.Repeat("<array><data><value>", MaxDepth+2) + "x" + strings.Repeat("</value></data></array>", MaxDepth+2)
	tests := []struct {
		name, doc, want string
	}{
		{"empty", "", "end of document"},
		{"not xml", "hello", "unexpected text"},
		{"wrong root", "<methodResponse/>", "want <methodCall>"},
		{"no name", "<methodCall><methodName> </methodName></methodCall>", "empty <methodName>"},
		{"bad int", call(param("<int>x1</int>")), "bad <int>"},
		{"bad bool", call(param("<boolean>yes</boolean>")), "bad <boolean>"},
		{"bad double", call(param("<double>1.2.3</double>")), "bad <double>"},
		{"bad base64", call(param("<base64>!!!!</base64>")), "bad <base64>"},
		{"bad date", call(param("<dateTime.iso8601>yesterday</dateTime.iso8601>")), "bad <dateTime.iso8601>"},
		{"unknown type", call(param("<float>1</float>")), "unknown type <float>"},
		{"text before type", call(param("x<int>1</int>")), "text"},
		{"mismatched end", call("<param><value><int>1</i4></value></param>"), "want </int>"},
		{"unclosed", `<methodCall><methodName>m</methodName><params><param><value><int>1</int>`, "end of document"},
		{"member without value", call(param("<struct><member><name>a</name></member></struct>")), "without <name> or <value>"},
		{"two names", call(param("<struct><member><name>a</name><name>b</name></member></struct>")), "unexpected <name>"},
		{"array without data", call(param("<array><value>1</value></array>")), "want <data>"},
		{"trailing element", call("") + "<x/>", "trailing"},
		{"undefined entity", call(param("<string>&nbsp;</string>")), "nbsp"},
		{"too deep", call(param(deep)), "nest deeper"},
		{"encoding", `<?xml version="1.0" encoding="EBCDIC"?><methodCall/>`, "EBCDIC"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeCall([]byte(tc.doc))
			if err == nil {
				t.Fatal("decoded without error")
			}
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("error %v does not wrap ErrMalformed", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

func TestDecodeLatin1(t *testing.T) {
	doc := append([]byte(`<?xml version="1.0" encoding="ISO-8859-1"?><methodCall><methodName>m</methodName><params><param><value>caf`), 0xe9)
	doc = append(doc, "</value></param></params></methodCall>"...)
	c, err := DecodeCall(doc)
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := c.Params[0].AsString(); s != "caf\u00e9" {
		t.Fatalf("got %q", s)
	}
}

func TestDecodeResponse(t *testing.T) {
	v, err := DecodeResponse([]byte(`<?xml version="1.0"?><methodResponse><params><param><value><array><data><value><i4>1</i4></value><value></value><value><int>0</int></value></data></array></value></param></params></methodResponse>`))
	if err != nil {
		t.Fatal(err)
	}
	if want := Array(Int(1), String(""), Int(0)); !Equal(v, want) {
		t.Fatalf("got %v, want %v", v, want)
	}
	_, err = DecodeResponse([]byte(`<methodResponse><fault><value><struct><member><name>faultCode</name><value><int>4</int></value></member><member><name>faultString</name><value><string>Too many</string></value></member></struct></value></fault></methodResponse>`))
	var f *Fault
	if !errors.As(err, &f) || f.Code != 4 || f.Message != "Too many" {
		t.Fatalf("fault: got %v", err)
	}
	_, err = DecodeResponse([]byte(`<methodResponse><fault><value><int>4</int></value></fault></methodResponse>`))
	if !errors.Is(err, ErrMalformed) {
		t.Fatalf("bad fault: got %v", err)
	}
}

// randValue builds a random Value of at most depth levels from r.
func randValue(r *rand.Rand, depth int) Value {
	k := r.IntN(9)
	if depth == 0 && k >= 7 {
		k = 2
	}
	switch k {
	case 0:
		return Nil()
	case 1:
		return Int(r.Int64() >> r.IntN(64))
	case 2:
		return Bool(r.IntN(2) == 1)
	case 3:
		alphabet := []rune("ab <>&\"'\t\n\r\u00e9\u4e16\U0001F600")
		b := make([]rune, r.IntN(12))
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		return String(string(b))
	case 4:
		return Double(math.Float64frombits(r.Uint64()))
	case 5:
		b := make([]byte, r.IntN(100))
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return Bytes(b)
	case 6:
		return Time(time.Unix(r.Int64N(1<<33), 0))
	case 7:
		vs := make([]Value, r.IntN(4))
		for i := range vs {
			vs[i] = randValue(r, depth-1)
		}
		return Array(vs...)
	default:
		ms := make([]Member, r.IntN(4))
		for i := range ms {
			ms[i] = Member{Name: fmt.Sprintf("k<%d>", i), Value: randValue(r, depth-1)}
		}
		return Struct(ms...)
	}
}

func TestRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 500 {
		params := []Value{randValue(r, 4), randValue(r, 4)}
		doc := AppendCall(nil, "ns.method", params...)
		c, err := DecodeCall(doc)
		if err != nil {
			t.Fatalf("case %d: %v\n%s", i, err, doc)
		}
		if c.Method != "ns.method" || len(c.Params) != 2 || !Equal(c.Params[0], params[0]) || !Equal(c.Params[1], params[1]) {
			t.Fatalf("case %d: got %v, want %v", i, c.Params, params)
		}
		v := randValue(r, 4)
		got, err := DecodeResponse(AppendResponse(nil, v))
		if err != nil || !Equal(got, v) {
			t.Fatalf("case %d response: got %v, %v, want %v", i, got, err, v)
		}
	}
}

func TestEncodeReplacesIllegalCharacters(t *testing.T) {
	doc := AppendResponse(nil, String("a\x00b\xffc"))
	v, err := DecodeResponse(doc)
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := v.AsString(); s != "a\uFFFDb\uFFFDc" {
		t.Fatalf("got %q", s)
	}
}

func TestAccessors(t *testing.T) {
	v := Struct(Member{"a", Int(1)}, Member{"a", Int(2)})
	if f, ok := v.Field("a"); !ok || !Equal(f, Int(1)) {
		t.Errorf("Field takes the first member: got %v", f)
	}
	if _, ok := v.Field("b"); ok {
		t.Error("Field found a missing member")
	}
	if _, ok := Int(1).AsString(); ok {
		t.Error("int reads as a string")
	}
	if b, ok := Bytes([]byte{1, 2}).AsBytes(); !ok || !bytes.Equal(b, []byte{1, 2}) {
		t.Errorf("AsBytes: %v", b)
	}
	if got := Struct(Member{"x", Array(Int(1), String("s"), Bool(true))}).String(); got != `{"x": [1, "s", true]}` {
		t.Errorf("String: %s", got)
	}
	if Equal(Int(1), Double(1)) || !Equal(Double(math.NaN()), Double(math.NaN())) {
		t.Error("Equal")
	}
}

func newTestMux() *Mux {
	m := NewMux()
	m.Handle("add", func(_ context.Context, p []Value) (Value, error) {
		var sum int64
		for _, v := range p {
			i, ok := v.AsInt()
			if !ok {
				return Value{}, &Fault{Code: FaultInvalidParams, Message: "add takes ints"}
			}
			sum += i
		}
		return Int(sum), nil
	})
	m.Handle("fail", func(context.Context, []Value) (Value, error) { return Value{}, errors.New("it broke") })
	m.Handle("sleep", func(ctx context.Context, _ []Value) (Value, error) {
		select {
		case <-ctx.Done():
		case <-time.After(5 * time.Second):
		}
		return Int(0), nil
	})
	return m
}

func TestMuxAndClient(t *testing.T) {
	mux := newTestMux()
	srv := httptest.NewServer(mux)
	defer srv.Close()
	cl, err := NewClient(ClientConfig{Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()

	if v, err := cl.Call(ctx, srv.URL, "add", Int(2), Int(3)); err != nil || !Equal(v, Int(5)) {
		t.Fatalf("add: %v %v", v, err)
	}
	var f *Fault
	if _, err := cl.Call(ctx, srv.URL, "nope"); !errors.As(err, &f) || f.Code != FaultMethodNotFound {
		t.Fatalf("unknown method: %v", err)
	}
	if _, err := cl.Call(ctx, srv.URL, "fail"); !errors.As(err, &f) || f.Code != FaultInternal || f.Message != "it broke" {
		t.Fatalf("fail: %v", err)
	}
	mc := func(name string, params ...Value) Value {
		return Struct(Member{"methodName", String(name)}, Member{"params", Array(params...)})
	}
	v, err := cl.Call(ctx, srv.URL, "system.multicall", Array(
		mc("add", Int(1), Int(1)),
		mc("add", String("x")),
		mc("system.multicall", Array()),
		Int(3),
		mc("add"),
	))
	if err != nil {
		t.Fatal(err)
	}
	want := Array(
		Array(Int(2)),
		(&Fault{FaultInvalidParams, "add takes ints"}).value(),
		(&Fault{FaultInvalidRequest, "system.multicall: nested multicall refused"}).value(),
		(&Fault{FaultInvalidParams, "system.multicall: call 3 has no string methodName"}).value(),
		Array(Int(0)),
	)
	if !Equal(v, want) {
		t.Fatalf("multicall:\n got %v\nwant %v", v, want)
	}
	if v, err := cl.Call(ctx, srv.URL, "system.listMethods"); err != nil || !Equal(v, Strings([]string{"add", "fail", "sleep", "system.listMethods", "system.multicall"})) {
		t.Fatalf("listMethods: %v %v", v, err)
	}

	// The client's timeout ends a call the server sits on.
	short, _ := NewClient(ClientConfig{Timeout: 100 * time.Millisecond})
	defer short.Close()
	start := time.Now()
	if _, err := short.Call(ctx, srv.URL, "sleep"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("sleep: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("timeout took %v", d)
	}
	if _, err := cl.Call(ctx, "http://127.0.0.1:1/", "add"); err == nil || !strings.Contains(err.Error(), "add at http://127.0.0.1:1/") {
		t.Fatalf("refused connection: %v", err)
	}
}

func TestMuxHTTP(t *testing.T) {
	mux := newTestMux()
	mux.MaxBodyBytes = 512
	post := func(body []byte, encoding string) (Value, error) {
		req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		if encoding != "" {
			req.Header.Set("Content-Encoding", encoding)
		}
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		if rec.Code != 200 || rec.Header().Get("Content-Type") != "text/xml" {
			t.Fatalf("status %d, type %q", rec.Code, rec.Header().Get("Content-Type"))
		}
		return DecodeResponse(rec.Body.Bytes())
	}
	var f *Fault
	if _, err := post(AppendCall(nil, "add", Strings(make([]string, 100))), ""); !errors.As(err, &f) || f.Code != FaultInvalidRequest || !strings.Contains(f.Message, "exceeds 512 bytes") {
		t.Fatalf("large body: %v", err)
	}
	if _, err := post([]byte("<methodCall>"), ""); !errors.As(err, &f) || f.Code != FaultParse {
		t.Fatalf("bad body: %v", err)
	}
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	zw.Write(AppendCall(nil, "add", Int(4), Int(5)))
	zw.Close()
	if v, err := post(zb.Bytes(), "gzip"); err != nil || !Equal(v, Int(9)) {
		t.Fatalf("gzip: %v %v", v, err)
	}
	if _, err := post([]byte("x"), "br"); !errors.As(err, &f) || !strings.Contains(f.Message, "Content-Encoding") {
		t.Fatalf("unknown encoding: %v", err)
	}
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Fatalf("GET: %d", rec.Code)
	}
}

func TestHandlePanicsOnProgrammerErrors(t *testing.T) {
	for _, name := range []string{"", "system.multicall", "add"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Handle(%q) did not panic", name)
				}
			}()
			m := newTestMux()
			m.Handle(name, func(context.Context, []Value) (Value, error) { return Value{}, nil })
		}()
	}
}

func BenchmarkDecodeCall(b *testing.B) {
	doc := AppendCall(nil, "registerPublisher", String("/talker"), String("/chatter"), String("std_msgs/String"), String("http://127.0.0.1:40000/"))
	b.ReportAllocs()
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		if _, err := DecodeCall(doc); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendResponse(b *testing.B) {
	v := Array(Int(1), String("Registered [/talker] as publisher of [/chatter]"), Strings([]string{"http://127.0.0.1:40001/", "http://127.0.0.1:40002/"}))
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendResponse(buf[:0], v)
	}
}

func TestAppendResponseAllocatesNothing(t *testing.T) {
	v := Array(Int(1), String("ok"), Strings([]string{"http://a/", "http://b/"}), Double(0.5), Bool(true))
	buf := make([]byte, 0, 1024)
	if n := testing.AllocsPerRun(100, func() { buf = AppendResponse(buf[:0], v) }); n != 0 {
		t.Fatalf("AppendResponse allocates %v times", n)
	}
}
