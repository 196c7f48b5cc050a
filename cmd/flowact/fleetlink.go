package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/flowact/flowact/cmd/flowact/internal/onboard"
	"github.com/flowact/flowact/dataset"
	"github.com/flowact/flowact/fleet"
	"github.com/flowact/flowact/policy"
	"github.com/flowact/flowact/policy/chunk"
	"github.com/flowact/flowact/policy/safety"
)

// fleetLink is the robot's side of the fleet link in `flowact run`: the embedded nats-server
// (fleet.url: embedded), the connection, the episode log, telemetry from the loop's snapshots,
// remote embeddings and model rollout. openFleetLink builds it; runWith runs it beside the
// runtime; Close releases it.
type fleetLink struct {
	cfg    fleet.Config
	log    *slog.Logger
	srv    *fleet.Server
	nc     *nats.Conn
	eplog  *fleet.Log
	tel    *fleet.Telemetry
	emb    *fleet.Embeddings // nil: embeddings come from ROS
	roll   *fleet.Rollout    // nil: fleet.models off
	lp     *loadedPolicy
	swap   *swapInferer
	tap    *tap         // nil: no recording (fleet.no_record)
	rec    *runRecorder // set by attach
	closed bool
}

func openFleetLink(cfg fleet.Config, remoteEmbedding bool, lp *loadedPolicy, log *slog.Logger) (*fleetLink, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l := &fleetLink{cfg: cfg, log: log, lp: lp}
	url := ""
	if cfg.URL == fleet.Embedded {
		srv, err := fleet.NewServer(fleet.ServerConfig{Name: "flowact-" + cfg.Robot, Port: -1, Domain: cfg.Domain, Logger: log})
		if err != nil {
			return nil, err
		}
		if err := srv.Start(); err != nil {
			return nil, err
		}
		l.srv, url = srv, srv.ClientURL()
		log.Info("fleet: embedded nats-server", "url", url)
	}
	var err error
	if l.nc, err = fleet.Connect(cfg, url, "flowact "+cfg.Robot, log); err != nil {
		l.Close()
		return nil, err
	}
	if l.eplog, err = fleet.OpenLog(cfg, log); err != nil {
		l.Close()
		return nil, err
	}
	l.tel = fleet.NewTelemetry(cfg, l.eplog.Stats, log)
	if remoteEmbedding {
		subj := cfg.Embedding
		if subj == "" {
			subj = fleet.EmbeddingSubject(cfg.Robot)
		}
		if l.emb, err = fleet.NewEmbeddings(subj, nil); err != nil {
			l.Close()
			return nil, usageError{err}
		}
	}
	return l, nil
}

// wire points the runtime's config at the link (telemetry recorder, remote embeddings) and, with
// fleet.models, wraps inf in a swappable inferer the rollout installs new models into.
func (l *fleetLink) wire(oc *onboard.Config, inf policy.Inferer, seed uint64) policy.Inferer {
	oc.Recorder = l
	if l.emb != nil {
		oc.Embeddings = remoteEmbeddings{l.emb}
	}
	if !l.cfg.NoRecord {
		size := l.cfg.RecordQueue
		if size == 0 {
			size = fleet.DefaultRecordQueue
		}
		l.tap = newTap(size, l.lp.rb.Model.DoF())
		oc.WrapDriver = l.tap.wrap
	}
	if !l.cfg.Models {
		return inf
	}
	l.swap = &swapInferer{link: l, seed: seed}
	l.swap.cur.Store(&inferEntry{inf: inf})
	l.roll = fleet.NewRollout(l.cfg, l.lp.rb.Model, l.swap, l.tel.SetModel, l.log)
	return l.swap
}

// attach points the episode recorder at the runtime's loop (its state) and embedding source.
func (l *fleetLink) attach(loop *policy.Loop, emb policy.EmbeddingSource, seed uint64) {
	if l.tap == nil {
		return
	}
	m := l.lp.rb.Model
	maxLen := l.cfg.EpisodeMax
	if maxLen == 0 {
		maxLen = fleet.DefaultEpisodeMax
	}
	l.rec = &runRecorder{q: l.tap, log: l.eplog, state: loop.State, emb: emb, max: maxLen, logger: l.log,
		meta: dataset.Meta{Robot: m.Name, Joints: m.Names(), Rate: 1 / loop.Period().Seconds(), Seed: seed}}
}

