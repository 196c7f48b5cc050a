package fleet

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

// ErrNoEmbedding is returned by Embeddings.Latest before the first valid embedding arrives.
var ErrNoEmbedding = errors.New("fleet: no embedding yet")

// EmbeddingStats counts what the Embeddings mailbox saw. All counters only grow.
type EmbeddingStats struct {
	Messages uint64 // messages received
	Stored   uint64 // valid embeddings stored
	Invalid  uint64 // messages rejected (shape, payload size, trailing bytes)
}

// Embeddings is the latest-value mailbox of remote embeddings: Run subscribes to a subject on
// which a VLM publishes flowact_msgs/Embedding messages (their ROS serialization, see
// AppendEmbedding), checks each as robot/ros checks the ROS topic's, and stores it with one
// atomic pointer swap; Latest reads it without locks or allocation. The stamp is the header's,
// or the receive time when the header's is zero, as on the ROS topic, so the loop's staleness
// watchdog applies unchanged.
type Embeddings struct {
	subject string
	now     func() time.Time
	latest  atomic.Pointer[Embedding]

	messages, stored, invalid atomic.Uint64
	lastErr                   atomic.Pointer[string]
}

// NewEmbeddings returns an empty mailbox for subject; now gives the receive time (nil means
// time.Now).
func NewEmbeddings(subject string, now func() time.Time) (*Embeddings, error) {
	if err := validSubject(subject); err != nil {
		return nil, fmt.Errorf("%w: embedding %v", ErrConfig, err)
	}
	if now == nil {
		now = time.Now
	}
	return &Embeddings{subject: subject, now: now}, nil
}

// Subject returns the subject the mailbox listens on.
func (e *Embeddings) Subject() string { return e.subject }

// Store decodes and stores one message (the subscription's callback).
func (e *Embeddings) Store(data []byte) {
	e.messages.Add(1)
	emb, err := DecodeEmbedding(data, nil)
	if err != nil {
		e.invalid.Add(1)
		s := err.Error()
		e.lastErr.Store(&s)
		return
	}
	if emb.Stamp.IsZero() {
		emb.Stamp = e.now()
	}
	e.stored.Add(1)
	e.latest.Store(&emb)
}

// Latest returns the newest embedding (shared: do not modify its Data) or ErrNoEmbedding.
func (e *Embeddings) Latest() (Embedding, error) {
	p := e.latest.Load()
	if p == nil {
		return Embedding{}, ErrNoEmbedding
	}
	return *p, nil
}

// Stats returns the counters.
func (e *Embeddings) Stats() EmbeddingStats {
	return EmbeddingStats{Messages: e.messages.Load(), Stored: e.stored.Load(), Invalid: e.invalid.Load()}
}

// LastError returns the most recent decode error message ("" if none).
func (e *Embeddings) LastError() string {
	if p := e.lastErr.Load(); p != nil {
		return *p
	}
	return ""
}

// Run subscribes until ctx ends, then unsubscribes and returns nil. The subscription survives
// reconnects (nats.go resubscribes).
func (e *Embeddings) Run(ctx context.Context, nc *nats.Conn) error {
	sub, err := nc.Subscribe(e.subject, func(m *nats.Msg) { e.Store(m.Data) })
	if err != nil {
		return fmt.Errorf("fleet: subscribe %s: %w", e.subject, err)
	}
	// Only the newest embedding matters: a slow consumer drops old ones rather than queueing.
	sub.SetPendingLimits(16, 64<<20)
	<-ctx.Done()
	if err := sub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		return fmt.Errorf("fleet: unsubscribe %s: %w", e.subject, err)
	}
	return nil
}
