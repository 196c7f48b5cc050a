package kern

import "time"

// PeakGFLOPS measures the single-thread multiply-add throughput of a's vector unit on this
// machine: a loop of independent vector FMAs (more chains than the FMA units' latency times
// their count, no memory operands) run in rounds for at least d, reporting the fastest round in
// GFLOP/s (a multiply-add counts 2). It is 0 for the pure-Go implementation, which has no such
// loop. It runs on the calling goroutine; other load on the core lowers it.
func (a *Arch) PeakGFLOPS(d time.Duration) float64 {
	if a.peak == nil {
		return 0
	}
	const iters = 1 << 16
	best := 0.0
	start := time.Now()
	for rounds := 0; rounds < 5 || time.Since(start) < d; rounds++ {
		t0 := time.Now()
		flops := a.peak(iters)
		if g := float64(flops) / time.Since(t0).Seconds() / 1e9; g > best {
			best = g
		}
	}
	return best
}
