package msgs

import (
	"github.com/bluenviron/goroslib/v2/pkg/msg"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/std_msgs"
)

// EmbeddingType is the ROS type name of Embedding.
const EmbeddingType = "flowact_msgs/Embedding"

// EmbeddingMD5 is the MD5 sum genmsg computes for msgs/flowact_msgs/msg/Embedding.msg: the md5 of
// "2176decaecbce78abc3b96ef049fabed header\nuint32 tokens\nuint32 width\nuint8[] data", where the
// first word is std_msgs/Header's own MD5. Publishers and subscribers exchange it in the TCPROS
// connection header and refuse to talk when it differs.
const EmbeddingMD5 = "a61357794751d6c92b9161c19847687c"

// Embedding is flowact_msgs/Embedding: Data holds Tokens*Width float32 values, row-major, each
// as 4 little-endian bytes (len(Data) == 4*Tokens*Width).
type Embedding struct {
	msg.Package `ros:"flowact_msgs"`
	Header      std_msgs.Header
	Tokens      uint32
	Width       uint32
	Data        []uint8
}
