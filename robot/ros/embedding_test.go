package ros

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/goroslib/v2/pkg/msgs/std_msgs"
	"github.com/bluenviron/goroslib/v2/pkg/protocommon"

	"github.com/flowact/flowact/robot/ros/msgs"
)

func multiArray(tokens, width uint32, s0, s1, off uint32, data []float32) *std_msgs.Float32MultiArray {
	return &std_msgs.Float32MultiArray{
		Layout: std_msgs.MultiArrayLayout{Dim: []std_msgs.MultiArrayDimension{
			{Label: "tokens", Size: tokens, Stride: s0}, {Label: "width", Size: width, Stride: s1}}, DataOffset: off},
		Data: data,
	}
}

func TestDecodeMultiArray(t *testing.T) {
	six := []float32{0, 1, 2, 3, 4, 5}
	tests := []struct {
		name    string
		m       *std_msgs.Float32MultiArray
		tokens  int
		data    []float32
		wantErr string
	}{
		{"strides set", multiArray(2, 3, 6, 3, 0, six), 2, six, ""},
		{"strides unset", multiArray(3, 2, 0, 0, 0, six), 3, six, ""},
		{"offset", multiArray(1, 5, 5, 5, 1, six), 1, six[1:], ""},
		{"one dim", &std_msgs.Float32MultiArray{Layout: std_msgs.MultiArrayLayout{Dim: []std_msgs.MultiArrayDimension{{Size: 6}}}, Data: six}, 0, nil, "1 dims"},
		{"zero size", multiArray(0, 3, 0, 0, 0, nil), 0, nil, "shape 0 x 3"},
		{"short data", multiArray(2, 4, 8, 4, 0, six), 0, nil, "6 values"},
		{"bad stride", multiArray(2, 3, 6, 2, 0, six), 0, nil, "strides"},
		{"huge shape", multiArray(1<<16, 1<<16, 0, 0, 0, six), 0, nil, "outside"},
	}
	recv := time.Unix(5, 0)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, err := DecodeMultiArray(tc.m, recv)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to mention %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if e.Tokens != tc.tokens || e.Tokens*e.Width != len(tc.data) || !slices.Equal(e.Data, tc.data) || !e.Stamp.Equal(recv) {
				t.Errorf("got %+v", e)
			}
		})
	}
}

func TestCustomRoundTrip(t *testing.T) {
	data := []float32{0, -1.5, float32(math.Pi), math.MaxFloat32, float32(math.Inf(-1)), 1e-40}
	stamp := time.Unix(1700000000, 123).UTC()
	var m msgs.Embedding
	EncodeCustom(&m, 2, 3, data, stamp)
	e, err := DecodeCustom(&m, nil, time.Unix(9, 0))
	if err != nil {
		t.Fatal(err)
	}
	if e.Tokens != 2 || e.Width != 3 || !slices.Equal(e.Data, data) || !e.Stamp.Equal(stamp) {
		t.Errorf("round trip: %+v", e)
	}
	m.Data = m.Data[:len(m.Data)-1]
	if _, err := DecodeCustom(&m, nil, time.Time{}); err == nil || !strings.Contains(err.Error(), "23 payload bytes") {
		t.Errorf("short payload: err = %v", err)
	}
	m.Tokens = 0
	if _, err := DecodeCustom(&m, nil, time.Time{}); err == nil {
		t.Error("zero tokens accepted")
	}
}

func TestEmbeddingsMailbox(t *testing.T) {
	e := NewEmbeddings(func() time.Time { return time.Unix(7, 0) })
	if _, err := e.Latest(); err != ErrNoEmbedding {
		t.Fatalf("empty: err = %v", err)
	}
	if at, seq := e.Received(); !at.IsZero() || seq != 0 {
		t.Fatalf("empty: received %v, seq %d", at, seq)
	}
	e.StoreMultiArray(multiArray(1, 2, 0, 0, 0, []float32{1, 2}))
	e.StoreMultiArray(multiArray(1, 2, 0, 0, 0, []float32{3, 4})) // overwrites an unread one
	got, err := e.Latest()
	if _, seq := e.Received(); err != nil || seq != 2 || !slices.Equal(got.Data, []float32{3, 4}) {
		t.Fatalf("latest = %+v (seq %d), %v", got, seq, err)
	}
	var m msgs.Embedding
	EncodeCustom(&m, 1, 1, []float32{5}, time.Time{})
	e.StoreCustom(&m)
	e.StoreMultiArray(multiArray(2, 2, 0, 0, 0, []float32{1})) // invalid: kept out
	got, _ = e.Latest()
	if at, seq := e.Received(); seq != 3 || got.Data[0] != 5 || !got.Stamp.Equal(time.Unix(7, 0)) || !at.Equal(time.Unix(7, 0)) {
		t.Errorf("latest = %+v (seq %d, received %v)", got, seq, at)
	}
	want := EmbeddingStats{Messages: 4, Stored: 3, Overwritten: 1, Invalid: 1}
	if s := e.Stats(); s != want {
		t.Errorf("stats = %+v, want %+v", s, want)
	}
	if !strings.Contains(e.LastError(), "values after data_offset") {
		t.Errorf("last error %q", e.LastError())
	}
	// The control loop reads the mailbox every tick: Latest and Received must not allocate.
	if n := testing.AllocsPerRun(100, func() { e.Latest(); e.Received() }); n != 0 {
		t.Errorf("Latest allocates %v times per call", n)
	}
}

