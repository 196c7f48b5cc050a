package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/flowact/flowact/dataset"
	"github.com/flowact/flowact/fleet"
	"github.com/flowact/flowact/policy"
	"github.com/flowact/flowact/policy/safety"
	"github.com/flowact/flowact/robot"
)

// `flowact run --nats` records what the policy does on the robot as episodes of the fleet's
// stream, without the tick ever waiting for it: a driver wrapper (tapDriver) copies each new
// joint state the loop reads and each command or trajectory the driver takes into a bounded
// queue of preallocated records (tap; a full queue drops the record and counts it), and the
// episode recorder (runRecorder) drains it on its own goroutine into fleet.Episode, which
// appends to the disk spool.
//
// Episode boundaries: an episode begins when the loop is found running (the ~start service,
// or --start) and ends when it is found idle again (~stop, after the robot has come to rest),
// faulted, or when it has lasted fleet.episode_max (5 min by default: the next one begins at
// once), and when the runtime shuts down. Holding (~hold) stays inside the episode. The
// recorder looks at the loop's state every recordPeriod, so an episode's ends are known to
// that period; a ~stop and ~start within one period make one episode.
//
// What an episode holds: the joint states the loop read (each stamp once, positions and
// velocities), the embedding the loop read (each new one, stamped by its header or receive
// time), the commands the driver took as actions (a command refused by a full queue never
// reached the robot and is not recorded), or with trajectory output the trajectories' points
// that ran (a point replaced by a newer trajectory before its time is dropped, as the
// controller drops it), and metadata: no task (run does not know one; dataset.Successful keeps
// such episodes), the robot model, the joint order, the control rate and the loop's seed.

// recordPeriod is how often the recorder drains the queue and looks at the loop's state.
const recordPeriod = 20 * time.Millisecond

type tapKind uint8

const (
	tapState      tapKind = iota + 1 // a joint state the loop read
	tapCommand                       // a command the driver took
	tapTrajectory                    // a trajectory the driver took: stamp is its start, n points follow
	tapPoint                         // one point of the trajectory before it
)

type tapRec struct {
	kind     tapKind
	stamp    time.Time
	n        int
	hasVel   bool
	pos, vel []float64
}

// tap is a single-producer (the control tick), single-consumer (the recorder) bounded queue of
// records with preallocated storage: push neither blocks nor allocates.
type tap struct {
	recs      []tapRec
	dof       int
	head      atomic.Uint64 // next record to read (the consumer's)
	tail      atomic.Uint64 // next record to write (the producer's)
	dropped   atomic.Uint64 // records dropped on a full queue
	lastState time.Time     // the producer's: the stamp of the last state queued
}

func newTap(size, dof int) *tap {
	q := &tap{recs: make([]tapRec, size), dof: dof}
	buf := make([]float64, 2*size*dof)
	for i := range q.recs {
		q.recs[i].pos = buf[2*i*dof : (2*i+1)*dof : (2*i+1)*dof]
		q.recs[i].vel = buf[(2*i+1)*dof : (2*i+2)*dof : (2*i+2)*dof]
	}
	return q
}

// reserve returns the index of the first of n free records, or false (and counts n dropped).
func (q *tap) reserve(n int) (uint64, bool) {
	t := q.tail.Load()
	if t+uint64(n)-q.head.Load() > uint64(len(q.recs)) {
		q.dropped.Add(uint64(n))
		return 0, false
	}
	return t, true
}

func (q *tap) at(i uint64) *tapRec { return &q.recs[i%uint64(len(q.recs))] }

// put fills record i.
func (q *tap) put(i uint64, kind tapKind, stamp time.Time, n int, pos, vel []float64) {
	r := q.at(i)
	r.kind, r.stamp, r.n = kind, stamp, n
	copy(r.pos, pos)
	r.hasVel = len(vel) == q.dof
	if r.hasVel {
		copy(r.vel, vel)
	}
}

// tapDriver is the loop's driver with every new state it reads and every command the driver
// takes queued for the recorder.
type tapDriver struct {
	robot.Driver
	q *tap
}

func (d *tapDriver) ReadState(dst *robot.State) error {
	err := d.Driver.ReadState(dst)
	if err == nil && len(dst.Position) == d.q.dof && dst.Stamp.After(d.q.lastState) {
		d.q.lastState = dst.Stamp
		if i, ok := d.q.reserve(1); ok {
			d.q.put(i, tapState, dst.Stamp, 0, dst.Position, dst.Velocity)
			d.q.tail.Store(i + 1)
		}
	}
	return err
}

