package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net"
	"os"
	"runtime"
	"strings"
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
	"github.com/flowact/flowact/policy/chunk"
	"github.com/flowact/flowact/policy/safety"
	"github.com/flowact/flowact/robot"
	"github.com/flowact/flowact/sim"
)

// linkProxy is a TCP relay standing for the robot's network link to its NATS server. cut
// black-holes it as a dead network does: every connection stays open and nothing is forwarded
// either way (a relay keeps what it has read and reads no more, so the senders' socket buffers
// fill), and new connections are accepted and held, never answered. restore ends the cut: the
// connections that lived through it are closed (their data lost, as TCP gives up on a dead
// link) and new ones are relayed again.
type linkProxy struct {
	target string
	addr   string
	ln     net.Listener
	mu     sync.Mutex
	up     *sync.Cond // broadcast when a cut ends
	isCut  bool
	closed bool
	conns  map[net.Conn]bool // the open connections, both sides
	wg     sync.WaitGroup
}

func newLinkProxy(t *testing.T, target string) *linkProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &linkProxy{target: target, addr: ln.Addr().String(), ln: ln, conns: map[net.Conn]bool{}}
	p.up = sync.NewCond(&p.mu)
	p.wg.Go(p.accept)
	t.Cleanup(p.close)
	return p
}

func (p *linkProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		cut, closed := p.isCut, p.closed
		if !closed {
			p.conns[c] = true
		}
		p.mu.Unlock()
		if closed {
			c.Close()
			return
		}
		if cut {
			continue // held: restore closes it
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			p.drop(c)
			continue
		}
		p.mu.Lock()
		if !p.conns[c] { // a cut came and went meanwhile (or close): c is closed
			p.mu.Unlock()
			up.Close()
			continue
		}
		p.conns[up] = true
		p.mu.Unlock()
		p.wg.Go(func() { p.relay(up, c) })
		p.wg.Go(func() { p.relay(c, up) })
	}
}