// Record offers the loop's snapshot as a telemetry sample; it never blocks.
func (l *fleetLink) Record(s *policy.Snapshot) {
	c := counterMap(&s.Counters)
	if l.rec != nil {
		st := l.rec.Stats()
		c["episodes_recorded"], c["episode_records_dropped"], c["episode_records_refused"] = st.Episodes, st.Dropped, st.Refused
	}
	l.tel.Offer(fleet.Sample{Time: s.Time, State: s.State.String(), Faults: s.Trips[safety.Faulted], Counters: c, Snapshot: s})
}

// runWith runs the link's goroutines and run (the runtime) until run returns, then stops the
// link and waits for it.
func (l *fleetLink) runWith(ctx context.Context, run func(context.Context) error) error {
	lctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	start := func(f func(context.Context, *nats.Conn) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(lctx, l.nc); err != nil {
				errs <- err
			}
		}()
	}
	start(l.eplog.Run)
	start(l.tel.Run)
	if l.emb != nil {
		start(l.emb.Run)
	}
	if l.roll != nil {
		start(l.roll.Run)
	}
	var recErr error
	rctx, rcancel := context.WithCancel(context.WithoutCancel(ctx))
	recDone := make(chan struct{})
	if l.rec != nil {
		go func() { defer close(recDone); recErr = l.rec.run(rctx) }()
	} else {
		close(recDone)
	}
	err := run(ctx)
	// The loop has stopped: the recorder ends the open episode with everything queued, then
	// the log gets a moment to publish it (what it cannot stays in the spool for the next run).
	rcancel()
	<-recDone
	if recErr != nil {
		err = errors.Join(err, recErr)
	}
	if l.rec != nil {
		dctx, dcancel := context.WithTimeout(lctx, linkDrainTimeout)
		l.eplog.WaitDrained(dctx)
		dcancel()
	}
	cancel()
	wg.Wait()
	close(errs)
	for e := range errs {
		err = errors.Join(err, e)
	}
	return err
}

// linkDrainTimeout bounds how long `flowact run` waits at exit, the robot at rest and the node
// unregistered, for the stream to store the episodes it recorded (a signal ends a command within
// a second); the rest stays in the spool and is published by the next run.
const linkDrainTimeout = time.Second

// Close closes the connection, the spool and the embedded server. It is idempotent.
func (l *fleetLink) Close() {
	if l.closed {
		return
	}
	l.closed = true
	if l.nc != nil {
		l.nc.Close()
	}
	if l.eplog != nil {
		if err := l.eplog.Close(); err != nil {
			l.log.Warn("fleet: closing the spool", "err", err)
		}
	}
	if l.srv != nil {
		l.srv.Close()
	}
	if l.swap != nil {
		l.swap.close()
	}
}

// remoteEmbeddings is the fleet's embedding mailbox as the loop's EmbeddingSource. Latest
// neither blocks nor allocates.
type remoteEmbeddings struct{ e *fleet.Embeddings }

var _ policy.EmbeddingSource = remoteEmbeddings{}

func (r remoteEmbeddings) Latest() (policy.Embedding, error) {
	e, err := r.e.Latest()
	if err != nil {
		return policy.Embedding{}, err
	}
	return policy.Embedding{Stamp: e.Stamp, Tokens: e.Tokens, Width: e.Width, Data: e.Data}, nil
}

// inferEntry is one installed model: its inferer and the loaded policy that owns its network
// (nil for the one the runtime started with, which run closes).
type inferEntry struct {
	inf policy.Inferer
	lp  *loadedPolicy
}

