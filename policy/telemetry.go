package policy

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sync/atomic"
	"time"

	"github.com/flowact/flowact/policy/chunk"
	"github.com/flowact/flowact/policy/safety"
)

// Histogram counts non-negative values in log-linear buckets, as HdrHistogram does: every
// power of two from 2^MinExp (about 1e-9) up to 2^(MaxExp+1) (about 1.7e10) is split into
// SubBuckets equal buckets, so any quantile is known to within half a bucket, at most
// 1/(2 SubBuckets) = 0.78% of its value (Quantile reports the bucket's midpoint, clamped to
// the exact Min and Max). Values below 2^MinExp, zero and negative ones count in a bucket of
// their own (reported as Min); values beyond the range in the top bucket (reported as Max). N,
// Sum, Min and Max are exact. Record is lock-free and allocates nothing; it may be called from
// any goroutine. The zero Histogram is not usable: use NewHistogram.
type Histogram struct {
	counts []atomic.Uint64 // [0]: zero and below the range; then NumBuckets
	n      atomic.Uint64
	sum    atomic.Uint64 // float64 bits
	min    atomic.Uint64 // float64 bits; +Inf when empty
	max    atomic.Uint64 // float64 bits; -Inf when empty
}

// The histogram's resolution and range.
const (
	SubBuckets = 64  // per power of two: 0.78% relative error
	MinExp     = -30 // 2^-30 s is about 1 ns
	MaxExp     = 33  // 2^34 is about 1.7e10
	subBits    = 6   // log2(SubBuckets)
	numBuckets = (MaxExp-MinExp+1)*SubBuckets + 1
)

// NewHistogram returns an empty histogram (32 KiB of counters).
func NewHistogram() *Histogram {
	h := &Histogram{counts: make([]atomic.Uint64, numBuckets)}
	h.min.Store(math.Float64bits(math.Inf(1)))
	h.max.Store(math.Float64bits(math.Inf(-1)))
	return h
}

// bucket returns the bucket index of v.
func bucket(v float64) int {
	if !(v >= 0x1p-30) {
		return 0
	}
	bits := math.Float64bits(v)
	e := int(bits>>52&0x7ff) - 1023
	if e > MaxExp {
		return numBuckets - 1
	}
	return 1 + (e-MinExp)<<subBits + int(bits>>(52-subBits)&(SubBuckets-1))
}

// bucketMid returns the midpoint of bucket i > 0.
func bucketMid(i int) float64 {
	i--
	e, sub := i>>subBits+MinExp, i&(SubBuckets-1)
	return math.Ldexp(1+(float64(sub)+0.5)/SubBuckets, e)
}

// Record adds one value. NaN and ±Inf are ignored: a snapshot is encoded as JSON, which has
// neither.
func (h *Histogram) Record(v float64) {
	if v != v || math.IsInf(v, 0) {
		return
	}
	h.counts[bucket(v)].Add(1)
	h.n.Add(1)
	for {
		old := h.sum.Load()
		if h.sum.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			break
		}
	}
	for {
		old := h.min.Load()
		if math.Float64frombits(old) <= v || h.min.CompareAndSwap(old, math.Float64bits(v)) {
			break
		}
	}
	for {
		old := h.max.Load()
		if math.Float64frombits(old) >= v || h.max.CompareAndSwap(old, math.Float64bits(v)) {
			break
		}
	}
}

// HistogramSnapshot is a copy of a histogram: the counts of buckets Offset, Offset+1, ... (the
// others are empty), and the exact count, sum, minimum and maximum. The zero value is an empty
// histogram; Merge adds another.
type HistogramSnapshot struct {
	Offset int      `json:"offset"`
	Counts []uint64 `json:"counts"`
	N      uint64   `json:"n"`
	Sum    float64  `json:"sum"`
	Min    float64  `json:"min"`
	Max    float64  `json:"max"`
}

