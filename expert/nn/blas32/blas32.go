// Package blas32 gives gonum's BLAS interface (gonum.org/v1/gonum/blas) flowact's float32 matrix
// products, for gorgonia's training graphs (gorgonia.Use): Sgemm runs on expert/nn's packed
// kernels (AVX-512, AVX2 or pure Go, whichever the CPU runs), every other routine is gonum's
// pure-Go implementation. No cgo.
//
// Sgemm packs op(B) into the kernels' panel layout on every call (in training both operands
// change every step) and packs op(A) by tiles as the networks' products do; alpha scales the
// packed B, beta scales C first (beta = 0 never reads C, as BLAS requires). On two threads
// (SetThreads) each packs half of op(B) and then computes its own block of C's rows. The sums
// run in the kernels' order, so results differ from gonum's in the last bits only.
package blas32

import (
	"sync"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"

	"github.com/flowact/flowact/expert/nn/internal/kern"
)

// Implementation is gonum's BLAS with Sgemm on flowact's kernels. Its zero value is ready (one
// thread); it is safe for concurrent use (products take turns on its scratch).
type Implementation struct {
	gonum.Implementation
	mu   sync.Mutex
	b    *kern.Matrix
	ws   [2][]float32 // scratch of the two parts of a product
	pool *kern.Pool   // nil: one thread
	job  product
	// split counts the products run as two row blocks (for tests).
	split int
}

// SetThreads makes Sgemm split its larger products over threads threads (1 or 2; other values
// are clamped): each thread packs half of op(B)'s column panels, then multiplies its own block
// of op(A)'s rows, packed by itself, by the whole of packed op(B) (kern.Pool.Run: one barrier
// between the two, a spinning worker goroutine). Row blocks are cut at the kernels' tiles, so
// every element is summed in the same order as on one thread and results do not change. Close
// stops the worker.
func (im *Implementation) SetThreads(threads int) {
	im.mu.Lock()
	defer im.mu.Unlock()
	if im.pool.Threads() == min(max(threads, 1), 2) {
		return
	}
	im.pool.Close()
	im.pool = nil
	if threads >= 2 {
		im.pool = kern.NewPool(threads)
		im.pool.SetSpin(trainingSpin)
	}
}

// Phased is work that Run splits over the threads: see Run.
type Phased interface {
	// Phase runs phase ph of part part of parts (1 or 2).
	Phase(part, parts, ph int)
}

// Run runs phases [0, phases) of w on the threads Sgemm uses, so that a training step's other
// work (the optimizer's update) shares its worker: on one thread Phase(0, 1, ph) for each phase;
// on two the caller runs part 0 and the worker part 1 of 2, with a barrier between phases. Within
// a phase a part writes only its own data and reads nothing another part writes in that phase
// (the parts may also run one after the other: a worker that is late, or lost its core, is not
// waited for; kern.Pool.Run). Run takes turns with Sgemm.
func (im *Implementation) Run(w Phased, phases int) {
	im.mu.Lock()
	defer im.mu.Unlock()
	im.pool.Run(w, phases)
}

// trainingSpin is how many polls the idle worker makes before it parks: 8M, some tens of
// milliseconds, longer than anything between a training step's products (the framework's
// element-wise work, the next batch's preparation), so that the worker never parks while a
// training runs. Parking is dear here: the worker is locked to its thread, and waking a parked
// locked goroutine hands processors between threads (measured with `go tool trace -pprof=sched`:
// with a 1M-poll spin the caller lost ~4 ms a step to the wake-ups, two threads were no faster
// than one; with this one, 1.15x and 1.27x on the default and the 6-block experts).
const trainingSpin = 1 << 23

// Threads reports how many threads Sgemm uses.
func (im *Implementation) Threads() int {
	im.mu.Lock()
	defer im.mu.Unlock()
	return im.pool.Threads()
}

// Close stops SetThreads' worker goroutine, if any; Sgemm then runs on one thread.
func (im *Implementation) Close() { im.SetThreads(1) }

