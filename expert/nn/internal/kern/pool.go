package kern

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Pool runs matrix products on up to two threads: the calling goroutine and, with Threads 2, one
// worker goroutine owned by the Pool. The caller packs A and publishes the product (a sequence
// number in an atomic); then both threads take C's column panels one at a time from a shared
// counter until none is left. The two never write the same element, and every element is summed
// in the same order as on one thread, so results are bit-identical.
//
// The worker spins on the sequence number while products keep coming (a channel hand-off per
// product costs a scheduler wake-up, which made two threads slower than one); after spinLimit
// idle polls it parks on a channel until the next product. Taking panels from a counter keeps a
// busy machine from making two threads slower than one: a worker that the OS has not run yet
// takes no panel, and the caller, having done them all, closes the product (one atomic
// compare-and-swap) instead of waiting; it waits only for a worker that joined, which finishes
// its last panel. Close stops the worker and waits for it. A Pool is not safe for concurrent
// use.
//
// The worker keeps one OS thread for its life (runtime.LockOSThread), so that a caller can bind
// it to CPUs (WorkerThread: its thread id, for sched_setaffinity); the thread ends with it.
type Pool struct {
	threads int
	seq     atomic.Uint64 // last published product
	state   atomic.Uint64 // product or region seq<<2 | open, joined, closed or alone
	done    atomic.Uint64 // last product the worker finished
	next    atomic.Int64  // next panel to take
	parked  atomic.Bool
	spin    atomic.Int64 // idle polls before the worker parks (SetSpin)
	quit    atomic.Bool
	wake    chan struct{}
	wg      sync.WaitGroup
	once    sync.Once
	tid     int // the worker's OS thread id (Linux; 0 elsewhere)
	job     job
	// Phases of a region that each thread finished: written by one thread, read by the other,
	// each on a cache line of its own so that one thread's store does not take the line the
	// other is polling (64-byte lines; 128 also keeps adjacent-line prefetch apart).
	_   [128]byte
	cph atomic.Int64 // the caller's
	_   [120]byte
	wph atomic.Int64 // the worker's
	_   [120]byte
	// The phase from which a worker that joined a region late runs part 1 (0: not handed over
	// yet).
	handoff atomic.Int64
	// Column panels the worker computed, over the Pool's life (BenchmarkSplit reports it).
	wpanels atomic.Int64
	// Stalls: skip is the number of regions the caller still runs alone, backoff the length of
	// the last such run; stalls counts the stalled regions and waited is the polls of the
	// caller's current wait, published every spinLimit polls (both for tests).
	skip, backoff int
	stalls        atomic.Int64
	waited        atomic.Int64
}

// Product states, the low two bits of Pool.state.
const (
	stOpen   = 0
	stJoined = 1
	stClosed = 2
	stAlone  = 3 // a region whose caller runs part 1 until the worker joins
)

type job struct {
	// A region (w non-nil): phases phases of w; else a product.
	w      Phased
	phases int

	m    *Matrix
	c    []float32
	ldc  int
	ap   []float32
	as   int
	rows int
	acc  bool
	tmp  []float32 // the worker's edge tile
	grab int       // panels taken at a time
}

// MinParallel is the product size rows·k·n (multiply-adds) from which Mul splits: a hand-off
// to a spinning worker costs well under a microsecond, about 30K multiply-adds at the kernels'
// speed; 2^17 keeps it below a few percent. Tiny products (time MLPs, modulation vectors of a
// narrow network) stay on one thread.
const MinParallel = 1 << 17

// grabWork is the least work, in multiply-adds, that a thread takes from a product's panel
// counter at a time: 64K, a few µs of a matrix-vector product.
const grabWork = 1 << 16

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
		ready := make(chan int)
		go p.work(ready)
		p.tid = <-ready
	}
	return p
}

