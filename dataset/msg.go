package dataset

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
)

// ROS 1 serialization (http://wiki.ros.org/msg#Serialization): little-endian fixed-size fields,
// strings and variable arrays prefixed by a uint32 element count, time as (secs, nsecs) uint32.
// Only the few message types an episode needs are here; package dataset must not import goroslib.

// Message types, their MD5 sums (genmsg's, as `rosmsg md5 TYPE` prints them; TestDefinitions
// checks them against Debian's ROS) and full definitions (msgdefs.go).
const (
	jointStateType        = "sensor_msgs/JointState"
	jointStateMD5         = "3066dcd76a6cfaef579bd0f34173e9fd"
	float32MultiArrayType = "std_msgs/Float32MultiArray"
	float32MultiArrayMD5  = "6a40e0ffa6a17a503ac3f8616991b1f6"
	float64MultiArrayType = "std_msgs/Float64MultiArray"
	float64MultiArrayMD5  = "4b7d974086d4060e7db4613a7e6c3ba4"
	stringType            = "std_msgs/String"
	stringMD5             = "992ce8a1687cec8c8bd883ec73ca41d1"
	embeddingType         = "flowact_msgs/Embedding"
	embeddingMD5          = "a61357794751d6c92b9161c19847687c"
)

// msgType names a ROS message type for a bag connection header.
type msgType struct{ name, md5, def string }

func typeJointState() msgType {
	return msgType{jointStateType, jointStateMD5, jointStateDef}
}
func typeFloat32MultiArray() msgType {
	return msgType{float32MultiArrayType, float32MultiArrayMD5, float32MultiArrayDef}
}
func typeFloat64MultiArray() msgType {
	return msgType{float64MultiArrayType, float64MultiArrayMD5, float64MultiArrayDef}
}
func typeString() msgType    { return msgType{stringType, stringMD5, stringDef} }
func typeEmbedding() msgType { return msgType{embeddingType, embeddingMD5, embeddingDef} }

// ErrMessage wraps every message decoding failure.
var ErrMessage = errors.New("malformed message")

// header is std_msgs/Header.
type header struct {
	seq     uint32
	stamp   time.Time // zero when the message's stamp is 0.0
	frameID string
}

// jointStateMsg is sensor_msgs/JointState.
type jointStateMsg struct {
	header                     header
	name                       []string
	position, velocity, effort []float64
}

// multiArrayDim is std_msgs/MultiArrayDimension.
type multiArrayDim struct {
	label        string
	size, stride uint32
}

// float32MultiArrayMsg is std_msgs/Float32MultiArray; the element type is the only difference
// to Float64MultiArray.
type float32MultiArrayMsg struct {
	dims   []multiArrayDim
	offset uint32
	data   []float32
}

type float64MultiArrayMsg struct {
	dims   []multiArrayDim
	offset uint32
	data   []float64
}

// embeddingMsg is flowact_msgs/Embedding; data is decoded from the little-endian uint8[] payload.
type embeddingMsg struct {
	header        header
	tokens, width uint32
	data          []float32
}

// ---- encoding ----

type enc []byte

func (e *enc) u32(v uint32) { *e = binary.LittleEndian.AppendUint32(*e, v) }
func (e *enc) str(s string) { e.u32(uint32(len(s))); *e = append(*e, s...) }
func (e *enc) stamp(t time.Time) {
	secs, nsecs := rosTime(t)
	e.u32(secs)
	e.u32(nsecs)
}
func (e *enc) header(h *header) { e.u32(h.seq); e.stamp(h.stamp); e.str(h.frameID) }
func (e *enc) f64s(v []float64) {
	e.u32(uint32(len(v)))
	for _, x := range v {
		*e = binary.LittleEndian.AppendUint64(*e, math.Float64bits(x))
	}
}
func (e *enc) f32s(v []float32) {
	e.u32(uint32(len(v)))
	for _, x := range v {
		*e = binary.LittleEndian.AppendUint32(*e, math.Float32bits(x))
	}
}
func (e *enc) dims(d []multiArrayDim, offset uint32) {
	e.u32(uint32(len(d)))
	for _, x := range d {
		e.str(x.label)
		e.u32(x.size)
		e.u32(x.stride)
	}
	e.u32(offset)
}

// rosTime converts t to ROS (secs, nsecs); the zero Time is 0.0.
func rosTime(t time.Time) (uint32, uint32) {
	if t.IsZero() {
		return 0, 0
	}
	return uint32(t.Unix()), uint32(t.Nanosecond())
}

// fromROSTime converts ROS (secs, nsecs) to a time; 0.0 is the zero Time.
func fromROSTime(secs, nsecs uint32) time.Time {
	if secs == 0 && nsecs == 0 {
		return time.Time{}
	}
	return time.Unix(int64(secs), int64(nsecs)).UTC()
}

func appendJointState(b []byte, m *jointStateMsg) []byte {
	e := enc(b)
	e.header(&m.header)
	e.u32(uint32(len(m.name)))
	for _, n := range m.name {
		e.str(n)
	}
	e.f64s(m.position)
	e.f64s(m.velocity)
	e.f64s(m.effort)
	return e
}

func appendFloat32MultiArray(b []byte, m *float32MultiArrayMsg) []byte {
	e := enc(b)
	e.dims(m.dims, m.offset)
	e.f32s(m.data)
	return e
}

func appendFloat64MultiArray(b []byte, m *float64MultiArrayMsg) []byte {
	e := enc(b)
	e.dims(m.dims, m.offset)
	e.f64s(m.data)
	return e
}

