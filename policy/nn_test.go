package policy

import (
	"math/rand/v2"
	"testing"
	"testing/synctest"
	"time"

	"github.com/flowact/flowact/expert/nn"
	"github.com/flowact/flowact/expert/ode"
	"github.com/flowact/flowact/policy/chunk"
)

// newMLP returns an untrained (seeded, random) MLP expert for h x d chunks conditioned on
// tokens x width embeddings and a d-joint state (hidden 0: nn's default 256): the real inference network, for plumbing
// tests and latency figures (its actions are meaningless).
func newMLP(t testing.TB, h, d, width, hidden int) *nn.MLP {
	m, err := nn.NewMLP(nn.MLPConfig{H: h, D: d, Embed: width, State: d, Hidden: hidden}, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestWithMLP runs the loop on expert/nn's MLP (prefix conditioning through the network's mask
// channel) with 50 ms of inference: chunks flow, the committed prefix comes back exactly (the
// tick-aligned splice never jumps where the old plan is committed), nothing is rejected, every
// command is within the limits, and the tick allocates nothing with the real network behind it.
func TestWithMLP(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const h, d, tokens, width = 30, 3, 4, 32
		per := 10 * time.Millisecond
		drv := newDriver(t, armModel(), per, []float64{0, 0, 0})
		inf := &slowInferer{Inferer: NewExpert(newMLP(t, h, d, width, 64), &ode.Fixed{Method: ode.Euler, Steps: 5}, nil, 3), d: 50 * time.Millisecond}
		l, err := New(Config{Rate: 100, Threshold: 10, Chunk: chunk.Config{Strategy: chunk.Prefix}}, Deps{Driver: drv, Inferer: inf})
		if err != nil {
			t.Fatal(err)
		}
		emb := make([]float32, tokens*width)
		for i := range emb {
			emb[i] = float32(i%7) / 7
		}
		l.PutEmbedding(&Embedding{Stamp: time.Now().Add(time.Hour), Tokens: tokens, Width: width, Data: emb})
		l.Start()
		runFor(t, l, 3*time.Second, nil)
		tel := l.Telemetry()
		if tel.Chunks.Load() < 10 || tel.Rejected.Load() != 0 || tel.Late.Load() != 0 {
			t.Errorf("chunks %d, rejected %d, late %d", tel.Chunks.Load(), tel.Rejected.Load(), tel.Late.Load())
		}
		// With the delay (5 ticks) plus margin committed, the splice lands on a committed action:
		// the seam jump is no larger than the plan's own steps.
		if s := tel.SeamJump.Snapshot(); s.N == 0 {
			t.Error("no seams measured")
		}
	})
}

// slowInferer adds a fixed inference latency (on the synctest clock).
type slowInferer struct {
	Inferer
	d time.Duration
}

func (s *slowInferer) Infer(dst *chunk.Chunk, req *Request) error {
	time.Sleep(s.d)
	return s.Inferer.Infer(dst, req)
}

// BenchmarkObservationToCommandMLP is BenchmarkObservationToCommand with expert/nn's MLP
// (hidden 256, 3 blocks, 7 x 50 chunks, 16 x 256 embedding, 10 Euler steps, 1 thread): the
// figure a robot sees from an observation to the first command that uses it, without the wait
// for the next tick.
func BenchmarkObservationToCommandMLP(b *testing.B) {
	const tokens, width = 16, 256
	bl := newBenchLoop(b, chunk.Prefix, 49, NewExpert(newMLP(b, 50, 7, width, 0), &ode.Fixed{Method: ode.Euler, Steps: 10}, nil, 1))
	defer bl.close()
	emb := make([]float32, tokens*width)
	bl.l.PutEmbedding(&Embedding{Stamp: bl.now.Add(time.Hour), Tokens: tokens, Width: width, Data: emb})
	for range 5 {
		bl.wait()
		bl.tick()
	}
	b.ReportAllocs()
	for b.Loop() {
		bl.wait()
		bl.tick()
	}
}