// SetSpin sets how many polls the idle worker makes before it parks: spinLimit (the default,
// some tens of microseconds) when polls is smaller. A parked worker takes a scheduler wake-up
// (tens of microseconds) to join the next product; a caller whose products come in bursts with
// longer gaps between them (a training step: the framework's element-wise work between the
// products) keeps it spinning through the gaps this way, at the cost of the second core's time.
func (p *Pool) SetSpin(polls int) {
	if p != nil {
		p.spin.Store(int64(max(polls, spinLimit)))
	}
}

// RunAlone makes the next n regions (Run) run on the caller alone, as one part, as after a
// stall: for tests of work that must also be right that way.
func (p *Pool) RunAlone(n int) {
	if p != nil {
		p.skip = n
	}
}

// WorkerThread returns the OS thread id of the pool's worker goroutine, which keeps that thread
// for its life: 0 without a worker (one thread) or where thread ids are not known (not Linux).
func (p *Pool) WorkerThread() int {
	if p == nil {
		return 0
	}
	return p.tid
}

// Stalls returns the number of regions (Run) in which the caller waited at a barrier for a
// worker that had lost its core; each made the caller run the next regions alone.
func (p *Pool) Stalls() int64 {
	if p == nil {
		return 0
	}
	return p.stalls.Load()
}

// Threads reports how many threads the pool uses.
func (p *Pool) Threads() int {
	if p == nil {
		return 1
	}
	return p.threads
}

