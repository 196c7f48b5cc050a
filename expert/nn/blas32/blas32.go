// Package blas32 gives gonum's BLAS interface (gonum.org/v1/gonum/blas) flowact's float32 matrix
// products, for gorgonia's training graphs (gorgonia.Use): Sgemm runs on expert/nn's packed
// kernels (AVX-512, AVX2 or pure Go, whichever the CPU runs), every other routine is gonum's
// pure-Go implementation. No cgo.
//
// Sgemm packs op(B) into the kernels' panel layout on every call (in training both operands
// change every step) and packs op(A) by tiles as the networks' products do; alpha scales the
// packed B, beta scales C first (beta = 0 never reads C, as BLAS requires). The sums run in the
// kernels' order, so results differ from gonum's in the last bits only.
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
	ws   []float32
	pool *kern.Pool // nil: one thread
}

// SetThreads makes Sgemm split its larger products over threads threads (1 or 2; other values
// are clamped): C's column panels shared with a spinning worker goroutine (kern.Pool), each
// element summed in the same order as on one thread, so results do not change. Close stops the
// worker.
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
	}
}

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
		im.b = ar.NewMatrix(k, n, false)
	}
	im.b.Resize(k, n)
	if tB == blas.NoTrans {
		im.b.Set(b, ldb, 1)
	} else {
		im.b.Set(b, 1, ldb)
	}
	if alpha != 1 {
		im.b.Scale(alpha)
	}
	if need := im.b.Scratch(max(m, mr)); len(im.ws) < need {
		im.ws = make([]float32, need)
	}
	acc := beta != 0
	if acc && beta != 1 {
		for i := 0; i < m; i++ {
			kern.Scale(c[i*ldc:i*ldc+n], beta)
		}
	}
	if tA == blas.NoTrans {
		im.pool.MulStrided(im.b, c, ldc, a, lda, 1, m, acc, im.ws)
	} else {
		im.pool.MulStrided(im.b, c, ldc, a, 1, lda, m, acc, im.ws)
	}
}
