package dataset

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/flowact/flowact/robot"
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
			ep.Embeddings = append(ep.Embeddings, robot.Embedding{Stamp: st, Tokens: 16, Width: 256, Data: make([]float32, 16*256)})
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

// BenchmarkDrawTo draws training examples (H = 50, joints and end effector, relative actions)
// from 4 episodes held in memory; one op is one example.
func BenchmarkDrawTo(b *testing.B) {
	var eps []*Aligned
	for range 4 {
		a, err := Align(benchEpisode(), 0, ActionsFromCommand)
		if err != nil {
			b.Fatal(err)
		}
		eps = append(eps, a)
	}
	fk := func(q []float64) [3]float64 { return [3]float64{q[0], 0, 0} }
	x, err := NewExamples(eps, ExamplesConfig{Horizon: 50, Relative: true, EndEffector: fk})
	if err != nil {
		b.Fatal(err)
	}
	h, d, tokens, width, sd := x.Shape()
	emb, state, action := make([]float32, tokens*width), make([]float64, sd), make([]float64, h*d)
	r := rand.New(rand.NewPCG(1, 2))
	b.ReportAllocs()
	for b.Loop() {
		x.DrawTo(r, emb, state, action)
	}
}
