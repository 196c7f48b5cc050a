package policy

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/flowact/flowact/policy/chunk"
)

// planLog keeps every plan the loop shows, by tick.
type planLog struct{ plans map[int64][]float64 }

func (p *planLog) ObservePlan(k int64, rows []float64) {
	if len(rows) > 0 {
		p.plans[k] = slices.Clone(rows)
	}
}

// drifting answers each request with the ramp moved by its sequence number, so that each chunk
// differs from the one before and a committed row shows which chunk it came from.
type drifting struct{ rampInferer }

func (r *drifting) Infer(dst *chunk.Chunk, req *Request) error {
	if err := r.rampInferer.Infer(dst, req); err != nil {
		return err
	}
	for i := range dst.Data {
		dst.Data[i] += 1e-3 * float64(req.Seq)
	}
	copy(dst.Data, req.Prefix)
	return nil
}

// TestGuidedPrefix: with chunk.guided_prefix the guided loop also gives the expert the committed
// rows as a prefix, except those the previous plan placed in its last prefix_tail rows; without
// it, none. Either way every committed row (Frozen) is executed as the previous plan had it, not
// only the prefix's.
func TestGuidedPrefix(t *testing.T) {
	const rate, h = 100.0, 20
	for _, c := range []struct {
		on      bool
		tail    int // PrefixTail as configured
		latency time.Duration
	}{
		{false, 0, 55 * time.Millisecond},
		{true, 0, 55 * time.Millisecond}, // the default tail, 5
		{true, 3, 75 * time.Millisecond},
		{true, -1, 75 * time.Millisecond}, // no tail: the prefix is every committed row
		{true, 0, 0},
	} {
		t.Run(fmt.Sprintf("on=%v/tail=%d/%v", c.on, c.tail, c.latency), func(t *testing.T) {
			tail := c.tail
			switch tail {
			case 0:
				tail = chunk.DefaultPrefixTail
			case -1:
				tail = 0
			}
			clk := &simClock{now: time.Unix(9000, 0)}
			clk.end = clk.now.Add(3 * time.Second)
			drv := &lagDriver{model: armModel(), clk: clk, t0: clk.now, per: period(rate),
				start: make([]float64, 3), sent: map[int64][]float64{}}
			inf := &drifting{rampInferer{h: h, d: 3}}
			plans := &planLog{plans: map[int64][]float64{}}
			simulateToGoal(t, Config{Rate: rate, Threshold: 14, Chunk: chunk.Config{Strategy: chunk.Guided, GuidedPrefix: c.on, PrefixTail: c.tail}},
				Deps{Driver: drv, Inferer: inf, Clock: clk, Plan: plans}, clk, c.latency)
			if len(inf.reqs) < 10 {
				t.Fatalf("%d requests in 3 s", len(inf.reqs))
			}
			cut, whole := 0, 0
			for n, r := range inf.reqs[1:] {
				// The previous plan covers the rows with a positive guide weight (chunk.GuideWeights).
				left := 0
				for left < len(r.GuideWeights) && r.GuideWeights[left] > 0 {
					left++
				}
				want := 0
				if c.on {
					want = max(min(r.Frozen, left-tail), 0)
				}
				if got := len(r.Prefix) / 3; got != want {
					t.Fatalf("request %d at tick %d: a prefix of %d rows, want %d (%d committed, the previous plan %d rows from Start)", n+1, r.Tick, got, want, r.Frozen, left)
				}
				if !slices.Equal(r.Prefix, r.Guide[:want*3]) {
					t.Fatalf("request %d: the prefix is not the guide's first %d rows", n+1, want)
				}
				switch {
				case want > 0 && want < r.Frozen:
					cut++
				case want > 0:
					whole++
				}
			}
			if c.on && whole+cut == 0 {
				t.Fatal("no request was given a prefix")
			}
			if c.on && tail > 0 && c.latency > 0 && cut == 0 {
				t.Error("the tail never shortened a prefix: the case does not test it")
			}
			// Every committed row is executed as the plan before had it: the plan shown at the
			// arrival of request n's chunk agrees, over its committed rows, with the one before.
			checked := 0
			for _, r := range inf.reqs[1:] {
				for k := r.Tick + 1; k < r.Start+int64(r.Frozen); k++ {
					now, ok := plans.plans[k]
					if !ok {
						continue
					}
					var before []float64
					var bk int64
					for j := k - 1; j >= r.Tick-int64(h) && before == nil; j-- {
						before, bk = plans.plans[j], j
					}
					if before == nil {
						continue
					}
					for i := k; i < r.Start+int64(r.Frozen) && int(i-bk) < len(before)/3 && int(i-k) < len(now)/3; i++ {
						if got, was := now[(i-k)*3:(i-k+1)*3], before[(i-bk)*3:(i-bk+1)*3]; !slices.Equal(got, was) {
							t.Fatalf("tick %d: the committed row for tick %d changed from %v to %v at the arrival", k, i, was, got)
						}
						checked++
					}
					break
				}
			}
			if checked == 0 {
				t.Fatal("no committed row was checked")
			}
		})
	}
}
