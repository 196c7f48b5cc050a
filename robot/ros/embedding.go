package ros

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/bluenviron/goroslib/v2/pkg/msgs/std_msgs"

	"github.com/flowact/flowact/robot"
	"github.com/flowact/flowact/robot/ros/msgs"
)

// EmbeddingKind selects the message type on the embedding topic.
type EmbeddingKind uint8

const (
	// EmbeddingMultiArray is std_msgs/Float32MultiArray with layout.dim = [tokens, width]
	// (convenient: rostopic and rospy publish it without building anything).
	EmbeddingMultiArray EmbeddingKind = iota
	// EmbeddingCustom is flowact_msgs/Embedding: header, tokens, width and a little-endian
	// float32 payload in a uint8[] (fast: goroslib decodes it with one copy).
	EmbeddingCustom
)

func (k EmbeddingKind) String() string {
	switch k {
	case EmbeddingMultiArray:
		return "std_msgs/Float32MultiArray"
	case EmbeddingCustom:
		return msgs.EmbeddingType
	}
	return fmt.Sprintf("EmbeddingKind(%d)", uint8(k))
}

// MarshalText gives the ROS type name.
func (k EmbeddingKind) MarshalText() ([]byte, error) {
	if k > EmbeddingCustom {
		return nil, fmt.Errorf("ros: unknown embedding kind %d", uint8(k))
	}
	return []byte(k.String()), nil
}

// UnmarshalText accepts the ROS type names ("std_msgs/Float32MultiArray",
// "flowact_msgs/Embedding") and the short names "multiarray" and "custom".
func (k *EmbeddingKind) UnmarshalText(b []byte) error {
	switch string(b) {
	case "std_msgs/Float32MultiArray", "multiarray", "":
		*k = EmbeddingMultiArray
	case msgs.EmbeddingType, "custom":
		*k = EmbeddingCustom
	default:
		return fmt.Errorf("ros: embedding message %q: want std_msgs/Float32MultiArray (multiarray) or %s (custom)", b, msgs.EmbeddingType)
	}
	return nil
}

// MaxEmbeddingValues bounds tokens x width. goroslib refuses messages above 16 MiB, i.e. 4 Mi
// float32 values, so nothing valid is larger.
const MaxEmbeddingValues = 4 << 20

// ErrNoEmbedding is returned by Embeddings.Latest before the first valid embedding arrives.
var ErrNoEmbedding = errors.New("ros: no embedding yet")

// stored is an embedding in the mailbox with what the mailbox knows of it.
type stored struct {
	e        robot.Embedding
	received time.Time // when the subscriber stored it
	seq      uint64    // 1, 2, ...
}

// DecodeMultiArray checks a Float32MultiArray's layout (two dimensions: tokens, then width; the
// strides, when set, tokens*width and width; data_offset honoured) and returns the embedding,
// stamped recv (the message has no header). The result aliases m.Data.
func DecodeMultiArray(m *std_msgs.Float32MultiArray, recv time.Time) (robot.Embedding, error) {
	d := m.Layout.Dim
	if len(d) != 2 {
		return robot.Embedding{}, fmt.Errorf("ros: Float32MultiArray embedding: layout has %d dims, want 2 (tokens, width)", len(d))
	}
	tokens, width := uint64(d[0].Size), uint64(d[1].Size)
	n := tokens * width
	if tokens == 0 || width == 0 || n > MaxEmbeddingValues {
		return robot.Embedding{}, fmt.Errorf("ros: Float32MultiArray embedding: shape %d x %d outside 1..%d values", tokens, width, MaxEmbeddingValues)
	}
	if (d[0].Stride != 0 && uint64(d[0].Stride) != n) || (d[1].Stride != 0 && uint64(d[1].Stride) != width) {
		return robot.Embedding{}, fmt.Errorf("ros: Float32MultiArray embedding: strides %d, %d; want %d, %d (row-major, contiguous)", d[0].Stride, d[1].Stride, n, width)
	}
	off := uint64(m.Layout.DataOffset)
	if uint64(len(m.Data)) != off+n {
		return robot.Embedding{}, fmt.Errorf("ros: Float32MultiArray embedding: %d values after data_offset %d, want %d x %d = %d", uint64(len(m.Data))-min(off, uint64(len(m.Data))), off, tokens, width, n)
	}
	return robot.Embedding{Tokens: int(tokens), Width: int(width), Data: m.Data[off:], Stamp: recv}, nil
}

