package dataset

import (
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/flowact/flowact/robot"
)

// Read reads the episode in the bag at path. See ReadFrom.
func Read(path string, cfg Config) (*Episode, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, &BagError{Path: path, Offset: -1, Err: err}
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, &BagError{Path: path, Offset: -1, Err: err}
	}
	return ReadFrom(f, fi.Size(), path, cfg)
}

// ReadFrom reads an episode from a bag of size bytes; name labels errors and Episode.Path.
//
// Streams are found by topic (cfg.Topics) and checked by their declared type and MD5 sum. The
// embedding may be flowact_msgs/Embedding or std_msgs/Float32MultiArray (dims [tokens, width];
// one dim or none means one token). Other topics are ignored. Times are the bag's record times
// (when the recorder received the message; flowact's Writer records each stamp), which exist for
// every type; header stamps, where a type has them, must not decrease per publisher either.
//
// Joint-state messages are matched by name; names not in the joint order are ignored, and a
// partial message updates the joints it names (the others hold their last value). States begin
// at the first message by which every joint has been seen. Missing velocities and efforts read
// as 0; positions must be finite, velocities and efforts are kept as recorded (NaN included).
//
// Errors are *BagError values naming the file, the topic and the record offset.
func ReadFrom(r io.ReaderAt, size int64, name string, cfg Config) (*Episode, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	rd := reader{cfg: cfg, topics: cfg.Topics.withDefaults(), name: name}
	maxChunk := cfg.MaxChunkBytes
	if maxChunk == 0 {
		maxChunk = DefaultMaxChunk
	}
	if err := scanBag(r, size, maxChunk, rd.message); err != nil {
		be := asBagError(name, err)
		be.Path = name
		return nil, be
	}
	ep, err := rd.finish()
	if err != nil {
		be := asBagError(name, err)
		be.Path = name
		return nil, be
	}
	return ep, nil
}

type rawState struct {
	t     time.Time
	names []string
	pos   []float64
	vel   []float64
	eff   []float64
}

type reader struct {
	cfg    Config
	topics Topics
	name   string

	states  []rawState
	embs    []robot.Embedding
	cmds    []Action
	meta    *Meta
	lastRec [4]uint64
	lastHdr map[*bagConn]time.Time // per connection: publishers' clocks differ
}

func (rd *reader) topicErr(topic string, off int64, err error) error {
	return &BagError{Path: rd.name, Topic: topic, Offset: off, Err: err}
}

// expect checks a connection's declared type against the accepted ones.
func (rd *reader) expect(m *bagMsg, types ...msgType) (msgType, error) {
	for _, t := range types {
		if m.conn.typ == t.name {
			if m.conn.md5 != t.md5 && m.conn.md5 != "*" {
				return t, rd.topicErr(m.conn.topic, m.offset, fmt.Errorf("%w: %s with MD5 %s, want %s", ErrType, t.name, m.conn.md5, t.md5))
			}
			return t, nil
		}
	}
	names := make([]string, len(types))
	for i, t := range types {
		names[i] = t.name
	}
	return msgType{}, rd.topicErr(m.conn.topic, m.offset, fmt.Errorf("%w: %s, want %s", ErrType, m.conn.typ, strings.Join(names, " or ")))
}

// monotonic checks the record time of stream (per topic: the recorder's clock) and, when hdr is
// set, the header stamp per connection (per publisher: two publishers on one topic, an arm and a
// gripper, stamp with their own clocks, and their stamps may interleave in arrival order).
func (rd *reader) monotonic(stream int, m *bagMsg, hdr time.Time) error {
	if m.time < rd.lastRec[stream] {
		return rd.topicErr(m.conn.topic, m.offset, fmt.Errorf("%w: record time %v after %v",
			ErrNonMonotonic, time.Unix(0, int64(m.time)).UTC(), time.Unix(0, int64(rd.lastRec[stream])).UTC()))
	}
	rd.lastRec[stream] = m.time
	if !hdr.IsZero() && hdr.Unix() != 0 {
		if rd.lastHdr == nil {
			rd.lastHdr = map[*bagConn]time.Time{}
		}
		if last := rd.lastHdr[m.conn]; hdr.Before(last) {
			return rd.topicErr(m.conn.topic, m.offset, fmt.Errorf("%w: header stamp %v after %v", ErrNonMonotonic, hdr, last))
		}
		rd.lastHdr[m.conn] = hdr
	}
	return nil
}