// Snapshot copies the histogram (allocates the non-empty range of its buckets).
func (h *Histogram) Snapshot() HistogramSnapshot {
	s := HistogramSnapshot{N: h.n.Load(), Sum: math.Float64frombits(h.sum.Load())}
	if s.N == 0 {
		return s
	}
	s.Min, s.Max = math.Float64frombits(h.min.Load()), math.Float64frombits(h.max.Load())
	lo, hi := -1, -1
	for i := range h.counts {
		if h.counts[i].Load() != 0 {
			if lo < 0 {
				lo = i
			}
			hi = i
		}
	}
	if lo < 0 {
		return s
	}
	s.Offset, s.Counts = lo, make([]uint64, hi-lo+1)
	for i := range s.Counts {
		s.Counts[i] = h.counts[lo+i].Load()
	}
	return s
}

// Merge adds o's values to s (s's counts are copied, never shared with o).
func (s *HistogramSnapshot) Merge(o HistogramSnapshot) {
	if o.N == 0 {
		return
	}
	if s.N == 0 {
		*s = o
		s.Counts = slices.Clone(o.Counts)
		return
	}
	lo := min(s.Offset, o.Offset)
	hi := max(s.Offset+len(s.Counts), o.Offset+len(o.Counts))
	c := make([]uint64, hi-lo)
	for i, n := range s.Counts {
		c[s.Offset-lo+i] += n
	}
	for i, n := range o.Counts {
		c[o.Offset-lo+i] += n
	}
	s.Offset, s.Counts = lo, c
	s.N += o.N
	s.Sum += o.Sum
	s.Min, s.Max = math.Min(s.Min, o.Min), math.Max(s.Max, o.Max)
}

// Mean returns the mean value (0 when empty).
func (s HistogramSnapshot) Mean() float64 {
	if s.N == 0 {
		return 0
	}
	return s.Sum / float64(s.N)
}

