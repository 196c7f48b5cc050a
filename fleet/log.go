package fleet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flowact/flowact/dataset"
	"github.com/flowact/flowact/robot"
)

// LogStats counts what the episode log did. Every counter only grows, except Pending.
type LogStats struct {
	Appended   uint64 // messages written to the spool since OpenLog (replayed ones not included)
	Published  uint64 // messages the stream acknowledged (duplicates included)
	Duplicates uint64 // acknowledgements flagged duplicate: a republished message already stored
	Retries    uint64 // publishes that failed (timeout, reconnect, no leader) and were repeated
	Episodes   uint64 // episodes ended
	Successes  uint64 // of which the metadata said success
	Pending    uint64 // messages in the spool not yet acknowledged
}

// Log is a robot's episode log: OpenLog opens its disk spool, Begin starts an episode whose
// messages are appended to the spool (never waiting on the network), and Run publishes the
// spool to the robot's JetStream stream in order, each message with its ID, retrying with the
// same ID until the stream acknowledges it. Close closes the spool. Begin and the Episode
// methods may be called from any goroutine while Run runs.
type Log struct {
	cfg Config
	log *slog.Logger
	sp  *spool

	acked atomic.Pointer[spoolPos] // everything before it is stored in the stream

	appended, published, dups, retries, episodes, successes atomic.Uint64
	pending                                                 atomic.Int64

	mu      sync.Mutex
	running bool
	closed  bool
}

// OpenLog opens (creating it if needed) the spool of cfg.Robot in cfg.Spool; messages a previous
// run spooled and did not get acknowledged are published again, in order, by Run. log may be nil
// (discard).
func OpenLog(cfg Config, log *slog.Logger) (*Log, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Robot == "" {
		return nil, fmt.Errorf("%w: robot: required", ErrConfig)
	}
	cfg = cfg.withDefaults()
	if cfg.Spool == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			return nil, fmt.Errorf("fleet: spool: %w", err)
		}
		cfg.Spool = filepath.Join(dir, "flowact-spool-"+cfg.Robot)
	}
	sp, acked, err := openSpool(cfg.Spool, DefaultSegmentBytes)
	if err != nil {
		return nil, err
	}
	l := &Log{cfg: cfg, log: orDiscard(log), sp: sp}
	l.acked.Store(&acked)
	n, err := l.count(acked)
	if err != nil {
		sp.close()
		return nil, err
	}
	l.pending.Store(int64(n))
	if n > 0 {
		l.log.Info("fleet: spool holds unpublished episode messages", "robot", cfg.Robot, "messages", n, "spool", cfg.Spool)
	}
	return l, nil
}

// count returns the number of records from p to the end of the spool.
func (l *Log) count(p spoolPos) (int, error) {
	r := spoolReader{s: l.sp, pos: p}
	defer r.close()
	n := 0
	for {
		_, _, ok, err := r.next()
		if err != nil {
			return n, err
		}
		if !ok {
			return n, nil
		}
		n++
	}
}

// Dir returns the spool directory.
func (l *Log) Dir() string { return l.cfg.Spool }

// Stream returns the name of the robot's episode stream.
func (l *Log) Stream() string { return EpisodeStream(l.cfg.Robot) }

// Stats returns the counters.
func (l *Log) Stats() LogStats {
	return LogStats{Appended: l.appended.Load(), Published: l.published.Load(), Duplicates: l.dups.Load(),
		Retries: l.retries.Load(), Episodes: l.episodes.Load(), Successes: l.successes.Load(),
		Pending: uint64(max(l.pending.Load(), 0))}
}

// StreamConfig is the episode stream of cfg.Robot: its episode subjects, file storage, the
// duplicate window and replica count of cfg, no limits (episodes are kept until an operator
// removes them).
func StreamConfig(cfg Config) jetstream.StreamConfig {
	cfg = cfg.withDefaults()
	return jetstream.StreamConfig{
		Name:        EpisodeStream(cfg.Robot),
		Description: "flowact episodes of robot " + cfg.Robot,
		Subjects:    []string{EpisodeSubjects(cfg.Robot)},
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
		Duplicates:  cfg.DuplicateWindow,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardNew,
	}
}

