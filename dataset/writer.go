package dataset

import (
	"cmp"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"time"

	rosbag "github.com/foxglove/go-rosbag"

	"github.com/flowact/flowact/robot"
)

// EmbeddingFormat is the message type the Writer uses for embeddings.
type EmbeddingFormat uint8

const (
	// EmbeddingMsg writes flowact_msgs/Embedding (a uint8[] payload: one copy to decode).
	EmbeddingMsg EmbeddingFormat = iota
	// EmbeddingMultiArray writes std_msgs/Float32MultiArray with dims [tokens, width].
	EmbeddingMultiArray
)

// WriterConfig configures a Writer. Joints is required; the zero value of every other field is
// the default.
type WriterConfig struct {
	Topics    Topics
	Joints    []string // names written in each JointState, in the order of the values
	Embedding EmbeddingFormat
	// Compression is the chunk compression: "" or "none" (the default: any ROS tool reads it) or
	// "lz4" (needs python3-roslz4 on the ROS side).
	Compression string
	// ChunkBytes is the uncompressed chunk size; 0 means 768 KiB, rosbag record's default. It may
	// not be below MinChunkBytes.
	ChunkBytes int
}

// Validate checks the configuration.
func (c *WriterConfig) Validate() error {
	if err := checkJoints(c.Joints); err != nil {
		return fmt.Errorf("dataset: writer config: %w", err)
	}
	if c.Embedding > EmbeddingMultiArray {
		return fmt.Errorf("dataset: writer config: embedding format %d: %w", c.Embedding, ErrConfiguration)
	}
	switch c.Compression {
	case "", rosbag.CompressionNone, rosbag.CompressionLZ4:
	default:
		return fmt.Errorf("dataset: writer config: compression %q (want none or lz4): %w", c.Compression, ErrConfiguration)
	}
	if c.ChunkBytes != 0 && c.ChunkBytes < MinChunkBytes {
		return fmt.Errorf("dataset: writer config: chunk size %d: %w", c.ChunkBytes, ErrConfiguration)
	}
	rc := Config{Topics: c.Topics}
	return rc.Validate()
}

// MinChunkBytes is the least WriterConfig.ChunkBytes. go-rosbag closes a chunk when it has
// outgrown its size before the next message, so a chunk smaller than the connection records
// (message definitions, ~3 KiB each) would close with no message in it, and its index entry would
// carry go-rosbag's "no message" start time (2^64-1 ns), which `rosbag info` shows as a start in
// 2010. 64 KiB holds every connection record of an episode.
const MinChunkBytes = 64 << 10

// Writer writes one episode as a ROS bag v2.0, one message at a time, so an episode never has to
// be held in memory. Each stream's stamps must not decrease; the bag record time of a message is
// its stamp. Call WriteMeta (at the end, once success is known) and Close. A Writer is not safe
// for concurrent use.
type Writer struct {
	cfg    WriterConfig
	topics Topics
	f      *os.File // owned, when made by Create
	path   string   // the final name of f, which is path + ".active" until Close
	bw     *rosbag.Writer
	conns  [4]int32 // connection id per stream, -1 before its first message
	last   [4]time.Time
	nconn  uint32
	buf    []byte
	seq    [2]uint32 // header seq of joint states and embeddings
	closed bool
	err    error // sticky: after a write error the bag is unusable
}

const (
	streamState = iota
	streamEmbedding
	streamCommand
	streamEpisode
)

// Create returns a Writer for a bag at path. Like rosbag record, it writes path + ".active" and
// renames it to path when Close succeeds (after syncing it to disk), so an episode cut short by a
// crash is never mistaken for a complete one: List and ReadDir see only *.bag files. An existing
// file at path is replaced.
func Create(path string, cfg WriterConfig) (*Writer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	f, err := os.Create(path + ".active")
	if err != nil {
		return nil, fmt.Errorf("dataset: %w", err)
	}
	w, err := NewWriter(f, cfg)
	if err != nil {
		f.Close()
		return nil, err
	}
	w.f, w.path = f, path
	return w, nil
}

// NewWriter returns a Writer on ws (a file, or anything seekable: the bag header is rewritten at
// Close with the index position). The caller keeps ownership of ws.
func NewWriter(ws io.WriteSeeker, cfg WriterConfig) (*Writer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	comp := cfg.Compression
	if comp == "" {
		comp = rosbag.CompressionNone
	}
	chunk := cfg.ChunkBytes
	if chunk == 0 {
		chunk = 768 << 10
	}
	bw, err := rosbag.NewWriter(ws, rosbag.WithCompression(comp), rosbag.WithChunksize(chunk))
	if err != nil {
		return nil, fmt.Errorf("dataset: bag header: %w", err)
	}
	w := &Writer{cfg: cfg, topics: cfg.Topics.withDefaults(), bw: bw, conns: [4]int32{-1, -1, -1, -1}}
	w.cfg.Joints = slices.Clone(cfg.Joints)
	return w, nil
}