// swapInferer is the loop's Inferer when models are rolled out: Install loads and checks a
// checkpoint on the rollout's goroutine and publishes it with one atomic store; the inference
// worker picks it up at its next chunk. The tick never waits: it only ever reads chunks the
// worker made. A model replaced is closed by the worker (its only user) once it has moved on.
type swapInferer struct {
	link *fleetLink
	seed uint64
	cur  atomic.Pointer[inferEntry]
	used *inferEntry // the entry the worker used last (worker goroutine only)
	mu   sync.Mutex  // orders Install against close
	// samples and rows are loop.gate's (or loop.average's samples), and within
	// loop.average's, given to every installed model (samples 0: one; within 0: no averaging).
	samples, rows int
	within        float64
}

var _ fleet.Installer = (*swapInferer)(nil)

func (s *swapInferer) Shape() (int, int) { return s.cur.Load().inf.Shape() }

func (s *swapInferer) Infer(dst *chunk.Chunk, req *policy.Request) error {
	e := s.cur.Load()
	if s.used != nil && s.used != e && s.used.lp != nil {
		s.used.lp.Close()
	}
	s.used = e
	return e.inf.Infer(dst, req)
}

// Install loads the checkpoint in dir for the policy's robot: it must load, fit the robot and
// have the running model's chunk shape.
func (s *swapInferer) Install(dir string, _ *fleet.BundleManifest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	pf := *s.link.lp.file
	lp, err := loadPolicy(&pf, dir)
	if err != nil {
		return err
	}
	h, d := s.Shape()
	if lh, ld := lp.ck.Shape(); lh != h || ld != d {
		lp.Close()
		return fmt.Errorf("chunk shape %dx%d, the running model's is %dx%d", lh, ld, h, d)
	}
	inf, err := lp.expert(s.seed)
	if err != nil {
		lp.Close()
		return err
	}
	if k := s.samples; k > 0 {
		if err := inf.SetSpreadSamples(k, s.rows); err != nil {
			lp.Close()
			return fmt.Errorf("loop.gate.samples: %w", err)
		}
	}
	if s.within > 0 {
		if err := inf.SetAverage(s.within); err != nil {
			lp.Close()
			return fmt.Errorf("loop.average: %w", err)
		}
	}
	s.cur.Store(&inferEntry{inf: inf, lp: lp})
	return nil
}

// MeasuresStateOut implements policy.StateOutMeter for the running model (every checkpoint's
// expert measures it: a checkpoint always has its normalization statistics).
func (s *swapInferer) MeasuresStateOut() bool {
	so, ok := s.cur.Load().inf.(policy.StateOutMeter)
	return ok && so.MeasuresStateOut()
}

// SetSpreadSamples implements policy.SpreadSampler: the running model and every model
// installed later draw k samples per chunk (loop.gate.samples), their spread over rows rows.
func (s *swapInferer) SetSpreadSamples(k, rows int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.cur.Load().inf.(policy.SpreadSampler)
	if !ok {
		return fmt.Errorf("the running inferer measures no spread: %w", policy.ErrConfig)
	}
	if err := ss.SetSpreadSamples(k, rows); err != nil {
		return err
	}
	s.samples, s.rows = k, rows
	return nil
}

// SetAverage implements policy.Averager: the running model and every model installed later
// execute the consensus of their samples (loop.average).
func (s *swapInferer) SetAverage(within float64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	av, ok := s.cur.Load().inf.(policy.Averager)
	if !ok {
		return fmt.Errorf("the running inferer averages no samples: %w", policy.ErrConfig)
	}
	if err := av.SetAverage(within); err != nil {
		return err
	}
	s.within = within
	return nil
}

// close closes the installed model after the runtime has stopped.
func (s *swapInferer) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.cur.Load(); e != nil && e.lp != nil {
		e.lp.Close()
	}
}

// counterMap is the loop's counters keyed as in /diagnostics, for the telemetry sample.
func counterMap(c *policy.Counters) map[string]uint64 {
	return map[string]uint64{
		"ticks": c.Ticks, "overruns": c.Overruns, "requests": c.Requests, "chunks": c.Chunks, "late": c.Late,
		"rejected": c.Rejected, "stale": c.Stale, "read_errors": c.ReadErrors, "write_errors": c.WriteErrors,
		"refused": c.Refused, "hold_ticks": c.HoldTicks, "gated": c.Gated, "events_dropped": c.EventsDropped,
	}
}
