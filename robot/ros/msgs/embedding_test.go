package msgs

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/bluenviron/goroslib/v2/pkg/msgproc"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/std_msgs"
	"github.com/bluenviron/goroslib/v2/pkg/protocommon"
)

// headerMD5 is std_msgs/Header's MD5 as printed by `rosmsg md5 std_msgs/Header` (and rospy's
// std_msgs.msg.Header._md5sum).
const headerMD5 = "2176decaecbce78abc3b96ef049fabed"

// genmsgMD5 computes a message's MD5 the way genmsg's compute_md5_text does for messages without
// constants: strip comments and blank lines, normalize whitespace, replace each embedded message
// type by its own MD5 (here only std_msgs/Header is supported), join the lines with "\n".
func genmsgMD5(t *testing.T, def string) string {
	t.Helper()
	var lines []string
	ws := regexp.MustCompile(`\s+`)
	for _, line := range strings.Split(def, "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(ws.ReplaceAllString(line, " "))
		if line == "" {
			continue
		}
		typ, name, ok := strings.Cut(line, " ")
		if !ok {
			t.Fatalf("malformed field line %q", line)
		}
		if typ == "Header" || typ == "std_msgs/Header" {
			typ = headerMD5
		}
		lines = append(lines, typ+" "+name)
	}
	sum := md5.Sum([]byte(strings.Join(lines, "\n")))
	return hex.EncodeToString(sum[:])
}

func TestEmbeddingMatchesMsgFile(t *testing.T) {
	def, err := os.ReadFile(filepath.Join("..", "..", "..", "msgs", "flowact_msgs", "msg", "Embedding.msg"))
	if err != nil {
		t.Fatal(err)
	}
	if got := genmsgMD5(t, string(def)); got != EmbeddingMD5 {
		t.Errorf("genmsg md5 of Embedding.msg = %s, EmbeddingMD5 = %s", got, EmbeddingMD5)
	}
	got, err := msgproc.MD5(Embedding{})
	if err != nil {
		t.Fatal(err)
	}
	if got != EmbeddingMD5 {
		t.Errorf("goroslib md5 of Embedding = %s, want %s", got, EmbeddingMD5)
	}
	typ, err := msgproc.Type(Embedding{})
	if err != nil || typ != EmbeddingType {
		t.Errorf("type = %q, %v; want %q", typ, err, EmbeddingType)
	}
	if h, _ := msgproc.MD5(std_msgs.Header{}); h != headerMD5 {
		t.Errorf("std_msgs/Header md5 = %s, want %s", h, headerMD5)
	}
}

// TestEmbeddingWire checks the serialized bytes against what rospy produces for
// Embedding(tokens=1, width=1, data=struct.pack('<f', 1.0)) with a zero header (generated with
// genpy.dynamic from the .msg file).
func TestEmbeddingWire(t *testing.T) {
	const rospyHex = "000000000000000000000000000000000100000001000000040000000000803f"
	want, _ := hex.DecodeString(rospyHex)
	var buf bytes.Buffer
	m := Embedding{Tokens: 1, Width: 1, Data: []byte{0, 0, 0x80, 0x3f}}
	if err := protocommon.MessageEncode(&buf, &m); err != nil {
		t.Fatal(err)
	}
	// MessageEncode prefixes the 4-byte message length.
	if got := buf.Bytes()[4:]; !bytes.Equal(got, want) {
		t.Errorf("wire bytes\n got %x\nwant %x", got, want)
	}
	var back Embedding
	if err := protocommon.MessageDecode(&buf, &back); err != nil {
		t.Fatal(err)
	}
	if back.Tokens != 1 || back.Width != 1 || !bytes.Equal(back.Data, m.Data) {
		t.Errorf("round trip: %+v", back)
	}
}