func (d *tapDriver) WriteCommand(c *robot.Command) error {
	err := d.Driver.WriteCommand(c)
	if err == nil && len(c.Position) == d.q.dof {
		if i, ok := d.q.reserve(1); ok {
			d.q.put(i, tapCommand, c.Stamp, 0, c.Position, nil)
			d.q.tail.Store(i + 1)
		}
	}
	return err
}

// tapTrajectoryDriver is a tapDriver around a robot.TrajectoryWriter.
type tapTrajectoryDriver struct {
	*tapDriver
	tw robot.TrajectoryWriter
}

var _ robot.TrajectoryWriter = tapTrajectoryDriver{}

func (d tapTrajectoryDriver) WriteTrajectory(tr *robot.Trajectory) error {
	err := d.tw.WriteTrajectory(tr)
	n := len(tr.TimeFromStart)
	if err != nil || len(tr.Positions) != n*d.q.dof {
		return err
	}
	if i, ok := d.q.reserve(n + 1); ok {
		d.q.put(i, tapTrajectory, tr.Start, n, nil, nil)
		for k := range n {
			d.q.put(i+1+uint64(k), tapPoint, tr.Start.Add(tr.TimeFromStart[k]), 0, tr.Positions[k*d.q.dof:(k+1)*d.q.dof], nil)
		}
		d.q.tail.Store(i + 1 + uint64(n))
	}
	return err
}

// wrap returns drv tapped into q, a TrajectoryWriter if drv is one.
func (q *tap) wrap(drv robot.Driver) robot.Driver {
	d := &tapDriver{Driver: drv, q: q}
	if tw, ok := drv.(robot.TrajectoryWriter); ok {
		return tapTrajectoryDriver{tapDriver: d, tw: tw}
	}
	return d
}

// recordStats are the recorder's counters.
type recordStats struct {
	Episodes uint64 // episodes ended (each with its end message)
	Dropped  uint64 // records the tick dropped on a full queue
	Refused  uint64 // records the episode refused (a non-monotonic stamp, a non-finite value)
}

// runRecorder records the loop's episodes from the tap into the fleet's log. Its fields other
// than the counters belong to the goroutine running run (or the caller of drain).
type runRecorder struct {
	q      *tap
	log    *fleet.Log
	state  func() safety.State
	emb    policy.EmbeddingSource
	meta   dataset.Meta // Robot, Joints, Rate, Seed
	max    time.Duration
	logger *slog.Logger

	ep                *fleet.Episode
	begun             time.Time // the first record's stamp in ep (zero: none yet)
	last              time.Time // the latest stamp written to ep
	embStamp          time.Time // the stamp of the last embedding written
	embData           *float32  // its data (an embedding is never modified once handed out)
	pending           []trajPoint
	episodes, refused atomic.Uint64
	warned            bool
}

type trajPoint struct {
	stamp time.Time
	pos   []float64
}

func (r *runRecorder) Stats() recordStats {
	return recordStats{Episodes: r.episodes.Load(), Dropped: r.q.dropped.Load(), Refused: r.refused.Load()}
}

// run drains the queue every recordPeriod until ctx ends, then drains it once more and ends the
// open episode. The caller stops the loop first, so that the last drain has everything.
func (r *runRecorder) run(ctx context.Context) error {
	t := time.NewTicker(recordPeriod)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			err := r.drain(true)
			return err
		case <-t.C:
			if err := r.drain(false); err != nil {
				return err
			}
		}
	}
}

// drain writes the queued records and ends the episode when the loop is idle or faulted, or
// when final. An error is the spool's (the disk): recording cannot go on.
func (r *runRecorder) drain(final bool) error {
	st := r.state()
	active := st != safety.Idle && st != safety.Fault
	if r.ep == nil && active && !final {
		if err := r.begin(); err != nil {
			return err
		}
	}
	for h, t := r.q.head.Load(), r.q.tail.Load(); h < t; h++ {
		if err := r.take(r.q.at(h)); err != nil {
			r.q.head.Store(h + 1)
			return err
		}
	}
	r.q.head.Store(r.q.tail.Load()) // (only the consumer moves head)
	if r.ep != nil {
		if err := r.embedding(); err != nil {
			return err
		}
	}
	if r.ep != nil && (!active || final) {
		return r.end(time.Time{})
	}
	return nil
}