func (w *Writer) topicOf(stream int) (string, msgType) {
	switch stream {
	case streamState:
		return w.topics.JointStates, typeJointState()
	case streamEmbedding:
		if w.cfg.Embedding == EmbeddingMultiArray {
			return w.topics.Embedding, typeFloat32MultiArray()
		}
		return w.topics.Embedding, typeEmbedding()
	case streamCommand:
		return w.topics.Command, typeFloat64MultiArray()
	}
	return w.topics.Episode, typeString()
}

// write checks the stamp and writes data (already in w.buf) on stream.
func (w *Writer) write(stream int, stamp time.Time, data []byte) error {
	topic, typ := w.topicOf(stream)
	if w.closed {
		return fmt.Errorf("dataset: writer closed")
	}
	if w.err != nil {
		return w.err
	}
	sec := stamp.Unix()
	if sec < 0 || sec > math.MaxUint32 || stamp.IsZero() {
		return fmt.Errorf("dataset: topic %s: stamp %v outside ROS time (1970 to 2106)", topic, stamp)
	}
	if stamp.Before(w.last[stream]) {
		return fmt.Errorf("dataset: topic %s: stamp %v before the previous %v: %w", topic, stamp, w.last[stream], ErrNonMonotonic)
	}
	w.last[stream] = stamp
	if w.conns[stream] < 0 {
		id := w.nconn
		callerID := "/flowact"
		err := w.bw.WriteConnection(&rosbag.Connection{Conn: id, Topic: topic, Data: rosbag.ConnectionHeader{
			Topic: topic, Type: typ.name, MD5Sum: typ.md5, MessageDefinition: []byte(typ.def), CallerID: &callerID}})
		if err != nil {
			w.err = fmt.Errorf("dataset: topic %s: %w", topic, err)
			return w.err
		}
		w.conns[stream] = int32(id)
		w.nconn++
	}
	if err := w.bw.WriteMessage(&rosbag.Message{Conn: uint32(w.conns[stream]), Time: uint64(stamp.UnixNano()), Data: data}); err != nil {
		w.err = fmt.Errorf("dataset: topic %s: %w", topic, err)
		return w.err
	}
	return nil
}

func finite64(v []float64) bool {
	for _, x := range v {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return false
		}
	}
	return true
}

// WriteState writes a sensor_msgs/JointState with the configured joint names. Velocity and
// Effort may be nil (written as empty arrays, as ROS allows).
func (w *Writer) WriteState(s *JointState) error {
	d := len(w.cfg.Joints)
	if len(s.Position) != d || (s.Velocity != nil && len(s.Velocity) != d) || (s.Effort != nil && len(s.Effort) != d) {
		return fmt.Errorf("dataset: topic %s: state with %d/%d/%d values for %d joints: %w",
			w.topics.JointStates, len(s.Position), len(s.Velocity), len(s.Effort), d, ErrShape)
	}
	if !finite64(s.Position) {
		return fmt.Errorf("dataset: topic %s: position: %w", w.topics.JointStates, ErrNotFinite)
	}
	m := jointStateMsg{header: header{seq: w.seq[0], stamp: s.Stamp}, name: w.cfg.Joints,
		position: s.Position, velocity: s.Velocity, effort: s.Effort}
	w.buf = appendJointState(w.buf[:0], &m)
	if err := w.write(streamState, s.Stamp, w.buf); err != nil {
		return err
	}
	w.seq[0]++
	return nil
}

// WriteEmbedding writes an embedding in the configured format.
func (w *Writer) WriteEmbedding(e *robot.Embedding) error {
	if e.Tokens <= 0 || e.Width <= 0 || len(e.Data) != e.Tokens*e.Width {
		return fmt.Errorf("dataset: topic %s: %d x %d embedding with %d values: %w", w.topics.Embedding, e.Tokens, e.Width, len(e.Data), ErrShape)
	}
	if w.cfg.Embedding == EmbeddingMultiArray {
		m := float32MultiArrayMsg{dims: []multiArrayDim{
			{label: "tokens", size: uint32(e.Tokens), stride: uint32(e.Tokens * e.Width)},
			{label: "width", size: uint32(e.Width), stride: uint32(e.Width)}}, data: e.Data}
		w.buf = appendFloat32MultiArray(w.buf[:0], &m)
	} else {
		m := embeddingMsg{header: header{seq: w.seq[1], stamp: e.Stamp}, tokens: uint32(e.Tokens), width: uint32(e.Width), data: e.Data}
		w.buf = appendEmbedding(w.buf[:0], &m)
	}
	if err := w.write(streamEmbedding, e.Stamp, w.buf); err != nil {
		return err
	}
	w.seq[1]++
	return nil
}

