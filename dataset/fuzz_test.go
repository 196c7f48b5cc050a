package dataset

import (
	"bytes"
	"os"
	"testing"
	"time"
)

// FuzzDecode feeds every message decoder; the first byte picks the type. Whatever decodes must
// encode back to the same bytes (the encodings are canonical), and nothing may panic.
func FuzzDecode(f *testing.F) {
	js := jointStateMsg{header: header{seq: 3, stamp: t0, frameID: "base"}, name: testJoints,
		position: []float64{1, 2, 3}, velocity: []float64{0, 0, 0}}
	f.Add(append([]byte{0}, appendJointState(nil, &js)...))
	f.Add(append([]byte{1}, appendFloat32MultiArray(nil, &float32MultiArrayMsg{
		dims: []multiArrayDim{{"tokens", 2, 4}, {"width", 2, 2}}, data: []float32{1, 2, 3, 4}})...))
	f.Add(append([]byte{2}, appendFloat64MultiArray(nil, &float64MultiArrayMsg{offset: 1, data: []float64{0, 1, 2}})...))
	f.Add(append([]byte{3}, appendEmbedding(nil, &embeddingMsg{header: header{stamp: t0}, tokens: 1, width: 2, data: []float32{1, 2}})...))
	f.Add(append([]byte{4}, appendString(nil, `{"version":1}`)...))
	f.Add([]byte{0, 255, 255, 255, 255})
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 {
			return
		}
		b := in[1:]
		var out []byte
		switch in[0] % 5 {
		case 0:
			m, err := decodeJointState(b, testJoints)
			if err != nil {
				return
			}
			out = appendJointState(nil, &m)
		case 1:
			m, err := decodeFloat32MultiArray(b)
			if err != nil {
				return
			}
			out = appendFloat32MultiArray(nil, &m)
		case 2:
			m, err := decodeFloat64MultiArray(b)
			if err != nil {
				return
			}
			out = appendFloat64MultiArray(nil, &m)
		case 3:
			m, err := decodeEmbedding(b)
			if err != nil {
				return
			}
			out = appendEmbedding(nil, &m)
		case 4:
			s, err := decodeString(b)
			if err != nil {
				return
			}
			_, _ = decodeMeta(s)
			out = appendString(nil, s)
		}
		if !bytes.Equal(out, b) {
			t.Fatalf("type %d: re-encoding differs:\n%x\n%x", in[0]%5, b, out)
		}
	})
}

// FuzzRead is the bag reader's entry point on arbitrary bytes: it must return an episode or an
// error, never panic or allocate beyond its bounds. Seeds are ~16 KiB (a bag header pads to 4 KiB),
// which makes the fuzzer's default 60 s minimization of each new input look like a hang: run it
// with -fuzzminimizetime 2s.
func FuzzRead(f *testing.F) {
	dir := f.TempDir()
	for i, cfg := range []WriterConfig{{}, {Compression: "lz4", Embedding: EmbeddingMultiArray}} {
		path := dir + "/seed" + string(rune('0'+i)) + ".bag"
		if err := WriteEpisode(path, synthEpisode(40*time.Millisecond), cfg); err != nil {
			f.Fatal(err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("#ROSBAG V2.0\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		// A small chunk limit keeps the fuzzer's memory in check; the bound is what is tested.
		ep, err := ReadFrom(bytes.NewReader(b), int64(len(b)), "fuzz.bag", Config{MaxChunkBytes: 1 << 20})
		if err != nil {
			if _, ok := err.(*BagError); !ok {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		// Align allocates one row per tick: keep mutated stamps from asking for millions.
		if span := ep.States[len(ep.States)-1].Stamp.Sub(ep.States[0].Stamp); span > time.Minute || ep.Meta.Rate > 1000 {
			return
		}
		if a, err := Align(ep, 0, ActionsFromCommand); err == nil {
			var s Sample
			a.SampleTo(&s, a.N-1, 3)
		}
	})
}
