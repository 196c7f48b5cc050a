package xmlrpc

import (
	"bytes"
	"math"
	"os/exec"
	"testing"
	"time"

	"github.com/flowact/flowact/internal/rostest"
)

// TestPythonInterop sends a call encoded here through Python's xmlrpc.client (the codec rospy,
// rosparam and roslaunch use): Python decodes it and encodes its params back as one array in a
// response, which must decode here to the same values; then a fault Python encodes.
func TestPythonInterop(t *testing.T) {
	rostest.Require(t, rostest.Python) // fails under CI, skips elsewhere
	py := rostest.Python
	params := []Value{
		Int(-2147483648), Int(7), Bool(true), Bool(false),
		String("plain"), String("esc <&> \"' \t\n \u00e9\u4e16\U0001F600"), String(""),
		Double(0.1), Double(-1e300), Double(math.Inf(-1)), Double(5e-324),
		Bytes([]byte{0, 1, 2, 255}), Bytes(bytes.Repeat([]byte("x"), 200)),
		Time(time.Date(2026, 11, 29, 8, 1, 2, 0, time.UTC)),
		Array(), Struct(),
		Struct(Member{"a", Array(Int(1), Int(2), Int(3))}, Member{"b", Struct(Member{"c", String("d")}, Member{"e", Double(1.5)})}),
	}
	script := `
import sys, xmlrpc.client
params, method = xmlrpc.client.loads(sys.stdin.buffer.read())
assert method == "echo.all", method
sys.stdout.write(xmlrpc.client.dumps((list(params),), methodresponse=True))
`
	cmd := exec.Command(py, "-c", script)
	cmd.Stdin = bytes.NewReader(AppendCall(nil, "echo.all", params...))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, stderr.String())
	}
	got, err := DecodeResponse(out)
	if err != nil {
		t.Fatalf("decoding Python's response: %v\n%s", err, out)
	}
	if want := Array(params...); !Equal(got, want) {
		t.Fatalf("Python echoed\n %v\nwant\n %v", got, want)
	}

	cmd = exec.Command(py, "-c", `import sys, xmlrpc.client
sys.stdout.write(xmlrpc.client.dumps(xmlrpc.client.Fault(-1, "no <such> thing"), methodresponse=True))`)
	out, err = cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	_, err = DecodeResponse(out)
	if f, ok := err.(*Fault); !ok || f.Code != -1 || f.Message != "no <such> thing" {
		t.Fatalf("Python fault decoded as %v", err)
	}
}
