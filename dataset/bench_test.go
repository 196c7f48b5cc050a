package dataset

import (
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// benchEpisode is 10 s of a 7-joint arm at 100 Hz with 16 x 256 embeddings at 5 Hz: 1000 joint
// states, 1000 commands and 50 embeddings, about 1.2 MB of messages.
func benchEpisode() *Episode {
	ep := &Episode{Meta: Meta{Version: MetaVersion, Task: "reach", Joints: []string{"j1", "j2", "j3", "j4", "j5", "j6", "j7"}, Rate: 100}}
	for i := range 1000 {
		st := t0.Add(time.Duration(i) * 10 * time.Millisecond)
		p := make([]float64, 7)
		for j := range p {
			p[j] = float64(i*j) * 1e-3
		}
		ep.States = append(ep.States, JointState{Stamp: st, Position: p, Velocity: p, Effort: p})
		ep.Actions = append(ep.Actions, Action{Stamp: st, Position: p})
		if i%20 == 0 {
			ep.Embeddings = append(ep.Embeddings, Embedding{Stamp: st, Tokens: 16, Width: 256, Data: make([]float32, 16*256)})
		}
	}
	return ep
}

func benchWrite(b *testing.B, cfg WriterConfig) {
	ep := benchEpisode()
	path := filepath.Join(b.TempDir(), "bench.bag")
	b.ReportAllocs()
	var size int64
	for b.Loop() {
		if err := WriteEpisode(path, ep, cfg); err != nil {
			b.Fatal(err)
		}
		fi, _ := os.Stat(path)
		size = fi.Size()
	}
	b.SetBytes(size)
}

func BenchmarkWrite(b *testing.B)    { benchWrite(b, WriterConfig{}) }
func BenchmarkWriteLZ4(b *testing.B) { benchWrite(b, WriterConfig{Compression: "lz4"}) }

func benchRead(b *testing.B, cfg WriterConfig) {
	path := filepath.Join(b.TempDir(), "bench.bag")
	if err := WriteEpisode(path, benchEpisode(), cfg); err != nil {
		b.Fatal(err)
	}
	fi, _ := os.Stat(path)
	b.SetBytes(fi.Size())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Read(path, Config{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRead(b *testing.B)    { benchRead(b, WriterConfig{}) }
func BenchmarkReadLZ4(b *testing.B) { benchRead(b, WriterConfig{Compression: "lz4"}) }
func BenchmarkReadMultiArray(b *testing.B) {
	benchRead(b, WriterConfig{Embedding: EmbeddingMultiArray})
}

func BenchmarkAlign(b *testing.B) {
	ep := benchEpisode()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Align(ep, 0, ActionsFromCommand); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSampleTo is windowing one sample: a 16 x 256 embedding, a state and a 50 x 7 chunk.
func BenchmarkSampleTo(b *testing.B) {
	a, err := Align(benchEpisode(), 0, ActionsFromCommand)
	if err != nil {
		b.Fatal(err)
	}
	var s Sample
	b.ReportAllocs()
	k := 0
	for b.Loop() {
		a.SampleTo(&s, k, 50)
		k = (k + 37) % a.N
	}
}

// BenchmarkLoader streams batches of 32 samples (H = 50) from 4 episodes on disk, reading
// included; one op is one batch.
func BenchmarkLoader(b *testing.B) {
	dir := b.TempDir()
	var paths []string
	for i := range 4 {
		p := filepath.Join(dir, string(rune('a'+i))+".bag")
		if err := WriteEpisode(p, benchEpisode(), WriterConfig{}); err != nil {
			b.Fatal(err)
		}
		paths = append(paths, p)
	}
	l, err := NewLoader(paths, LoaderConfig{Horizon: 50, BatchSize: 32, Resident: 2, Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	var batch Batch
	b.ReportAllocs()
	for b.Loop() {
		if err := l.Next(&batch); err != nil && err != io.EOF {
			b.Fatal(err)
		}
	}
}
