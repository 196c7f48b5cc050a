package kern

import (
	"runtime"
	"sync/atomic"
	"testing"
)

// chain is a Phased test network: phase ph computes, for each of its rows i, the new value
// buf[(ph+1)%2][i] = Σ_j buf[ph%2][j]·(i+j+1) mod 1e6 from every row of the previous phase (what
// attention needs of the other part's rows), so a missing barrier changes the result and, under
// -race, is reported. Part 0 of 2 waits in phase 0, a bounded number of yields, for part 1 to
// start, so that on an idle enough machine the worker joins; tids records the OS thread of each
// part's phase 0.
type chain struct {
	buf     [2][]int64
	started atomic.Bool
	tids    [2]int
	nowait  bool // part 0 does not wait for part 1 in phase 0
	last1   int  // the OS thread of part 1's last phase
	parts   int  // parts of the last phase part 0 ran in
	// stall, if set, is the pool: part 1's phase 1 then waits until the caller has polled for
	// a stall (a preempted worker, made deterministic), if it runs on the worker.
	stall *Pool
}

func (c *chain) Phase(part, parts, ph int) {
	n := len(c.buf[0])
	lo, hi := n*part/parts, n*(part+1)/parts
	if ph == 0 {
		c.tids[part] = threadID()
		if parts == 2 && part == 1 {
			c.started.Store(true)
		}
		for i := 0; part == 0 && parts == 2 && !c.nowait && !c.started.Load() && i < 10000; i++ {
			runtime.Gosched()
		}
	}
	if part == 1 {
		c.last1 = threadID()
		stall := c.stall != nil && ph == 1 && c.last1 == c.stall.WorkerThread()
		for i := 0; stall && c.stall.waited.Load() < stallPolls && i < 1e8; i++ {
			runtime.Gosched()
		}
	}
	if part == 0 {
		c.parts = parts
	}
	src, dst := c.buf[ph%2], c.buf[(ph+1)%2]
	for i := lo; i < hi; i++ {
		var s int64
		for j, v := range src {
			s = (s + v*int64(i+j+1)) % 1000003
		}
		dst[i] = s
	}
}

func newChain(n int) *chain {
	c := &chain{buf: [2][]int64{make([]int64, n), make([]int64, n)}}
	for i := range c.buf[0] {
		c.buf[0][i] = int64(i + 1)
	}
	return c
}

// TestPoolRun: a region gives the same result on one thread, on two, and on two whose worker
// never joins (the caller runs both parts); the worker runs part 1 when it joins; a region
// allocates nothing.
func TestPoolRun(t *testing.T) {
	const n, phases = 37, 7
	want := newChain(n)
	for ph := 0; ph < phases; ph++ {
		want.Phase(0, 1, ph)
	}
	check := func(what string, c *chain) {
		t.Helper()
		for i, v := range c.buf[phases%2] {
			if v != want.buf[phases%2][i] {
				t.Fatalf("%s: row %d = %d, want %d", what, i, v, want.buf[phases%2][i])
			}
		}
	}
	one := NewPool(1)
	c := newChain(n)
	one.Run(c, phases)
	check("one thread", c)

	// A pool of two whose worker was never started: the caller finds the region open after
	// phase 0 and runs it alone.
	alone := &Pool{threads: 2}
	c = newChain(n)
	runtime.LockOSThread() // so that the caller's thread id is one
	alone.Run(c, phases)
	runtime.UnlockOSThread()
	check("worker absent", c)
	if c.tids[1] != c.tids[0] {
		t.Fatalf("worker absent: part 1 ran on thread %d, the caller is %d", c.tids[1], c.tids[0])
	}

	p := NewPool(2)
	defer p.Close()
	if p.Threads() < 2 {
		t.Skip("GOMAXPROCS 1: one thread")
	}
	onWorker := 0
	for r := 0; r < 50; r++ {
		c = newChain(n)
		p.Run(c, phases)
		check("two threads", c)
		if c.tids[1] == p.WorkerThread() {
			onWorker++
		}
		// Products and regions interleave on one pool.
		if r%10 == 0 {
			w := Best().Pack(make([]float32, 64*64), 64, 64, F32)
			a := make([]float32, 40*64)
			p.MulTo(w, make([]float32, 40*64), a, 40, false, make([]float32, w.Scratch(40)))
		}
	}
	if runtime.GOOS == "linux" && onWorker == 0 {
		t.Fatal("two threads: part 1 never ran on the worker's thread")
	}
	t.Logf("part 1 on the worker in %d of 50 regions", onWorker)

	// Late joins: regions started while the worker is parked, part 0 not waiting for it, so
	// that the caller starts alone and the woken worker takes part 1 over between phases. On a
	// busy machine the woken worker may get a core only after a region; up to 50 regions of
	// 1000 phases (a few ms each) until one is taken over.
	const long = 1000
	want = newChain(n)
	for ph := 0; ph < long; ph++ {
		want.Phase(0, 1, ph)
	}
	late, tries := 0, 0
	runtime.LockOSThread()
	for ; tries < 50 && late == 0; tries++ {
		for i := 0; !p.parked.Load() && i < 1e6; i++ {
			runtime.Gosched()
		}
		c = newChain(n)
		c.nowait = true
		p.Run(c, long)
		for i, v := range c.buf[long%2] {
			if v != want.buf[long%2][i] {
				t.Fatalf("late join: row %d = %d, want %d", i, v, want.buf[long%2][i])
			}
		}
		if c.tids[1] == c.tids[0] && c.last1 == p.WorkerThread() {
			late++
		}
	}
	runtime.UnlockOSThread()
	if runtime.GOOS == "linux" && late == 0 {
		t.Fatal("the worker never took part 1 over in a region started without it")
	}
	t.Logf("first late join in region %d", tries)
	c = newChain(n)
	if a := testing.AllocsPerRun(20, func() { p.Run(c, phases) }); a != 0 {
		t.Fatalf("a region allocates %v", a)
	}
}

