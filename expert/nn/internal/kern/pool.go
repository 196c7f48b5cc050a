package kern

import "sync"

// Pool runs Gemm on up to two threads: the calling goroutine and, when Threads is 2, one worker
// goroutine owned by the Pool. The worker computes the right half of C's columns while the caller
// computes the left half; the two never write the same element. Close stops and waits for the
// worker. A Pool is not safe for concurrent use.
type Pool struct {
	req  chan task
	done chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

type task struct {
	c, a, b []float32
	m, k, n int
	j0, j1  int
	acc     bool
}

// minParallel is the product size m·k·n below which Gemm stays on one thread. A hand-off to the
// worker costs a few microseconds on an idle machine but up to a scheduler time slice on a busy
// one; below 2M multiply-adds (about half a millisecond of work) splitting does not pay. At batch
// 1 this keeps the reference MLP's matrix-vector products on one thread and splits the
// transformer's (51-row) products.
const minParallel = 1 << 21

// NewPool returns a pool using threads threads (1 or 2; other values are clamped).
func NewPool(threads int) *Pool {
	p := &Pool{}
	if threads >= 2 {
		p.req = make(chan task)
		p.done = make(chan struct{})
		p.wg.Add(1)
		go p.work()
	}
	return p
}

func (p *Pool) work() {
	defer p.wg.Done()
	for t := range p.req {
		gemmCols(t.c, t.a, t.b, t.m, t.k, t.n, t.j0, t.j1, t.acc)
		p.done <- struct{}{}
	}
}

// Threads reports how many threads the pool uses.
func (p *Pool) Threads() int {
	if p == nil || p.req == nil {
		return 1
	}
	return 2
}

// Gemm is the package-level Gemm, split over the pool's threads when it is large enough.
func (p *Pool) Gemm(c, a, b []float32, m, k, n int, acc bool) {
	if p == nil || p.req == nil || m*k*n < minParallel || n < 16 {
		gemmCols(c, a, b, m, k, n, 0, n, acc)
		return
	}
	mid := (n / 2) &^ 7
	p.req <- task{c: c, a: a, b: b, m: m, k: k, n: n, j0: mid, j1: n, acc: acc}
	gemmCols(c, a, b, m, k, n, 0, mid, acc)
	<-p.done
}

// Linear computes y = x·w + bias for x of shape m×k, w of shape k×n and bias of length n
// (nil for none).
func (p *Pool) Linear(y, x, w, bias []float32, m, k, n int) {
	p.Gemm(y, x, w, m, k, n, false)
	if bias != nil {
		AddRow(y, bias, m, n)
	}
}

// Close stops the worker goroutine and waits for it. It is idempotent.
func (p *Pool) Close() {
	if p == nil || p.req == nil {
		return
	}
	p.once.Do(func() {
		close(p.req)
		p.wg.Wait()
	})
}
