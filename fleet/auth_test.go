package fleet

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/flowact/flowact/dataset"
)

// violations collects the permission violations a connection is told about.
type violations struct {
	mu   sync.Mutex
	msgs []string
}

func (v *violations) handler(_ *nats.Conn, _ *nats.Subscription, err error) {
	if errors.Is(err, nats.ErrPermissionViolation) || strings.Contains(strings.ToLower(err.Error()), "permissions violation") {
		v.mu.Lock()
		v.msgs = append(v.msgs, err.Error())
		v.mu.Unlock()
	}
}

func (v *violations) about(subject string) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, m := range v.msgs {
		if strings.Contains(m, subject) {
			return true
		}
	}
	return false
}

// TestFleetPermissions runs a hub with two robots (one by password, one by nkey) and an operator:
// each robot records, reports status and installs its own model, and cannot publish under the
// other's prefix or read the other's model key.
func TestFleetPermissions(t *testing.T) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := kp.PublicKey()
	seed, _ := kp.Seed()
	seedFile := filepath.Join(t.TempDir(), "r2.nk")
	if err := os.WriteFile(seedFile, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	auth := Auth{
		Robots:    []AuthUser{{Name: "r1", Password: "pw1"}, {Name: "r2", NKey: pub}},
		Operators: []AuthUser{{Name: "ops", Password: "opspw"}},
	}
	if err := auth.Validate(); err != nil {
		t.Fatal(err)
	}
	users, nk := auth.Users("")
	srv := startServer(t, ServerConfig{Users: users, NkeyUsers: nk})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	opsCfg := Config{User: "ops", Password: "opspw"}
	ops, err := jetstream.New(connect(t, opsCfg, srv.ClientURL()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := StatusKV(ctx, ops); err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{"r1", "r2"} {
		b, _, err := Bundle(ckptDir(t, r), testModel, "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Push(ctx, ops, r, "model-"+r, b); err != nil {
			t.Fatal(err)
		}
	}

	robots := map[string]Config{
		"r1": {Robot: "r1", URL: srv.ClientURL(), User: "r1", Password: "pw1", Spool: t.TempDir(), TelemetryRate: 20},
		"r2": {Robot: "r2", URL: srv.ClientURL(), NKey: seedFile, Spool: t.TempDir(), TelemetryRate: 20},
	}
	for name, cfg := range robots {
		// Allowed: its own stream, status key and model.
		l, err := OpenLog(cfg, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		nc := connect(t, cfg, "")
		runBG(t, func(ctx context.Context) error { return l.Run(ctx, nc) })
		if _, err := WriteEpisode(l, "", synthEpisode(1, 200*time.Millisecond), dataset.WriterConfig{}); err != nil {
			t.Fatal(err)
		}
		if err := l.WaitDrained(ctx); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		tel := NewTelemetry(cfg, l.Stats, testLogger(t))
		runBG(t, func(ctx context.Context) error { return tel.Run(ctx, nc) })
		tel.Offer(Sample{Time: time.Now(), State: "running"})
		inst := &fakeInstaller{}
		rep := &reports{}
		ro := NewRollout(cfg, testModel, inst, func(m, r string) { rep.report(m, r); tel.SetModel(m, r) }, testLogger(t))
		runBG(t, func(ctx context.Context) error { return ro.Run(ctx, nc) })
		poll(t, 30*time.Second, name+" to install its model", func() bool { m, _, _ := rep.last(); return m == "model-"+name })
		poll(t, 30*time.Second, name+"'s status", func() bool {
			// The status is put with each sample (the loop offers one per telemetry period): one
			// offered before the model was installed does not carry it.
			tel.Offer(Sample{Time: time.Now(), State: "running"})
			sts, err := Statuses(ctx, ops)
			if err != nil {
				return false
			}
			for _, s := range sts {
				if s.Robot == name && s.Model == "model-"+name && s.Episodes == 1 {
					return true
				}
			}
			return false
		})
	}

	// Refused: r1 on r2's prefix and r2's model key.
	v := &violations{}
	nc := connect(t, robots["r1"], "")
	nc.SetErrorHandler(v.handler)
	if err := nc.Publish(TelemetrySubject("r2"), []byte("spoof")); err != nil {
		t.Fatal(err)
	}
	nc.Flush()
	poll(t, 10*time.Second, "a violation for publishing under r2", func() bool { return v.about(TelemetrySubject("r2")) })

	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	short, cancelShort := context.WithTimeout(ctx, 2*time.Second)
	_, err = js.Publish(short, EpisodeSubject("r2", "x"), []byte("spoof"))
	cancelShort()
	if err == nil {
		t.Error("r1 stored a message in r2's episodes")
	}
	kv, err := js.KeyValue(ctx, ModelBucket)
	if err != nil {
		t.Fatal(err)
	}
	if e, err := kv.Get(ctx, "r1"); err != nil || string(e.Value()) != "model-r1" {
		t.Fatalf("r1 reading its own key: %v", err)
	}
	short, cancelShort = context.WithTimeout(ctx, 2*time.Second)
	e, err := kv.Get(short, "r2")
	cancelShort()
	if err == nil {
		t.Errorf("r1 read r2's model key: %q", e.Value())
	}
	poll(t, 10*time.Second, "a violation for reading r2's key", func() bool { return v.about("$KV." + ModelBucket + ".r2") })
	short, cancelShort = context.WithTimeout(ctx, 2*time.Second)
	defer cancelShort()
	w, err := kv.Watch(short, "r2")
	if err == nil {
		select {
		case e := <-w.Updates():
			if e != nil {
				t.Errorf("r1 watched r2's model key: %q", e.Value())
			}
		case <-time.After(2 * time.Second):
		}
		w.Stop()
	}
	// r1 may not change its own model either.
	short, cancelShort = context.WithTimeout(ctx, 2*time.Second)
	defer cancelShort()
	if _, err := kv.PutString(short, "r1", "model-r2"); err == nil {
		t.Error("r1 pointed its own model key")
	}
}