// TestPoolStall: after a region in which the worker held the caller at a barrier for a stall,
// the next region runs on the caller alone as one part, with the same results; then the
// worker is offered the next one again (two parts).
func TestPoolStall(t *testing.T) {
	const n, phases = 37, 4
	want := newChain(n)
	for ph := 0; ph < phases; ph++ {
		want.Phase(0, 1, ph)
	}
	if runtime.GOOS != "linux" {
		t.Skip("thread ids: Linux only")
	}
	p := NewPool(2)
	defer p.Close()
	if p.Threads() < 2 {
		t.Skip("GOMAXPROCS 1: one thread")
	}
	check := func(what string, c *chain) {
		t.Helper()
		for i, v := range c.buf[phases%2] {
			if v != want.buf[phases%2][i] {
				t.Fatalf("%s: row %d = %d, want %d", what, i, v, want.buf[phases%2][i])
			}
		}
	}
	// Until the worker joins a region in time and then stalls in it.
	for r := 0; p.stalls.Load() == 0; r++ {
		if r == 50 {
			t.Fatal("no stall in 50 regions")
		}
		c := newChain(n)
		c.stall = p
		p.Run(c, phases)
		check("stalled", c)
	}
	c := newChain(n)
	p.Run(c, phases)
	check("after a stall", c)
	if c.parts != 1 {
		t.Fatalf("the region after a stall ran in %d parts, want 1", c.parts)
	}
	c = newChain(n)
	p.Run(c, phases)
	check("after the backoff", c)
	if c.parts != 2 {
		t.Fatalf("the region after the backoff ran in %d parts, want 2", c.parts)
	}

}

// TestSplit: parts cover the rows in order, without overlap, cut at multiples of mr.
func TestSplit(t *testing.T) {
	for _, ar := range Archs() {
		for _, rows := range []int{1, 2, 11, 12, 13, 50, 51, 100} {
			for parts := 1; parts <= 3; parts++ {
				next := 0
				for part := 0; part < parts; part++ {
					lo, hi := ar.Split(rows, part, parts)
					if lo != next || hi < lo || (hi < rows && hi%ar.mr != 0) {
						t.Fatalf("%s: %d rows, part %d of %d: [%d, %d), expected from %d", ar.Name(), rows, part, parts, lo, hi, next)
					}
					next = hi
				}
				if next != rows {
					t.Fatalf("%s: %d rows in %d parts end at %d", ar.Name(), rows, parts, next)
				}
			}
		}
	}
}
