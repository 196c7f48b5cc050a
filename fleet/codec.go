package fleet

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/flowact/flowact/dataset"
)

// ErrMessage wraps every failure to decode a message from the network or the spool.
var ErrMessage = errors.New("fleet: malformed message")

// MaxEmbeddingValues bounds tokens x width of an embedding: robot/ros's bound (goroslib refuses
// messages above 16 MiB, i.e. 4 Mi float32 values), so that both sources accept the same.
const MaxEmbeddingValues = 4 << 20

// Embedding is a decoded flowact_msgs/Embedding: Tokens x Width float32 values, row-major.
type Embedding struct {
	Tokens, Width int
	Data          []float32
	Stamp         time.Time // header.stamp; zero when the message's stamp is 0
	FrameID       string    // header.frame_id
	Seq           uint32    // header.seq
}

// AppendEmbedding appends the ROS 1 serialization of a flowact_msgs/Embedding (msgs/flowact_msgs)
// to dst: header (seq, stamp, frame_id), tokens, width, and data as a uint8[] of little-endian
// float32 values. These are the bytes rostopic and goroslib send on the wire (without TCPROS's
// length prefix) and a bag stores. It panics if len(data) != tokens*width (a programmer error).
func AppendEmbedding(dst []byte, e *Embedding) []byte {
	if e.Tokens*e.Width != len(e.Data) || e.Tokens < 0 || e.Width < 0 {
		panic(fmt.Sprintf("fleet: AppendEmbedding: %d values for %d x %d", len(e.Data), e.Tokens, e.Width))
	}
	dst = binary.LittleEndian.AppendUint32(dst, e.Seq)
	dst = appendROSTime(dst, e.Stamp)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(e.FrameID)))
	dst = append(dst, e.FrameID...)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(e.Tokens))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(e.Width))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(4*len(e.Data)))
	for _, v := range e.Data {
		dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(v))
	}
	return dst
}

func appendROSTime(dst []byte, t time.Time) []byte {
	var s, ns uint32
	if !t.IsZero() {
		s, ns = uint32(t.Unix()), uint32(t.Nanosecond())
	}
	dst = binary.LittleEndian.AppendUint32(dst, s)
	return binary.LittleEndian.AppendUint32(dst, ns)
}

// DecodeEmbedding decodes a flowact_msgs/Embedding with the checks robot/ros applies: a shape of
// 1 to MaxEmbeddingValues values, a payload of exactly 4 x tokens x width bytes, nothing after
// it. The values go into dst when its capacity suffices (else a new slice); the result's Data is
// dst[:tokens*width].
func DecodeEmbedding(b []byte, dst []float32) (Embedding, error) {
	d := decoder{b: b}
	var e Embedding
	e.Seq = d.u32()
	secs, nsecs := d.u32(), d.u32()
	e.FrameID = string(d.bytes(d.u32()))
	tokens, width := uint64(d.u32()), uint64(d.u32())
	n := d.u32()
	if d.err != nil {
		return Embedding{}, fmt.Errorf("%w: flowact_msgs/Embedding: %v", ErrMessage, d.err)
	}
	if nsecs >= 1e9 {
		return Embedding{}, fmt.Errorf("%w: flowact_msgs/Embedding: stamp with %d ns", ErrMessage, nsecs)
	}
	if tokens == 0 || width == 0 || tokens*width > MaxEmbeddingValues {
		return Embedding{}, fmt.Errorf("%w: flowact_msgs/Embedding: shape %d x %d outside 1..%d values", ErrMessage, tokens, width, MaxEmbeddingValues)
	}
	if uint64(n) != 4*tokens*width || uint64(len(d.b)) != uint64(n) {
		return Embedding{}, fmt.Errorf("%w: flowact_msgs/Embedding: %d payload bytes (%d left), want 4 x %d x %d", ErrMessage, n, len(d.b), tokens, width)
	}
	if secs != 0 || nsecs != 0 {
		e.Stamp = time.Unix(int64(secs), int64(nsecs)).UTC()
	}
	cnt := int(tokens * width)
	if cap(dst) < cnt {
		dst = make([]float32, cnt)
	}
	dst = dst[:cnt]
	for i := range dst {
		dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(d.b[4*i:]))
	}
	e.Tokens, e.Width, e.Data = int(tokens), int(width), dst
	return e, nil
}

// decoder reads little-endian fields, remembering the first shortfall.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) need(n uint64) bool {
	if d.err != nil {
		return false
	}
	if uint64(len(d.b)) < n {
		d.err = fmt.Errorf("%d bytes left, need %d", len(d.b), n)
		return false
	}
	return true
}

func (d *decoder) u32() uint32 {
	if !d.need(4) {
		return 0
	}
	v := binary.LittleEndian.Uint32(d.b)
	d.b = d.b[4:]
	return v
}

