package train

import (
	"errors"
	"math/rand/v2"
	"testing"
)

// fakeExamples draws example k = r.IntN(4): embedding (k, 0), state (10, k) and actions
// 0, 1, ..., H*D-1 plus k, with min(k+1, H) recorded rows.
type fakeExamples struct{}

const fh, fd = 3, 2

func (fakeExamples) Shape() (h, d, tokens, width, state int) { return fh, fd, 1, 2, fd }

func (fakeExamples) DrawTo(r *rand.Rand, emb []float32, state, action []float64) int {
	k := r.IntN(4)
	emb[0], emb[1] = float32(k), 0
	state[0], state[1] = 10, float64(k)
	for i := range action {
		action[i] = float64(i + k)
	}
	return min(k+1, fh)
}

// half normalizes by halving.
type half struct{}

func (half) NormalizeState(dst []float32, src []float64) {
	for i, v := range src {
		dst[i] = float32(v / 2)
	}
}
func (half) NormalizeActions(dst []float32, src []float64) { half{}.NormalizeState(dst, src) }

// TestExampleSource: a batch holds B examples drawn with the trainer's stream, normalized, with
// their recorded lengths, and passes the trainer's checks; the same stream gives the same batch.
func TestExampleSource(t *testing.T) {
	src, err := NewExampleSource(fakeExamples{}, half{})
	if err != nil {
		t.Fatal(err)
	}
	b := Batch{B: 5}
	if err := src.Next(&b, rand.New(rand.NewPCG(4, 5))); err != nil {
		t.Fatal(err)
	}
	if err := b.check(fh, fd, 2, fd); err != nil {
		t.Fatal(err)
	}
	for i := range b.B {
		k := int(b.Embedding[2*i])
		if b.State[2*i] != 5 || b.State[2*i+1] != float32(k)/2 || b.Len[i] != min(k+1, fh) {
			t.Fatalf("example %d (k = %d): state %v, length %d", i, k, b.State[2*i:2*i+2], b.Len[i])
		}
		for j := range fh * fd {
			if got, want := b.Actions[i*fh*fd+j], float32(j+k)/2; got != want {
				t.Fatalf("example %d action %d = %v, want %v", i, j, got, want)
			}
		}
	}
	again := Batch{B: 5}
	src.Next(&again, rand.New(rand.NewPCG(4, 5)))
	for i := range b.Embedding {
		if b.Embedding[i] != again.Embedding[i] {
			t.Fatal("the same stream drew other examples")
		}
	}
	if _, err := NewExampleSource(nil, half{}); !errors.Is(err, ErrConfig) {
		t.Errorf("no examples: %v", err)
	}
}
