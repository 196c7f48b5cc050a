package refnet

import (
	"math/rand/v2"
	"slices"
	"time"

	"github.com/flowact/flowact/expert/nn"
	"github.com/flowact/flowact/expert/nn/internal/kern"
)

// Peaks measures, on the calling goroutine, the FMA throughput of one core for every vector
// instruction set the CPU runs (the kernels' AVX-512 and AVX2 loops), each for about d: see
// kern.Arch.PeakGFLOPS. It is empty where there are none (the pure-Go kernels).
func Peaks(d time.Duration) []Peak {
	var out []Peak
	for _, a := range kern.Archs() {
		if g := a.PeakGFLOPS(d); g > 0 {
			out = append(out, Peak{ISA: a.Name(), GFLOPS: g})
		}
	}
	return out
}

// Product is one measured matrix product C = A·B, B packed as weights.
type Product struct {
	M, K, N int
	Prec    nn.Precision // of B
	Threads int
	Kernels string  // implementation
	Reps    int     // products timed
	Median  float64 // GFLOP/s, median over rounds of the products
	Best    float64 // GFLOP/s, fastest round
	Allocs  float64 // per product
}

// Name is "MxKxN".
func (p Product) Name() string { return fmtShape(p.M, p.K, p.N) }

// MeasureProduct times C = A·B with random operands for about d, in rounds of a few
// milliseconds, on threads threads (1 or 2).
func MeasureProduct(m, k, n, threads int, prec nn.Precision, d time.Duration) Product {
	r := rand.New(rand.NewPCG(uint64(m*k*n), 1))
	ar := kern.Best()
	a, b := make([]float32, m*k), make([]float32, k*n)
	for i := range a {
		a[i] = float32(r.NormFloat64())
	}
	for i := range b {
		b[i] = float32(r.NormFloat64())
	}
	w := ar.Pack(b, k, n, prec)
	ws := make([]float32, w.Scratch(m))
	c := make([]float32, m*n)
	p := kern.NewPool(threads)
	defer p.Close()
	res := Product{M: m, K: k, N: n, Prec: prec, Threads: threads, Kernels: ar.Name()}
	// Round size: about 2 ms of work at 50 GFLOP/s, at least one product.
	per := max(1, int(1e8/(2*float64(m*k*n))))
	p.MulTo(w, c, a, m, false, ws) // warm-up
	var rates []float64
	start := time.Now()
	for len(rates) < 5 || time.Since(start) < d {
		t0 := time.Now()
		for i := 0; i < per; i++ {
			p.MulTo(w, c, a, m, false, ws)
		}
		rates = append(rates, 2*float64(m*k*n)*float64(per)/time.Since(t0).Seconds()/1e9)
		res.Reps += per
	}
	slices.Sort(rates)
	res.Median, res.Best = rates[len(rates)/2], rates[len(rates)-1]
	return res
}
