package fleet

import (
	"encoding/binary"
	"testing"
	"time"
)

func TestFleetEmbeddingCodec(t *testing.T) {
	e := Embedding{Tokens: 2, Width: 3, Data: []float32{1, 2, 3, 4, 5, -6.5}, Stamp: time.Unix(1700000000, 123).UTC(), FrameID: "vlm", Seq: 9}
	b := AppendEmbedding(nil, &e)
	// The layout of flowact_msgs/Embedding: seq, secs, nsecs, frame_id, tokens, width, data.
	if got := binary.LittleEndian.Uint32(b[0:]); got != 9 {
		t.Errorf("seq %d", got)
	}
	if got := binary.LittleEndian.Uint32(b[4:]); got != 1700000000 {
		t.Errorf("secs %d", got)
	}
	if len(b) != 4+8+4+3+4+4+4+24 {
		t.Errorf("%d bytes", len(b))
	}
	d, err := DecodeEmbedding(b, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d.Tokens != 2 || d.Width != 3 || d.Data[5] != -6.5 || !d.Stamp.Equal(e.Stamp) || d.FrameID != "vlm" || d.Seq != 9 {
		t.Errorf("decoded %+v", d)
	}
	for name, bad := range map[string][]byte{
		"cut":      b[:len(b)-1],
		"trailing": append(append([]byte(nil), b...), 0),
		"shape":    AppendEmbedding(nil, &Embedding{Tokens: 0, Width: 0}),
		"empty":    nil,
	} {
		if _, err := DecodeEmbedding(bad, nil); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}

// TestFleetEmbeddingsMailbox: invalid messages are counted and never stored; a zero header
// stamp reads as the receive time, as on the ROS topic.
func TestFleetEmbeddingsMailbox(t *testing.T) {
	recv := time.Unix(1800000000, 0).UTC()
	m, err := NewEmbeddings("flowact.r1.embedding", func() time.Time { return recv })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Latest(); err != ErrNoEmbedding {
		t.Errorf("empty mailbox: %v", err)
	}
	m.Store([]byte{1, 2, 3})
	m.Store(AppendEmbedding(nil, &Embedding{Tokens: 1, Width: 2, Data: []float32{1, 2}}))
	e, err := m.Latest()
	if err != nil {
		t.Fatal(err)
	}
	if !e.Stamp.Equal(recv) || e.Width != 2 {
		t.Errorf("latest %+v", e)
	}
	if st := m.Stats(); st.Messages != 2 || st.Stored != 1 || st.Invalid != 1 || m.LastError() == "" {
		t.Errorf("stats %+v, last error %q", st, m.LastError())
	}
	if _, err := NewEmbeddings("bad subject", nil); err == nil {
		t.Error("a subject with a space accepted")
	}
}

func FuzzDecodeEmbedding(f *testing.F) {
	f.Add(AppendEmbedding(nil, &Embedding{Tokens: 1, Width: 2, Data: []float32{1, 2}, FrameID: "x"}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := DecodeEmbedding(b, nil)
		if err != nil {
			return
		}
		if len(e.Data) != e.Tokens*e.Width {
			t.Fatalf("%d values for %d x %d", len(e.Data), e.Tokens, e.Width)
		}
		if got := AppendEmbedding(nil, &e); string(got) != string(b) && !e.Stamp.IsZero() {
			t.Fatalf("re-encoding differs")
		}
	})
}