// DecodeCustom checks a flowact_msgs/Embedding and converts its payload into dst (reused when
// its capacity suffices), returning the embedding whose Data is dst[:tokens*width], stamped
// with the header's stamp (recv when that is zero).
func DecodeCustom(m *msgs.Embedding, dst []float32, recv time.Time) (robot.Embedding, error) {
	tokens, width := uint64(m.Tokens), uint64(m.Width)
	n := tokens * width
	if tokens == 0 || width == 0 || n > MaxEmbeddingValues {
		return robot.Embedding{}, fmt.Errorf("ros: %s: shape %d x %d outside 1..%d values", msgs.EmbeddingType, tokens, width, MaxEmbeddingValues)
	}
	if uint64(len(m.Data)) != 4*n {
		return robot.Embedding{}, fmt.Errorf("ros: %s: %d payload bytes, want 4 x %d x %d = %d", msgs.EmbeddingType, len(m.Data), tokens, width, 4*n)
	}
	if uint64(cap(dst)) < n {
		dst = make([]float32, n)
	}
	dst = dst[:n]
	b := m.Data
	for i := range dst {
		dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	stamp := m.Header.Stamp
	if stamp.IsZero() {
		stamp = recv
	}
	return robot.Embedding{Tokens: int(tokens), Width: int(width), Data: dst, Stamp: stamp}, nil
}

// EncodeCustom packs tokens x width values (row-major) into a flowact_msgs/Embedding, reusing
// m.Data's capacity. It panics if len(data) != tokens*width (a programmer error).
func EncodeCustom(m *msgs.Embedding, tokens, width int, data []float32, stamp time.Time) {
	if tokens*width != len(data) {
		panic(fmt.Sprintf("ros: EncodeCustom: %d values for %d x %d", len(data), tokens, width))
	}
	m.Header.Stamp = stamp
	m.Tokens, m.Width = uint32(tokens), uint32(width)
	if cap(m.Data) < 4*len(data) {
		m.Data = make([]byte, 4*len(data))
	}
	m.Data = m.Data[:4*len(data)]
	for i, v := range data {
		binary.LittleEndian.PutUint32(m.Data[4*i:], math.Float32bits(v))
	}
}

// EmbeddingStats counts what the Embeddings mailbox saw. All counters only grow.
type EmbeddingStats struct {
	Messages    uint64 // messages offered
	Stored      uint64 // valid embeddings stored
	Overwritten uint64 // stored embeddings replaced before Latest returned them
	Invalid     uint64 // messages rejected (shape, layout or payload size)
}

// Embeddings is the latest-value mailbox for the embedding topic: the subscriber callback
// decodes and stores a new immutable robot.Embedding with one atomic pointer swap; readers load
// it without locks. Nothing is queued: an embedding not read before the next arrives is counted
// as overwritten. It is the control loop's embedding source as it is (policy.EmbeddingSource).
type Embeddings struct {
	now      func() time.Time
	latest   atomic.Pointer[stored]
	lastRead atomic.Uint64 // Seq of the newest embedding Latest returned
	seq      atomic.Uint64
	messages atomic.Uint64
	over     atomic.Uint64
	invalid  atomic.Uint64
	// lastErr is the most recent decode error, for diagnostics.
	lastErr atomic.Pointer[string]
}

// NewEmbeddings returns an empty mailbox; now gives the receive time (nil means time.Now).
func NewEmbeddings(now func() time.Time) *Embeddings {
	if now == nil {
		now = time.Now
	}
	return &Embeddings{now: now}
}

func (e *Embeddings) store(emb robot.Embedding, recv time.Time, err error) {
	e.messages.Add(1)
	if err != nil {
		e.invalid.Add(1)
		s := err.Error()
		e.lastErr.Store(&s)
		return
	}
	st := &stored{e: emb, received: recv, seq: e.seq.Add(1)}
	old := e.latest.Swap(st)
	if old != nil && e.lastRead.Load() < old.seq {
		e.over.Add(1)
	}
}

// StoreMultiArray is the callback for std_msgs/Float32MultiArray. The stored embedding aliases
// msg.Data, which goroslib allocates afresh for every message.
func (e *Embeddings) StoreMultiArray(msg *std_msgs.Float32MultiArray) {
	now := e.now()
	emb, err := DecodeMultiArray(msg, now)
	e.store(emb, now, err)
}

// StoreCustom is the callback for flowact_msgs/Embedding.
func (e *Embeddings) StoreCustom(msg *msgs.Embedding) {
	now := e.now()
	emb, err := DecodeCustom(msg, nil, now)
	e.store(emb, now, err)
}

// Latest returns the newest embedding (shared: do not modify its Data) or ErrNoEmbedding. It
// neither blocks nor allocates.
func (e *Embeddings) Latest() (robot.Embedding, error) {
	p := e.latest.Load()
	if p == nil {
		return robot.Embedding{}, ErrNoEmbedding
	}
	for {
		r := e.lastRead.Load()
		if r >= p.seq || e.lastRead.CompareAndSwap(r, p.seq) {
			break
		}
	}
	return p.e, nil
}

// Received returns when the newest embedding was stored and its number (1, 2, ...; a reader
// sees whether there is a new one), or the zero time and 0 before the first.
func (e *Embeddings) Received() (time.Time, uint64) {
	p := e.latest.Load()
	if p == nil {
		return time.Time{}, 0
	}
	return p.received, p.seq
}

// Stats returns the counters.
func (e *Embeddings) Stats() EmbeddingStats {
	return EmbeddingStats{
		Messages:    e.messages.Load(),
		Stored:      e.seq.Load(),
		Overwritten: e.over.Load(),
		Invalid:     e.invalid.Load(),
	}
}

// LastError returns the most recent decode error message ("" if none).
func (e *Embeddings) LastError() string {
	if p := e.lastErr.Load(); p != nil {
		return *p
	}
	return ""
}
