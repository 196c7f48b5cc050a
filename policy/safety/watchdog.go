package safety

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"sync/atomic"
	"time"
)

// Trip names a watchdog or guard.
type Trip uint8

const (
	EmbeddingStale   Trip = iota // the embedding is older than its limit: finish the committed actions, then hold
	StateStale                   // the joint state is older than its limit: decelerate to a stop
	Starved                      // the chunk queue ran out: hold
	ChunkRejected                // a chunk was NaN/Inf or the wrong shape, or its inference failed: dropped
	ChunkLate                    // a chunk arrived after its last action's tick: dropped
	Faulted                      // a fault latched
	EmbeddingInvalid             // the embedding has the wrong shape or non-finite values: no chunk is asked for with it
	StateInvalid                 // a joint state outside the limits or with an impossible jump: a fault latches
	NumTrips
)

var tripNames = [NumTrips]string{"embedding_stale", "state_stale", "starved", "chunk_rejected", "chunk_late", "fault",
	"embedding_invalid", "state_invalid"}

// MarshalText writes the trip's name (in JSON, for example).
func (t Trip) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// Level reports whether t is a level trip (active while its condition holds: Set) rather than a
// one-shot one (Fire).
func (t Trip) Level() bool {
	switch t {
	case EmbeddingStale, StateStale, Starved, EmbeddingInvalid:
		return true
	}
	return false
}

func (t Trip) String() string {
	if t < NumTrips {
		return tripNames[t]
	}
	return fmt.Sprintf("Trip(%d)", uint8(t))
}

// WatchdogConfig sets the staleness limits.
type WatchdogConfig struct {
	// EmbeddingMaxAge is how old the latest embedding may be before no new chunk is asked for;
	// 0 means 1 s (VLMs publish at a few Hz).
	EmbeddingMaxAge time.Duration `yaml:"embedding_max_age"`
	// StateMaxAge is how old the latest joint state may be before the robot is decelerated to a
	// stop; 0 means 100 ms (joint_states usually arrives at 100 Hz or faster).
	StateMaxAge time.Duration `yaml:"state_max_age"`
	// StateTolerance (rad or m) is how far a measured position may lie beyond the hard limits,
	// and how far a joint may move beyond what its velocity limit explains between two states,
	// before the state is refused and a running robot faults (StateGuard); 0 means
	// DefaultStateTolerance.
	StateTolerance float64 `yaml:"state_tolerance"`
	// LogInterval is the least time between two log lines of one trip kind; 0 means 1 s.
	LogInterval time.Duration `yaml:"log_interval"`
}

// WithDefaults returns c with zero fields replaced by their defaults.
func (c WatchdogConfig) WithDefaults() WatchdogConfig {
	if c.EmbeddingMaxAge == 0 {
		c.EmbeddingMaxAge = time.Second
	}
	if c.StateMaxAge == 0 {
		c.StateMaxAge = 100 * time.Millisecond
	}
	if c.LogInterval == 0 {
		c.LogInterval = time.Second
	}
	return c
}

// Validate rejects negative durations.
func (c *WatchdogConfig) Validate() error {
	if c.EmbeddingMaxAge < 0 {
		return fmt.Errorf("safety: watchdog.embedding_max_age %v is negative", c.EmbeddingMaxAge)
	}
	if c.StateMaxAge < 0 {
		return fmt.Errorf("safety: watchdog.state_max_age %v is negative", c.StateMaxAge)
	}
	if c.LogInterval < 0 {
		return fmt.Errorf("safety: watchdog.log_interval %v is negative", c.LogInterval)
	}
	if !(c.StateTolerance >= 0) || math.IsInf(c.StateTolerance, 0) {
		return fmt.Errorf("safety: watchdog.state_tolerance %g must be finite and >= 0", c.StateTolerance)
	}
	return nil
}

// Event is one watchdog transition: Active true when the trip started, false when it cleared
// (for the one-shot trips ChunkRejected, ChunkLate, Faulted and StateInvalid, Active is always
// true).
type Event struct {
	Trip   Trip
	Active bool
	Tick   int64
	At     time.Time
	Value  float64 // the age in s for staleness, the delay in ticks for ChunkLate, else 0
	// Cause says why, when there is more to say than Value: the fault's cause, the inferer's or
	// the chunk check's error. Events are queued without allocating: the error is formatted by
	// the logger.
	Cause error
}

// Watchdogs tracks which trips are active, counts their starts, and queues events for a
// rate-limited logger without blocking (a full queue drops the event and counts it).
type Watchdogs struct {
	active  [NumTrips]atomic.Bool
	trips   [NumTrips]atomic.Uint64
	dropped atomic.Uint64
	events  chan Event
}

// NewWatchdogs returns watchdogs with an event queue of the given capacity (>= 1).
func NewWatchdogs(queue int) *Watchdogs {
	if queue < 1 {
		queue = 1
	}
	return &Watchdogs{events: make(chan Event, queue)}
}