// Run publishes the spool to the stream in cfg.Domain's JetStream through nc until ctx ends,
// then returns nil (what is not acknowledged stays in the spool for the next Run). It creates
// the stream if it is missing. Messages go out cfg.Window at a time as asynchronous publishes
// with a cfg.PublishTimeout deadline; every message whose acknowledgement does not come (a
// timeout, a reconnect failing the pending futures, a leader election) is published again with
// the same Nats-Msg-Id, so that the stream stores it once as long as the retry comes within the
// duplicate window.
func (l *Log) Run(ctx context.Context, nc *nats.Conn) error {
	l.mu.Lock()
	switch {
	case l.closed:
		l.mu.Unlock()
		return fmt.Errorf("fleet: log closed")
	case l.running:
		l.mu.Unlock()
		return fmt.Errorf("fleet: log: Run called twice")
	}
	l.running = true
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		l.running = false
		l.mu.Unlock()
	}()
	js, err := newJetStream(nc, l.cfg.Domain, jetstream.WithPublishAsyncTimeout(l.cfg.PublishTimeout),
		jetstream.WithPublishAsyncMaxPending(l.cfg.Window))
	if err != nil {
		return err
	}
	if err := retry(ctx, l.log, "create the episode stream", func() error {
		c, cancel := context.WithTimeout(ctx, l.cfg.PublishTimeout)
		defer cancel()
		_, err := ensureStream(c, js, StreamConfig(l.cfg))
		return err
	}); err != nil {
		return nil // ctx ended
	}
	r := spoolReader{s: l.sp, pos: *l.acked.Load()}
	defer r.close()
	batch := make([]record, 0, l.cfg.Window)
	for {
		batch = batch[:0]
		var after spoolPos
		for len(batch) < l.cfg.Window {
			rec, pos, ok, err := r.next()
			if err != nil {
				return err
			}
			if !ok {
				break
			}
			batch, after = append(batch, rec), pos
		}
		if len(batch) == 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-l.sp.notify:
				continue
			}
		}
		if err := l.publish(ctx, js, batch); err != nil {
			return nil // ctx ended
		}
		if err := l.sp.commit(after); err != nil {
			return err
		}
		l.acked.Store(&after)
		l.pending.Add(-int64(len(batch)))
	}
}

// publish publishes batch until the stream has acknowledged every message; it returns an error
// only when ctx ends.
func (l *Log) publish(ctx context.Context, js jetstream.JetStream, batch []record) error {
	stream := EpisodeStream(l.cfg.Robot)
	pending := slices.Clone(batch)
	backoff := 20 * time.Millisecond
	futs := make([]jetstream.PubAckFuture, 0, len(batch))
	for len(pending) > 0 {
		futs = futs[:0]
		for i := range pending {
			rec := &pending[i]
			m := nats.NewMsg(rec.Subject)
			m.Data = rec.Data
			m.Header.Set(jetstream.MsgIDHeader, rec.ID)
			m.Header.Set(HeaderKind, rec.Kind)
			m.Header.Set(HeaderSeq, strconv.FormatUint(rec.Seq, 10))
			f, err := js.PublishMsgAsync(m, jetstream.WithExpectStream(stream))
			if err != nil {
				f = nil
			}
			futs = append(futs, f)
		}
		var failed []record
		var lastErr error
		for i, f := range futs {
			if f == nil {
				failed = append(failed, pending[i])
				continue
			}
			select {
			case ack := <-f.Ok():
				l.published.Add(1)
				if ack.Duplicate {
					l.dups.Add(1)
				}
			case err := <-f.Err():
				failed, lastErr = append(failed, pending[i]), err
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if len(failed) > 0 {
			l.retries.Add(uint64(len(failed)))
			l.log.Debug("fleet: republishing episode messages", "robot", l.cfg.Robot, "messages", len(failed), "err", lastErr)
			if err := sleep(ctx, backoff); err != nil {
				return err
			}
			backoff = min(2*backoff, time.Second)
		}
		pending = failed
	}
	return nil
}

// Drained reports whether the stream has acknowledged everything appended so far.
func (l *Log) Drained() bool {
	return !l.acked.Load().before(l.sp.written())
}

// WaitDrained polls Drained every 10 ms until it holds or ctx ends.
func (l *Log) WaitDrained(ctx context.Context) error {
	for !l.Drained() {
		if err := sleep(ctx, 10*time.Millisecond); err != nil {
			return fmt.Errorf("fleet: %d episode messages not yet stored: %w", l.Stats().Pending, err)
		}
	}
	return nil
}

// Close syncs and closes the spool; Run must have returned (else Close returns an error and
// does nothing). It is idempotent.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.running {
		return fmt.Errorf("fleet: log: Close while Run runs")
	}
	if l.closed {
		return nil
	}
	l.closed = true
	return l.sp.close()
}

