package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/flowact/flowact/dataset"
	"github.com/flowact/flowact/robot"
)

// ErrIncomplete is wrapped by the error of an episode that cannot be exported: a message
// missing, stored twice, or no end message yet.
var ErrIncomplete = errors.New("fleet: incomplete episode")

// Exported is one episode Export wrote.
type Exported struct {
	Robot    string `json:"robot"`
	Episode  string `json:"episode"`
	Path     string `json:"path"`
	Messages int    `json:"messages"`
}

// ExportReport lists what Export wrote and what it skipped (one error per skipped episode).
type ExportReport struct {
	Episodes []Exported `json:"episodes"`
	Skipped  []error    `json:"-"`
}

// ExportConfig says what to export.
type ExportConfig struct {
	// Stream is the stream to read: a robot's (EpisodeStream) or the hub's (HubStream).
	Stream string
	// Robot restricts the export to one robot's episodes; "" means every robot's.
	Robot string
	// Dir receives one bag per episode, <robot>-<episode>.bag.
	Dir string
	// Skip names episodes already exported (e.g. the bags in Dir): they are left alone.
	Skip func(robot, episode string) bool
	// Wait bounds the wait for an episode's messages; 0 means 10 s.
	Wait time.Duration
}

// Export reads complete episodes from a stream and writes each as a ROS bag with the writer
// config it was recorded with, calling dataset.Writer's methods in the order the recorder called
// Episode's: the bag holds the same messages, and for an episode recorded with a fixed writer
// config it is byte for byte the bag dataset.WriteEpisode writes from the same episode.
// Messages are put in order by their Flowact-Seq header, so the stream's order (which a
// republish after a failure can change) does not matter; an episode whose sequence has a gap, a
// repeat or no end message is skipped with an error wrapping ErrIncomplete.
func Export(ctx context.Context, js jetstream.JetStream, cfg ExportConfig) (*ExportReport, error) {
	if cfg.Wait == 0 {
		cfg.Wait = 10 * time.Second
	}
	s, err := js.Stream(ctx, cfg.Stream)
	if err != nil {
		return nil, fmt.Errorf("fleet: export: stream %s: %w", cfg.Stream, err)
	}
	filter := Prefix + ".*.episodes.*"
	if cfg.Robot != "" {
		filter = EpisodeSubjects(cfg.Robot)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		return nil, fmt.Errorf("fleet: export: stream %s: %w", cfg.Stream, err)
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("fleet: export: %w", err)
	}
	subjects := slices.Sorted(func(yield func(string) bool) {
		for k := range info.State.Subjects {
			if !yield(k) {
				return
			}
		}
	})
	rep := &ExportReport{}
	for _, subj := range subjects {
		parts := strings.Split(subj, ".")
		if len(parts) != 4 {
			continue
		}
		robot, id := parts[1], parts[3]
		if cfg.Skip != nil && cfg.Skip(robot, id) {
			continue
		}
		n := int(info.State.Subjects[subj])
		path := filepath.Join(cfg.Dir, robot+"-"+id+".bag")
		got, err := exportEpisode(ctx, js, cfg.Stream, subj, n, path, cfg.Wait)
		if ctx.Err() != nil {
			return rep, ctx.Err()
		}
		if err != nil {
			rep.Skipped = append(rep.Skipped, fmt.Errorf("fleet: export: %s episode %s: %w", robot, id, err))
			continue
		}
		rep.Episodes = append(rep.Episodes, Exported{Robot: robot, Episode: id, Path: path, Messages: got})
	}
	return rep, nil
}

type epMsg struct {
	seq  uint64
	kind string
	data []byte
}