// Set records the state of a level trip (EmbeddingStale, StateStale, Starved,
// EmbeddingInvalid) at a tick; a change emits an event and a start counts a trip.
func (w *Watchdogs) Set(t Trip, on bool, tick int64, at time.Time, value float64) {
	w.SetCause(t, on, tick, at, value, nil)
}

// SetCause is Set with a cause for the start.
func (w *Watchdogs) SetCause(t Trip, on bool, tick int64, at time.Time, value float64, cause error) {
	if w.active[t].Load() == on {
		return
	}
	w.active[t].Store(on)
	if on {
		w.trips[t].Add(1)
	}
	w.emit(Event{Trip: t, Active: on, Tick: tick, At: at, Value: value, Cause: cause})
}

// Fire records a one-shot trip.
func (w *Watchdogs) Fire(t Trip, tick int64, at time.Time, value float64) {
	w.FireCause(t, tick, at, value, nil)
}

// FireCause records a one-shot trip with its cause.
func (w *Watchdogs) FireCause(t Trip, tick int64, at time.Time, value float64, cause error) {
	w.trips[t].Add(1)
	w.emit(Event{Trip: t, Active: true, Tick: tick, At: at, Value: value, Cause: cause})
}

func (w *Watchdogs) emit(e Event) {
	select {
	case w.events <- e:
	default:
		w.dropped.Add(1)
	}
}

// Active reports whether trip t is active.
func (w *Watchdogs) Active(t Trip) bool { return w.active[t].Load() }

// Count returns how many times trip t started.
func (w *Watchdogs) Count(t Trip) uint64 { return w.trips[t].Load() }

// Dropped returns how many events the full queue dropped.
func (w *Watchdogs) Dropped() uint64 { return w.dropped.Load() }

// Log drains the event queue into log until ctx ends. The first start of each trip kind is
// always logged, with its cause, and so is every fault; after that, starts and clears of a kind
// are each logged at most once per interval of the events' own time (the loop's clock), and the
// next line of that kind says how many were not (suppressed), with the last suppressed cause. A
// kind that went quiet with suppressed events gets a summary line once its interval has passed
// (at its next event of any kind) or when ctx ends. Its caller owns the goroutine that runs it.
func (w *Watchdogs) Log(ctx context.Context, log *slog.Logger, interval time.Duration) {
	type limiter struct {
		seen       bool
		last       time.Time // of the last logged line
		suppressed int
		lastCause  error // of the last suppressed event
		lastAt     time.Time
	}
	var starts, clears [NumTrips]limiter
	line := func(lvl slog.Level, msg string, e Event, suppressed int, lastCause error) {
		attrs := []slog.Attr{slog.Int64("tick", e.Tick), slog.Float64("value", e.Value)}
		if e.Cause != nil {
			attrs = append(attrs, slog.String("cause", e.Cause.Error()))
		}
		if suppressed > 0 {
			attrs = append(attrs, slog.Int("suppressed", suppressed))
			if lastCause != nil {
				attrs = append(attrs, slog.String("last_suppressed_cause", lastCause.Error()))
			}
		}
		log.LogAttrs(ctx, lvl, msg, attrs...)
	}
	flush := func(now time.Time, force bool) {
		for t := range NumTrips {
			for i, lm := range []*limiter{&starts[t], &clears[t]} {
				if lm.suppressed == 0 || !force && now.Sub(lm.last) < interval {
					continue
				}
				msg := "safety: " + t.String() + " repeated"
				if i == 1 {
					msg = "safety: " + t.String() + " cleared repeatedly"
				}
				log.LogAttrs(ctx, slog.LevelWarn, msg, slog.Int("suppressed", lm.suppressed), slog.Time("last_at", lm.lastAt))
				if lm.lastCause != nil {
					log.LogAttrs(ctx, slog.LevelWarn, msg+": last cause", slog.String("cause", lm.lastCause.Error()))
				}
				lm.suppressed, lm.lastCause, lm.last = 0, nil, now
			}
		}
	}
	for {
		select {
		case <-ctx.Done():
			if log != nil {
				flush(time.Time{}, true)
			}
			return
		case e := <-w.events:
			if log == nil {
				continue
			}
			lm := &starts[e.Trip]
			if !e.Active {
				lm = &clears[e.Trip]
			}
			first := !lm.seen
			if !first && e.Trip != Faulted && e.At.Sub(lm.last) < interval {
				lm.suppressed++
				lm.lastCause, lm.lastAt = e.Cause, e.At
				flush(e.At, false)
				continue
			}
			lvl := slog.LevelWarn
			msg := "safety: " + e.Trip.String()
			switch {
			case !e.Active:
				lvl, msg = slog.LevelInfo, msg+" cleared"
			case e.Trip == Faulted || e.Trip == StateInvalid:
				lvl = slog.LevelError
			}
			line(lvl, msg, e, lm.suppressed, lm.lastCause)
			lm.seen, lm.last, lm.suppressed, lm.lastCause = true, e.At, 0, nil
			flush(e.At, false)
		}
	}
}