func (rd *reader) message(m *bagMsg) error {
	t := time.Unix(0, int64(m.time)).UTC()
	topic := m.conn.topic
	bad := func(err error) error { return rd.topicErr(topic, m.offset, err) }
	switch topic {
	case rd.topics.JointStates:
		if _, err := rd.expect(m, typeJointState()); err != nil {
			return err
		}
		var prev []string
		if n := len(rd.states); n > 0 {
			prev = rd.states[n-1].names
		}
		js, err := decodeJointState(m.data, prev)
		if err != nil {
			return bad(err)
		}
		if err := rd.monotonic(streamState, m, js.header.stamp); err != nil {
			return err
		}
		if len(js.position) != len(js.name) || (len(js.velocity) != 0 && len(js.velocity) != len(js.name)) ||
			(len(js.effort) != 0 && len(js.effort) != len(js.name)) {
			return bad(fmt.Errorf("%w: %d names with %d positions, %d velocities, %d efforts",
				ErrShape, len(js.name), len(js.position), len(js.velocity), len(js.effort)))
		}
		if !finite64(js.position) { // velocities and efforts may be NaN (unmeasured), as ROS allows
			return bad(fmt.Errorf("%w: a position", ErrNotFinite))
		}
		rd.states = append(rd.states, rawState{t: t, names: js.name, pos: js.position, vel: js.velocity, eff: js.effort})
	case rd.topics.Embedding:
		typ, err := rd.expect(m, typeEmbedding(), typeFloat32MultiArray())
		if err != nil {
			return err
		}
		var e robot.Embedding
		var hdr time.Time
		if typ.name == embeddingType {
			em, err := decodeEmbedding(m.data)
			if err != nil {
				return bad(err)
			}
			hdr = em.header.stamp
			e = robot.Embedding{Stamp: t, Tokens: int(em.tokens), Width: int(em.width), Data: em.data}
		} else {
			fm, err := decodeFloat32MultiArray(m.data)
			if err != nil {
				return bad(err)
			}
			if int(fm.offset) > len(fm.data) {
				return bad(fmt.Errorf("%w: data_offset %d beyond %d values", ErrShape, fm.offset, len(fm.data)))
			}
			data := fm.data[fm.offset:]
			tokens, width := 1, len(data)
			switch len(fm.dims) {
			case 0, 1:
			case 2:
				tokens, width = int(fm.dims[0].size), int(fm.dims[1].size)
			default:
				return bad(fmt.Errorf("%w: %d layout dims, want tokens x width", ErrShape, len(fm.dims)))
			}
			if uint64(tokens)*uint64(width) != uint64(len(data)) {
				return bad(fmt.Errorf("%w: layout %d x %d with %d values", ErrShape, tokens, width, len(data)))
			}
			e = robot.Embedding{Stamp: t, Tokens: tokens, Width: width, Data: data}
		}
		if err := rd.monotonic(streamEmbedding, m, hdr); err != nil {
			return err
		}
		if e.Tokens == 0 || e.Width == 0 {
			return bad(fmt.Errorf("%w: empty %d x %d embedding", ErrShape, e.Tokens, e.Width))
		}
		if len(rd.embs) > 0 && (rd.embs[0].Tokens != e.Tokens || rd.embs[0].Width != e.Width) {
			return bad(fmt.Errorf("%w: embedding %d x %d after %d x %d", ErrShape, e.Tokens, e.Width, rd.embs[0].Tokens, rd.embs[0].Width))
		}
		for _, v := range e.Data {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return bad(ErrNotFinite)
			}
		}
		rd.embs = append(rd.embs, e)
	case rd.topics.Command:
		if rd.cfg.Actions == ActionsFromNextState {
			return nil
		}
		if _, err := rd.expect(m, typeFloat64MultiArray()); err != nil {
			return err
		}
		fm, err := decodeFloat64MultiArray(m.data)
		if err != nil {
			return bad(err)
		}
		if err := rd.monotonic(streamCommand, m, time.Time{}); err != nil {
			return err
		}
		if int(fm.offset) > len(fm.data) {
			return bad(fmt.Errorf("%w: data_offset %d beyond %d values", ErrShape, fm.offset, len(fm.data)))
		}
		if !finite64(fm.data) {
			return bad(ErrNotFinite)
		}
		rd.cmds = append(rd.cmds, Action{Stamp: t, Position: fm.data[fm.offset:]})
	case rd.topics.Episode:
		if _, err := rd.expect(m, typeString()); err != nil {
			return err
		}
		s, err := decodeString(m.data)
		if err != nil {
			return bad(err)
		}
		meta, err := decodeMeta(s)
		if err != nil {
			return bad(err)
		}
		rd.meta = &meta
	}
	return nil
}

func (rd *reader) missing(topic, hint string) error {
	return &BagError{Path: rd.name, Topic: topic, Offset: -1, Err: fmt.Errorf("%w%s", ErrMissingTopic, hint)}
}

