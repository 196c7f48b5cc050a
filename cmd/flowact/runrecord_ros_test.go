package main

import (
	"context"
	"math"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flowact/flowact/dataset"
	"github.com/flowact/flowact/fleet"
	"github.com/flowact/flowact/internal/rostest"
	"github.com/flowact/flowact/robot"
)

// TestRunRecordsOverROS runs `flowact run --nats URL` as its own process against Debian's
// rosmaster, with the simulator node in the test's process and `flowact hub` in it too: the
// policy runs, rosservice stops it (one episode), starts it again, and SIGINT ends the run (a
// second episode). The robot's stream on the hub then holds both episodes, complete, with the
// states, embeddings and commands of the run.
func TestRunRecordsOverROS(t *testing.T) {
	rostest.Require(t, "rosmaster", "rosservice")
	t.Parallel()
	bin := buildFlowact(t)
	hub := startHub(t)
	uri := rostest.StartRosmaster(t).URI()
	env := rostest.Env(t, uri, "XDG_CACHE_HOME="+t.TempDir()) // the spool's default directory
	sn, m, rc := startSimNode(t, uri)
	home := rc.HomePosition(m)
	moved := func() bool {
		st := robot.NewState(m.DoF())
		sn.Sim().TrueStateTo(&st)
		for i := range home {
			if math.Abs(st.Position[i]-home[i]) > 0.01 {
				return true
			}
		}
		return false
	}

	run := rostest.Start(t, env, bin, "run", "--master", uri, "--connect-timeout", "20s", "--nats", hub, "--fleet-id", "r1")
	rostest.Eventually(t, 60*time.Second, "the arm to move under flowact run's commands", moved)
	if out := rostest.Run(t, env, 30*time.Second, "rosservice", "call", "/flowact/stop"); !strings.Contains(out, "success: True") {
		t.Fatalf("rosservice call /flowact/stop:\n%s", out)
	}
	run.WaitOutput(t, 30*time.Second, "run: episode recorded")
	if out := rostest.Run(t, env, 30*time.Second, "rosservice", "call", "/flowact/start"); !strings.Contains(out, "success: True") {
		t.Fatalf("rosservice call /flowact/start:\n%s", out)
	}
	time.Sleep(2 * time.Second) // the second episode's length; nothing is checked against it
	if err := run.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	run.Wait(t, 30*time.Second)
	if n := strings.Count(run.Output(), "run: episode recorded"); n != 2 {
		t.Fatalf("flowact run recorded %d episodes, want 2:\n%s", n, run.Output())
	}

	nc, err := nats.Connect(hub)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.NewWithDomain(nc, "hub")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rep, err := fleet.Export(ctx, js, fleet.ExportConfig{Stream: fleet.EpisodeStream("r1"), Dir: t.TempDir()})
	if err != nil || len(rep.Episodes) != 2 || len(rep.Skipped) != 0 {
		t.Fatalf("export: %v; %+v; skipped %v", err, rep, rep.Skipped)
	}
	for _, e := range rep.Episodes {
		ep, err := dataset.Read(e.Path, dataset.Config{})
		if err != nil {
			t.Fatal(err)
		}
		if len(ep.States) == 0 || len(ep.Actions) == 0 || len(ep.Embeddings) == 0 || ep.Meta.Robot != m.Name || ep.Meta.Rate != 50 {
			t.Errorf("episode %s: %d states, %d actions, %d embeddings, meta %+v", e.Episode, len(ep.States), len(ep.Actions), len(ep.Embeddings), ep.Meta)
		}
		t.Logf("episode %s: %d messages, %d states, %d actions, %d embeddings, %.1f s", e.Episode, e.Messages, len(ep.States), len(ep.Actions), len(ep.Embeddings),
			ep.States[len(ep.States)-1].Stamp.Sub(ep.States[0].Stamp).Seconds())
	}
}
