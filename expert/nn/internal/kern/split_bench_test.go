package kern

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// splitProduct is one product C = A·M split between the threads of a region in one of three
// ways: "panels" (static halves of C's column panels, each thread packing all of A itself: no
// data written by one thread is read by the other) or "rows" (each thread its own tiles of
// rows of A and C, Split).
type splitProduct struct {
	how  string
	m    *Matrix
	a, c []float32
	rows int
	ws   [2][]float32
	flip int // added to the phase: which of a and c is A
}

func (s *splitProduct) Phase(part, parts, ph int) {
	m, ws := s.m, s.ws[part]
	a, c := s.a, s.c
	if (ph+s.flip)%2 == 1 { // a chain (square M): the previous phase's C is this one's A
		a, c = c, a
	}
	switch s.how {
	case "panels":
		ap, as, tmp := m.prepare(c, m.n, a, m.k, 1, s.rows, ws)
		j0, j1 := m.panels*part/parts, m.panels*(part+1)/parts
		m.run(c, m.n, ap, as, s.rows, false, j0, j1, tmp[:m.arch.mr*m.arch.nr])
	case "rows":
		lo, hi := m.arch.Split(s.rows, part, parts)
		if hi > lo {
			m.MulTo(c[lo*m.n:hi*m.n], a[lo*m.k:hi*m.k], hi-lo, false, ws)
		}
	}
}

// BenchmarkSplit compares, on the transformer's shapes, one thread with the Pool's product
// (panels taken from a shared counter; the caller packs A, the worker reads it; it reports how
// many of the product's panels the worker took) and with the two static splits of
// splitProduct run as one-phase regions, and with a chain of products, each one's A the
// previous one's C (as in a network: what one thread wrote, the other reads next).
//
//	go test -run '^$' -bench Split ./expert/nn/internal/kern/
func BenchmarkSplit(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	ar := Best()
	p := NewPool(2)
	defer p.Close()
	if p.Threads() < 2 {
		b.Skip("one processor")
	}
	for _, s := range []struct{ m, k, n int }{{50, 256, 256}, {50, 256, 1024}, {50, 1024, 256}} {
		w := ar.Pack(randSlice(r, s.k*s.n), s.k, s.n, F32)
		a, c := randSlice(r, s.m*s.k), make([]float32, s.m*s.n)
		ws := make([]float32, w.Scratch(s.m))
		name := fmt.Sprintf("%s/%dx%dx%d", ar.Name(), s.m, s.k, s.n)
		b.Run(name+"/one-thread", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				w.MulTo(c, a, s.m, false, ws)
			}
			reportGFLOPS(b, s.m, s.k, s.n)
		})
		b.Run(name+"/pool", func(b *testing.B) {
			w0 := p.wpanels.Load()
			for i := 0; i < b.N; i++ {
				p.MulTo(w, c, a, s.m, false, ws)
			}
			b.ReportMetric(float64(p.wpanels.Load()-w0)/float64(b.N), "worker-panels/op")

			reportGFLOPS(b, s.m, s.k, s.n)
		})
		for _, how := range []string{"panels", "rows"} {
			sp := &splitProduct{how: how, m: w, a: a, c: c, rows: s.m,
				ws: [2][]float32{make([]float32, w.Scratch(s.m)), make([]float32, w.Scratch(s.m))}}
			b.Run(name+"/"+how, func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					p.Run(sp, 1)
				}
				reportGFLOPS(b, s.m, s.k, s.n)
			})
		}
		if s.k != s.n {
			continue
		}
		// Chains of 8 products, C and A swapping roles; M scaled so that the values stay finite.
		sq := ar.Pack(randSlice(r, s.k*s.n), s.k, s.n, F32)
		sq.Scale(1 / 16.0)
		b.Run(name+"/chain/pool", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				for j := 0; j < 4; j++ {
					p.MulTo(sq, c, a, s.m, false, ws)
					p.MulTo(sq, a, c, s.m, false, ws)
				}
			}
			reportGFLOPS(b, 8*s.m, s.k, s.n)
		})
		for _, how := range []string{"panels", "rows"} {
			sp := &splitProduct{how: how, m: sq, a: a, c: c, rows: s.m,
				ws: [2][]float32{make([]float32, w.Scratch(s.m)), make([]float32, w.Scratch(s.m))}}
			b.Run(name+"/chain/"+how, func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					p.Run(sp, 8)
				}
				reportGFLOPS(b, 8*s.m, s.k, s.n)
			})
		}
		sp := &splitProduct{how: "rows", m: sq, a: a, c: c, rows: s.m,
			ws: [2][]float32{make([]float32, w.Scratch(s.m)), make([]float32, w.Scratch(s.m))}}
		b.Run(name+"/chain/rows-regions", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				for j := 0; j < 8; j++ {
					sp.flip = j % 2
					p.Run(sp, 1)
				}
			}
			reportGFLOPS(b, 8*s.m, s.k, s.n)
		})
		b.Run(name+"/chain/one-thread", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				for j := 0; j < 4; j++ {
					sq.MulTo(c, a, s.m, false, ws)
					sq.MulTo(a, c, s.m, false, ws)
				}
			}
			reportGFLOPS(b, 8*s.m, s.k, s.n)
		})
	}
}
