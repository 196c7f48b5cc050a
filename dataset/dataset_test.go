package dataset

import (
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	rosbag "github.com/foxglove/go-rosbag"

	"github.com/flowact/flowact/robot"
)

var testJoints = []string{"shoulder", "elbow", "wrist"}

// t0 is the start of test episodes: an arbitrary ROS time with a fractional second.
var t0 = time.Unix(1700000000, 250_000_000).UTC()

// synthEpisode builds an episode: states and actions at 100 Hz for dur, embeddings (2 x 4) at
// 5 Hz starting 30 ms late. Values encode their stream, index and joint so tests can check
// exactly what went where.
func synthEpisode(dur time.Duration) *Episode {
	ep := &Episode{Meta: Meta{Version: MetaVersion, Task: "reach", Instruction: "touch the red ball", Seed: 42,
		Success: true, Robot: "arm3", Joints: slices.Clone(testJoints), Rate: 100}}
	for i := 0; time.Duration(i)*10*time.Millisecond <= dur; i++ {
		st := t0.Add(time.Duration(i) * 10 * time.Millisecond)
		p := []float64{float64(i), 1000 + float64(i), -float64(i) / 7}
		ep.States = append(ep.States, JointState{Stamp: st, Position: p, Velocity: []float64{1, 2, 3}, Effort: []float64{0.5, 0, -0.5}})
		ep.Actions = append(ep.Actions, Action{Stamp: st, Position: []float64{float64(i) + 0.5, 1000.5 + float64(i), -float64(i)/7 + 0.5}})
	}
	for i := 0; 30*time.Millisecond+time.Duration(i)*200*time.Millisecond <= dur; i++ {
		e := robot.Embedding{Stamp: t0.Add(30*time.Millisecond + time.Duration(i)*200*time.Millisecond), Tokens: 2, Width: 4, Data: make([]float32, 8)}
		for j := range e.Data {
			e.Data[j] = float32(i*100 + j)
		}
		ep.Embeddings = append(ep.Embeddings, e)
	}
	return ep
}

func writeTemp(t testing.TB, ep *Episode, cfg WriterConfig) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ep.bag")
	if err := WriteEpisode(path, ep, cfg); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestWriteReadRoundTrip(t *testing.T) {
	ep := synthEpisode(5 * time.Second)
	for _, cfg := range []WriterConfig{
		{},
		{Embedding: EmbeddingMultiArray},
		{Compression: "lz4", ChunkBytes: MinChunkBytes}, // several chunks
		{Topics: Topics{JointStates: "/arm/joint_states", Command: "/arm/group_position_controller/command"}},
	} {
		path := writeTemp(t, ep, cfg)
		got, err := Read(path, Config{Topics: cfg.Topics})
		if err != nil {
			t.Fatalf("%+v: %v", cfg, err)
		}
		if !equalMeta(got.Meta, ep.Meta) {
			t.Errorf("%+v: meta %+v, want %+v", cfg, got.Meta, ep.Meta)
		}
		if len(got.States) != len(ep.States) || len(got.Actions) != len(ep.Actions) || len(got.Embeddings) != len(ep.Embeddings) {
			t.Fatalf("%+v: %d/%d/%d messages, want %d/%d/%d", cfg, len(got.States), len(got.Actions), len(got.Embeddings),
				len(ep.States), len(ep.Actions), len(ep.Embeddings))
		}
		for i := range ep.States {
			g, w := got.States[i], ep.States[i]
			if !g.Stamp.Equal(w.Stamp) || !slices.Equal(g.Position, w.Position) || !slices.Equal(g.Velocity, w.Velocity) || !slices.Equal(g.Effort, w.Effort) {
				t.Fatalf("%+v: state %d = %+v, want %+v", cfg, i, g, w)
			}
		}
		for i := range ep.Actions {
			if g, w := got.Actions[i], ep.Actions[i]; !g.Stamp.Equal(w.Stamp) || !slices.Equal(g.Position, w.Position) {
				t.Fatalf("%+v: action %d = %+v, want %+v", cfg, i, g, w)
			}
		}
		for i := range ep.Embeddings {
			g, w := got.Embeddings[i], ep.Embeddings[i]
			if !g.Stamp.Equal(w.Stamp) || g.Tokens != w.Tokens || g.Width != w.Width || !slices.Equal(g.Data, w.Data) {
				t.Fatalf("%+v: embedding %d = %+v, want %+v", cfg, i, g, w)
			}
		}
	}
}

