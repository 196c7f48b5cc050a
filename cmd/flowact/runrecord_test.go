package main

import (
	"context"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/flowact/flowact/dataset"
	"github.com/flowact/flowact/fleet"
	"github.com/flowact/flowact/policy"
	"github.com/flowact/flowact/policy/safety"
	"github.com/flowact/flowact/robot"
	"github.com/flowact/flowact/sim/episode"
	"github.com/flowact/flowact/sim/task"
)

// spyDriver sits between the loop and the tap and keeps, independently of the recorder, every
// new state the loop read, every command the driver took and every trajectory.
type spyDriver struct {
	robot.Driver
	tw     robot.TrajectoryWriter
	states []dataset.JointState
	cmds   []dataset.Action
	trajs  []robot.Trajectory
}

func (s *spyDriver) ReadState(dst *robot.State) error {
	err := s.Driver.ReadState(dst)
	if err == nil && (len(s.states) == 0 || dst.Stamp.After(s.states[len(s.states)-1].Stamp)) {
		s.states = append(s.states, dataset.JointState{Stamp: dst.Stamp, Position: slices.Clone(dst.Position), Velocity: slices.Clone(dst.Velocity)})
	}
	return err
}

func (s *spyDriver) WriteCommand(c *robot.Command) error {
	err := s.Driver.WriteCommand(c)
	if err == nil {
		s.cmds = append(s.cmds, dataset.Action{Stamp: c.Stamp, Position: slices.Clone(c.Position)})
	}
	return err
}

func (s *spyDriver) WriteTrajectory(tr *robot.Trajectory) error {
	err := s.tw.WriteTrajectory(tr)
	if err == nil {
		s.trajs = append(s.trajs, robot.Trajectory{Start: tr.Start, TimeFromStart: slices.Clone(tr.TimeFromStart), Positions: slices.Clone(tr.Positions)})
	}
	return err
}

// ranPoints is what a trajectory controller executes of trajs: each one's points before the
// next one's start, and all of the last one's.
func ranPoints(trajs []robot.Trajectory, dof int) []dataset.Action {
	var out []dataset.Action
	for i, tr := range trajs {
		for k, d := range tr.TimeFromStart {
			at := tr.Start.Add(d)
			if i+1 < len(trajs) && !at.Before(trajs[i+1].Start) {
				break
			}
			out = append(out, dataset.Action{Stamp: at, Position: tr.Positions[k*dof : (k+1)*dof]})
		}
	}
	return out
}

// TestRunRecordsEpisodes drives the real control loop (policy.Loop.Step, the shipped checkpoint,
// the simulator on the track task in simulated time) with `flowact run`'s episode recorder
// between it and the driver, and publishes to an in-process nats-server: the loop is started,
// runs past fleet.episode_max (2 s here), is stopped (~stop), idles, is started again and the
// runtime shuts down. The stream then holds three episodes (cut at the max length, at the stop,
// at shutdown), which export to bags that the trainer reads; together they hold every command
// the driver took (or every trajectory point that ran), in order, and an unbroken run of the
// states the loop read from the first start to the stop, and from the restart to the end.
func TestRunRecordsEpisodes(t *testing.T) {
	pf, err := loadPolicyFile(DefaultPolicy)
	if err != nil {
		t.Fatal(err)
	}
	lp, err := loadPolicy(pf, "")
	if err != nil {
		t.Fatal(err)
	}
	defer lp.Close()
	for _, output := range []string{"command", "trajectory"} {
		t.Run(output, func(t *testing.T) { testRunRecords(t, lp, output) })
	}
}