func appendEmbedding(b []byte, m *embeddingMsg) []byte {
	e := enc(b)
	e.header(&m.header)
	e.u32(m.tokens)
	e.u32(m.width)
	e.u32(uint32(4 * len(m.data)))
	for _, x := range m.data {
		e = binary.LittleEndian.AppendUint32(e, math.Float32bits(x))
	}
	return e
}

func appendString(b []byte, s string) []byte {
	e := enc(b)
	e.str(s)
	return e
}

// ---- decoding ----

// dec reads ROS serialization from b. The first failure sticks in err; later reads return zero
// values, so decoders check err once at the end.
type dec struct {
	b   []byte
	off int
	err error
}

func (d *dec) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: byte %d: %s", ErrMessage, d.off, fmt.Sprintf(format, args...))
	}
}

func (d *dec) need(n uint64, what string) bool {
	if d.err != nil {
		return false
	}
	if n > uint64(len(d.b)-d.off) {
		d.fail("%s needs %d bytes, %d left", what, n, len(d.b)-d.off)
		return false
	}
	return true
}

func (d *dec) u32(what string) uint32 {
	if !d.need(4, what) {
		return 0
	}
	v := binary.LittleEndian.Uint32(d.b[d.off:])
	d.off += 4
	return v
}

func (d *dec) str(what string) string {
	n := d.u32(what)
	if !d.need(uint64(n), what) {
		return ""
	}
	s := string(d.b[d.off : d.off+int(n)])
	d.off += int(n)
	return s
}

func (d *dec) header() header {
	var h header
	h.seq = d.u32("header.seq")
	secs := d.u32("header.stamp")
	nsecs := d.u32("header.stamp")
	if nsecs >= 1e9 {
		d.fail("header.stamp nsecs %d >= 1e9", nsecs)
	}
	h.stamp = fromROSTime(secs, nsecs)
	h.frameID = d.str("header.frame_id")
	return h
}

func (d *dec) f64s(what string) []float64 {
	n := d.u32(what)
	if !d.need(8*uint64(n), what) {
		return nil
	}
	v := make([]float64, n)
	for i := range v {
		v[i] = math.Float64frombits(binary.LittleEndian.Uint64(d.b[d.off:]))
		d.off += 8
	}
	return v
}

func (d *dec) f32s(what string) []float32 {
	n := d.u32(what)
	if !d.need(4*uint64(n), what) {
		return nil
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(d.b[d.off:]))
		d.off += 4
	}
	return v
}

func (d *dec) dims() ([]multiArrayDim, uint32) {
	n := d.u32("layout.dim")
	// Each dimension takes at least 12 bytes: bound the count before allocating.
	if !d.need(12*uint64(n), "layout.dim") {
		return nil, 0
	}
	dims := make([]multiArrayDim, n)
	for i := range dims {
		dims[i].label = d.str("layout.dim.label")
		dims[i].size = d.u32("layout.dim.size")
		dims[i].stride = d.u32("layout.dim.stride")
	}
	return dims, d.u32("layout.data_offset")
}

func (d *dec) done() error {
	if d.err == nil && d.off != len(d.b) {
		d.fail("%d trailing bytes", len(d.b)-d.off)
	}
	return d.err
}

// decodeJointState decodes a sensor_msgs/JointState. When the names equal prev's (the usual
// case: a driver sends the same list every time) m.name is prev itself, saving a slice and a
// string per joint on every message.
func decodeJointState(b []byte, prev []string) (jointStateMsg, error) {
	d := dec{b: b}
	var m jointStateMsg
	m.header = d.header()
	n := d.u32("name")
	if d.need(4*uint64(n), "name") { // every string has a 4-byte length
		same := int(n) == len(prev)
		var names []string
		if !same {
			names = make([]string, n)
		}
		for i := range int(n) {
			l := d.u32("name")
			if !d.need(uint64(l), "name") {
				break
			}
			raw := d.b[d.off : d.off+int(l)]
			d.off += int(l)
			if same && string(raw) == prev[i] {
				continue
			}
			if same { // first difference: copy the shared prefix
				same = false
				names = make([]string, n)
				copy(names, prev[:i])
			}
			names[i] = string(raw)
		}
		if same {
			m.name = prev
		} else {
			m.name = names
		}
	}
	m.position = d.f64s("position")
	m.velocity = d.f64s("velocity")
	m.effort = d.f64s("effort")
	return m, d.done()
}

func decodeFloat32MultiArray(b []byte) (float32MultiArrayMsg, error) {
	d := dec{b: b}
	var m float32MultiArrayMsg
	m.dims, m.offset = d.dims()
	m.data = d.f32s("data")
	return m, d.done()
}

func decodeFloat64MultiArray(b []byte) (float64MultiArrayMsg, error) {
	d := dec{b: b}
	var m float64MultiArrayMsg
	m.dims, m.offset = d.dims()
	m.data = d.f64s("data")
	return m, d.done()
}

func decodeEmbedding(b []byte) (embeddingMsg, error) {
	d := dec{b: b}
	var m embeddingMsg
	m.header = d.header()
	m.tokens = d.u32("tokens")
	m.width = d.u32("width")
	n := d.u32("data")
	if d.err == nil && n%4 != 0 {
		d.fail("data has %d bytes, not a whole number of float32", n)
	}
	if d.need(uint64(n), "data") {
		m.data = make([]float32, n/4)
		for i := range m.data {
			m.data[i] = math.Float32frombits(binary.LittleEndian.Uint32(d.b[d.off:]))
			d.off += 4
		}
	}
	if d.err == nil && uint64(m.tokens)*uint64(m.width) != uint64(len(m.data)) {
		d.fail("%d x %d embedding with %d values", m.tokens, m.width, len(m.data))
	}
	return m, d.done()
}

func decodeString(b []byte) (string, error) {
	d := dec{b: b}
	s := d.str("data")
	return s, d.done()
}