// Episode records one episode into a Log. Its methods mirror dataset.Writer's, with the same
// checks, so that what reaches the stream can be written as the same bag (see Export). Nothing
// waits on the network: each message is appended to the spool. An Episode is not safe for
// concurrent use.
type Episode struct {
	l       *Log
	id      string
	subject string
	joints  int
	seq     uint64
	last    [3]time.Time
	buf     []byte
	meta    *dataset.Meta
	closed  bool
	err     error
}

// NewEpisodeID returns a new episode id: the UTC time and 8 random hex digits, a subject token.
func NewEpisodeID(t time.Time) string {
	var b [4]byte
	rand.Read(b[:])
	return t.UTC().Format("20060102T150405") + "-" + strconv.FormatInt(int64(t.Nanosecond()), 10) + "-" + hex.EncodeToString(b[:])
}

// Begin starts an episode recorded as a bag with cfg would be; id names it ("" means
// NewEpisodeID(time.Now())). Its first message records cfg.
func (l *Log) Begin(id string, cfg dataset.WriterConfig) (*Episode, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if id == "" {
		id = NewEpisodeID(time.Now())
	}
	if err := ValidName(id); err != nil {
		return nil, fmt.Errorf("fleet: episode id: %w", err)
	}
	e := &Episode{l: l, id: id, subject: EpisodeSubject(l.cfg.Robot, id), joints: len(cfg.Joints)}
	b, err := json.Marshal(&beginRecord{Joints: cfg.Joints, Embedding: cfg.Embedding, Topics: cfg.Topics,
		Compression: cfg.Compression, ChunkBytes: cfg.ChunkBytes})
	if err != nil {
		return nil, fmt.Errorf("fleet: %w", err)
	}
	if err := e.put(KindBegin, b); err != nil {
		return nil, err
	}
	return e, nil
}

// ID returns the episode's id.
func (e *Episode) ID() string { return e.id }

// Err returns the spool's error that broke the episode (nil while it records): a write that
// returns an error while Err is nil refused that one value (a bad stamp or shape, a non-finite
// value) and the episode goes on.
func (e *Episode) Err() error { return e.err }

func (e *Episode) put(kind string, data []byte) error {
	if e.closed {
		return fmt.Errorf("fleet: episode %s closed", e.id)
	}
	if e.err != nil {
		return e.err
	}
	e.seq++
	rec := record{Subject: e.subject, ID: e.l.cfg.Robot + "." + e.id + "." + strconv.FormatUint(e.seq, 10), Kind: kind, Seq: e.seq, Data: data}
	if err := e.l.sp.append(&rec); err != nil {
		e.err = err
		return err
	}
	e.l.appended.Add(1)
	e.l.pending.Add(1)
	return nil
}

func (e *Episode) stamp(stream int, t time.Time) error {
	if s := t.Unix(); s < 0 || s > math.MaxUint32 || t.IsZero() {
		return fmt.Errorf("fleet: episode %s: stamp %v outside ROS time (1970 to 2106)", e.id, t)
	}
	if t.Before(e.last[stream]) {
		return fmt.Errorf("fleet: episode %s: stamp %v before the previous %v: %w", e.id, t, e.last[stream], dataset.ErrNonMonotonic)
	}
	e.last[stream] = t
	return nil
}

func finite(v []float64) bool {
	for _, x := range v {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return false
		}
	}
	return true
}

// WriteState records a joint state (positions, and optionally velocities and efforts, one per
// joint of the episode's config, positions finite).
func (e *Episode) WriteState(s *dataset.JointState) error {
	if len(s.Position) != e.joints || (s.Velocity != nil && len(s.Velocity) != e.joints) || (s.Effort != nil && len(s.Effort) != e.joints) {
		return fmt.Errorf("fleet: episode %s: state with %d/%d/%d values for %d joints: %w", e.id, len(s.Position), len(s.Velocity), len(s.Effort), e.joints, dataset.ErrShape)
	}
	if !finite(s.Position) {
		return fmt.Errorf("fleet: episode %s: state: %w", e.id, dataset.ErrNotFinite)
	}
	if err := e.stamp(0, s.Stamp); err != nil {
		return err
	}
	e.buf = appendState(e.buf[:0], s)
	return e.put(KindState, e.buf)
}