func equalMeta(a, b Meta) bool {
	return a.Version == b.Version && a.Task == b.Task && a.Instruction == b.Instruction && a.Seed == b.Seed &&
		a.Success == b.Success && a.Robot == b.Robot && slices.Equal(a.Joints, b.Joints) && a.Rate == b.Rate
}

func TestAlign(t *testing.T) {
	ep := synthEpisode(time.Second)
	a, err := Align(ep, 0, ActionsFromCommand)
	if err != nil {
		t.Fatal(err)
	}
	// Tick 0 is the first embedding (30 ms); the last tick is the last state/action at 1 s:
	// 98 ticks at 10 ms from 30 ms to 1000 ms.
	if !a.Start.Equal(t0.Add(30*time.Millisecond)) || a.N != 98 || a.D != 3 || a.Tokens != 2 || a.Width != 4 {
		t.Fatalf("start %v, N %d, D %d, %d x %d", a.Start.Sub(t0), a.N, a.D, a.Tokens, a.Width)
	}
	for k := range a.N {
		i := k + 3 // the state at 30 ms + k * 10 ms is state k+3
		if got := a.StateAt(k); got[0] != float64(i) || got[1] != 1000+float64(i) {
			t.Fatalf("tick %d state %v, want state %d", k, got, i)
		}
		if got := a.ActionAt(k); got[0] != float64(i)+0.5 {
			t.Fatalf("tick %d action %v, want action %d", k, got, i)
		}
		// Embeddings at 30 + 200 j ms: held until the next one.
		if j := int(a.EmbeddingOf[k]); j != k/20 || a.EmbeddingAt(k)[0] != float32(100*j) {
			t.Fatalf("tick %d embedding %d, want %d", k, j, k/20)
		}
	}
	// Derived actions: the next tick's state; one tick fewer.
	d, err := Align(ep, 0, ActionsFromNextState)
	if err != nil {
		t.Fatal(err)
	}
	if d.N != a.N-1 {
		t.Fatalf("derived N %d, want %d", d.N, a.N-1)
	}
	for k := range d.N {
		if !slices.Equal(d.ActionAt(k), a.StateAt(k+1)) {
			t.Fatalf("derived action %d = %v, want next state %v", k, d.ActionAt(k), a.StateAt(k+1))
		}
	}
	// A slower rate: 30 Hz ticks hold the latest 100 Hz state.
	s, err := Align(ep, 30, ActionsFromCommand)
	if err != nil {
		t.Fatal(err)
	}
	for k := range s.N {
		at := s.Start.Add(time.Duration(math.Round(float64(k) * 1e9 / 30)))
		want := int(at.Sub(t0) / (10 * time.Millisecond))
		if s.StateAt(k)[0] != float64(want) {
			t.Fatalf("30 Hz tick %d (%v): state %v, want %d", k, at.Sub(t0), s.StateAt(k), want)
		}
	}
	if _, err := Align(&Episode{Meta: Meta{Joints: testJoints}}, 0, ActionsFromCommand); !errors.Is(err, ErrConfiguration) || !errors.Is(err, ErrNoRate) || strings.Contains(err.Error(), "Config.") {
		t.Errorf("no rate: %v", err)
	}
}

