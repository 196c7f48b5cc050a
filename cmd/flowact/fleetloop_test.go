package main

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flowact/flowact/cmd/flowact/internal/onboard"
	"github.com/flowact/flowact/configs"
	"github.com/flowact/flowact/fleet"
	"github.com/flowact/flowact/policy"
	"github.com/flowact/flowact/policy/safety"
	"github.com/flowact/flowact/robot"
	"github.com/flowact/flowact/sim"
)

// linkProxy is a TCP relay standing for the robot's network link to its NATS server: cut closes
// every connection and refuses new ones until restore.
type linkProxy struct {
	t      *testing.T
	addr   string
	target string
	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]bool
	wg     sync.WaitGroup
}

func newLinkProxy(t *testing.T, target string) *linkProxy {
	p := &linkProxy{t: t, target: target, conns: map[net.Conn]bool{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(p.cut)
	return p
}

func (p *linkProxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns[c], p.conns[up] = true, true
			p.mu.Unlock()
			for _, pair := range [][2]net.Conn{{c, up}, {up, c}} {
				p.wg.Go(func() {
					io.Copy(pair[0], pair[1])
					pair[0].Close()
					pair[1].Close()
				})
			}
		}
	})
}

func (p *linkProxy) cut() {
	p.mu.Lock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *linkProxy) restore() {
	var ln net.Listener
	var err error
	for range 50 { // the port was just closed: it may take a moment to be free again
		if ln, err = net.Listen("tcp", p.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		p.t.Fatal(err)
	}
	p.serve(ln)
}

// histDiff is the histogram of the values b recorded after a (b a later snapshot of the same
// histogram): counts, n and sum exact; min and max are b's (bounds of the phase's).
func histDiff(a, b policy.HistogramSnapshot) policy.HistogramSnapshot {
	if a.N == 0 {
		return b
	}
	d := policy.HistogramSnapshot{Offset: b.Offset, Counts: make([]uint64, len(b.Counts)), N: b.N - a.N, Sum: b.Sum - a.Sum, Min: b.Min, Max: b.Max}
	copy(d.Counts, b.Counts)
	for i, n := range a.Counts {
		d.Counts[a.Offset+i-b.Offset] -= n // b's range holds a's: counts only grow
	}
	return d
}

// phase is what the loop measured of itself over one phase of a run.
type phase struct {
	name                            string
	ticks, overruns, holds, rejects uint64
	chunks                          uint64
	jitter                          policy.HistogramSnapshot
}

func phaseOf(name string, a, b *policy.Snapshot) phase {
	return phase{name: name, ticks: b.Counters.Ticks - a.Counters.Ticks, overruns: b.Counters.Overruns - a.Counters.Overruns,
		holds: b.Counters.HoldTicks - a.Counters.HoldTicks, rejects: b.Counters.Rejected - a.Counters.Rejected,
		chunks: b.Counters.Chunks - a.Counters.Chunks, jitter: histDiff(a.Hist.TickJitter, b.Hist.TickJitter)}
}

// constEmbedding is a VLM whose embedding stays the same and is restamped every 100 ms.
type constEmbedding struct{ data []float32 }

func (c constEmbedding) Latest() (policy.Embedding, error) {
	return policy.Embedding{Stamp: time.Now().Truncate(100 * time.Millisecond), Tokens: 1, Width: len(c.data), Data: c.data}, nil
}

// netDriver makes each command wait for a NATS request while wait is set: a tick that waits on
// the network, the mistake TestFleetLinkRealLoop is there to catch.
type netDriver struct {
	robot.Driver
	nc   *nats.Conn
	wait atomic.Bool
}

func (d *netDriver) WriteCommand(c *robot.Command) error {
	if d.wait.Load() {
		d.nc.Request("flowact.r1.ping", nil, 100*time.Millisecond)
	}
	return d.Driver.WriteCommand(c)
}

// TestFleetLinkRealLoop runs the real control loop (policy.Loop.Run on the wall clock, the
// shipped checkpoint, the simulator stepping in real time) with `flowact run`'s fleet link:
// telemetry, the episode recorder and model rollout, over a TCP link to the NATS server that
// the test cuts. Three phases of the loop's own measurements (tick counters and its tick-jitter
// histogram, compared between snapshots): the link up, the link cut (the robot's connection
// is down: every publish and the rollout's watch fail and retry), and a rollout (the link back,
// a new model downloaded, verified, loaded and swapped in by the inference worker). Neither the
// cut nor the swap costs the loop a tick beyond what the link-up phase shows (slack: 5 ticks
// and 5% of the phase for a loaded machine; a tick waiting on a publish timeout would cost 25
// ticks each time), its p99 jitter stays within a period of the link-up phase's, and every
// message recorded reaches the stream once the link is back. A last phase is the control: with
// the link cut, each tick waits for a request over it (netDriver), and the loop's counters show
// far more overruns than the checks allow.
func TestFleetLinkRealLoop(t *testing.T) {
	phaseLen := 4 * time.Second
	if testing.Short() {
		phaseLen = 2 * time.Second
	}
	pf, err := loadPolicyFile(DefaultPolicy)
	if err != nil {
		t.Fatal(err)
	}
	lp, err := loadPolicy(pf, "")
	if err != nil {
		t.Fatal(err)
	}
	defer lp.Close()
	srv, err := fleet.NewServer(fleet.ServerConfig{Port: -1, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	link := newLinkProxy(t, srv.ClientURL()[len("nats://"):])
	cfg := fleet.Config{Robot: "r1", URL: "nats://" + link.addr, Spool: t.TempDir(), Models: true, TelemetryRate: 20,
		PublishTimeout: 500 * time.Millisecond, ConnectTimeout: time.Second}
	fl, err := openFleetLink(cfg, false, lp, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer fl.Close()

	model := lp.rb.Model
	_, rc, err := openRobot(lp.file.Robot)
	if err != nil {
		t.Fatal(err)
	}
	s, err := sim.New(model, sim.Config{Start: time.Now(), Initial: rc.HomePosition(model)})
	if err != nil {
		t.Fatal(err)
	}
	seed := uint64(1)
	ex, err := lp.expert(seed)
	if err != nil {
		t.Fatal(err)
	}
	var oc onboard.Config
	inf := fl.wire(&oc, ex, seed)
	width, _ := lp.ck.CondShape()
	emb := constEmbedding{make([]float32, width)}
	for i := range emb.data {
		emb.data[i] = float32(i%7) / 7
	}
	nd := &netDriver{Driver: s, nc: fl.nc}
	loop, err := policy.New(lp.file.Loop, policy.Deps{Driver: oc.WrapDriver(nd), Inferer: inf, Recorder: oc.Recorder, Embeddings: emb})
	if err != nil {
		t.Fatal(err)
	}
	fl.attach(loop, emb, seed)
	per := loop.Period()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	simDone := make(chan error, 1)
	go func() { simDone <- s.Run(ctx, robot.WallClock{}, 5*time.Millisecond) }()
	defer func() { cancel(); <-simDone }()
	runCtx, stopRun := context.WithCancel(ctx)
	runDone := make(chan error, 1)
	go func() {
		runDone <- fl.runWith(runCtx, func(ctx context.Context) error {
			if err := loop.Start(); err != nil {
				return err
			}
			return loop.Run(ctx)
		})
	}()
	wait := func(d time.Duration, what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(d)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("waited %v for %s", d, what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	wait(30*time.Second, "the loop's first chunk and the link", func() bool {
		return loop.Telemetry().Chunks.Load() > 0 && fl.nc.IsConnected()
	})
	js, err := jetstream.New(connectOps(t, srv.ClientURL()))
	if err != nil {
		t.Fatal(err)
	}
	tctx, tcancel := context.WithTimeout(ctx, 120*time.Second)
	defer tcancel()
	time.Sleep(phaseLen / 2) // warm up: the loop at steady state

	s0 := loop.Snapshot()
	time.Sleep(phaseLen)
	s1 := loop.Snapshot()
	up := phaseOf("link up", s0, s1)

	link.cut()
	wait(10*time.Second, "the robot's connection to drop", func() bool { return !fl.nc.IsConnected() })
	s1 = loop.Snapshot()
	time.Sleep(phaseLen)
	s2 := loop.Snapshot()
	cut := phaseOf("link cut", s1, s2)
	if st := fl.eplog.Stats(); st.Pending == 0 {
		t.Errorf("nothing pending in the spool after %v of recording with the link cut: %+v", phaseLen, st)
	}
	link.restore()
	wait(30*time.Second, "the robot's connection back", fl.nc.IsConnected)

	ck := t.TempDir()
	sub, _ := fs.Sub(configs.FS, "checkpoints/"+DefaultCheckpoint)
	if err := os.CopyFS(ck, sub); err != nil {
		t.Fatal(err)
	}
	b, _, err := fleet.Bundle(ck, model, "")
	if err != nil {
		t.Fatal(err)
	}
	// The upload is the operator's (another machine in a fleet): before the phase. The phase
	// is the robot's part: it sees its key change, downloads, verifies, loads and swaps.
	obs, err := fleet.CheckpointStore(tctx, js)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := obs.PutBytes(tctx, "mlp-2", b); err != nil {
		t.Fatal(err)
	}
	kv, err := fleet.ModelKV(tctx, js)
	if err != nil {
		t.Fatal(err)
	}
	first := fl.swap.cur.Load()
	s2 = loop.Snapshot()
	if _, err := kv.PutString(tctx, "r1", "mlp-2"); err != nil {
		t.Fatal(err)
	}
	wait(60*time.Second, "the new model installed", func() bool { return fl.roll.Stats().Installed == 1 })
	if fl.swap.cur.Load() == first {
		t.Fatal("installed, but not swapped in")
	}
	swapped := loop.Telemetry().Chunks.Load()
	wait(30*time.Second, "chunks from the new model", func() bool { return loop.Telemetry().Chunks.Load() >= swapped+3 })
	s3 := loop.Snapshot()
	swap := phaseOf("rollout", s2, s3)
	if st := loop.State(); st != safety.Running {
		t.Errorf("loop %s after the swap, want running", st)
	}

	// The control: the link cut again, and each tick waits for a request over it.
	link.cut()
	wait(10*time.Second, "the robot's connection to drop", func() bool { return !fl.nc.IsConnected() })
	nd.wait.Store(true)
	s3 = loop.Snapshot()
	time.Sleep(phaseLen / 2)
	s4 := loop.Snapshot()
	nd.wait.Store(false)
	blocked := phaseOf("blocking", s3, s4)
	link.restore()
	wait(30*time.Second, "the robot's connection back", fl.nc.IsConnected)

	stopRun()
	if err := <-runDone; !errors.Is(err, context.Canceled) { // loop.Run ends with its context's error
		t.Fatal(err)
	}
	if fl.eplog.Stats().Pending > 0 {
		// run waited a second at exit; the rest is in the spool, for the next run: this one.
		lctx, lcancel := context.WithCancel(tctx)
		done := make(chan error, 1)
		go func() { done <- fl.eplog.Run(lctx, fl.nc) }()
		err := fl.eplog.WaitDrained(tctx)
		lcancel()
		if rerr := <-done; err == nil {
			err = rerr
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	st := fl.eplog.Stats()
	stream, err := js.Stream(tctx, fleet.EpisodeStream("r1"))
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(tctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Pending != 0 || info.State.Msgs != st.Appended || fl.rec.Stats().Dropped != 0 {
		t.Errorf("recorded %d messages, the stream holds %d, %d pending, recorder %+v", st.Appended, info.State.Msgs, st.Pending, fl.rec.Stats())
	}

	for _, p := range []phase{up, cut, swap, blocked} {
		t.Logf("%-8s %4d ticks, %2d overruns, %3d hold ticks, %3d chunks, %d rejected; jitter p50 %.3f ms, p99 %.3f ms",
			p.name, p.ticks, p.overruns, p.holds, p.chunks, p.rejects, 1e3*p.jitter.Quantile(0.5), 1e3*p.jitter.Quantile(0.99))
	}
	t.Logf("episode log: %+v; recorder: %+v", st, fl.rec.Stats())
	if allowed := up.overruns + 5 + blocked.ticks/4; blocked.overruns <= allowed {
		t.Errorf("a tick waiting 100 ms on the cut link cost %d overruns in %d ticks, within the %d the checks below allow: they cannot tell", blocked.overruns, blocked.ticks, allowed)
	}
	for _, p := range []phase{cut, swap} {
		if p.ticks == 0 {
			t.Fatalf("%s: the loop did not tick", p.name)
		}
		allowed := up.overruns + 5 + p.ticks/20
		if p.name == swap.name && raceEnabled {
			// Under the race detector the install's own CPU (the download through this
			// process's nats-server, the hashes, loading the weights) starves the tick on two
			// shared cores: 10 to 24 overruns in about 200 ticks were measured here, none
			// without it. A tick that waited for the install would miss all of it (150 ticks
			// and more under -race), so a quarter of the phase still tells the two apart.
			allowed = up.overruns + 5 + p.ticks/4
		}
		if p.overruns > allowed {
			t.Errorf("%s: %d overruns in %d ticks, the link-up phase %d in %d: more than %d", p.name, p.overruns, p.ticks, up.overruns, up.ticks, allowed)
		}
		if q, qu := p.jitter.Quantile(0.99), up.jitter.Quantile(0.99); q > qu+per.Seconds() {
			t.Errorf("%s: p99 tick jitter %.3f ms, link up %.3f ms: more than a period (%v) worse", p.name, 1e3*q, 1e3*qu, per)
		}
		if p.rejects != 0 {
			t.Errorf("%s: %d chunks rejected", p.name, p.rejects)
		}
	}
}

// connectOps connects an operator to url until the test ends.
func connectOps(t *testing.T, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// BenchmarkRolloutInstall is the robot's CPU cost of installing a rolled-out model once it is
// verified and unpacked: loading and checking the shipped checkpoint and building its expert
// (swapInferer.Install), the work that competes with the control tick for the cores.
//
//	go test -run X -bench RolloutInstall -benchtime 10x ./cmd/flowact/
func BenchmarkRolloutInstall(b *testing.B) {
	pf, err := loadPolicyFile(DefaultPolicy)
	if err != nil {
		b.Fatal(err)
	}
	lp, err := loadPolicy(pf, "")
	if err != nil {
		b.Fatal(err)
	}
	defer lp.Close()
	ck := b.TempDir()
	sub, _ := fs.Sub(configs.FS, "checkpoints/"+DefaultCheckpoint)
	if err := os.CopyFS(ck, sub); err != nil {
		b.Fatal(err)
	}
	ex, err := lp.expert(1)
	if err != nil {
		b.Fatal(err)
	}
	sw := &swapInferer{link: &fleetLink{lp: lp}, seed: 1}
	sw.cur.Store(&inferEntry{inf: ex})
	defer sw.close()
	b.ReportAllocs()
	for b.Loop() {
		prev := sw.cur.Load()
		if err := sw.Install(ck, nil); err != nil {
			b.Fatal(err)
		}
		if prev.lp != nil {
			prev.lp.Close()
		}
	}
}