func (p *Pool) work(ready chan<- int) {
	defer p.wg.Done()
	runtime.LockOSThread() // never unlocked: the thread, maybe bound to CPUs, ends with the worker
	ready <- threadID()
	var last uint64
	for {
		spins := 0
		for p.seq.Load() == last {
			if p.quit.Load() {
				return
			}
			// Spin (spinLimit polls, or SetSpin's) without runtime.Gosched: the worker is
			// locked to its thread, and a locked goroutine that yields hands its processor to
			// another thread and waits for it to be handed back (two wake-ups); the runtime
			// preempts a spinning goroutine when it needs the processor.
			spins++
			if int64(spins) < max(spinLimit, p.spin.Load()) {
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
		// Join the product or region unless the caller already closed it (or moved on to a later
		// one); a region that the caller started alone, take over at its next phase.
		if !p.state.CompareAndSwap(last<<2|stOpen, last<<2|stJoined) {
			if !p.state.CompareAndSwap(last<<2|stAlone, last<<2|stJoined) {
				continue
			}
			var from int64
			for spins := 0; from == 0; spins++ {
				from = p.handoff.Load()
				if spins%spinLimit == spinLimit-1 {
					runtime.Gosched()
				}
			}
			p.region(p.job.w, p.job.phases, int(from))
			p.done.Store(last)
			continue
		}
		j := &p.job
		if j.w != nil {
			p.region(j.w, j.phases, 0)
			p.done.Store(last)
			continue
		}
		np, g := int64(j.m.panels), int64(j.grab)
		for q := p.next.Add(g) - g; q < np; q = p.next.Add(g) - g {
			for e := min(q+g, np); q < e; q++ {
				j.m.panel(j.c, j.ldc, j.ap, j.as, j.rows, j.acc, int(q), j.tmp)
			}
			p.wpanels.Add(g)
		}
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
	p.MulStrided(m, c, ldc, a, lda, 1, rows, acc, ws)
}

// MulStrided is Matrix.MulStrided (A's element (i, p) at a[i·ars + p·acs]), split over the
// pool's threads when the product is large enough.
func (p *Pool) MulStrided(m *Matrix, c []float32, ldc int, a []float32, ars, acs, rows int, acc bool, ws []float32) {
	if rows == 0 {
		return
	}
	if p == nil || p.threads < 2 || m.panels < 2 || rows*m.k*m.n < MinParallel {
		m.MulStrided(c, ldc, a, ars, acs, rows, acc, ws)
		return
	}
	ap, as, tmp := m.prepare(c, ldc, a, ars, acs, rows, ws)
	t := m.arch.mr * m.arch.nr
	// Panels per grab: at least grabWork multiply-adds, so that the threads do not take turns
	// at the counter's cache line for every few hundred ns of work (a matrix-vector product
	// by 256 x 9728, the transformer's modulation, has 304 panels of 8192).
	g := max(1, grabWork/(rows*m.k*m.arch.nr))
	p.job = job{m: m, c: c, ldc: ldc, ap: ap, as: as, rows: rows, acc: acc, tmp: tmp[t : 2*t], grab: g}
	p.next.Store(0)
	s := p.seq.Load() + 1
	p.state.Store(s<<2 | stOpen)
	p.seq.Store(s)
	p.signal()
	np, g64 := int64(m.panels), int64(g)
	for q := p.next.Add(g64) - g64; q < np; q = p.next.Add(g64) - g64 {
		for e := min(q+g64, np); q < e; q++ {
			m.panel(c, ldc, ap, as, rows, acc, int(q), tmp[:t])
		}
	}
	if !p.state.CompareAndSwap(s<<2|stOpen, s<<2|stClosed) {
		// The worker joined: wait for its last panel.
		for spins := 0; p.done.Load() != s; spins++ {
			if spins%spinLimit == spinLimit-1 {
				runtime.Gosched()
			}
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

// Phased is work for Pool.Run: parts that run concurrently, one per thread, in phases
// separated by barriers. Phase ph of a part starts once every part has finished phase ph-1.
// Within a phase a part writes only its own data and reads nothing that another part writes in
// that phase (so that the parts may also run one after the other; a buffer written in phase
// ph and read by every part in phase ph+1 is rewritten at the earliest in phase ph+2: double
// buffering).
type Phased interface {
	// Phase runs phase ph of part part of parts (parts is 1 or 2).
	Phase(part, parts, ph int)
}

// Run runs phases [0, phases) of w. On one thread: Phase(0, 1, ph) for every phase. On two,
// the caller runs part 0 and the worker part 1 of 2, with one barrier between phases (each
// thread publishes the phases it finished in an atomic on a cache line of its own, and polls
// the other's); the worker keeps its own rows' data in its own cache from phase to phase. If the
// worker has not joined by the time the caller finishes phase 0 (it was parked, or the OS has
// not run it: a busy machine), the caller runs both parts itself, phase by phase, so that a
// second thread never makes a region wait for the scheduler, and hands part 1 over at the first
// phase boundary after the worker joins (the worker must be able to join late: a worker that
// missed one long region would otherwise park and miss the next one too). A worker that lost its
// core in the middle of a phase does hold the caller at the next barrier; after such a stall
// (a wait of stallPolls and longer than the caller's own part of the phase) the caller runs the
// next regions alone, as one part (the same bits: the parts are cut at the kernels' tiles): 1
// of them, twice as many after each further stall, up to 64. It allocates nothing (w is typically a pointer, held in the interface as is).
func (p *Pool) Run(w Phased, phases int) {
	if phases <= 0 {
		return
	}
	if p == nil || p.threads < 2 || p.skip > 0 {
		if p != nil && p.skip > 0 {
			p.skip--
		}
		for ph := 0; ph < phases; ph++ {
			w.Phase(0, 1, ph)
		}
		return
	}
	p.job = job{w: w, phases: phases}
	p.waited.Store(0)
	p.cph.Store(0)
	p.wph.Store(0)
	p.handoff.Store(0)
	s := p.seq.Load() + 1
	p.state.Store(s<<2 | stOpen)
	p.seq.Store(s)
	p.signal()
	t0 := time.Now() // the start of the caller's last part 0
	w.Phase(0, 2, 0)
	k := 1 // the caller has run part 0 of phases [0, k)
	if p.state.CompareAndSwap(s<<2|stOpen, s<<2|stAlone) {
		// The worker is not there: both parts here, phase by phase, until it joins.
		w.Phase(1, 2, 0)
		for ; k < phases && p.state.Load() != s<<2|stJoined; k++ {
			t0 = time.Now()
			w.Phase(0, 2, k)
			w.Phase(1, 2, k)
		}
		if k == phases && p.state.CompareAndSwap(s<<2|stAlone, s<<2|stClosed) {
			p.job = job{}
			return
		}
		// It joined: part 1 of phases [k, phases) is its.
		p.wph.Store(int64(k))
		p.handoff.Store(int64(k))
	}
	// A stall: a wait of at least stallPolls polls and longer than the caller's own part of
	// the phase (so that an uneven split of long phases is not taken for one).
	stalled := false
	for ph := k; ph <= phases; ph++ {
		p.cph.Store(int64(ph))
		t1 := time.Now()
		if polls := p.waitFor(&p.wph, int64(ph)); polls >= stallPolls && time.Since(t1) > t1.Sub(t0) {
			stalled = true
		}
		if ph < phases {
			t0 = time.Now()
			w.Phase(0, 2, ph)
		}
	}
	// The worker finished its last phase; wait until it reads the job no more.
	for spins := 0; p.done.Load() != s; spins++ {
		if spins%spinLimit == spinLimit-1 {
			runtime.Gosched()
		}
	}
	p.job = job{}
	// A stall means that the worker lost its core in the middle of a phase (more runnable
	// threads than cores): then the next regions run on the caller alone, 1 at first, twice as
	// many after each further stall up to 64 (halved again by each region without one), so that
	// a loaded machine costs one stall per run of regions instead of one per barrier, and a
	// rare interruption on an idle one costs one region on one thread.
	if stalled {
		p.stalls.Add(1)
		p.backoff = min(max(2*p.backoff, 1), 64)
		p.skip = p.backoff
	} else {
		p.backoff /= 2
	}
}

// stallPolls is the least length of a barrier wait, in polls, taken for a stall: 16 yields of
// spinLimit polls, some hundreds of µs, above the imbalance of the networks' two parts (tens of
// µs a phase) and about the time slice the OS gives another runnable thread.
const stallPolls = 16 * spinLimit

// region is the worker's side of Run: part 1 of phases [from, phases).
func (p *Pool) region(w Phased, phases, from int) {
	for ph := from; ph < phases; ph++ {
		if ph > 0 {
			waitFor(&p.cph, int64(ph))
		}
		w.Phase(1, 2, ph)
		p.wph.Store(int64(ph + 1))
	}
}

// waitFor spins until v reaches n, yielding the processor every spinLimit polls.
func waitFor(v *atomic.Int64, n int64) {
	for spins := 0; v.Load() < n; spins++ {
		if spins%spinLimit == spinLimit-1 {
			runtime.Gosched()
		}
	}
}

// waitFor is the caller's waitFor: it returns the polls it made and publishes them in waited
// every spinLimit polls.
func (p *Pool) waitFor(v *atomic.Int64, n int64) int {
	spins := 0
	for ; v.Load() < n; spins++ {
		if spins%spinLimit == spinLimit-1 {
			p.waited.Store(int64(spins + 1))
			runtime.Gosched()
		}
	}
	return spins
}

// Split returns the rows [lo, hi) of part part of parts of rows rows, cut at multiples of the
// micro-tile's mr rows: products over the parts then cut A into the same tiles as one product
// over all rows, so every element is computed by the same kernel in the same order (the results
// are bit-identical whatever the number of parts). The last part takes the partial tile.
func (a *Arch) Split(rows, part, parts int) (lo, hi int) {
	tiles := (rows + a.mr - 1) / a.mr
	lo = min(rows, tiles*part/parts*a.mr)
	hi = min(rows, tiles*(part+1)/parts*a.mr)
	return lo, hi
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