// wire serializes m as it travels over TCPROS (4-byte length + body).
func wire(tb testing.TB, m any) []byte {
	tb.Helper()
	var buf bytes.Buffer
	if err := protocommon.MessageEncode(&buf, m); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// FuzzDecodeEmbedding feeds arbitrary wire bytes through goroslib's decoder and ours: neither may
// panic, and whatever decodes must satisfy the shape invariant.
func FuzzDecodeEmbedding(f *testing.F) {
	var c msgs.Embedding
	EncodeCustom(&c, 2, 2, []float32{1, 2, 3, 4}, time.Unix(3, 4))
	f.Add(wire(f, &c))
	f.Add(wire(f, multiArray(2, 2, 4, 2, 0, []float32{1, 2, 3, 4})))
	f.Add([]byte{8, 0, 0, 0, 1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		var cm msgs.Embedding
		if protocommon.MessageDecode(bytes.NewReader(b), &cm) == nil {
			if e, err := DecodeCustom(&cm, nil, time.Time{}); err == nil && len(e.Data) != e.Tokens*e.Width {
				t.Fatalf("custom: %d values for %d x %d", len(e.Data), e.Tokens, e.Width)
			}
		}
		var mm std_msgs.Float32MultiArray
		if protocommon.MessageDecode(bytes.NewReader(b), &mm) == nil {
			if e, err := DecodeMultiArray(&mm, time.Time{}); err == nil && len(e.Data) != e.Tokens*e.Width {
				t.Fatalf("multiarray: %d values for %d x %d", len(e.Data), e.Tokens, e.Width)
			}
		}
	})
}

// BenchmarkEmbeddingDecode measures what a subscriber pays per embedding: goroslib's wire decode
// (protocommon.MessageDecode, as its TCPROS reader calls it) plus our validation/conversion.
func BenchmarkEmbeddingDecode(b *testing.B) {
	for _, sh := range []struct{ tokens, width int }{{16, 256}, {64, 1024}} {
		data := make([]float32, sh.tokens*sh.width)
		for i := range data {
			data[i] = float32(i) * 0.001
		}
		ma := multiArray(uint32(sh.tokens), uint32(sh.width), uint32(len(data)), uint32(sh.width), 0, data)
		var cm msgs.Embedding
		EncodeCustom(&cm, sh.tokens, sh.width, data, time.Unix(1, 0))
		for _, k := range []struct {
			name string
			raw  []byte
			dec  func(r *bytes.Reader) error
		}{
			{"Float32MultiArray", wire(b, ma), func(r *bytes.Reader) error {
				var m std_msgs.Float32MultiArray
				if err := protocommon.MessageDecode(r, &m); err != nil {
					return err
				}
				_, err := DecodeMultiArray(&m, time.Time{})
				return err
			}},
			{"Embedding", wire(b, &cm), func(r *bytes.Reader) error {
				var m msgs.Embedding
				if err := protocommon.MessageDecode(r, &m); err != nil {
					return err
				}
				_, err := DecodeCustom(&m, nil, time.Time{})
				return err
			}},
		} {
			b.Run(fmt.Sprintf("%s/%dx%d", k.name, sh.tokens, sh.width), func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(k.raw)))
				var r bytes.Reader
				for b.Loop() {
					r.Reset(k.raw)
					if err := k.dec(&r); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// TestEmbeddingsLatestNoAlloc: the control tick reads the embedding every tick; that read must
// not allocate, before and after the first embedding.
func TestEmbeddingsLatestNoAlloc(t *testing.T) {
	e := NewEmbeddings(nil)
	if a := testing.AllocsPerRun(100, func() { _, _ = e.Latest() }); a != 0 {
		t.Errorf("Latest with no embedding allocates %v", a)
	}
	e.StoreMultiArray(multiArray(1, 2, 0, 0, 0, []float32{1, 2}))
	if a := testing.AllocsPerRun(100, func() {
		if _, err := e.Latest(); err != nil {
			t.Fatal(err)
		}
	}); a != 0 {
		t.Errorf("Latest allocates %v", a)
	}
}
