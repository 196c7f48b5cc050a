package main

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flowact/flowact/dataset"
	"github.com/flowact/flowact/fleet"
)

// fleetSummary is what `collect --nats` and `demo --fleet` report of the episode log.
type fleetSummary struct {
	Stream         string `json:"stream"`
	Published      uint64 `json:"published"`
	Retries        uint64 `json:"republished"`
	Duplicates     uint64 `json:"duplicates"`
	Pending        uint64 `json:"pending"`
	StreamMessages uint64 `json:"stream_messages"`
}

// episodePublisher publishes recorded episodes to a robot's stream: the fleet's episode log
// running in its own goroutine until finish.
type episodePublisher struct {
	log    *fleet.Log
	nc     *nats.Conn
	cancel context.CancelFunc
	done   chan error
	cfg    fleet.Config
	ran    bool // Run has returned, with err
	err    error
}

// stop ends the log's Run and waits for it.
func (p *episodePublisher) stop() error {
	if !p.ran {
		p.ran = true
		p.cancel()
		p.err = <-p.done
	}
	return p.err
}

func openEpisodePublisher(nf *natsFlags, robotID, spool string) (*episodePublisher, error) {
	if nf.url == fleet.Embedded {
		return nil, usagef("--nats embedded: collect ends with the process; give a server's URL")
	}
	cfg := nf.config()
	cfg.Robot, cfg.Domain, cfg.Spool = robotID, nf.domain, spool
	if err := cfg.Validate(); err != nil {
		return nil, usageError{err}
	}
	l, err := fleet.OpenLog(cfg, nil)
	if err != nil {
		return nil, err
	}
	nc, err := fleet.Connect(cfg, "", "flowact collect "+robotID, nil)
	if err != nil {
		l.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &episodePublisher{log: l, nc: nc, cancel: cancel, done: make(chan error, 1), cfg: cfg}
	go func() { p.done <- l.Run(ctx, nc) }()
	return p, nil
}

func (p *episodePublisher) publish(id string, ep *dataset.Episode) error {
	_, err := fleet.WriteEpisode(p.log, id, ep, dataset.WriterConfig{})
	return err
}

// finish waits, at most timeout, for the stream to store everything, then stops publishing.
func (p *episodePublisher) finish(ctx context.Context, timeout time.Duration) (*fleetSummary, error) {
	c, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	p.log.WaitDrained(c) // what is not stored stays in the spool: reported as pending
	sum := &fleetSummary{Stream: p.log.Stream()}
	js, err := jetstream.New(p.nc)
	if p.cfg.Domain != "" {
		js, err = jetstream.NewWithDomain(p.nc, p.cfg.Domain)
	}
	if err == nil {
		if s, err := js.Stream(c, p.log.Stream()); err == nil {
			if info, err := s.Info(c); err == nil {
				sum.StreamMessages = info.State.Msgs
			}
		}
	}
	err = p.stop()
	st := p.log.Stats()
	sum.Published, sum.Retries, sum.Duplicates, sum.Pending = st.Published, st.Retries, st.Duplicates, st.Pending
	if err != nil {
		return sum, fmt.Errorf("collect: publishing: %w", err)
	}
	return sum, nil
}

// Close stops publishing (if finish did not) and closes the connection and the spool.
func (p *episodePublisher) Close() {
	p.stop()
	p.nc.Close()
	p.log.Close()
}
