package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Sample is one telemetry sample the binary hands over: the loop's state and counters, and its
// full snapshot (anything JSON-encodable; it is encoded on the publisher's goroutine, never on
// the caller's, so it must not change after Offer).
type Sample struct {
	Time     time.Time         `json:"time"`
	State    string            `json:"state"`
	Faults   uint64            `json:"faults"`   // faults latched since start
	Counters map[string]uint64 `json:"counters"` // ticks, chunks, overruns, ...
	Snapshot any               `json:"snapshot,omitempty"`
}

// Status is a robot's last status, the value of its key in StatusBucket (JSON), and, with the
// full snapshot added, the body of its telemetry messages.
type Status struct {
	Robot    string            `json:"robot"`
	Time     time.Time         `json:"time"` // when it was published
	State    string            `json:"state"`
	Faults   uint64            `json:"faults"`
	Counters map[string]uint64 `json:"counters,omitempty"`
	// Model is the model running (the object name in CheckpointBucket; "" the one the robot
	// started with); ModelError the last rollout refused, with the object it named.
	Model      string `json:"model"`
	ModelError string `json:"model_error,omitempty"`
	// Episodes and Successes count the episodes recorded since start and the successful ones.
	Episodes  uint64 `json:"episodes"`
	Successes uint64 `json:"successes"`
	// Spool counts the episode log (messages appended, published, pending).
	Spool LogStats `json:"spool"`
	// Telemetry counts this publisher.
	Telemetry TelemetryStats `json:"telemetry"`
}

// TelemetryStats counts what the telemetry publisher did.
type TelemetryStats struct {
	Offered    uint64 `json:"offered"`
	Dropped    uint64 `json:"dropped"`    // offered to a full queue
	Superseded uint64 `json:"superseded"` // replaced by a newer sample before a publish
	Published  uint64 `json:"published"`
	Errors     uint64 `json:"errors"` // publishes or status puts that failed
}

// telemetryMsg is a telemetry message: the status and the full snapshot.
type telemetryMsg struct {
	Status
	Snapshot any `json:"snapshot,omitempty"`
}

// Telemetry publishes a robot's telemetry: Offer puts a sample in a bounded queue without ever
// blocking (a full queue drops it, counted); Run publishes the newest sample cfg.TelemetryRate
// times a second on TelemetrySubject (core NATS, at most once: a sample published while the
// link is down is lost) and puts the robot's Status in StatusBucket.
type Telemetry struct {
	cfg Config
	log *slog.Logger
	q   chan Sample

	offered, dropped, superseded, published, errs atomic.Uint64

	mu         sync.Mutex
	model      string
	modelError string
	logStats   func() LogStats
}

// NewTelemetry returns a publisher for cfg.Robot; logStats, if not nil, fills Status.Spool and
// the episode counts.
func NewTelemetry(cfg Config, logStats func() LogStats, log *slog.Logger) *Telemetry {
	cfg = cfg.withDefaults()
	return &Telemetry{cfg: cfg, log: orDiscard(log), q: make(chan Sample, cfg.TelemetryQueue), logStats: logStats}
}

// Offer queues a sample; it never blocks, and returns false (counting a drop) when the queue is
// full.
func (t *Telemetry) Offer(s Sample) bool {
	t.offered.Add(1)
	select {
	case t.q <- s:
		return true
	default:
		t.dropped.Add(1)
		return false
	}
}

// SetModel records the running model and the last rollout error for the status.
func (t *Telemetry) SetModel(model, modelError string) {
	t.mu.Lock()
	t.model, t.modelError = model, modelError
	t.mu.Unlock()
}

// Stats returns the counters.
func (t *Telemetry) Stats() TelemetryStats {
	return TelemetryStats{Offered: t.offered.Load(), Dropped: t.dropped.Load(), Superseded: t.superseded.Load(),
		Published: t.published.Load(), Errors: t.errs.Load()}
}

// StatusKV returns (creating it if missing) the status bucket in js.
func StatusKV(ctx context.Context, js jetstream.JetStream) (jetstream.KeyValue, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: StatusBucket, Description: "flowact: last status per robot", History: 1})
	if err != nil {
		return nil, fmt.Errorf("fleet: bucket %s: %w", StatusBucket, err)
	}
	return kv, nil
}

// Run publishes until ctx ends, then returns nil.
func (t *Telemetry) Run(ctx context.Context, nc *nats.Conn) error {
	js, err := newJetStream(nc, t.cfg.HubDomain)
	if err != nil {
		return err
	}
	var kv jetstream.KeyValue
	period := time.Duration(float64(time.Second) / t.cfg.TelemetryRate)
	tick := time.NewTicker(period)
	defer tick.Stop()
	var latest *Sample
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	drain:
		for {
			select {
			case s := <-t.q:
				if latest != nil {
					t.superseded.Add(1)
				}
				latest = &s
			default:
				break drain
			}
		}
		if latest == nil {
			continue
		}
		st := t.status(latest)
		b, err := json.Marshal(telemetryMsg{Status: st, Snapshot: latest.Snapshot})
		if err != nil {
			t.errs.Add(1)
			t.log.Warn("fleet: telemetry", "err", err)
			latest = nil
			continue
		}
		if err := nc.Publish(TelemetrySubject(t.cfg.Robot), b); err != nil {
			t.errs.Add(1)
		} else {
			t.published.Add(1)
		}
		latest = nil
		if kv == nil {
			c, cancel := context.WithTimeout(ctx, t.cfg.PublishTimeout)
			kv, err = js.KeyValue(c, StatusBucket)
			if errors.Is(err, jetstream.ErrBucketNotFound) {
				kv, err = StatusKV(c, js)
			}
			cancel()
			if err != nil {
				t.errs.Add(1)
				kv = nil
				continue
			}
		}
		sb, _ := json.Marshal(st)
		c, cancel := context.WithTimeout(ctx, t.cfg.PublishTimeout)
		_, err = kv.Put(c, t.cfg.Robot, sb)
		cancel()
		if err != nil {
			t.errs.Add(1)
			t.log.Debug("fleet: status put", "err", err)
		}
	}
}

func (t *Telemetry) status(s *Sample) Status {
	st := Status{Robot: t.cfg.Robot, Time: time.Now().UTC(), State: s.State, Faults: s.Faults, Counters: s.Counters, Telemetry: t.Stats()}
	t.mu.Lock()
	st.Model, st.ModelError = t.model, t.modelError
	t.mu.Unlock()
	if t.logStats != nil {
		st.Spool = t.logStats()
		st.Episodes, st.Successes = st.Spool.Episodes, st.Spool.Successes
	}
	return st
}

// Statuses reads every robot's last status from the status bucket in js.
func Statuses(ctx context.Context, js jetstream.JetStream) ([]Status, error) {
	kv, err := js.KeyValue(ctx, StatusBucket)
	if err != nil {
		return nil, fmt.Errorf("fleet: bucket %s: %w", StatusBucket, err)
	}
	keys, err := kv.Keys(ctx)
	if err != nil && err != jetstream.ErrNoKeysFound {
		return nil, fmt.Errorf("fleet: bucket %s: %w", StatusBucket, err)
	}
	var out []Status
	for _, k := range keys {
		e, err := kv.Get(ctx, k)
		if err != nil {
			continue // deleted meanwhile
		}
		var s Status
		if err := json.Unmarshal(e.Value(), &s); err != nil {
			return nil, fmt.Errorf("fleet: status of %s: %w: %v", k, ErrMessage, err)
		}
		out = append(out, s)
	}
	return out, nil
}
