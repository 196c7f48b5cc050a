package ros

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/bluenviron/goroslib/v2"
	"github.com/bluenviron/goroslib/v2/pkg/apimaster"
)

// What Node and SimSide share around their goroslib node's life.

// masterWait paces the attempts to reach an absent master: Config.RetryMin after the first
// failure, doubling up to RetryMax, back to RetryMin after a registration. The first failure in a
// row is logged at warn level, the others at debug level.
type masterWait struct {
	min, max time.Duration
	log      *slog.Logger
	uri      string // the master's, for the log
	backoff  time.Duration
	waiting  bool
}

func newMasterWait(cfg *Config, log *slog.Logger) *masterWait {
	return &masterWait{min: cfg.RetryMin, max: cfg.RetryMax, log: log, uri: cfg.MasterURI, backoff: cfg.RetryMin}
}

// wait logs err, the failure of an attempt, and waits before the next one; it returns false if
// ctx ended first.
func (w *masterWait) wait(ctx context.Context, err error) bool {
	if !w.waiting {
		w.log.Warn("ros: waiting for the master", "master", w.uri, "err", err)
		w.waiting = true
	} else {
		w.log.Debug("ros: master still absent", "err", err, "retry_in", w.backoff)
	}
	t := time.NewTimer(w.backoff)
	select {
	case <-ctx.Done():
		t.Stop()
		return false
	case <-t.C:
	}
	w.backoff = min(2*w.backoff, w.max)
	return true
}

// registered resets the pacing after a registration.
func (w *masterWait) registered() { w.waiting, w.backoff = false, w.min }

// joinMaster makes one attempt to join nm's master: it probes the master first, through httpc
// (goroslib opens listeners and registers /rosout before it can tell that the master is absent),
// then starts the goroslib node, whose log goes to log and whose shutdown requests to shutdown.
func joinMaster(ctx context.Context, nm *names, httpc *http.Client, log *slog.Logger, shutdown chan<- string) (*apimaster.Client, *goroslib.Node, error) {
	master := apimaster.NewClient(nm.masterAddr, nm.node, httpc)
	if _, err := master.GetURI(); err != nil {
		return nil, nil, err
	}
	if ctx.Err() != nil {
		return nil, nil, ctx.Err()
	}
	cfg := nm.cfg
	gn, err := goroslib.NewNode(goroslib.NodeConf{
		MasterAddress:   nm.masterAddr,
		Namespace:       cfg.Namespace,
		Name:            cfg.Name,
		Host:            cfg.Host,
		LogLevel:        goroslib.LogLevelDebug,
		LogDestinations: goroslib.LogDestinationCallback,
		OnLog:           goroslibLog(log, shutdown),
		ReadTimeout:     cfg.Timeout,
		WriteTimeout:    cfg.Timeout,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("ros: node: %w", err)
	}
	return master, gn, nil
}

// goroslibLog returns the OnLog of a goroslib node, which forwards goroslib's log to log.
// goroslib has no other way to report that the master asked the node to shut down (rosnode kill,
// or a new node with the same name), so that message is caught here and sent to shutdown (whose
// capacity is 1: a second request while one waits is dropped), which ends Run.
func goroslibLog(log *slog.Logger, shutdown chan<- string) func(goroslib.LogLevel, string) {
	return func(level goroslib.LogLevel, msg string) {
		if strings.HasPrefix(msg, "got shutdown request") {
			select {
			case shutdown <- msg:
			default:
			}
		}
		l := slog.LevelDebug
		if level >= goroslib.LogLevelWarn {
			// goroslib logs a peer going away at error level; it is routine on a robot.
			l = slog.LevelWarn
		}
		log.Log(context.Background(), l, "goroslib: "+msg)
	}
}

// watchMaster asks master every period whether it still knows node at selfURI, until ctx ends
// (nil) or a shutdown is requested (ErrShutdown). Another URI under the node's name means another
// node took the name (ErrShutdown). An unreachable master is logged once and waited out: links
// to peers keep working meanwhile; reachable(false) and reachable(true) mark the change. A master
// that answers but no longer knows the node (it restarted) calls forgotten: its error ends the
// watch, nil keeps watching (forgotten has registered the node again).
func watchMaster(ctx context.Context, log *slog.Logger, period time.Duration, shutdown <-chan string,
	master *apimaster.Client, node, selfURI string, reachable func(bool), forgotten func(err error) error) error {
	watch := time.NewTicker(period)
	defer watch.Stop()
	unreachable := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case reason := <-shutdown:
			return fmt.Errorf("%w: %s", ErrShutdown, reason)
		case <-watch.C:
		}
		uri, err := master.LookupNode(node)
		var uerr *url.Error
		switch {
		case err == nil && uri == selfURI:
			if unreachable {
				log.Info("ros: master reachable again")
				unreachable = false
				reachable(true)
			}
		case err == nil:
			return fmt.Errorf("%w: another node registered as %s (at %s)", ErrShutdown, node, uri)
		case errors.As(err, &uerr):
			if !unreachable {
				log.Warn("ros: master unreachable; keeping connections to peers", "err", err)
				unreachable = true
				reachable(false)
			}
		default:
			if err := forgotten(err); err != nil {
				return err
			}
			unreachable = false
		}
	}
}