// WriteEmbedding records an embedding as a flowact_msgs/Embedding (header stamp = Stamp).
func (e *Episode) WriteEmbedding(m *robot.Embedding) error {
	if m.Tokens <= 0 || m.Width <= 0 || len(m.Data) != m.Tokens*m.Width || m.Tokens*m.Width > MaxEmbeddingValues {
		return fmt.Errorf("fleet: episode %s: %d x %d embedding with %d values: %w", e.id, m.Tokens, m.Width, len(m.Data), dataset.ErrShape)
	}
	if err := e.stamp(1, m.Stamp); err != nil {
		return err
	}
	e.buf = AppendEmbedding(e.buf[:0], &Embedding{Tokens: m.Tokens, Width: m.Width, Data: m.Data, Stamp: m.Stamp})
	return e.put(KindEmbedding, e.buf)
}

// WriteAction records a command (one finite position per joint).
func (e *Episode) WriteAction(a *dataset.Action) error {
	if len(a.Position) != e.joints {
		return fmt.Errorf("fleet: episode %s: action with %d values for %d joints: %w", e.id, len(a.Position), e.joints, dataset.ErrShape)
	}
	if !finite(a.Position) {
		return fmt.Errorf("fleet: episode %s: action: %w", e.id, dataset.ErrNotFinite)
	}
	if err := e.stamp(2, a.Stamp); err != nil {
		return err
	}
	e.buf = appendAction(e.buf[:0], a)
	return e.put(KindAction, e.buf)
}

// WriteMeta records the episode's metadata at stamp, as dataset.Writer.WriteMeta does (its
// Version is set; it must validate).
func (e *Episode) WriteMeta(m *dataset.Meta, stamp time.Time) error {
	c := *m
	c.Version = dataset.MetaVersion
	if err := c.Validate(); err != nil {
		return fmt.Errorf("fleet: episode %s: %w", e.id, err)
	}
	if len(c.Joints) != e.joints {
		return fmt.Errorf("fleet: episode %s: metadata names %d joints, the episode %d: %w", e.id, len(c.Joints), e.joints, dataset.ErrMeta)
	}
	b, err := appendMeta(e.buf[:0], &c, stamp)
	if err != nil {
		return err
	}
	e.buf = b
	if err := e.put(KindMeta, e.buf); err != nil {
		return err
	}
	e.meta = &c
	return nil
}

// Close ends the episode: a last message gives the number of messages, and the spool is synced
// to disk. It is idempotent.
func (e *Episode) Close() error {
	if e.closed {
		return nil
	}
	if e.err != nil {
		e.closed = true
		return e.err
	}
	err := e.put(KindEnd, strconv.AppendUint(e.buf[:0], e.seq+1, 10))
	e.closed = true
	if err != nil {
		return err
	}
	e.l.episodes.Add(1)
	if e.meta != nil && e.meta.Success {
		e.l.successes.Add(1)
	}
	return e.l.sp.sync()
}

// WriteEpisode records ep into l as dataset.WriteEpisode writes a bag: every stream merged in
// stamp order (stable: states, then embeddings, then actions at equal stamps), the metadata last
// at the latest stamp. cfg.Joints defaults to ep.Meta.Joints. It returns the episode's id.
func WriteEpisode(l *Log, id string, ep *dataset.Episode, cfg dataset.WriterConfig) (string, error) {
	if cfg.Joints == nil {
		cfg.Joints = ep.Meta.Joints
	}
	if len(ep.States)+len(ep.Embeddings)+len(ep.Actions) == 0 {
		return "", fmt.Errorf("fleet: empty episode: %w", dataset.ErrEmpty)
	}
	e, err := l.Begin(id, cfg)
	if err != nil {
		return "", err
	}
	type item struct {
		t      time.Time
		stream int
		i      int
	}
	items := make([]item, 0, len(ep.States)+len(ep.Embeddings)+len(ep.Actions))
	for i := range ep.States {
		items = append(items, item{ep.States[i].Stamp, 0, i})
	}
	for i := range ep.Embeddings {
		items = append(items, item{ep.Embeddings[i].Stamp, 1, i})
	}
	for i := range ep.Actions {
		items = append(items, item{ep.Actions[i].Stamp, 2, i})
	}
	slices.SortStableFunc(items, func(a, b item) int { return a.t.Compare(b.t) })
	var last time.Time
	for _, it := range items {
		switch it.stream {
		case 0:
			err = e.WriteState(&ep.States[it.i])
		case 1:
			err = e.WriteEmbedding(&ep.Embeddings[it.i])
		case 2:
			err = e.WriteAction(&ep.Actions[it.i])
		}
		if err != nil {
			e.Close()
			return e.id, err
		}
		last = it.t
	}
	if err := e.WriteMeta(&ep.Meta, last); err != nil {
		e.Close()
		return e.id, err
	}
	return e.id, e.Close()
}