// Quantile returns the q-quantile (the value of rank ceil(q N), at least 1), within 0.78% of
// its value: the midpoint of its bucket, clamped to [Min, Max]; ranks 1 and N are Min and Max
// exactly. 0 when empty.
func (s HistogramSnapshot) Quantile(q float64) float64 {
	if s.N == 0 {
		return 0
	}
	rank := max(uint64(math.Ceil(q*float64(s.N))), 1)
	switch {
	case rank == 1:
		return s.Min // the smallest value, exactly
	case rank >= s.N:
		return s.Max
	}
	var acc uint64
	for i, c := range s.Counts {
		acc += c
		if acc >= rank {
			b := s.Offset + i
			if b == 0 {
				return s.Min
			}
			return math.Min(math.Max(bucketMid(b), s.Min), s.Max)
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
	Refused     atomic.Uint64 // commands the driver's full queue refused (robot.ErrBusy): the filter went back
	HoldTicks   atomic.Uint64 // ticks in which the robot was held or decelerated while running
	Gated       atomic.Uint64 // chunks not executed because their spread exceeded gate.max_spread, or their state gate.max_state_out

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

	Spread   *Histogram // the spread of each chunk that reported one (normalized units; Config.Gate)
	StateOut *Histogram // how far beyond the training data's range the state of each chunk that lay outside it was (sd; chunk.Chunk.StateOut)
}

func newTelemetry(strategy chunk.Strategy) *Telemetry {
	return &Telemetry{
		TickPeriod: NewHistogram(), TickJitter: NewHistogram(), TickCost: NewHistogram(),
		Inference: NewHistogram(), ObsToCommand: NewHistogram(),
		Delay: NewHistogram(), QueueDepth: NewHistogram(),
		Strategy: strategy,
		SeamJump: NewHistogram(), SeamVel: NewHistogram(), SeamAcc: NewHistogram(), SeamJerk: NewHistogram(),
		Spread: NewHistogram(), StateOut: NewHistogram(),
	}
}

func (t *Telemetry) recordSeam(s chunk.Seam) {
	t.SeamJump.Record(s.Jump)
	t.SeamVel.Record(s.Velocity)
	t.SeamAcc.Record(s.Acceleration)
	t.SeamJerk.Record(s.Jerk)
}

// Snapshot is a copy of the loop's state and telemetry for diagnostics, reports and recorders.
type Snapshot struct {
	Time     time.Time      `json:"time"`
	State    safety.State   `json:"state"`
	Cause    string         `json:"cause,omitempty"` // the latched fault's cause
	Level    Level          `json:"level"`
	Message  string         `json:"message"` // the state, and why the level is not OK
	Strategy chunk.Strategy `json:"strategy"`
	Rate     float64        `json:"rate"`
	DelayEst int            `json:"delay_estimate"` // ticks
	Counters Counters       `json:"counters"`
	Clamps   Clamps         `json:"clamps"` // per safety.Kind, all joints
	Trips    Trips          `json:"trips"`  // starts per safety.Trip
	Active   []safety.Trip  `json:"active"` // the level trips active now
	Hist     Histograms     `json:"histograms"`
}

// Counters are Telemetry's counters, and the watchdogs' dropped events.
type Counters struct {
	Ticks         uint64 `json:"ticks"`
	Overruns      uint64 `json:"overruns"`
	Requests      uint64 `json:"requests"`
	Chunks        uint64 `json:"chunks"`
	Late          uint64 `json:"late"`
	Rejected      uint64 `json:"rejected"`
	Stale         uint64 `json:"stale"`
	ReadErrors    uint64 `json:"read_errors"`
	WriteErrors   uint64 `json:"write_errors"`
	Refused       uint64 `json:"refused"`
	HoldTicks     uint64 `json:"hold_ticks"`
	Gated         uint64 `json:"gated"`
	EventsDropped uint64 `json:"events_dropped"`
}

// Histograms are Telemetry's histograms, copied; units as Telemetry's fields.
type Histograms struct {
	TickPeriod   HistogramSnapshot `json:"tick_period_s"`
	TickJitter   HistogramSnapshot `json:"tick_jitter_s"`
	TickCost     HistogramSnapshot `json:"tick_cost_s"`
	Inference    HistogramSnapshot `json:"inference_s"`
	ObsToCommand HistogramSnapshot `json:"obs_to_command_s"`
	Delay        HistogramSnapshot `json:"delay_ticks"`
	QueueDepth   HistogramSnapshot `json:"queue_depth"`
	SeamJump     HistogramSnapshot `json:"seam_jump_rad"`
	SeamVel      HistogramSnapshot `json:"seam_velocity_rad_s"`
	SeamAcc      HistogramSnapshot `json:"seam_acceleration_rad_s2"`
	SeamJerk     HistogramSnapshot `json:"seam_jerk_rad_s3"`
	Spread       HistogramSnapshot `json:"spread"`
	StateOut     HistogramSnapshot `json:"state_out"`
}

// Clamps counts the safety filter's clamps per kind (safety.Kind); JSON names them.
type Clamps [safety.NumKinds]uint64

// Total is the sum over kinds.
func (c *Clamps) Total() uint64 {
	var n uint64
	for _, v := range c {
		n += v
	}
	return n
}

// MarshalJSON writes an object keyed by kind name.
func (c Clamps) MarshalJSON() ([]byte, error) {
	m := make(map[string]uint64, len(c))
	for k, v := range c {
		m[safety.Kind(k).String()] = v
	}
	return json.Marshal(m)
}

// Trips counts watchdog trips per kind (safety.Trip); JSON names them.
type Trips [safety.NumTrips]uint64

// MarshalJSON writes an object keyed by trip name.
func (t Trips) MarshalJSON() ([]byte, error) {
	m := make(map[string]uint64, len(t))
	for k, v := range t {
		m[safety.Trip(k).String()] = v
	}
	return json.Marshal(m)
}

// Level is a diagnostic level, as diagnostic_msgs/DiagnosticStatus.
type Level int8

const (
	OK Level = iota
	Warn
	Error
)

// String returns OK, WARN or ERROR.
func (l Level) String() string {
	switch l {
	case OK:
		return "OK"
	case Warn:
		return "WARN"
	case Error:
		return "ERROR"
	}
	return fmt.Sprintf("Level(%d)", int8(l))
}

// Recorder receives periodic snapshots (the fleet link implements it). Record runs on the
// loop's telemetry goroutine and should not block for long; s is the recorder's to keep.
type Recorder interface {
	Record(s *Snapshot)
}