// fetchEpisode reads the n messages stored on subj with an ordered consumer.
func fetchEpisode(ctx context.Context, js jetstream.JetStream, stream, subj string, n int, wait time.Duration) ([]epMsg, error) {
	c, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subj}})
	if err != nil {
		return nil, err
	}
	msgs := make([]epMsg, 0, n)
	deadline := time.Now().Add(wait)
	for len(msgs) < n {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%d of %d messages read in %v", len(msgs), n, wait)
		}
		batch, err := c.Fetch(n-len(msgs), jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return nil, err
		}
		for m := range batch.Messages() {
			seq, err := strconv.ParseUint(m.Headers().Get(HeaderSeq), 10, 64)
			if err != nil {
				return nil, fmt.Errorf("%w: message without a %s header", ErrMessage, HeaderSeq)
			}
			msgs = append(msgs, epMsg{seq: seq, kind: m.Headers().Get(HeaderKind), data: m.Data()})
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, context.DeadlineExceeded) {
			return nil, err
		}
	}
	return msgs, nil
}

// Check puts an episode's messages in sequence order and checks that they are 1..n, each once,
// beginning with a begin message and ending with an end message that counts n.
func checkEpisode(msgs []epMsg) error {
	slices.SortStableFunc(msgs, func(a, b epMsg) int { return int(a.seq) - int(b.seq) })
	for i, m := range msgs {
		if m.seq != uint64(i+1) {
			if i > 0 && m.seq == msgs[i-1].seq {
				return fmt.Errorf("%w: message %d stored twice", ErrIncomplete, m.seq)
			}
			return fmt.Errorf("%w: message %d missing", ErrIncomplete, i+1)
		}
	}
	if len(msgs) == 0 || msgs[0].kind != KindBegin {
		return fmt.Errorf("%w: no begin message", ErrIncomplete)
	}
	last := msgs[len(msgs)-1]
	if last.kind != KindEnd {
		return fmt.Errorf("%w: no end message (still recording, or cut short)", ErrIncomplete)
	}
	if n, err := strconv.Atoi(string(last.data)); err != nil || n != len(msgs) {
		return fmt.Errorf("%w: end message counts %q messages, %d stored", ErrIncomplete, last.data, len(msgs))
	}
	return nil
}

func exportEpisode(ctx context.Context, js jetstream.JetStream, stream, subj string, n int, path string, wait time.Duration) (int, error) {
	msgs, err := fetchEpisode(ctx, js, stream, subj, n, wait)
	if err != nil {
		return 0, err
	}
	if err := checkEpisode(msgs); err != nil {
		return 0, err
	}
	var begin beginRecord
	if err := json.Unmarshal(msgs[0].data, &begin); err != nil {
		return 0, fmt.Errorf("%w: begin: %v", ErrMessage, err)
	}
	w, err := dataset.Create(path, begin.writerConfig())
	if err != nil {
		return 0, err
	}
	fail := func(err error) (int, error) {
		w.Close()
		os.Remove(path + ".active")
		os.Remove(path)
		return 0, err
	}
	var emb []float32
	for _, m := range msgs[1 : len(msgs)-1] {
		switch m.kind {
		case KindState:
			s, err := decodeState(m.data)
			if err != nil {
				return fail(err)
			}
			if err := w.WriteState(&s); err != nil {
				return fail(err)
			}
		case KindEmbedding:
			e, err := DecodeEmbedding(m.data, emb)
			if err != nil {
				return fail(err)
			}
			emb = e.Data
			if err := w.WriteEmbedding(&robot.Embedding{Stamp: e.Stamp, Tokens: e.Tokens, Width: e.Width, Data: e.Data}); err != nil {
				return fail(err)
			}
		case KindAction:
			a, err := decodeAction(m.data)
			if err != nil {
				return fail(err)
			}
			if err := w.WriteAction(&a); err != nil {
				return fail(err)
			}
		case KindMeta:
			meta, stamp, err := decodeMeta(m.data)
			if err != nil {
				return fail(err)
			}
			if err := w.WriteMeta(&meta, stamp); err != nil {
				return fail(err)
			}
		default:
			return fail(fmt.Errorf("%w: message %d of kind %q", ErrMessage, m.seq, m.kind))
		}
	}
	if err := w.Close(); err != nil {
		os.Remove(path + ".active")
		return 0, err
	}
	return len(msgs), nil
}
