package safety

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"
)

// Trip names a watchdog or guard.
type Trip uint8

const (
	EmbeddingStale Trip = iota // the embedding is older than its limit: finish the committed actions, then hold
	StateStale                 // the joint state is older than its limit: decelerate to a stop
	Starved                    // the chunk queue ran out: hold
	ChunkRejected              // a chunk was NaN/Inf or the wrong shape: dropped
	ChunkLate                  // a chunk arrived after its last action's tick: dropped
	Faulted                    // a fault latched
	NumTrips
)

var tripNames = [NumTrips]string{"embedding_stale", "state_stale", "starved", "chunk_rejected", "chunk_late", "fault"}

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
	return nil
}

// Event is one watchdog transition: Active true when the trip started, false when it cleared
// (for the one-shot trips ChunkRejected, ChunkLate and Faulted, Active is always true).
type Event struct {
	Trip   Trip
	Active bool
	Tick   int64
	At     time.Time
	Value  float64 // the age in s for staleness, the delay in ticks for ChunkLate, else 0
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

// Set records the state of a level trip (EmbeddingStale, StateStale, Starved) at a tick; a
// change emits an event and a start counts a trip.
func (w *Watchdogs) Set(t Trip, on bool, tick int64, at time.Time, value float64) {
	if w.active[t].Load() == on {
		return
	}
	w.active[t].Store(on)
	if on {
		w.trips[t].Add(1)
	}
	w.emit(Event{Trip: t, Active: on, Tick: tick, At: at, Value: value})
}

// Fire records a one-shot trip.
func (w *Watchdogs) Fire(t Trip, tick int64, at time.Time, value float64) {
	w.trips[t].Add(1)
	w.emit(Event{Trip: t, Active: true, Tick: tick, At: at, Value: value})
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

// Log drains the event queue into log until ctx ends, writing at most one line per trip kind and
// LogInterval (later events of that kind within the interval are summarized by a count). Its
// caller owns the goroutine that runs it.
func (w *Watchdogs) Log(ctx context.Context, log *slog.Logger, interval time.Duration) {
	var last [NumTrips]time.Time
	var suppressed [NumTrips]int
	for {
		select {
		case <-ctx.Done():
			return
		case e := <-w.events:
			if log == nil {
				continue
			}
			if !last[e.Trip].IsZero() && e.At.Sub(last[e.Trip]) < interval {
				suppressed[e.Trip]++
				continue
			}
			last[e.Trip] = e.At
			lvl := slog.LevelWarn
			msg := "safety: " + e.Trip.String()
			if !e.Active {
				lvl, msg = slog.LevelInfo, msg+" cleared"
			} else if e.Trip == Faulted {
				lvl = slog.LevelError
			}
			log.LogAttrs(ctx, lvl, msg, slog.Int64("tick", e.Tick), slog.Float64("value", e.Value),
				slog.Int("suppressed", suppressed[e.Trip]))
			suppressed[e.Trip] = 0
		}
	}
}
