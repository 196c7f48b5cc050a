package policy

import (
	"math"
	"sort"
	"sync/atomic"
	"time"

	"github.com/flowact/flowact/policy/chunk"
	"github.com/flowact/flowact/policy/safety"
)

// Histogram counts values in fixed buckets: bucket i holds values <= Bounds[i] (and above
// Bounds[i-1]); a last bucket holds values above every bound. Record is lock-free and allocates
// nothing; it may be called from any goroutine.
type Histogram struct {
	bounds []float64
	counts []atomic.Uint64
	n      atomic.Uint64
	sum    atomic.Uint64 // float64 bits
	max    atomic.Uint64 // float64 bits of the largest value (values are >= 0 in practice)
}

// NewHistogram returns a histogram with the given increasing bucket bounds.
func NewHistogram(bounds []float64) *Histogram {
	if !sort.Float64sAreSorted(bounds) {
		panic("policy: histogram bounds not increasing")
	}
	return &Histogram{bounds: append([]float64(nil), bounds...), counts: make([]atomic.Uint64, len(bounds)+1)}
}

// ExpBounds returns n bounds lo, lo*f, lo*f^2, ...
func ExpBounds(lo, f float64, n int) []float64 {
	b := make([]float64, n)
	for i := range b {
		b[i] = lo * math.Pow(f, float64(i))
	}
	return b
}

// Record adds one value. NaN is ignored.
func (h *Histogram) Record(v float64) {
	if v != v {
		return
	}
	i := sort.SearchFloat64s(h.bounds, v) // first bound >= v
	h.counts[i].Add(1)
	h.n.Add(1)
	for {
		old := h.sum.Load()
		if h.sum.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			break
		}
	}
	for {
		old := h.max.Load()
		if h.n.Load() > 1 && math.Float64frombits(old) >= v {
			break
		}
		if h.max.CompareAndSwap(old, math.Float64bits(v)) {
			break
		}
	}
}

// HistogramSnapshot is a copy of a histogram's state.
type HistogramSnapshot struct {
	Bounds []float64 `json:"bounds"`
	Counts []uint64  `json:"counts"` // len(Bounds)+1
	N      uint64    `json:"n"`
	Sum    float64   `json:"sum"`
	Max    float64   `json:"max"`
}

// Snapshot copies the histogram (allocates).
func (h *Histogram) Snapshot() HistogramSnapshot {
	s := HistogramSnapshot{Bounds: h.bounds, Counts: make([]uint64, len(h.counts)), N: h.n.Load(),
		Sum: math.Float64frombits(h.sum.Load()), Max: math.Float64frombits(h.max.Load())}
	for i := range h.counts {
		s.Counts[i] = h.counts[i].Load()
	}
	return s
}

// Mean returns the mean value (0 when empty).
func (s HistogramSnapshot) Mean() float64 {
	if s.N == 0 {
		return 0
	}
	return s.Sum / float64(s.N)
}

// Quantile returns the upper bound of the bucket holding quantile q (the Max for the last).
func (s HistogramSnapshot) Quantile(q float64) float64 {
	var total uint64
	for _, c := range s.Counts {
		total += c
	}
	if total == 0 {
		return 0
	}
	want := uint64(math.Ceil(q * float64(total)))
	var acc uint64
	for i, c := range s.Counts {
		acc += c
		if acc >= want && c > 0 {
			if i < len(s.Bounds) {
				return math.Min(s.Bounds[i], s.Max)
			}
			return s.Max
		}
	}
	return s.Max
}

// Telemetry are the loop's counters and histograms. Every field is safe to read while the loop
// runs.
type Telemetry struct {
	Ticks       atomic.Uint64 // ticks run
	Overruns    atomic.Uint64 // deadlines missed (skipped)
	Requests    atomic.Uint64 // chunks asked for
	Chunks      atomic.Uint64 // chunks spliced
	Late        atomic.Uint64 // chunks dropped because all their actions were in the past
	Rejected    atomic.Uint64 // chunks rejected (NaN/Inf, shape) or failed inferences
	Stale       atomic.Uint64 // chunks dropped because the joint state went stale meanwhile
	ReadErrors  atomic.Uint64 // ReadState errors
	WriteErrors atomic.Uint64 // WriteCommand errors
	HoldTicks   atomic.Uint64 // ticks in which the robot was held or decelerated while running

	TickPeriod   *Histogram // s between consecutive tick starts
	TickJitter   *Histogram // s a tick started after its deadline
	TickCost     *Histogram // s of computation in a tick
	Inference    *Histogram // s from request to result, measured by the worker
	ObsToCommand *Histogram // s from the observation's joint state stamp to the first command from its chunk
	Delay        *Histogram // ticks from observation to arrival
	QueueDepth   *Histogram // actions left in the plan at a chunk's arrival

	Strategy chunk.Strategy
	SeamJump *Histogram // rad
	SeamVel  *Histogram // rad/s
	SeamAcc  *Histogram // rad/s^2
	SeamJerk *Histogram // rad/s^3
}

func newTelemetry(strategy chunk.Strategy) *Telemetry {
	secs := ExpBounds(1e-6, 2, 25)  // 1 us .. 16.8 s, doubling
	ticks := ExpBounds(1, 1.5, 20)  // 1 .. 2217 ticks
	rad := ExpBounds(1e-6, 2, 24)   // 1 urad .. 8.4 rad
	big := ExpBounds(1e-3, 2.5, 24) // rates: 1e-3 .. 1.4e6
	return &Telemetry{
		TickPeriod: NewHistogram(secs), TickJitter: NewHistogram(secs), TickCost: NewHistogram(secs),
		Inference: NewHistogram(secs), ObsToCommand: NewHistogram(secs),
		Delay: NewHistogram(append([]float64{0}, ticks...)), QueueDepth: NewHistogram(append([]float64{0}, ticks...)),
		Strategy: strategy,
		SeamJump: NewHistogram(rad), SeamVel: NewHistogram(big), SeamAcc: NewHistogram(big), SeamJerk: NewHistogram(big),
	}
}

func (t *Telemetry) recordSeam(s chunk.Seam) {
	t.SeamJump.Record(s.Jump)
	t.SeamVel.Record(s.Velocity)
	t.SeamAcc.Record(s.Acceleration)
	t.SeamJerk.Record(s.Jerk)
}

// Snapshot is a copy of the loop's state and telemetry for diagnostics and recorders.
type Snapshot struct {
	Time      time.Time                    `json:"time"`
	State     safety.State                 `json:"state"`
	Cause     string                       `json:"cause,omitempty"` // the latched fault's cause
	Level     Level                        `json:"level"`
	Message   string                       `json:"message"`
	Strategy  chunk.Strategy               `json:"strategy"`
	Rate      float64                      `json:"rate"`
	DelayEst  int                          `json:"delay_estimate"` // ticks
	Counters  map[string]uint64            `json:"counters"`
	Clamps    map[string]uint64            `json:"clamps"` // per safety.Kind, all joints
	Trips     map[string]uint64            `json:"trips"`  // per safety.Trip
	Active    []string                     `json:"active"` // active trips
	Histogram map[string]HistogramSnapshot `json:"histograms"`
}

// Level is a diagnostic level, as diagnostic_msgs/DiagnosticStatus.
type Level int8

const (
	OK Level = iota
	Warn
	Error
)

// Recorder receives periodic snapshots (the fleet link implements it). Record runs on the
// loop's telemetry goroutine and should not block for long; s is the recorder's to keep.
type Recorder interface {
	Record(s *Snapshot)
}