// relay copies src to dst, holding what it read while the link is cut.
func (p *linkProxy) relay(dst, src net.Conn) {
	defer p.drop(dst)
	defer p.drop(src)
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.pass(src) {
				return // src lived through a cut: what it read is lost
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// pass waits while the link is cut and reports whether c is still open.
func (p *linkProxy) pass(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.isCut && !p.closed {
		p.up.Wait()
	}
	return p.conns[c]
}

func (p *linkProxy) drop(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.Close()
}

func (p *linkProxy) cut() {
	p.mu.Lock()
	p.isCut = true
	p.mu.Unlock()
}

func (p *linkProxy) restore() {
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
	p.isCut = false
	p.up.Broadcast()
	p.mu.Unlock()
}

// close ends the link for good; it may be called again.
func (p *linkProxy) close() {
	p.mu.Lock()
	p.closed, p.isCut = true, false
	p.ln.Close()
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
	p.up.Broadcast()
	p.mu.Unlock()
	p.wg.Wait()
}

// stepClock is the simulator's clock letting the loop run only the ticks the test grants:
// Simulate calls SleepUntil before every Step, and the call that would begin a tick beyond the
// grant reports the grant done (the ticks, their inference and telemetry all ran) and waits
// for the next one. Closing free ends the gating (the loop's braking at shutdown).
type stepClock struct {
	sim.Clock
	grant chan int
	done  chan struct{}
	free  chan struct{}
	freed sync.Once
	left  int  // the loop goroutine's
	owe   bool // the loop goroutine's: a grant is being run
	begun atomic.Int64
}

// release ends the gating; it may be called again.
func (c *stepClock) release() { c.freed.Do(func() { close(c.free) }) }

func newStepClock(c sim.Clock) *stepClock {
	return &stepClock{Clock: c, grant: make(chan int, 1), done: make(chan struct{}, 1), free: make(chan struct{})}
}

func (c *stepClock) SleepUntil(ctx context.Context, t time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for c.left == 0 {
		if c.owe {
			c.owe = false
			c.done <- struct{}{}
		}
		select {
		case n := <-c.grant:
			c.left, c.owe = n, true
		case <-c.free:
			c.left = math.MaxInt
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	c.left--
	c.begun.Add(1)
	return c.Clock.SleepUntil(ctx, t)
}

// errHung is wrapped by the report of a grant of ticks the loop did not finish in time.
var errHung = errors.New("the loop hangs")

// run grants the loop n ticks and waits for them, at most bound: a hang detector, not a
// performance threshold (the whole test, seven grants and the link's waits, took 9 to 15 s
// under -race with two busy loops beside it on this 2-core machine). A tick that waits on the cut link or on the gated install never ends while they
// last, and they last until run has returned. The report names the loop goroutine's stack.
func (c *stepClock) run(n int, bound time.Duration, runDone <-chan error) error {
	b0 := c.begun.Load()
	c.grant <- n
	tm := time.NewTimer(bound)
	defer tm.Stop()
	select {
	case <-c.done:
		return nil
	case err := <-runDone:
		return fmt.Errorf("the run ended during a grant of %d ticks: %v", n, err)
	case <-tm.C:
		return fmt.Errorf("%w: it began %d of the %d ticks granted and has not finished them in %v; its goroutine:\n%s",
			errHung, c.begun.Load()-b0, n, bound, loopStack())
	}
}

// loopStack returns the stack of the goroutine running Loop.Simulate.
func loopStack() string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if strings.Contains(g, "policy.(*Loop).simulate(") {
			return g
		}
	}
	return "(not found)"
}

// phase is what the loop counted of itself over one grant of ticks, and the commands the
// driver took.
type phase struct {
	name                                    string
	ticks, overruns, holds, rejects, chunks uint64
	commands                                uint64
}

func phaseOf(name string, a, b *policy.Snapshot, cmds uint64) phase {
	return phase{name: name, ticks: b.Counters.Ticks - a.Counters.Ticks, overruns: b.Counters.Overruns - a.Counters.Overruns,
		holds: b.Counters.HoldTicks - a.Counters.HoldTicks, rejects: b.Counters.Rejected - a.Counters.Rejected,
		chunks: b.Counters.Chunks - a.Counters.Chunks, commands: cmds}
}

// simEmbedding is a VLM whose embedding stays the same and is restamped every 100 ms of the
// simulation's time.
type simEmbedding struct {
	clk  sim.Clock
	data []float32
}

func (e simEmbedding) Latest() (policy.Embedding, error) {
	return policy.Embedding{Stamp: e.clk.Now().Truncate(100 * time.Millisecond), Tokens: 1, Width: len(e.data), Data: e.data}, nil
}

// netDriver counts the commands the simulator takes and, while wait is set, makes each one
// wait for the reply to a request over the robot's link (until ctx ends): a tick that waits on
// the network, the mistake TestFleetLinkRealLoop is there to catch.
type netDriver struct {
	robot.Driver
	nc       *nats.Conn
	ctx      context.Context
	wait     atomic.Bool
	commands atomic.Uint64
}

func (d *netDriver) WriteCommand(c *robot.Command) error {
	for d.wait.Load() && d.ctx.Err() == nil {
		if _, err := d.nc.RequestWithContext(d.ctx, "flowact.r1.ping", nil); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond) // not answered (reconnecting): ask again
	}
	err := d.Driver.WriteCommand(c)
	if err == nil {
		d.commands.Add(1)
	}
	return err
}

// gatedInstaller holds the rollout's install, after the download and its verification, until
// the test opens gate; it holds the swapper's lock meanwhile, as the load does. Then it installs
// with the swapper, the loop's real inferer, and sends the result on done.
type gatedInstaller struct {
	sw      *swapInferer
	once    sync.Once
	reached chan struct{}
	gate    chan struct{}
	opened  sync.Once
	done    chan error
}

// open opens the gate; it may be called again.
func (g *gatedInstaller) open() { g.opened.Do(func() { close(g.gate) }) }

func (g *gatedInstaller) Install(dir string, m *fleet.BundleManifest) error {
	g.sw.mu.Lock()
	g.once.Do(func() { close(g.reached) })
	<-g.gate
	g.sw.mu.Unlock()
	err := g.sw.Install(dir, m)
	g.done <- err
	return err
}

// waitFor polls ok every 5 ms until it holds, at most bound (a hang detector).
func waitFor(t *testing.T, bound time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", bound, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// hangBound bounds each wait of TestFleetLinkRealLoop: far beyond what any step takes on a
// loaded machine under -race, far below the link's timeouts (linkTimeout) and go test's.
const hangBound = 2 * time.Minute

// linkTimeout is the robot's publish and connect timeout in TestFleetLinkRealLoop: longer than
// hangBound, so that a tick waiting on the cut link waits beyond the hang detector.
const linkTimeout = 10 * time.Minute

// TestFleetLinkRealLoop runs the real control loop (policy.Loop.Simulate on the simulator's
// clock, the shipped checkpoint) with `flowact run`'s fleet link: telemetry, the episode
// recorder's tap and model rollout, over a TCP link to the NATS server that the test controls,
// with the link's timeouts set to 10 minutes. Time is the simulation's: the test grants the
// loop a number of ticks at a time (stepClock) and waits for them, so nothing depends on this
// machine's speed or load. The claims (issue #16):
//
//   - Link cut: the link black-holes every connection for the whole of a grant (it ends only
//     after the loop has finished its ticks), so a tick that waited on the network would never
//     finish them: the hang detector (stepClock.run, 2 minutes) reports it with the loop
//     goroutine's stack. Every tick commands the robot, none holds or is skipped, and the
//     recording goes on into the spool (messages pending).
//   - Rollout: the install is held (after download and verification, the swapper's lock taken)
//     until the loop has finished a grant of ticks, so a tick that waited for the install would
//     never finish them; then the gate opens, the new model is installed, and the next grant's
//     chunks come from it, every tick commanding the robot, none held, no chunk rejected.
//   - Nothing recorded is lost: every message the recorder appended reaches the stream once the
//     link is back, none dropped by the tap.
//   - Control: with the link cut, a driver whose command waits for a reply over it hangs the
//     loop, and the detector reports it, naming the waiting call.
func TestFleetLinkRealLoop(t *testing.T) {
	n := 150 // ticks per phase: 3 s at the shipped policy's 50 Hz
	if testing.Short() {
		n = 50
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
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tctx, tcancel := context.WithTimeout(ctx, 10*time.Minute)
	defer tcancel()

	// The operator's side, straight to the server: the buckets, and a responder for the control.
	ops := connectOps(t, srv.ClientURL())
	js, err := jetstream.New(ops)
	if err != nil {
		t.Fatal(err)
	}
	obs, err := fleet.CheckpointStore(tctx, js)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := fleet.ModelKV(tctx, js)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ops.Subscribe("flowact.r1.ping", func(m *nats.Msg) { m.Respond(nil) }); err != nil {
		t.Fatal(err)
	}

	link := newLinkProxy(t, srv.ClientURL()[len("nats://"):])
	cfg := fleet.Config{Robot: "r1", URL: "nats://" + link.addr, Spool: t.TempDir(), Models: true, TelemetryRate: 20,
		PublishTimeout: linkTimeout, ConnectTimeout: linkTimeout}
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
	s, err := sim.New(model, sim.Config{Start: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Initial: rc.HomePosition(model)})
	if err != nil {
		t.Fatal(err)
	}
	clk := newStepClock(s.Clock())
	seed := uint64(1)
	ex, err := lp.expert(seed)
	if err != nil {
		t.Fatal(err)
	}
	var oc onboard.Config
	inf := fl.wire(&oc, ex, seed)
	// The rollout wire made, with its installer held at a gate (the same swapper behind it).
	gi := &gatedInstaller{sw: fl.swap, reached: make(chan struct{}), gate: make(chan struct{}), done: make(chan error, 1)}
	fl.roll = fleet.NewRollout(fl.cfg, model, gi, fl.tel.SetModel, nil)
	width, _ := lp.ck.CondShape()
	emb := simEmbedding{clk: s.Clock(), data: make([]float32, width)}
	for i := range emb.data {
		emb.data[i] = float32(i%7) / 7
	}
	ctl, stopCtl := context.WithCancel(ctx)
	defer stopCtl()
	nd := &netDriver{Driver: s, nc: fl.nc, ctx: ctl}
	loop, err := policy.New(lp.file.Loop, policy.Deps{Driver: oc.WrapDriver(nd), Inferer: inf, Clock: clk, Recorder: oc.Recorder, Embeddings: emb})
	if err != nil {
		t.Fatal(err)
	}
	fl.attach(loop, emb, seed)

	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	runDone := make(chan error, 1)
	go func() {
		runDone <- fl.runWith(runCtx, func(ctx context.Context) error {
			if err := loop.Start(); err != nil {
				return err
			}
			return loop.Simulate(ctx, 100*time.Millisecond) // each chunk 100 ms of sim time late
		})
	}()
	waited := false
	defer func() {
		if waited {
			return
		}
		// The test failed mid-run: release what the loop may be waiting for (the link, the
		// control's request, the install's gate, the clock), stop it and wait for it.
		link.close()
		stopCtl()
		gi.open()
		stopRun()
		clk.release()
		select {
		case <-runDone:
		case <-time.After(hangBound):
			t.Errorf("the run did not stop %v after the test failed; its goroutine:\n%s", hangBound, loopStack())
		}
	}()
	grant := func(name string, n int) phase {
		t.Helper()
		s0, c0 := loop.Snapshot(), nd.commands.Load()
		if err := clk.run(n, hangBound, runDone); err != nil {
			waited = !errors.Is(err, errHung) // else the run has ended
			t.Fatalf("%s: %v", name, err)
		}
		return phaseOf(name, s0, loop.Snapshot(), nd.commands.Load()-c0)
	}
	check := func(p phase, n int) {
		t.Helper()
		t.Logf("%-9s %3d ticks, %d overruns, %d hold ticks, %2d chunks, %d rejected, %3d commands", p.name, p.ticks, p.overruns, p.holds, p.chunks, p.rejects, p.commands)
		if p.ticks != uint64(n) || p.overruns != 0 || p.commands != uint64(n) {
			t.Errorf("%s: %d ticks, %d overruns, %d commands; want %d ticks, each commanding the robot", p.name, p.ticks, p.overruns, p.commands, n)
		}
		if p.holds != 0 || p.rejects != 0 || p.chunks == 0 {
			t.Errorf("%s: %d hold ticks, %d chunks rejected, %d accepted; want the plan carried on, no tick held", p.name, p.holds, p.rejects, p.chunks)
		}
		if st := loop.State(); st != safety.Running {
			t.Errorf("%s: loop %s, want running", p.name, st)
		}
	}
	tapDrained := func() bool { return fl.tap.head.Load() == fl.tap.tail.Load() }

	// Warm up: the first chunks, the link carrying episodes, the rollout watching its key (its
	// consumer on the bucket's stream), all before the cut.
	grant("warm-up", 25)
	waitFor(t, hangBound, "episode messages stored and the model key watched", func() bool {
		si, err := js.Stream(tctx, "KV_"+fleet.ModelBucket)
		if err != nil {
			return false
		}
		info, err := si.Info(tctx)
		return err == nil && info.State.Consumers > 0 && fl.eplog.Stats().Published > 0
	})
	check(grant("link up", n), n)

	link.cut()
	before := fl.eplog.Stats()
	check(grant("link cut", n), n)
	waitFor(t, hangBound, "the recorder to take the cut's records", tapDrained)
	if st := fl.eplog.Stats(); st.Appended <= before.Appended || st.Pending == 0 {
		t.Errorf("link cut: the spool holds %d messages appended during the cut (%d before), %d pending; want the recording spooled, unacknowledged", st.Appended-before.Appended, before.Appended, st.Pending)
	}
	link.restore()
	dctx, dcancel := context.WithTimeout(tctx, hangBound)
	if err := fl.eplog.WaitDrained(dctx); err != nil {
		t.Fatalf("the link back: %v", err)
	}
	dcancel()
	t.Logf("after the cut: episode log %+v", fl.eplog.Stats())

	// Rollout: the operator uploads a model (as another machine would) and points the robot's
	// key at it; the robot downloads and verifies it, and its install waits at the gate.
	ck := t.TempDir()
	sub, _ := fs.Sub(configs.FS, "checkpoints/"+DefaultCheckpoint)
	if err := os.CopyFS(ck, sub); err != nil {
		t.Fatal(err)
	}
	b, _, err := fleet.Bundle(ck, model, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := obs.PutBytes(tctx, "mlp-2", b); err != nil {
		t.Fatal(err)
	}
	first := fl.swap.cur.Load()
	if _, err := kv.PutString(tctx, "r1", "mlp-2"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-gi.reached:
	case <-time.After(hangBound):
		t.Fatalf("waited %v for the rollout to download and verify the model: %+v", hangBound, fl.roll.Stats())
	}
	check(grant("installing", n), n)
	if fl.swap.cur.Load() != first || fl.roll.Stats().Installed != 0 {
		t.Fatal("a model was swapped in while its install was held")
	}
	gi.open()
	select {
	case err := <-gi.done:
		if err != nil {
			t.Fatalf("install: %v", err)
		}
	case <-time.After(hangBound):
		t.Fatalf("waited %v for the install", hangBound)
	}
	waitFor(t, hangBound, "the rollout to count the install", func() bool { return fl.roll.Stats().Installed == 1 })
	installed := fl.swap.cur.Load()
	if installed == first {
		t.Fatal("installed, but not swapped in")
	}
	check(grant("swapped", n), n)
	if fl.swap.used != installed { // the loop goroutine's, which is parked at the clock
		t.Error("swapped: the chunks do not come from the installed model")
	}

	// The control: the link cut, each command waits for a reply over it.
	link.cut()
	nd.wait.Store(true)
	err = clk.run(20, 3*time.Second, runDone) // it never finishes while the link is cut: any bound shows it
	nd.wait.Store(false)
	stopCtl()
	switch {
	case err == nil:
		t.Error("control: a tick waiting on the cut link finished its ticks: the detector cannot tell")
	case !errors.Is(err, errHung):
		waited = true // the run has ended
		t.Fatalf("control: %v", err)
	case !strings.Contains(err.Error(), "(*netDriver).WriteCommand"):
		t.Errorf("control: the report does not name the waiting call: %v", err)
	default:
		t.Logf("control, as expected: %s", strings.SplitN(err.Error(), ";", 2)[0])
	}
	select { // released, it finishes the grant
	case <-clk.done:
	case <-time.After(hangBound):
		t.Fatalf("control: the loop still hangs %v after the driver stopped waiting:\n%s", hangBound, loopStack())
	}
	link.restore()

	stopRun()
	clk.release()
	waited = true // Simulate ends with its context's error
	if err := <-runDone; !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	if fl.eplog.Stats().Pending > 0 {
		// run waited a second at exit; the rest is in the spool, for the next run: this one.
		lctx, lcancel := context.WithCancel(tctx)
		done := make(chan error, 1)
		go func() { done <- fl.eplog.Run(lctx, fl.nc) }()
		dctx, dcancel := context.WithTimeout(tctx, hangBound)
		err := fl.eplog.WaitDrained(dctx)
		dcancel()
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
	t.Logf("episode log: %+v; recorder: %+v; telemetry: %+v", st, fl.rec.Stats(), fl.tel.Stats())
	if st.Pending != 0 || info.State.Msgs != st.Appended || fl.rec.Stats().Dropped != 0 {
		t.Errorf("recorded %d messages, the stream holds %d, %d pending, recorder %+v", st.Appended, info.State.Msgs, st.Pending, fl.rec.Stats())
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
	sw, ck := shippedSwap(b, pf)
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

// TestSwapInfererStateOut: the rollout's inferer measures the state outside the training data
// when its running model does (the shipped checkpoint has the statistics), before and after a
// model is installed under a policy with loop.gate.max_state_out, and not when it does not.
func TestSwapInfererStateOut(t *testing.T) {
	pf, err := loadPolicyFile(DefaultPolicy)
	if err != nil {
		t.Fatal(err)
	}
	pf.Loop.Gate.MaxStateOut = 0.5
	sw, ck := shippedSwap(t, pf)
	if !sw.MeasuresStateOut() {
		t.Fatal("the shipped checkpoint's expert does not measure the state outside")
	}
	if err := sw.Install(ck, nil); err != nil {
		t.Fatalf("install the shipped checkpoint under gate.max_state_out: %v", err)
	}
	if !sw.MeasuresStateOut() {
		t.Error("the installed model does not measure the state outside")
	}
	installed := sw.cur.Swap(&inferEntry{inf: inferStub{}})
	installed.lp.Close()
	if sw.MeasuresStateOut() {
		t.Error("an inferer without statistics measures the state outside")
	}
}

type inferStub struct{}

func (inferStub) Shape() (int, int)                         { return 1, 1 }
func (inferStub) Infer(*chunk.Chunk, *policy.Request) error { return nil }

// shippedSwap returns the rollout's swapping inferer running the shipped checkpoint under the
// policy pf, and a copy of that checkpoint's directory to install; both go with tb.
func shippedSwap(tb testing.TB, pf *PolicyFile) (*swapInferer, string) {
	tb.Helper()
	lp, err := loadPolicy(pf, "")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(lp.Close)
	ck := tb.TempDir()
	sub, _ := fs.Sub(configs.FS, "checkpoints/"+DefaultCheckpoint)
	if err := os.CopyFS(ck, sub); err != nil {
		tb.Fatal(err)
	}
	ex, err := lp.expert(1)
	if err != nil {
		tb.Fatal(err)
	}
	sw := &swapInferer{link: &fleetLink{lp: lp}, seed: 1}
	sw.cur.Store(&inferEntry{inf: ex})
	tb.Cleanup(sw.close)
	return sw, ck
}
