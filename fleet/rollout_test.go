package fleet

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/flowact/flowact/robot"
)

var testModel = &robot.Model{Name: "arm3", Joints: []robot.Joint{{Name: "j1"}, {Name: "j2"}, {Name: "j3"}}}

// ckptDir writes a checkpoint-like directory whose files carry tag.
func ckptDir(t *testing.T, tag string) string {
	dir := t.TempDir()
	for name, body := range map[string]string{"manifest.json": `{"tag": "` + tag + `"}`, "model.safetensors": strings.Repeat(tag, 1000)} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// fakeInstaller records what it installed: the tag in manifest.json, read from the directory
// it was given (so a test sees the bytes that arrived), and refuses a tag "bad".
type fakeInstaller struct {
	mu   sync.Mutex
	tags []string
}

func (f *fakeInstaller) Install(dir string, m *BundleManifest) error {
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		return err
	}
	w, err := os.ReadFile(filepath.Join(dir, "model.safetensors"))
	if err != nil {
		return err
	}
	tag := strings.TrimSuffix(strings.TrimPrefix(string(b), `{"tag": "`), `"}`)
	if string(w) != strings.Repeat(tag, 1000) {
		return errors.New("weights do not match the manifest's tag")
	}
	if tag == "bad" {
		return errors.New("the checkpoint does not fit this robot")
	}
	f.mu.Lock()
	f.tags = append(f.tags, tag)
	f.mu.Unlock()
	return nil
}

func (f *fakeInstaller) installed() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.tags...)
}

// reports keeps the rollout's last report.
type reports struct {
	mu             sync.Mutex
	model, refusal string
	n              int
}

func (r *reports) report(model, refusal string) {
	r.mu.Lock()
	r.model, r.refusal = model, refusal
	r.n++
	r.mu.Unlock()
}

func (r *reports) last() (string, string, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.model, r.refusal, r.n
}

// TestFleetRollout pushes models to a robot's key: good ones are installed; an upload corrupted
// in the store, a bundle whose file does not match its manifest, a bundle made for another robot
// and one the installer refuses are all refused and reported, and the robot keeps the model it
// ran.
func TestFleetRollout(t *testing.T) {
	srv := startServer(t, ServerConfig{})
	cfg := Config{Robot: "r1", URL: srv.ClientURL()}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ops, err := jetstream.New(connect(t, Config{}, srv.ClientURL()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ModelKV(ctx, ops); err != nil {
		t.Fatal(err)
	}
	inst := &fakeInstaller{}
	rep := &reports{}
	ro := NewRollout(cfg, testModel, inst, rep.report, testLogger(t))
	nc := connect(t, cfg, "")
	runBG(t, func(ctx context.Context) error { return ro.Run(ctx, nc) })

	wantReport := func(n int) (string, string) {
		t.Helper()
		poll(t, 30*time.Second, "the rollout's report", func() bool { _, _, got := rep.last(); return got >= n })
		m, r, _ := rep.last()
		return m, r
	}
	push := func(name string, bundle []byte) *jetstream.ObjectInfo {
		t.Helper()
		info, err := Push(ctx, ops, "r1", name, bundle)
		if err != nil {
			t.Fatal(err)
		}
		return info
	}
	bundle := func(tag string, m *robot.Model) []byte {
		b, _, err := Bundle(ckptDir(t, tag), m, "")
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	push("model-a", bundle("a", testModel))
	if m, r := wantReport(1); m != "model-a" || r != "" {
		t.Fatalf("after model-a: running %q, refusal %q", m, r)
	}

	// An upload corrupted in the store: the chunk is replaced by one with a byte flipped.
	b := bundle("c", testModel)
	info, err := Push(ctx, ops, "r2", "model-corrupt", b) // stored, not yet pointed at r1
	if err != nil {
		t.Fatal(err)
	}
	obsStream, err := ops.Stream(ctx, "OBJ_"+CheckpointBucket)
	if err != nil {
		t.Fatal(err)
	}
	chunkSubj := "$O." + CheckpointBucket + ".C." + info.NUID
	raw, err := obsStream.GetLastMsgForSubject(ctx, chunkSubj)
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Clone(raw.Data)
	bad[len(bad)/2] ^= 0xff
	if err := obsStream.DeleteMsg(ctx, raw.Sequence); err != nil {
		t.Fatal(err)
	}
	if _, err := ops.Publish(ctx, chunkSubj, bad); err != nil {
		t.Fatal(err)
	}
	kv, err := ops.KeyValue(ctx, ModelBucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.PutString(ctx, "r1", "model-corrupt"); err != nil {
		t.Fatal(err)
	}
	m, r := wantReport(2)
	t.Logf("corrupt upload refused: %s", r)
	if m != "model-a" || !strings.Contains(r, "model-corrupt") || !strings.Contains(r, "digest") {
		t.Fatalf("corrupt upload: running %q, refusal %q", m, r)
	}

	// A bundle whose weights were changed after its manifest was written.
	tb := bundle("d", testModel)
	tb = bytes.Replace(tb, []byte(strings.Repeat("d", 1000)), []byte(strings.Repeat("e", 1000)), 1)
	push("model-tampered", tb)
	if m, r := wantReport(3); m != "model-a" || !strings.Contains(r, "SHA-256") {
		t.Fatalf("tampered bundle: running %q, refusal %q", m, r)
	}

	// A bundle made for another robot.
	other := &robot.Model{Name: "kuka", Joints: []robot.Joint{{Name: "a1"}, {Name: "a2"}, {Name: "a3"}}}
	push("model-kuka", bundle("k", other))
	if m, r := wantReport(4); m != "model-a" || !strings.Contains(r, "kuka") {
		t.Fatalf("another robot's bundle: running %q, refusal %q", m, r)
	}

	// A bundle the installer refuses.
	push("model-bad", bundle("bad", testModel))
	if m, r := wantReport(5); m != "model-a" || !strings.Contains(r, "does not fit") {
		t.Fatalf("refused by the installer: running %q, refusal %q", m, r)
	}

	push("model-b", bundle("b", testModel))
	if m, r := wantReport(6); m != "model-b" || r != "" {
		t.Fatalf("after model-b: running %q, refusal %q", m, r)
	}
	if got := inst.installed(); strings.Join(got, ",") != "a,b" {
		t.Errorf("installed %v, want a then b", got)
	}
	if st := ro.Stats(); st.Installed != 2 || st.Refused != 4 {
		t.Errorf("stats %+v, want 2 installed, 4 refused", st)
	}
}

// tarNames lists a bundle's entries.
func tarNames(t *testing.T, b []byte) []string {
	tr := tar.NewReader(bytes.NewReader(b))
	var names []string
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		names = append(names, h.Name)
	}
	return names
}

func TestFleetBundle(t *testing.T) {
	b, bm, err := Bundle(ckptDir(t, "x"), testModel, "note")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(tarNames(t, b), ","); got != "manifest.json,model.safetensors,"+BundleFile {
		t.Errorf("entries %s", got)
	}
	if bm.Robot != "arm3" || len(bm.Files) != 2 || len(bm.Joints) != 3 {
		t.Errorf("manifest %+v", bm)
	}
}
