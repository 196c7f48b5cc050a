package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/flowact/flowact/dataset"
	"github.com/flowact/flowact/fleet"
	"github.com/flowact/flowact/robot"
	"github.com/flowact/flowact/robot/ros"
	"github.com/flowact/flowact/sim/node"
)

// demoFleetID is the demo robot's fleet id.
const demoFleetID = "demo"

// demoFleet is `flowact demo --fleet`: an embedded hub (nats-server with JetStream) and the
// robot's fleet link on it, publishing the loop's telemetry and the demo's episodes.
type demoFleet struct {
	srv   *fleet.Server
	link  *fleetLink
	spool string
}

func startDemoFleet(lp *loadedPolicy, log *slog.Logger) (*demoFleet, error) {
	srv, err := fleet.NewServer(fleet.ServerConfig{Name: "flowact-demo-hub", Port: -1, Logger: log})
	if err != nil {
		return nil, err
	}
	if err := srv.Start(); err != nil {
		return nil, err
	}
	spool, err := os.MkdirTemp("", "flowact-demo-spool-")
	if err != nil {
		srv.Close()
		return nil, fmt.Errorf("demo: %w", err)
	}
	// The demo records its own episodes, with each task's metadata (demoRecorder).
	cfg := fleet.Config{Robot: demoFleetID, URL: srv.ClientURL(), Spool: spool, NoRecord: true}
	link, err := openFleetLink(cfg, false, lp, log)
	if err != nil {
		srv.Close()
		os.RemoveAll(spool)
		return nil, err
	}
	return &demoFleet{srv: srv, link: link, spool: spool}, nil
}

// Close closes the link, the server and removes the spool.
func (f *demoFleet) Close() {
	f.link.Close()
	f.srv.Close()
	os.RemoveAll(f.spool)
}

// demoRecorder records an episode of the demo into the fleet's log on its own goroutine, at
// the control rate, outside the tick: the joint state the runtime received, each new embedding
// at its arrival, and the simulator's commanded reference as the action. Stamps are the
// recorder's wall clock when it took each value (a bag's record time).
type demoRecorder struct {
	ep       *fleet.Episode
	cancel   context.CancelFunc
	done     chan error
	joints   []string
	last     time.Time
	finished bool
}

func (f *demoFleet) record(rt interface {
	Driver() *ros.Driver
	Embeddings() *ros.Embeddings
}, sn *node.Node, model *robot.Model, rate float64, id string) (*demoRecorder, error) {
	ep, err := f.link.eplog.Begin(id, dataset.WriterConfig{Joints: model.Names()})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &demoRecorder{ep: ep, cancel: cancel, done: make(chan error, 1), joints: model.Names()}
	go func() { r.done <- r.run(ctx, rt.Driver(), rt.Embeddings(), sn, model.DoF(), rate) }()
	return r, nil
}

func (r *demoRecorder) run(ctx context.Context, drv *ros.Driver, embs *ros.Embeddings, sn *node.Node, dof int, rate float64) error {
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	st := robot.NewState(dof)
	var lastState time.Time
	var lastEmb uint64
	ref := make([]float64, dof)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		now := time.Now().UTC()
		if _, seq := embs.Received(); seq != lastEmb {
			e, err := embs.Latest()
			if err != nil {
				continue
			}
			lastEmb = seq
			if err := r.ep.WriteEmbedding(&robot.Embedding{Stamp: now, Tokens: e.Tokens, Width: e.Width, Data: e.Data}); err != nil {
				return err
			}
		}
		if drv.ReadState(&st) != nil || !st.Stamp.After(lastState) {
			continue
		}
		lastState = st.Stamp
		if err := r.ep.WriteState(&dataset.JointState{Stamp: now, Position: st.Position, Velocity: st.Velocity}); err != nil {
			return err
		}
		sn.Sim().ReferenceTo(ref)
		if err := r.ep.WriteAction(&dataset.Action{Stamp: now, Position: ref}); err != nil {
			return err
		}
		r.last = now
	}
}

// finish stops recording and ends the episode with its metadata.
func (r *demoRecorder) finish(meta dataset.Meta) error {
	r.finished = true
	r.cancel()
	err := <-r.done
	if err == nil && !r.last.IsZero() {
		meta.Joints = r.joints
		err = r.ep.WriteMeta(&meta, r.last)
	}
	if cerr := r.ep.Close(); err == nil {
		err = cerr
	}
	return err
}

// summary waits, at most 30 s, for the stream to store every episode message and reports it.
func (f *demoFleet) summary(ctx context.Context) *fleetSummary {
	c, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	f.link.eplog.WaitDrained(c)
	st := f.link.eplog.Stats()
	sum := &fleetSummary{Stream: f.link.eplog.Stream(), Published: st.Published, Retries: st.Retries, Duplicates: st.Duplicates, Pending: st.Pending}
	if js, err := jetstream.New(f.link.nc); err == nil {
		if s, err := js.Stream(c, sum.Stream); err == nil {
			if info, err := s.Info(c); err == nil {
				sum.StreamMessages = info.State.Msgs
			}
		}
	}
	return sum
}

// abort stops a recorder that finish did not (an episode cut short): the episode is closed
// without metadata. It is idempotent, and a no-op after finish.
func (r *demoRecorder) abort() {
	if r.finished {
		return
	}
	r.finished = true
	r.cancel()
	<-r.done
	r.ep.Close()
}
