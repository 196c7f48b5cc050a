package kern

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// Pool runs matrix products on up to two threads: the calling goroutine and, with Threads 2, one
// worker goroutine owned by the Pool. The caller packs A, publishes the product (a sequence
// number in an atomic), computes the left half of C's column panels, and waits for the worker,
// which computes the right half. The two never write the same element, and every element is
// summed in the same order as on one thread, so results are bit-identical.
//
// The worker spins on the sequence number while products keep coming (a channel hand-off per
// product costs a scheduler wake-up, which made two threads slower than one); after spinLimit
// idle polls it parks on a channel until the next product. Close stops it and waits for it. A
// Pool is not safe for concurrent use.
type Pool struct {
	threads int
	seq     atomic.Uint64 // last published product
	done    atomic.Uint64 // last product the worker finished
	parked  atomic.Bool
	quit    atomic.Bool
	wake    chan struct{}
	wg      sync.WaitGroup
	once    sync.Once
	job     job
}

type job struct {
	m      *Matrix
	c      []float32
	ldc    int
	ap     []float32
	as     int
	rows   int
	acc    bool
	j0, j1 int
	tmp    []float32
}

// minParallel is the product size rows·k·n (multiply-adds) from which Mul splits: a hand-off
// to a spinning worker costs well under a microsecond, about 30K multiply-adds at the kernels'
// speed; 2^17 keeps it below a few percent. Tiny products (time MLPs, modulation vectors of a
// narrow network) stay on one thread.
const minParallel = 1 << 17

// spinLimit is how many polls the worker (and a waiting caller, between yields) makes before it
// parks (yields): at a few ns a poll, some tens of microseconds, longer than the gaps between
// a network's products and far shorter than the gaps between chunks.
const spinLimit = 1 << 14

// NewPool returns a pool using threads threads (1 or 2; other values are clamped). With one
// processor (GOMAXPROCS 1) a pool has one thread: a spinning worker would only steal the
// caller's time.
func NewPool(threads int) *Pool {
	p := &Pool{threads: 1}
	if threads >= 2 && runtime.GOMAXPROCS(0) >= 2 {
		p.threads = 2
		p.wake = make(chan struct{}, 1)
		p.wg.Add(1)
		go p.work()
	}
	return p
}

// Threads reports how many threads the pool uses.
func (p *Pool) Threads() int {
	if p == nil {
		return 1
	}
	return p.threads
}

func (p *Pool) work() {
	defer p.wg.Done()
	var last uint64
	for {
		spins := 0
		for p.seq.Load() == last {
			if p.quit.Load() {
				return
			}
			spins++
			if spins < spinLimit {
				continue
			}
			// Park: announce it, then look again, so that a product published in between is
			// not missed (the publisher wakes a parked worker).
			p.parked.Store(true)
			if p.seq.Load() != last || p.quit.Load() {
				if !p.parked.CompareAndSwap(true, false) {
					<-p.wake // the publisher saw us parked and sent a wake-up: take it
				}
				spins = 0
				continue
			}
			<-p.wake
			spins = 0
		}
		last = p.seq.Load()
		j := &p.job
		j.m.run(j.c, j.ldc, j.ap, j.as, j.rows, j.acc, j.j0, j.j1, j.tmp)
		p.done.Store(last)
	}
}

// signal wakes the worker if it parked.
func (p *Pool) signal() {
	if p.parked.Load() && p.parked.CompareAndSwap(true, false) {
		p.wake <- struct{}{}
	}
}

// Mul is Matrix.Mul, split over the pool's threads when the product is large enough. ws must
// hold m.Scratch(rows) floats.
func (p *Pool) Mul(m *Matrix, c []float32, ldc int, a []float32, lda, rows int, acc bool, ws []float32) {
	if rows == 0 {
		return
	}
	if p == nil || p.threads < 2 || m.panels < 2 || rows*m.k*m.n < minParallel {
		m.Mul(c, ldc, a, lda, rows, acc, ws)
		return
	}
	ap, as, tmp := m.prepare(c, ldc, a, lda, rows, ws)
	t := m.arch.mr * m.arch.nr
	mid := m.panels / 2
	p.job = job{m: m, c: c, ldc: ldc, ap: ap, as: as, rows: rows, acc: acc, j0: mid, j1: m.panels, tmp: tmp[t : 2*t]}
	s := p.seq.Add(1)
	p.signal()
	m.run(c, ldc, ap, as, rows, acc, 0, mid, tmp[:t])
	for spins := 0; p.done.Load() != s; spins++ {
		if spins%spinLimit == spinLimit-1 {
			runtime.Gosched()
		}
	}
	p.job = job{}
}

// MulTo is Mul for dense A and C.
func (p *Pool) MulTo(m *Matrix, c, a []float32, rows int, acc bool, ws []float32) {
	p.Mul(m, c, m.n, a, m.k, rows, acc, ws)
}

// Linear computes y = x·w + bias for x of rows×k (bias nil: none), the bias first copied to
// every row of y and the product accumulated onto it.
func (p *Pool) Linear(y []float32, w *Matrix, bias, x []float32, rows int, ws []float32) {
	if bias == nil {
		p.MulTo(w, y, x, rows, false, ws)
		return
	}
	FillRows(y, bias, rows, w.n)
	p.MulTo(w, y, x, rows, true, ws)
}

// Close stops the worker goroutine and waits for it. It is idempotent.
func (p *Pool) Close() {
	if p == nil || p.threads < 2 {
		return
	}
	p.once.Do(func() {
		p.quit.Store(true)
		p.signal()
		p.wg.Wait()
	})
}
