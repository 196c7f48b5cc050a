package sim

import "time"

// plan is a piecewise-linear reference: knots at increasing elapsed times t[head:], each with n
// positions in q. Before the first knot it gives the first knot's positions; after the last, the
// last's.
type plan struct {
	n      int
	active bool
	head   int
	t      []time.Duration
	q      []float64
}

func (p *plan) clear() { p.head, p.t, p.q = 0, p.t[:0], p.q[:0] }

// add appends a knot, compacting the consumed knots first.
func (p *plan) add(t time.Duration, q []float64) {
	if p.head > 0 {
		m := copy(p.t, p.t[p.head:])
		p.t = p.t[:m]
		copy(p.q, p.q[p.head*p.n:])
		p.q = p.q[:m*p.n]
		p.head = 0
	}
	p.t = append(p.t, t)
	p.q = append(p.q, q...)
}

// cut drops the knots at or after t.
func (p *plan) cut(t time.Duration) {
	k := len(p.t)
	for k > p.head && p.t[k-1] >= t {
		k--
	}
	p.t, p.q = p.t[:k], p.q[:k*p.n]
}

// trim drops the knots that no longer matter at time now: all but the last at or before now.
func (p *plan) trim(now time.Duration) {
	for p.head+1 < len(p.t) && p.t[p.head+1] <= now {
		p.head++
	}
}

// sample writes the reference at time t into dst.
func (p *plan) sample(dst []float64, t time.Duration) {
	n, k := p.n, len(p.t)
	i := p.head
	for i < k && p.t[i] <= t {
		i++
	}
	// p.t[i-1] <= t < p.t[i]
	switch {
	case i == p.head:
		copy(dst, p.q[i*n:(i+1)*n])
	case i == k:
		copy(dst, p.q[(k-1)*n:k*n])
	default:
		a, b := p.q[(i-1)*n:i*n], p.q[i*n:(i+1)*n]
		w := float64(t-p.t[i-1]) / float64(p.t[i]-p.t[i-1])
		for j := range dst[:n] {
			dst[j] = a[j] + w*(b[j]-a[j])
		}
	}
}

// sample is one joint-state measurement at elapsed time t.
type sample struct {
	t        time.Duration
	pos, vel []float64
}

// sensor is a ring of samples in time order, oldest at head.
type sensor struct {
	n      int
	buf    []sample
	head   int
	len    int
	frozen bool
	hold   sample // the sample repeated while frozen
}

// push appends a sample slot stamped t and returns it for filling, growing the ring when full.
func (s *sensor) push(t time.Duration) *sample {
	if s.len == len(s.buf) {
		nb := make([]sample, max(4, 2*len(s.buf)))
		for i := range s.len {
			nb[i] = s.buf[(s.head+i)%len(s.buf)]
		}
		for i := s.len; i < len(nb); i++ {
			nb[i] = sample{pos: make([]float64, s.n), vel: make([]float64, s.n)}
		}
		s.buf, s.head = nb, 0
	}
	smp := &s.buf[(s.head+s.len)%len(s.buf)]
	s.len++
	smp.t = t
	return smp
}

// visible returns the newest sample measured at or before t, dropping the older ones, or nil.
func (s *sensor) visible(t time.Duration) *sample {
	if s.len == 0 || s.buf[s.head].t > t {
		return nil
	}
	for s.len > 1 && s.buf[(s.head+1)%len(s.buf)].t <= t {
		s.head = (s.head + 1) % len(s.buf)
		s.len--
	}
	return &s.buf[s.head]
}

func (s *sensor) freeze(smp *sample) {
	if s.hold.pos == nil {
		s.hold = sample{pos: make([]float64, s.n), vel: make([]float64, s.n)}
	}
	copy(s.hold.pos, smp.pos)
	copy(s.hold.vel, smp.vel)
	s.frozen = true
}

// item is a delayed command or trajectory.
type item struct {
	due   time.Duration
	traj  bool
	start time.Duration   // trajectory start, elapsed
	tfs   []time.Duration // trajectory times from start
	pos   []float64
}

// queue is a FIFO of delayed items; items arrive in due order since the delay is constant.
type queue struct {
	n    int
	buf  []item
	head int
	len  int
}

func (q *queue) slot(due time.Duration) *item {
	if q.len == len(q.buf) {
		nb := make([]item, max(4, 2*len(q.buf)))
		for i := range q.len {
			nb[i] = q.buf[(q.head+i)%len(q.buf)]
		}
		q.buf, q.head = nb, 0
	}
	it := &q.buf[(q.head+q.len)%len(q.buf)]
	q.len++
	it.due = due
	return it
}

func (q *queue) pushCommand(due time.Duration, pos []float64) {
	it := q.slot(due)
	it.traj = false
	it.pos = append(it.pos[:0], pos...)
}

func (q *queue) pushTrajectory(due, start time.Duration, tfs []time.Duration, pos []float64) {
	it := q.slot(due)
	it.traj, it.start = true, start
	it.tfs = append(it.tfs[:0], tfs...)
	it.pos = append(it.pos[:0], pos...)
}

func (q *queue) peek() *item {
	if q.len == 0 {
		return nil
	}
	return &q.buf[q.head]
}

func (q *queue) pop() {
	q.head = (q.head + 1) % len(q.buf)
	q.len--
}