func TestSampleTo(t *testing.T) {
	a, err := Align(synthEpisode(100*time.Millisecond), 0, ActionsFromCommand)
	if err != nil {
		t.Fatal(err)
	}
	const h = 5
	var s Sample
	for k := range a.N {
		a.SampleTo(&s, k, h)
		if !slices.Equal(s.State, a.StateAt(k)) || !slices.Equal(s.Embedding, a.EmbeddingAt(k)) {
			t.Fatalf("tick %d: state/embedding differ", k)
		}
		for i := range h {
			src := min(k+i, a.N-1)
			if !slices.Equal(s.Action[i*a.D:(i+1)*a.D], a.ActionAt(src)) {
				t.Fatalf("tick %d row %d: %v, want action %d %v", k, i, s.Action[i*a.D:(i+1)*a.D], src, a.ActionAt(src))
			}
			want := float32(0)
			if k+i < a.N {
				want = 1
			}
			if s.Mask[i] != want {
				t.Fatalf("tick %d row %d: mask %v, want %v", k, i, s.Mask[i], want)
			}
		}
	}
	if n := testing.AllocsPerRun(100, func() { a.SampleTo(&s, a.N-2, h) }); n != 0 {
		t.Errorf("SampleTo: %v allocations", n)
	}
}

func TestSplit(t *testing.T) {
	var paths []string
	for i := range 50 {
		paths = append(paths, filepath.Join("/data", "ep"+strings.Repeat("x", i%3)+string(rune('a'+i%26))+string(rune('a'+i/26))+".bag"))
	}
	tr, va := Split(paths, 0.2, 7)
	if len(va) != 10 || len(tr) != 40 {
		t.Fatalf("split %d/%d, want 40/10", len(tr), len(va))
	}
	rev := slices.Clone(paths)
	slices.Reverse(rev)
	tr2, va2 := Split(rev, 0.2, 7)
	if !slices.Equal(tr, tr2) || !slices.Equal(va, va2) {
		t.Error("split depends on input order")
	}
	for _, v := range va {
		if slices.Contains(tr, v) {
			t.Errorf("%s in both sets", v)
		}
	}
	_, va3 := Split(paths, 0.2, 8)
	if slices.Equal(va, va3) {
		t.Error("seed 7 and 8 give the same validation set")
	}
	if _, v := Split(paths[:3], 0.01, 1); len(v) != 1 {
		t.Errorf("tiny fraction gave %d validation episodes, want 1", len(v))
	}
	if tr, v := Split(paths[:3], 0, 1); len(v) != 0 || len(tr) != 3 {
		t.Errorf("zero fraction: %d/%d", len(tr), len(v))
	}
}

// rawBag writes a bag by hand with go-rosbag, bypassing Writer's checks, for bad-bag tests.
type rawConn struct {
	topic string
	typ   msgType
}

type rawMsg struct {
	conn int
	t    time.Time
	data []byte
}