func testRunRecords(t *testing.T, lp *loadedPolicy, output string) {
	srv, err := fleet.NewServer(fleet.ServerConfig{Port: -1, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	cfg := fleet.Config{Robot: "r1", URL: srv.ClientURL(), Spool: t.TempDir(), EpisodeMax: 2 * time.Second}
	eplog, err := fleet.OpenLog(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer eplog.Close()
	nc, err := fleet.Connect(cfg, "", "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	logDone := make(chan error, 1)
	lctx, lcancel := context.WithCancel(ctx)
	go func() { logDone <- eplog.Run(lctx, nc) }()
	defer func() { lcancel(); <-logDone }()

	tf, err := loadTaskFile("track")
	if err != nil {
		t.Fatal(err)
	}
	runner, err := episode.New(tf.Episode, lp.rb)
	if err != nil {
		t.Fatal(err)
	}
	tk, err := task.New(tf.Task)
	if err != nil {
		t.Fatal(err)
	}
	env, err := runner.Start(tk, 3)
	if err != nil {
		t.Fatal(err)
	}
	model := lp.rb.Model
	dof := model.DoF()
	q := newTap(fleet.DefaultRecordQueue, dof)
	spy := &spyDriver{Driver: q.wrap(env.Driver())}
	spy.tw, _ = spy.Driver.(robot.TrajectoryWriter)
	if spy.tw == nil {
		t.Fatal("the tap hides the simulator's TrajectoryWriter")
	}
	inf, err := lp.expert(1)
	if err != nil {
		t.Fatal(err)
	}
	lc := lp.file.Loop
	lc.Output = output
	var drv robot.Driver = spy
	if output == "command" {
		drv = struct{ robot.Driver }{spy} // a command driver: no WriteTrajectory
	}
	loop, err := policy.New(lc, policy.Deps{Driver: drv, Inferer: inf, Clock: env.Clock(), Embeddings: envEmbeddings{env}})
	if err != nil {
		t.Fatal(err)
	}
	rec := &runRecorder{q: q, log: eplog, state: loop.State, emb: envEmbeddings{env}, max: cfg.EpisodeMax,
		logger: slog.New(slog.DiscardHandler), meta: dataset.Meta{Robot: model.Name, Joints: model.Names(), Rate: 1 / loop.Period().Seconds(), Seed: 1}}

	// The loop's own schedule: a Step per period of simulated time, the inference between two
	// ticks; the recorder drains every 3 ticks, as its goroutine would every recordPeriod.
	clock := env.Clock()
	start := clock.Now()
	k := 0
	step := func(n int, until func() bool) {
		t.Helper()
		for i := 0; i < n || (until != nil && !until()); i++ {
			if i > 500 {
				t.Fatal("the loop did not come to idle in 500 ticks")
			}
			at := start.Add(time.Duration(k) * loop.Period())
			if err := clock.SleepUntil(ctx, at); err != nil {
				t.Fatalf("tick %d: %v", k, err)
			}
			if err := loop.Step(at); err != nil {
				t.Fatal(err)
			}
			loop.InferPending(0)
			if k%3 == 0 {
				if err := rec.drain(false); err != nil {
					t.Fatal(err)
				}
			}
			k++
		}
	}
	step(10, nil) // idle: nothing recorded
	idleStates := len(spy.states)
	if err := loop.Start(); err != nil {
		t.Fatal(err)
	}
	firstStart := len(spy.states)
	step(150, nil) // 3 s at 50 Hz: past episode_max
	if err := loop.Stop(); err != nil {
		t.Fatal(err)
	}
	step(0, func() bool { return loop.State() == safety.Idle })
	stopAt := len(spy.states)
	step(3, nil) // the recorder sees the loop idle: the episode ends
	step(20, nil)
	if err := loop.Start(); err != nil {
		t.Fatal(err)
	}
	restart := len(spy.states)
	step(60, nil)
	if err := rec.drain(true); err != nil { // shutdown
		t.Fatal(err)
	}
	st := rec.Stats()
	if st.Episodes != 3 || st.Dropped != 0 || st.Refused != 0 {
		t.Fatalf("recorder stats %+v, want 3 episodes, nothing dropped or refused", st)
	}
	if err := eplog.WaitDrained(ctx); err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	rep, err := fleet.Export(ctx, js, fleet.ExportConfig{Stream: fleet.EpisodeStream("r1"), Dir: dir})
	if err != nil || len(rep.Skipped) > 0 || len(rep.Episodes) != 3 {
		t.Fatalf("export: %v, %+v, skipped %v", err, rep, rep.Skipped)
	}
	var eps []*dataset.Episode
	for _, e := range rep.Episodes {
		ep, err := dataset.Read(e.Path, dataset.Config{})
		if err != nil {
			t.Fatal(err)
		}
		if m := ep.Meta; m.Robot != model.Name || !slices.Equal(m.Joints, model.Names()) || m.Rate != 50 || m.Task != "" {
			t.Errorf("%s: metadata %+v", filepath.Base(e.Path), m)
		}
		if len(ep.Embeddings) == 0 || len(ep.States) == 0 || len(ep.Actions) == 0 {
			t.Fatalf("%s: %d states, %d embeddings, %d actions", filepath.Base(e.Path), len(ep.States), len(ep.Embeddings), len(ep.Actions))
		}
		if _, err := dataset.Align(ep, ep.Meta.Rate, dataset.ActionsFromCommand); err != nil {
			t.Errorf("%s: the trainer cannot align it: %v", filepath.Base(e.Path), err)
		}
		eps = append(eps, ep)
	}
	slices.SortFunc(eps, func(a, b *dataset.Episode) int { return a.States[0].Stamp.Compare(b.States[0].Stamp) })
	if d := eps[0].States[len(eps[0].States)-1].Stamp.Sub(eps[0].States[0].Stamp); d >= cfg.EpisodeMax || d < cfg.EpisodeMax-2*loop.Period() {
		t.Errorf("the first episode lasts %v, want it cut at episode_max %v", d, cfg.EpisodeMax)
	}

	// Actions: every command the driver took (or trajectory point that ran), in order, none twice.
	var got []dataset.Action
	for _, ep := range eps {
		got = append(got, ep.Actions...)
	}
	want := spy.cmds
	if output == "trajectory" {
		want = ranPoints(spy.trajs, dof)
	}
	if len(got) != len(want) {
		t.Fatalf("%d actions recorded, the driver took %d", len(got), len(want))
	}
	for i := range want {
		if !got[i].Stamp.Equal(want[i].Stamp) || !slices.Equal(got[i].Position, want[i].Position) {
			t.Fatalf("action %d: recorded %v %v, sent %v %v", i, got[i].Stamp, got[i].Position, want[i].Stamp, want[i].Position)
		}
	}
	// States: the first two episodes together are an unbroken run of the states read from the
	// first start (at most a drain period before it) to the stop; the third from the restart on.
	sameStates := func(name string, rec []dataset.JointState, from, to int) {
		t.Helper()
		i := slices.IndexFunc(spy.states, func(s dataset.JointState) bool { return s.Stamp.Equal(rec[0].Stamp) })
		if i < 0 || i > from || i < from-3 {
			t.Fatalf("%s: begins at state %d, the loop started at %d", name, i, from)
		}
		if j := i + len(rec); j < to || j > to+3 {
			t.Fatalf("%s: ends at state %d, the loop was idle at %d", name, j, to)
		}
		for n, s := range rec {
			w := spy.states[i+n]
			if !s.Stamp.Equal(w.Stamp) || !slices.Equal(s.Position, w.Position) || !slices.Equal(s.Velocity, w.Velocity) {
				t.Fatalf("%s: state %d differs from the one read", name, n)
			}
		}
	}
	if firstStart != idleStates {
		t.Fatal("Start read a state")
	}
	sameStates("episodes 1 and 2", append(slices.Clone(eps[0].States), eps[1].States...), firstStart, stopAt)
	sameStates("episode 3", eps[2].States, restart, len(spy.states))
	t.Logf("%s output: 3 episodes, %d states, %d actions, %d embeddings; %d of %d states read while idle not recorded",
		output, len(eps[0].States)+len(eps[1].States)+len(eps[2].States), len(got), len(eps[0].Embeddings)+len(eps[1].Embeddings)+len(eps[2].Embeddings),
		len(spy.states)-(len(eps[0].States)+len(eps[1].States)+len(eps[2].States)), len(spy.states))
}

// TestTapNeverBlocks: a full queue drops the tick's record and counts it; the tick's copy
// allocates nothing.
func TestTapNeverBlocks(t *testing.T) {
	q := newTap(16, 2)
	d := q.wrap(nopDriver{}).(*tapDriver)
	c := &robot.Command{Stamp: time.Unix(1_700_000_000, 0), Position: []float64{1, 2}}
	for range 20 {
		if err := d.WriteCommand(c); err != nil {
			t.Fatal(err)
		}
	}
	if got := q.dropped.Load(); got != 4 {
		t.Errorf("%d dropped, want 4 (20 into 16)", got)
	}
	if allocs := testing.AllocsPerRun(100, func() {
		d.WriteCommand(c)
		q.head.Store(q.tail.Load()) // the consumer took it
	}); allocs != 0 {
		t.Errorf("WriteCommand through the tap allocates %v times", allocs)
	}
}

type nopDriver struct{}

func (nopDriver) Model() *robot.Model                 { return nil }
func (nopDriver) ReadState(*robot.State) error        { return robot.ErrNoState }
func (nopDriver) WriteCommand(c *robot.Command) error { return nil }