// Helpers shared by the package.

func orDiscard(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}

func newJetStream(nc *nats.Conn, domain string, opts ...jetstream.JetStreamOpt) (jetstream.JetStream, error) {
	var js jetstream.JetStream
	var err error
	if domain != "" {
		js, err = jetstream.NewWithDomain(nc, domain, opts...)
	} else {
		js, err = jetstream.New(nc, opts...)
	}
	if err != nil {
		return nil, fmt.Errorf("fleet: jetstream: %w", err)
	}
	return js, nil
}

// ensureStream creates the stream, or updates it to cfg when it exists.
func ensureStream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	s, err := js.CreateOrUpdateStream(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("fleet: stream %s: %w", cfg.Name, err)
	}
	return s, nil
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// retry calls f until it succeeds or ctx ends (then it returns ctx's error), backing off from
// 50 ms to 2 s; failures are logged at debug level, the first at info.
func retry(ctx context.Context, log *slog.Logger, what string, f func() error) error {
	backoff := 50 * time.Millisecond
	for i := 0; ; i++ {
		err := f()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if i == 0 {
			log.Info("fleet: retrying", "what", what, "err", err)
		} else {
			log.Debug("fleet: retrying", "what", what, "err", err)
		}
		if err := sleep(ctx, backoff); err != nil {
			return err
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// HubStreamConfig is the hub's episode stream: it stores nothing of its own and sources the
// episode stream of each robot, in the robot's JetStream domain when domains[robot] is set (a
// robot on a leaf node), else in the hub's own.
func HubStreamConfig(robots []string, domains map[string]string, replicas int) jetstream.StreamConfig {
	if replicas == 0 {
		replicas = 1
	}
	cfg := jetstream.StreamConfig{
		Name:        HubStream,
		Description: "flowact: every robot's episodes, sourced from the robots' streams",
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
		Retention:   jetstream.LimitsPolicy,
	}
	for _, r := range robots {
		cfg.Sources = append(cfg.Sources, robotSource(r, domains[r]))
	}
	return cfg
}

// robotSource sources robot's episode stream. In another domain (a robot's leaf node) the
// source is external: the robot's domain API, and deliveries under the robot's own subjects
// (SourceDeliverPrefix), which are all its leaf connection may publish besides replies (see
// LeafPermissions).
func robotSource(robot, domain string) *jetstream.StreamSource {
	if domain == "" {
		return &jetstream.StreamSource{Name: EpisodeStream(robot)}
	}
	return &jetstream.StreamSource{Name: EpisodeStream(robot), External: &jetstream.ExternalStream{
		APIPrefix: "$JS." + domain + ".API", DeliverPrefix: SourceDeliverPrefix(robot)}}
}

// SourceDeliverPrefix is where the robot's server delivers its episodes to the hub's stream
// across the leaf link: flowact.<robot>.source.
func SourceDeliverPrefix(robot string) string { return Prefix + "." + robot + ".source" }

// AddRobotSource adds robot's episode stream (in domain, "" for the hub's own) to the hub's
// stream in js, creating the stream if it is missing. A robot already sourced is left as is.
func AddRobotSource(ctx context.Context, js jetstream.JetStream, robot, domain string, replicas int) error {
	s, err := js.Stream(ctx, HubStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		_, err = js.CreateStream(ctx, HubStreamConfig([]string{robot}, map[string]string{robot: domain}, replicas))
		if err == nil || !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			if err != nil {
				return fmt.Errorf("fleet: stream %s: %w", HubStream, err)
			}
			return nil
		}
		s, err = js.Stream(ctx, HubStream)
	}
	if err != nil {
		return fmt.Errorf("fleet: stream %s: %w", HubStream, err)
	}
	cfg := s.CachedInfo().Config
	for _, src := range cfg.Sources {
		if src.Name == EpisodeStream(robot) {
			return nil
		}
	}
	cfg.Sources = append(cfg.Sources, robotSource(robot, domain))
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		return fmt.Errorf("fleet: stream %s: add %s: %w", HubStream, robot, err)
	}
	return nil
}