func (r *runRecorder) begin() error {
	ep, err := r.log.Begin("", dataset.WriterConfig{Joints: r.meta.Joints})
	if err != nil {
		return err
	}
	r.ep, r.begun, r.last, r.embStamp, r.embData = ep, time.Time{}, time.Time{}, time.Time{}, nil
	return r.embedding()
}

// embedding writes the loop's current embedding if it is new.
func (r *runRecorder) embedding() error {
	e, err := r.emb.Latest()
	if err != nil || len(e.Data) == 0 || (&e.Data[0] == r.embData && e.Stamp.Equal(r.embStamp)) {
		return nil
	}
	stamp := e.Stamp
	if stamp.Before(r.embStamp) {
		stamp = r.embStamp
	}
	r.embData = &e.Data[0]
	r.embStamp = stamp
	return r.write(r.ep.WriteEmbedding(&robot.Embedding{Stamp: stamp, Tokens: e.Tokens, Width: e.Width, Data: e.Data}), stamp)
}

// take writes one record to the open episode (records with no episode open are the idle
// loop's state reads: not part of an episode).
func (r *runRecorder) take(rec *tapRec) error {
	if r.ep == nil {
		return nil
	}
	if r.begun.IsZero() {
		r.begun = rec.stamp
	} else if rec.kind != tapPoint && rec.stamp.Sub(r.begun) >= r.max {
		// Long enough: the next episode starts with this record.
		if err := r.end(rec.stamp); err != nil {
			return err
		}
		if err := r.begin(); err != nil {
			return err
		}
		r.begun = rec.stamp
	}
	switch rec.kind {
	case tapState:
		s := dataset.JointState{Stamp: rec.stamp, Position: rec.pos}
		if rec.hasVel {
			s.Velocity = rec.vel
		}
		return r.write(r.ep.WriteState(&s), rec.stamp)
	case tapCommand:
		return r.write(r.ep.WriteAction(&dataset.Action{Stamp: rec.stamp, Position: rec.pos}), rec.stamp)
	case tapTrajectory:
		// The new trajectory replaces the old one from its start: the old one's points before
		// it ran; those after it never will.
		if err := r.flushPoints(rec.stamp); err != nil {
			return err
		}
		r.pending = r.pending[:0]
	case tapPoint:
		r.pending = append(r.pending, trajPoint{rec.stamp, append([]float64(nil), rec.pos...)})
	}
	return nil
}

// flushPoints writes the pending trajectory points stamped before t (every one for zero t) as
// actions and keeps the rest.
func (r *runRecorder) flushPoints(t time.Time) error {
	n := 0
	for _, p := range r.pending {
		if !t.IsZero() && !p.stamp.Before(t) {
			break
		}
		if err := r.write(r.ep.WriteAction(&dataset.Action{Stamp: p.stamp, Position: p.pos}), p.stamp); err != nil {
			return err
		}
		n++
	}
	r.pending = append(r.pending[:0], r.pending[n:]...)
	return nil
}

// write accounts for one write to the episode: a refused record is counted (and logged once);
// a spool error ends recording.
func (r *runRecorder) write(err error, stamp time.Time) error {
	switch {
	case err == nil:
		if stamp.After(r.last) {
			r.last = stamp
		}
		return nil
	case r.ep.Err() != nil: // the spool failed
		return fmt.Errorf("run: recording episode %s: %w", r.ep.ID(), err)
	}
	r.refused.Add(1)
	if !r.warned {
		r.warned = true
		r.logger.Warn("run: episode recorder refused a record (counted; logged once)", "episode", r.ep.ID(), "err", err)
	}
	return nil
}

// end ends the open episode: with trajectory output the points that ran before t (every
// pending one for zero t: the last trajectory brings the robot to rest) are its last actions;
// then its metadata and its end message.
func (r *runRecorder) end(t time.Time) error {
	if err := r.flushPoints(t); err != nil {
		return err
	}
	stamp := r.last
	if stamp.IsZero() {
		stamp = time.Now()
	}
	meta := r.meta
	if err := r.write(r.ep.WriteMeta(&meta, stamp), stamp); err != nil {
		return err
	}
	err := r.ep.Close()
	r.logger.Info("run: episode recorded", "episode", r.ep.ID(), "seconds", r.last.Sub(r.begun).Seconds())
	r.ep = nil
	if err != nil {
		return fmt.Errorf("run: recording: %w", err)
	}
	r.episodes.Add(1)
	return nil
}