// WriteAction writes a command as std_msgs/Float64MultiArray (one value per joint, in the
// configured order, layout dim "joints").
func (w *Writer) WriteAction(a *Action) error {
	d := len(w.cfg.Joints)
	if len(a.Position) != d {
		return fmt.Errorf("dataset: topic %s: action with %d values for %d joints: %w", w.topics.Command, len(a.Position), d, ErrShape)
	}
	if !finite64(a.Position) {
		return fmt.Errorf("dataset: topic %s: %w", w.topics.Command, ErrNotFinite)
	}
	m := float64MultiArrayMsg{dims: []multiArrayDim{{label: "joints", size: uint32(d), stride: uint32(d)}}, data: a.Position}
	w.buf = appendFloat64MultiArray(w.buf[:0], &m)
	return w.write(streamCommand, a.Stamp, w.buf)
}

// WriteMeta writes the episode metadata at stamp (use the episode's last stamp). Its Version is
// set, and its Joints must be the writer's. A reader keeps the last metadata message of a bag.
func (w *Writer) WriteMeta(m *Meta, stamp time.Time) error {
	c := *m
	c.Version = MetaVersion
	if err := c.Validate(); err != nil {
		return fmt.Errorf("dataset: topic %s: %w", w.topics.Episode, err)
	}
	if !slices.Equal(c.Joints, w.cfg.Joints) {
		return fmt.Errorf("dataset: topic %s: metadata joints %v differ from the writer's %v: %w", w.topics.Episode, c.Joints, w.cfg.Joints, ErrMeta)
	}
	js, err := jsonMarshal(&c)
	if err != nil {
		return fmt.Errorf("dataset: topic %s: %w", w.topics.Episode, err)
	}
	w.buf = appendString(w.buf[:0], string(js))
	return w.write(streamEpisode, stamp, w.buf)
}

// Close writes the index and, for a Writer made by Create, syncs and closes the file and gives it
// its final name (after a write error it stays at path + ".active"). It is idempotent.
func (w *Writer) Close() error {
	if w.closed {
		return nil
	}
	w.closed = true
	err := w.err
	if err == nil {
		if e := w.bw.Close(); e != nil {
			err = fmt.Errorf("dataset: closing bag: %w", e)
		}
	}
	if w.f != nil {
		if err == nil {
			if e := w.f.Sync(); e != nil {
				err = fmt.Errorf("dataset: %w", e)
			}
		}
		if e := w.f.Close(); e != nil && err == nil {
			err = fmt.Errorf("dataset: %w", e)
		}
		if err == nil {
			if e := os.Rename(w.f.Name(), w.path); e != nil {
				err = fmt.Errorf("dataset: %w", e)
			}
		}
	}
	return err
}

// WriteEpisode writes ep as a bag at path: every stream merged in stamp order, the metadata last
// at the latest stamp. cfg.Joints defaults to ep.Meta.Joints. On failure no file is left.
func WriteEpisode(path string, ep *Episode, cfg WriterConfig) (err error) {
	if cfg.Joints == nil {
		cfg.Joints = ep.Meta.Joints
	}
	w, err := Create(path, cfg)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil { // leave no partial episode behind, under either name
			w.err = err
			w.Close()
			os.Remove(path + ".active")
			return
		}
		err = w.Close()
	}()
	type item struct {
		t      time.Time
		stream int
		i      int
	}
	items := make([]item, 0, len(ep.States)+len(ep.Embeddings)+len(ep.Actions))
	for i := range ep.States {
		items = append(items, item{ep.States[i].Stamp, streamState, i})
	}
	for i := range ep.Embeddings {
		items = append(items, item{ep.Embeddings[i].Stamp, streamEmbedding, i})
	}
	for i := range ep.Actions {
		items = append(items, item{ep.Actions[i].Stamp, streamCommand, i})
	}
	slices.SortStableFunc(items, func(a, b item) int { return a.t.Compare(b.t) })
	var last time.Time
	for _, it := range items {
		switch it.stream {
		case streamState:
			err = w.WriteState(&ep.States[it.i])
		case streamEmbedding:
			err = w.WriteEmbedding(&ep.Embeddings[it.i])
		case streamCommand:
			err = w.WriteAction(&ep.Actions[it.i])
		}
		if err != nil {
			return err
		}
		last = it.t
	}
	if len(items) == 0 {
		return fmt.Errorf("dataset: %s: empty episode: %w", path, ErrEmpty)
	}
	return w.WriteMeta(&ep.Meta, cmp.Or(last, time.Unix(1, 0)))
}