func rawBag(t testing.TB, path string, conns []rawConn, msgs []rawMsg) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := rosbag.NewWriter(f, rosbag.WithCompression(rosbag.CompressionNone))
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range conns {
		if err := w.WriteConnection(&rosbag.Connection{Conn: uint32(i), Topic: c.topic, Data: rosbag.ConnectionHeader{
			Topic: c.topic, Type: c.typ.name, MD5Sum: c.typ.md5, MessageDefinition: []byte(c.typ.def)}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range msgs {
		if err := w.WriteMessage(&rosbag.Message{Conn: uint32(m.conn), Time: uint64(m.t.UnixNano()), Data: m.data}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func stateMsg(t time.Time, names []string, pos ...float64) []byte {
	return appendJointState(nil, &jointStateMsg{header: header{stamp: t}, name: names, position: pos})
}

func cmdMsg(v ...float64) []byte {
	return appendFloat64MultiArray(nil, &float64MultiArrayMsg{data: v})
}

func embMsg(t time.Time, v ...float32) []byte {
	return appendEmbedding(nil, &embeddingMsg{header: header{stamp: t}, tokens: 1, width: uint32(len(v)), data: v})
}

func TestBadBags(t *testing.T) {
	dir := t.TempDir()
	js, emb, cmd := rawConn{"/joint_states", typeJointState()}, rawConn{"/flowact/embedding", typeEmbedding()}, rawConn{"/flowact/command", typeFloat64MultiArray()}
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	good := []rawMsg{{0, at(0), stateMsg(at(0), testJoints, 1, 2, 3)}, {1, at(0), embMsg(at(0), 1, 2)}, {2, at(0), cmdMsg(1, 2, 3)},
		{0, at(10), stateMsg(at(10), testJoints, 1, 2, 3)}, {2, at(10), cmdMsg(1, 2, 3)}}
	cfg := Config{Rate: 100}
	tests := []struct {
		name  string
		conns []rawConn
		msgs  []rawMsg
		want  error
		topic string
	}{
		{"missing command", []rawConn{js, emb}, good[:2], ErrMissingTopic, "/flowact/command"},
		{"missing embedding", []rawConn{js, cmd}, []rawMsg{{0, at(0), stateMsg(at(0), testJoints, 1, 2, 3)}, {1, at(0), cmdMsg(1, 2, 3)}}, ErrMissingTopic, "/flowact/embedding"},
		{"wrong type", []rawConn{{"/joint_states", typeFloat64MultiArray()}, emb, cmd}, good, ErrType, "/joint_states"},
		{"wrong md5", []rawConn{{"/joint_states", msgType{jointStateType, "0123456789abcdef0123456789abcdef", ""}}, emb, cmd}, good, ErrType, "/joint_states"},
		{"record time backwards", []rawConn{js, emb, cmd}, append(slices.Clone(good), rawMsg{2, at(5), cmdMsg(1, 2, 3)}), ErrNonMonotonic, "/flowact/command"},
		{"header stamp backwards", []rawConn{js, emb, cmd}, append(slices.Clone(good), rawMsg{0, at(20), stateMsg(at(5), testJoints, 1, 2, 3)}), ErrNonMonotonic, "/joint_states"},
		{"command length", []rawConn{js, emb, cmd}, append(slices.Clone(good), rawMsg{2, at(20), cmdMsg(1, 2)}), ErrShape, "/flowact/command"},
		{"NaN position", []rawConn{js, emb, cmd}, append(slices.Clone(good), rawMsg{0, at(20), stateMsg(at(20), testJoints, 1, math.NaN(), 3)}), ErrNotFinite, "/joint_states"},
		{"joint never reported", []rawConn{js, emb, cmd}, []rawMsg{{0, at(0), stateMsg(at(0), testJoints[:2], 1, 2)}, {1, at(0), embMsg(at(0), 1)}, {2, at(0), cmdMsg(1, 2, 3)}}, ErrMissingTopic, "/joint_states"},
		{"garbage message", []rawConn{js, emb, cmd}, append(slices.Clone(good), rawMsg{1, at(20), []byte{1, 2, 3}}), ErrMessage, "/flowact/embedding"},
	}
	for _, tc := range tests {
		path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".bag")
		rawBag(t, path, tc.conns, tc.msgs)
		_, err := Read(path, Config{Joints: testJoints, Rate: 100})
		var be *BagError
		if !errors.As(err, &be) || !errors.Is(err, tc.want) || be.Path != path || be.Topic != tc.topic {
			t.Errorf("%s: %v; want a BagError for %s topic %s wrapping %v", tc.name, err, path, tc.topic, tc.want)
		} else if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tc.topic) {
			t.Errorf("%s: message %q does not name the file and topic", tc.name, err)
		}
	}
	// The good messages read, with the joint order from the config.
	path := filepath.Join(dir, "good.bag")
	rawBag(t, path, []rawConn{js, emb, cmd}, good)
	if _, err := Read(path, Config{Joints: testJoints, Rate: 100}); err != nil {
		t.Errorf("good raw bag: %v", err)
	}
	_ = cfg
}

func TestTruncatedBags(t *testing.T) {
	path := writeTemp(t, synthEpisode(50*time.Millisecond), WriterConfig{})
	full, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(t.TempDir(), "cut.bag")
	// Every strict prefix of the file must fail cleanly: not a bag, or truncated.
	for n := 0; n < len(full); n++ {
		_, err := ReadFrom(bytes.NewReader(full[:n]), int64(n), cut, Config{})
		var be *BagError
		if !errors.As(err, &be) || be.Path != cut || !(errors.Is(err, ErrTruncated) || errors.Is(err, ErrNotBag)) {
			t.Fatalf("prefix of %d/%d bytes: %v", n, len(full), err)
		}
	}
	// An unindexed bag (index position 0, as a killed recorder leaves it).
	bad := slices.Clone(full)
	idx := strings.Index(string(bad), "index_pos=") + len("index_pos=")
	clear(bad[idx : idx+8])
	if err := os.WriteFile(cut, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(cut, Config{}); !errors.Is(err, ErrTruncated) || !strings.Contains(err.Error(), "reindex") {
		t.Errorf("unindexed: %v", err)
	}
}

func TestReadDirGoodBesideBad(t *testing.T) {
	dir := t.TempDir()
	if err := WriteEpisode(filepath.Join(dir, "a_good.bag"), synthEpisode(200*time.Millisecond), WriterConfig{}); err != nil {
		t.Fatal(err)
	}
	full, _ := os.ReadFile(filepath.Join(dir, "a_good.bag"))
	if err := os.WriteFile(filepath.Join(dir, "b_cut.bag"), full[:len(full)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "c_text.bag"), []byte("not a bag\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("ignored"), 0o644); err != nil {
		t.Fatal(err)
	}
	eps, err := ReadDir(dir, Config{})
	if len(eps) != 1 || eps[0].Path != filepath.Join(dir, "a_good.bag") {
		t.Fatalf("episodes %d, want the good one", len(eps))
	}
	var errs Errors
	if !errors.As(err, &errs) || len(errs) != 2 {
		t.Fatalf("error %v, want Errors of 2", err)
	}
	if errs[0].Path != filepath.Join(dir, "b_cut.bag") || !errors.Is(errs[0], ErrTruncated) ||
		errs[1].Path != filepath.Join(dir, "c_text.bag") || !errors.Is(errs[1], ErrNotBag) {
		t.Errorf("errors: %v", err)
	}
	if !errors.Is(err, ErrTruncated) || !errors.Is(err, ErrNotBag) {
		t.Error("errors.Is does not see through Errors")
	}
}

func TestPartialJointStates(t *testing.T) {
	// An arm and a gripper published separately, plus a joint nobody asked for.
	path := filepath.Join(t.TempDir(), "partial.bag")
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	rawBag(t, path, []rawConn{{"/joint_states", typeJointState()}, {"/emb", typeFloat32MultiArray()}}, []rawMsg{
		{0, at(0), stateMsg(at(0), []string{"shoulder", "elbow", "extra"}, 1, 2, 99)},
		{1, at(0), appendFloat32MultiArray(nil, &float32MultiArrayMsg{data: []float32{7, 8, 9}})},
		{0, at(5), stateMsg(at(5), []string{"wrist"}, 3)},
		{0, at(10), stateMsg(at(10), []string{"elbow", "shoulder"}, 20, 10)},
		{0, at(20), stateMsg(at(20), []string{"wrist"}, 30)},
	})
	ep, err := Read(path, Config{Topics: Topics{Embedding: "/emb"}, Joints: testJoints, Rate: 100, Actions: ActionsFromNextState})
	if err != nil {
		t.Fatal(err)
	}
	// Two publishers (connections) on one topic may interleave their header stamps; one
	// publisher may not go backwards.
	two := filepath.Join(t.TempDir(), "two_publishers.bag")
	rawBag(t, two, []rawConn{{"/joint_states", typeJointState()}, {"/joint_states", typeJointState()}, {"/emb", typeFloat32MultiArray()}}, []rawMsg{
		{0, at(0), stateMsg(at(0), []string{"shoulder", "elbow"}, 1, 2)},
		{1, at(1), stateMsg(at(-1), []string{"wrist"}, 3)},
		{2, at(1), appendFloat32MultiArray(nil, &float32MultiArrayMsg{data: []float32{7}})},
		{0, at(10), stateMsg(at(10), []string{"shoulder", "elbow"}, 1, 2)},
		{1, at(11), stateMsg(at(9), []string{"wrist"}, 3)},
	})
	if _, err := Read(two, Config{Topics: Topics{Embedding: "/emb"}, Joints: testJoints, Rate: 100, Actions: ActionsFromNextState}); err != nil {
		t.Errorf("two publishers: %v", err)
	}
	back := filepath.Join(t.TempDir(), "going_back.bag")
	rawBag(t, back, []rawConn{{"/joint_states", typeJointState()}, {"/emb", typeFloat32MultiArray()}}, []rawMsg{
		{0, at(0), stateMsg(at(0), testJoints, 1, 2, 3)},
		{1, at(1), appendFloat32MultiArray(nil, &float32MultiArrayMsg{data: []float32{7}})},
		{0, at(10), stateMsg(at(10), testJoints, 1, 2, 3)},
		{0, at(11), stateMsg(at(9), testJoints, 1, 2, 3)},
	})
	if _, err := Read(back, Config{Topics: Topics{Embedding: "/emb"}, Rate: 100, Actions: ActionsFromNextState}); !errors.Is(err, ErrNonMonotonic) {
		t.Errorf("one publisher going back: %v", err)
	}
	want := [][]float64{{1, 2, 3}, {10, 20, 3}, {10, 20, 30}}
	if len(ep.States) != len(want) {
		t.Fatalf("%d states, want %d", len(ep.States), len(want))
	}
	for i, w := range want {
		if !slices.Equal(ep.States[i].Position, w) {
			t.Errorf("state %d = %v, want %v", i, ep.States[i].Position, w)
		}
	}
	if e := ep.Embeddings[0]; e.Tokens != 1 || e.Width != 3 {
		t.Errorf("embedding %d x %d, want 1 x 3", e.Tokens, e.Width)
	}
	a, err := Align(ep, 100, ActionsFromNextState)
	if err != nil {
		t.Fatal(err)
	}
	// Ticks start at 5 ms, when every joint is known; states end at 20 ms, so the tick at 15 ms
	// would need a state at 25 ms: one tick, whose action is the state held at 15 ms.
	if a.N != 1 || !slices.Equal(a.ActionAt(0), want[1]) {
		t.Errorf("N %d, actions %v", a.N, a.Action)
	}
}

func TestWriteEpisodeFailureLeavesNothing(t *testing.T) {
	ep := synthEpisode(100 * time.Millisecond)
	ep.States[5].Position = []float64{1, 2} // wrong length, half-way through
	dir := t.TempDir()
	if err := WriteEpisode(filepath.Join(dir, "x.bag"), ep, WriterConfig{}); !errors.Is(err, ErrShape) {
		t.Fatalf("WriteEpisode: %v, want ErrShape", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("files left: %v", ents)
	}
}

func TestWriterRejects(t *testing.T) {
	w, err := Create(filepath.Join(t.TempDir(), "w.bag"), WriterConfig{Joints: testJoints})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.WriteState(&JointState{Stamp: t0, Position: []float64{1, 2}}); !errors.Is(err, ErrShape) {
		t.Errorf("short state: %v", err)
	}
	if err := w.WriteState(&JointState{Stamp: t0, Position: []float64{1, 2, 3}}); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteState(&JointState{Stamp: t0.Add(-time.Millisecond), Position: []float64{1, 2, 3}}); !errors.Is(err, ErrNonMonotonic) {
		t.Errorf("backwards stamp: %v", err)
	}
	if err := w.WriteAction(&Action{Stamp: t0, Position: []float64{1, math.Inf(1), 3}}); !errors.Is(err, ErrNotFinite) {
		t.Errorf("Inf action: %v", err)
	}
	if err := w.WriteEmbedding(&robot.Embedding{Stamp: t0, Tokens: 2, Width: 2, Data: []float32{1}}); !errors.Is(err, ErrShape) {
		t.Errorf("bad embedding: %v", err)
	}
	if err := w.WriteMeta(&Meta{Joints: []string{"a", "b", "c"}, Rate: 10}, t0); !errors.Is(err, ErrMeta) {
		t.Errorf("meta with other joints: %v", err)
	}
	if err := w.WriteState(&JointState{Position: []float64{1, 2, 3}}); err == nil {
		t.Error("zero stamp accepted")
	}
	if _, err := Create(filepath.Join(t.TempDir(), "x.bag"), WriterConfig{}); err == nil {
		t.Error("writer without joints accepted")
	}
	if _, err := os.Stat(w.path); !os.IsNotExist(err) {
		t.Errorf("%s exists before Close: %v", w.path, err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := os.Stat(w.path + ".active"); !os.IsNotExist(err) {
		t.Errorf(".active file left after Close: %v", err)
	}
	if _, err := Read(w.path, Config{Actions: ActionsFromNextState, Rate: 10}); !errors.Is(err, ErrMissingTopic) {
		t.Errorf("reading the closed bag (states only): %v", err)
	}
}

func TestMultiArrayEmbeddingLayouts(t *testing.T) {
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	tests := []struct {
		name          string
		msg           float32MultiArrayMsg
		tokens, width int
		want          []float32
		err           error
	}{
		{"no layout", float32MultiArrayMsg{data: []float32{1, 2, 3}}, 1, 3, []float32{1, 2, 3}, nil},
		{"one dim", float32MultiArrayMsg{dims: []multiArrayDim{{"x", 3, 3}}, data: []float32{1, 2, 3}}, 1, 3, []float32{1, 2, 3}, nil},
		{"offset", float32MultiArrayMsg{dims: []multiArrayDim{{"tokens", 2, 4}, {"width", 2, 2}}, offset: 1, data: []float32{9, 1, 2, 3, 4}}, 2, 2, []float32{1, 2, 3, 4}, nil},
		{"layout disagrees", float32MultiArrayMsg{dims: []multiArrayDim{{"tokens", 2, 6}, {"width", 3, 3}}, data: []float32{1, 2, 3, 4}}, 0, 0, nil, ErrShape},
		{"three dims", float32MultiArrayMsg{dims: []multiArrayDim{{"a", 1, 1}, {"b", 1, 1}, {"c", 1, 1}}, data: []float32{1}}, 0, 0, nil, ErrShape},
		{"offset past data", float32MultiArrayMsg{offset: 5, data: []float32{1}}, 0, 0, nil, ErrShape},
		{"NaN", float32MultiArrayMsg{data: []float32{float32(math.NaN())}}, 0, 0, nil, ErrNotFinite},
	}
	for _, tc := range tests {
		path := filepath.Join(t.TempDir(), "e.bag")
		rawBag(t, path, []rawConn{{"/joint_states", typeJointState()}, {"/flowact/embedding", typeFloat32MultiArray()}},
			[]rawMsg{{0, at(0), stateMsg(at(0), testJoints, 1, 2, 3)}, {1, at(0), appendFloat32MultiArray(nil, &tc.msg)}})
		ep, err := Read(path, Config{Actions: ActionsFromNextState, Rate: 10})
		if tc.err != nil {
			if !errors.Is(err, tc.err) {
				t.Errorf("%s: %v, want %v", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if e := ep.Embeddings[0]; e.Tokens != tc.tokens || e.Width != tc.width || !slices.Equal(e.Data, tc.want) {
			t.Errorf("%s: %d x %d %v, want %d x %d %v", tc.name, e.Tokens, e.Width, e.Data, tc.tokens, tc.width, tc.want)
		}
	}
}