func (d *decoder) u64() uint64 {
	if !d.need(8) {
		return 0
	}
	v := binary.LittleEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

func (d *decoder) u8() byte {
	if !d.need(1) {
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) bytes(n uint32) []byte {
	if !d.need(uint64(n)) {
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) f64s(n uint32) []float64 {
	if !d.need(8 * uint64(n)) {
		return nil
	}
	v := make([]float64, n)
	for i := range v {
		v[i] = math.Float64frombits(binary.LittleEndian.Uint64(d.b[8*i:]))
	}
	d.b = d.b[8*n:]
	return v
}

func (d *decoder) stamp() time.Time {
	ns := int64(d.u64())
	return time.Unix(0, ns).UTC()
}

func (d *decoder) done() error {
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%d trailing bytes", len(d.b))
	}
	return d.err
}

// Episode message kinds, the Flowact-Kind header of each message of an episode.
const (
	KindBegin     = "begin"     // JSON: the writer's config (joints, topics, formats)
	KindState     = "state"     // a joint state
	KindEmbedding = "embedding" // flowact_msgs/Embedding bytes
	KindAction    = "action"    // a command
	KindMeta      = "meta"      // the episode's metadata JSON
	KindEnd       = "end"       // the number of messages of the episode, this one included
)

// Headers of episode messages.
const (
	HeaderKind = "Flowact-Kind"
	HeaderSeq  = "Flowact-Seq" // 1, 2, ...: the message's place in its episode
)

// beginRecord is the first message of an episode: what a dataset.Writer needs to write the same
// bag again.
type beginRecord struct {
	Joints      []string                `json:"joints"`
	Embedding   dataset.EmbeddingFormat `json:"embedding_format"`
	Topics      dataset.Topics          `json:"topics"`
	Compression string                  `json:"compression,omitempty"`
	ChunkBytes  int                     `json:"chunk_bytes,omitempty"`
}

func (b *beginRecord) writerConfig() dataset.WriterConfig {
	return dataset.WriterConfig{Topics: b.Topics, Joints: b.Joints, Embedding: b.Embedding, Compression: b.Compression, ChunkBytes: b.ChunkBytes}
}

func appendStamp(dst []byte, t time.Time) []byte {
	return binary.LittleEndian.AppendUint64(dst, uint64(t.UnixNano()))
}

func appendF64s(dst []byte, v []float64) []byte {
	for _, x := range v {
		dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(x))
	}
	return dst
}

// appendState: stamp (int64 ns), n (uint32), flags (bit 0 velocity, bit 1 effort), then n
// positions, and n velocities and n efforts when flagged, as float64.
func appendState(dst []byte, s *dataset.JointState) []byte {
	dst = appendStamp(dst, s.Stamp)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(s.Position)))
	var flags byte
	if s.Velocity != nil {
		flags |= 1
	}
	if s.Effort != nil {
		flags |= 2
	}
	dst = append(dst, flags)
	dst = appendF64s(dst, s.Position)
	dst = appendF64s(dst, s.Velocity)
	return appendF64s(dst, s.Effort)
}

func decodeState(b []byte) (dataset.JointState, error) {
	d := decoder{b: b}
	var s dataset.JointState
	s.Stamp = d.stamp()
	n := d.u32()
	flags := d.u8()
	if n > 1<<16 {
		return s, fmt.Errorf("%w: state with %d joints", ErrMessage, n)
	}
	s.Position = d.f64s(n)
	if flags&1 != 0 {
		s.Velocity = d.f64s(n)
	}
	if flags&2 != 0 {
		s.Effort = d.f64s(n)
	}
	if err := d.done(); err != nil {
		return s, fmt.Errorf("%w: state: %v", ErrMessage, err)
	}
	return s, nil
}

// appendAction: stamp (int64 ns), n (uint32), n float64 positions.
func appendAction(dst []byte, a *dataset.Action) []byte {
	dst = appendStamp(dst, a.Stamp)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(a.Position)))
	return appendF64s(dst, a.Position)
}

func decodeAction(b []byte) (dataset.Action, error) {
	d := decoder{b: b}
	var a dataset.Action
	a.Stamp = d.stamp()
	n := d.u32()
	if n > 1<<16 {
		return a, fmt.Errorf("%w: action with %d joints", ErrMessage, n)
	}
	a.Position = d.f64s(n)
	if err := d.done(); err != nil {
		return a, fmt.Errorf("%w: action: %v", ErrMessage, err)
	}
	return a, nil
}

// appendMeta: stamp (int64 ns), then the metadata JSON.
func appendMeta(dst []byte, m *dataset.Meta, stamp time.Time) ([]byte, error) {
	js, err := json.Marshal(m)
	if err != nil {
		return dst, fmt.Errorf("fleet: metadata: %w", err)
	}
	return append(appendStamp(dst, stamp), js...), nil
}

func decodeMeta(b []byte) (dataset.Meta, time.Time, error) {
	d := decoder{b: b}
	t := d.stamp()
	var m dataset.Meta
	if d.err != nil {
		return m, t, fmt.Errorf("%w: meta: %v", ErrMessage, d.err)
	}
	if err := json.Unmarshal(d.b, &m); err != nil {
		return m, t, fmt.Errorf("%w: meta: %v", ErrMessage, err)
	}
	return m, t, nil
}