// finish resolves the joint order, completes partial joint states and orders the commands.
func (rd *reader) finish() (*Episode, error) {
	if len(rd.states) == 0 {
		return nil, rd.missing(rd.topics.JointStates, "")
	}
	if len(rd.embs) == 0 {
		return nil, rd.missing(rd.topics.Embedding, "")
	}
	if rd.cfg.Actions == ActionsFromCommand && len(rd.cmds) == 0 {
		return nil, rd.missing(rd.topics.Command, " (no command messages; actions can come from the next joint state instead)")
	}
	ep := &Episode{Path: rd.name, Embeddings: rd.embs}
	if rd.meta != nil {
		ep.Meta = *rd.meta
	} else {
		ep.Meta = Meta{Version: MetaVersion, Rate: rd.cfg.Rate}
	}
	joints := rd.cfg.Joints
	if joints == nil {
		joints = ep.Meta.Joints
	}
	if joints == nil {
		joints = rd.states[0].names
		if err := checkJoints(joints); err != nil {
			return nil, rd.topicErr(rd.topics.JointStates, -1, fmt.Errorf("joint names of the first message: %w", err))
		}
	}
	cmdOrder := ep.Meta.Joints
	if cmdOrder == nil {
		cmdOrder = joints
	}
	ep.Meta.Joints = slices.Clone(joints)
	if rd.cfg.Rate > 0 {
		ep.Meta.Rate = rd.cfg.Rate
	}

	d := len(joints)
	index := make(map[string]int, d)
	for i, n := range joints {
		index[n] = i
	}
	pos, vel, eff := make([]float64, d), make([]float64, d), make([]float64, d)
	seen, nseen := make([]bool, d), 0
	var names []string
	var idx []int
	for _, s := range rd.states {
		if names == nil || !sameSlice(s.names, names) && !slices.Equal(s.names, names) {
			names = s.names
			idx = idx[:0]
			for _, n := range names {
				j, ok := index[n]
				if !ok {
					j = -1
				}
				idx = append(idx, j)
			}
		}
		for k, j := range idx {
			if j < 0 {
				continue
			}
			if !seen[j] {
				seen[j] = true
				nseen++
			}
			pos[j] = s.pos[k]
			if len(s.vel) > 0 {
				vel[j] = s.vel[k]
			}
			if len(s.eff) > 0 {
				eff[j] = s.eff[k]
			}
		}
		if nseen == d {
			ep.States = append(ep.States, JointState{Stamp: s.t, Position: slices.Clone(pos), Velocity: slices.Clone(vel), Effort: slices.Clone(eff)})
		}
	}
	if nseen < d {
		var never []string
		for j, ok := range seen {
			if !ok {
				never = append(never, joints[j])
			}
		}
		return nil, rd.topicErr(rd.topics.JointStates, -1, fmt.Errorf("%w: joints %v never reported", ErrMissingTopic, never))
	}
	if rd.cfg.Actions == ActionsFromCommand {
		perm := make([]int, d) // perm[j] = index in the command of joint j
		if len(cmdOrder) != d {
			return nil, rd.topicErr(rd.topics.Command, -1, fmt.Errorf("%w: commands for %d joints, reading %d", ErrShape, len(cmdOrder), d))
		}
		for j, n := range joints {
			k := slices.Index(cmdOrder, n)
			if k < 0 {
				return nil, rd.topicErr(rd.topics.Command, -1, fmt.Errorf("%w: joint %q is not among the commanded joints %v", ErrShape, n, cmdOrder))
			}
			perm[j] = k
		}
		identity := slices.Equal(cmdOrder, joints)
		for i := range rd.cmds {
			c := &rd.cmds[i]
			if len(c.Position) != d {
				return nil, rd.topicErr(rd.topics.Command, -1, fmt.Errorf("%w: command %d has %d values for %d joints", ErrShape, i, len(c.Position), d))
			}
			if !identity {
				p := make([]float64, d)
				for j := range p {
					p[j] = c.Position[perm[j]]
				}
				c.Position = p
			}
		}
		ep.Actions = rd.cmds
	}
	return ep, nil
}

// List returns the paths of the .bag files in dir, sorted.
func List(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("dataset: %w", err)
	}
	var out []string
	for _, e := range ents {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".bag") {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	return out, nil
}

// ReadDir reads every .bag file in dir, in name order. It returns the episodes it could read and,
// when some bags failed, an Errors listing them; it fails outright only when dir cannot be listed.
// It holds every episode in memory.
func ReadDir(dir string, cfg Config) ([]*Episode, error) {
	paths, err := List(dir)
	if err != nil {
		return nil, err
	}
	var eps []*Episode
	var errs Errors
	for _, p := range paths {
		ep, err := Read(p, cfg)
		if err != nil {
			errs = append(errs, asBagError(p, err))
			continue
		}
		eps = append(eps, ep)
	}
	if errs != nil {
		return eps, errs
	}
	return eps, nil
}

// sameSlice reports whether a and b are the same slice (decodeJointState shares name lists).
func sameSlice(a, b []string) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}