// Sgemm computes C = alpha·op(A)·op(B) + beta·C for op(A) m×k and op(B) k×n.
func (im *Implementation) Sgemm(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int,
	b []float32, ldb int, beta float32, c []float32, ldc int) {
	if m == 0 || n == 0 || k == 0 || alpha == 0 || (tA != blas.NoTrans && tA != blas.Trans && tA != blas.ConjTrans) ||
		(tB != blas.NoTrans && tB != blas.Trans && tB != blas.ConjTrans) {
		// Degenerate products and bad arguments: gonum scales C or panics as BLAS says.
		im.Implementation.Sgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	im.mu.Lock()
	defer im.mu.Unlock()
	ar := kern.Best()
	mr, nr := ar.Tile()
	if im.b == nil || im.b.Cap() < (n+nr-1)/nr*nr*k {
		im.b = ar.NewMatrix(k, n, kern.F32)
	}
	im.b.Resize(k, n)
	g := &im.job
	*g = product{ar: ar, b: im.b, m: m, alpha: alpha, beta: beta, c: c, ldc: ldc,
		a: a, ars: lda, acs: 1, src: b, rs: ldb, cs: 1}
	if tA != blas.NoTrans {
		g.ars, g.acs = 1, lda
	}
	if tB != blas.NoTrans {
		g.rs, g.cs = 1, ldb
	}
	parts := 1
	if lo, hi := ar.Split(m, 1, 2); im.pool.Threads() == 2 && m*k*n >= kern.MinParallel && lo >= 2 && hi-lo >= 2 {
		// Two row blocks of at least two rows each: both take the tiled kernels that one
		// product over all rows takes (a single row would take the matrix-vector path).
		parts = 2
	}
	for p := range parts {
		// Part 0 may do the whole product: the pool runs a region on one thread after its
		// worker stalled (kern.Pool.Run).
		lo, hi := ar.Split(m, p, parts)
		if p == 0 {
			lo, hi = 0, m
		}
		if need := im.b.Scratch(max(hi-lo, mr)); len(im.ws[p]) < need {
			im.ws[p] = make([]float32, need)
		}
		g.ws[p] = im.ws[p]
	}
	if parts == 2 {
		im.split++
		im.pool.Run(g, 2)
	} else {
		g.Phase(0, 1, 0)
		g.Phase(0, 1, 1)
	}
	*g = product{}
}

// product is one Sgemm for kern.Pool.Run, in two phases: phase 0 packs a share of op(B)'s panels
// (scaled by alpha) and scales the part's rows of C by beta; phase 1 multiplies the part's rows
// of op(A) by the packed op(B).
type product struct {
	ar          *kern.Arch
	b           *kern.Matrix
	m           int
	alpha, beta float32
	c           []float32
	ldc         int
	a           []float32
	ars, acs    int // op(A)'s element (i, p) is a[i·ars + p·acs]
	src         []float32
	rs, cs      int // op(B)'s element (p, j) is src[p·rs + j·cs]
	ws          [2][]float32
}

func (g *product) Phase(part, parts, ph int) {
	lo, hi := g.ar.Split(g.m, part, parts)
	_, n := g.b.Dims()
	if ph == 0 {
		np := g.b.Panels()
		j0, j1 := np*part/parts, np*(part+1)/parts
		g.b.SetPanels(g.src, g.rs, g.cs, j0, j1)
		if g.alpha != 1 {
			g.b.ScalePanels(g.alpha, j0, j1)
		}
		if g.beta != 0 && g.beta != 1 {
			for i := lo; i < hi; i++ {
				kern.Scale(g.c[i*g.ldc:i*g.ldc+n], g.beta)
			}
		}
		return
	}
	if lo == hi {
		return
	}
	g.b.MulStrided(g.c[lo*g.ldc:], g.ldc, g.a[lo*g.ars:], g.ars, g.acs, hi-lo, g.beta != 0, g.ws[part])
}
