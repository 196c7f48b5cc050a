package ros

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/bluenviron/goroslib/v2"
	"github.com/bluenviron/goroslib/v2/pkg/apimaster"

	"github.com/flowact/flowact/robot/ros/xmlrpc"
)

// What Node and SimSide share around their goroslib node's life: the connect/register/serve
// loop (member.run), the pacing of attempts to reach an absent master (masterWait), joining the
// master (joinMaster) and watching the registration (watchMaster).

// link is one registration of a member: a goroslib node and everything created on it.
type link interface {
	comparable
	close()       // unregisters everything and closes the goroslib node
	attrs() []any // log attributes of the registration
}

// member is a side of flowact's ROS interfaces that joins a master: Node (the robot side) and
// SimSide (the simulator's face). run is the one loop both follow.
type member[L link] struct {
	nm   *names
	log  *slog.Logger
	rpc  *xmlrpc.Client
	kind string // "node" or "simulator", in logs and errors
	regs *atomic.Uint64
	// connect makes one attempt to register; on error it has closed what it opened.
	connect func(context.Context) (L, error)
	// serve runs a registration until ctx ends (nil), a shutdown is requested (ErrShutdown) or
	// the master cannot take the node back (errForgotten: run connects again).
	serve func(context.Context, L) error
	// registered (may be nil) runs after every registration, connected(false) (may be nil)
	// after every registration ends.
	registered func()
	connected  func(bool)
}

// run connects, waiting and retrying while the master is absent (at most
// Config.ConnectTimeout before the first registration: then ErrMaster), serves each
// registration, connects again when the master forgot the node, and returns nil when ctx ends.
func (m *member[L]) run(ctx context.Context) error {
	cfg := &m.nm.cfg
	w := newMasterWait(cfg, m.log)
	var deadline time.Time
	if cfg.ConnectTimeout > 0 {
		deadline = time.Now().Add(cfg.ConnectTimeout)
	}
	var none L
	var cause error // of the last failed attempt, for ErrMaster (not the deadline's own error)
	for {
		first := m.regs.Load() == 0
		var l L
		err := m.probe(ctx, first, deadline)
		if err == nil {
			l, err = m.connect(ctx)
		}
		if ctx.Err() != nil {
			if l != none {
				l.close()
			}
			return nil
		}
		if err != nil {
			if cause == nil || !errors.Is(err, context.DeadlineExceeded) {
				cause = err
			}
			if first && !deadline.IsZero() && !time.Now().Before(deadline) {
				return fmt.Errorf("%w: %s %s not registered with %s within %v: %s", ErrMaster, m.kind, m.nm.node, cfg.MasterURI, cfg.ConnectTimeout, innermost(cause))
			}
			var until time.Time // the deadline bounds only the wait for the first registration
			if first {
				until = deadline
			}
			if !w.wait(ctx, err, until) {
				return nil
			}
			continue
		}
		w.registered()
		m.regs.Add(1)
		if m.connected != nil {
			m.connected(true)
		}
		if m.registered != nil {
			m.registered()
		}
		m.log.Info("ros: registered", append([]any{"as", m.kind, "master", cfg.MasterURI}, l.attrs()...)...)
		err = m.serve(ctx, l)
		if m.connected != nil {
			m.connected(false)
		}
		l.close()
		if err != nil && !errors.Is(err, errForgotten) {
			m.log.Warn("ros: stopped", "as", m.kind, "err", err)
			return err
		}
		if ctx.Err() != nil {
			m.log.Info("ros: unregistered", "as", m.kind)
			return nil
		}
		m.log.Warn("ros: could not register again in place: building a new connection", "as", m.kind)
	}
}

// probe asks the master for its URI before the first registration when Config.ConnectTimeout
// bounds the wait, with the call itself bounded by the deadline (goroslib's own calls cannot be
// cancelled and take up to Config.Timeout each). Otherwise it does nothing: joinMaster probes.
func (m *member[L]) probe(ctx context.Context, first bool, deadline time.Time) error {
	if !first || deadline.IsZero() {
		return nil
	}
	pctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	_, _, _, err := masterCall(pctx, m.rpc, m.nm, "getUri")
	return err
}

// closeGoroslib closes a goroslib node. First it closes the idle connections of
// http.DefaultTransport, on which goroslib's own XML-RPC clients run: two of them dialling a
// peer's slave API at once (a subscriber asking for two topics) can leave a connection that
// never carries a request, and net/http's Shutdown, which goroslib's Close calls on its slave
// API server, waits 5 s for such a connection before it counts it as idle. In one process (the
// demo: the simulator's node beside the runtime's) that made a Ctrl-C take up to 5 s. The
// effect on other users of the default transport is only a new dial.
func closeGoroslib(gn *goroslib.Node) {
	if tr, ok := http.DefaultTransport.(*http.Transport); ok {
		tr.CloseIdleConnections()
	}
	gn.Close()
}

// innermost shortens a transport error to its innermost message ("connection refused").
func innermost(err error) string {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			break
		}
		err = u
	}
	return err.Error()
}

// masterWait paces the attempts to reach an absent master: Config.RetryMin after the first
// failure, doubling up to RetryMax, back to RetryMin after a registration. The first failure in a
// row is logged at warn level (at debug level while a connect deadline bounds the wait: its
// failure is one error), the others at debug level.
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

// wait logs err, the failure of an attempt, and waits before the next one (at most until
// deadline, unless it is zero); it returns false if ctx ended first. A bounded wait (a deadline)
// logs at debug level only: if it runs out, its error says so, in one line.
func (w *masterWait) wait(ctx context.Context, err error, deadline time.Time) bool {
	if !w.waiting && deadline.IsZero() {
		w.log.Warn("ros: waiting for the master", "master", w.uri, "err", err)
		w.waiting = true
	} else {
		w.log.Debug("ros: master still absent", "err", err, "retry_in", w.backoff)
	}
	d := w.backoff
	if !deadline.IsZero() {
		d = max(min(d, time.Until(deadline)), 0)
	}
	t := time.NewTimer(d)
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
// then starts the goroslib node, whose log goes to log and whose shutdown requests to shutdown
// (and gone, if not nil: see goroslibLog).
func joinMaster(ctx context.Context, nm *names, httpc *http.Client, log *slog.Logger, shutdown chan<- string, gone *atomic.Bool) (*apimaster.Client, *goroslib.Node, error) {
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
		OnLog:           goroslibLog(log, shutdown, gone),
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
// capacity is 1: a second request while one waits is dropped), which ends Run. goroslib logs
// the request before it cancels its node, so gone (if not nil) is set before the node's
// publishers stop: a sender that looks at it before each message leaves the rest queued for
// later instead of handing them to a publisher that drops them.
func goroslibLog(log *slog.Logger, shutdown chan<- string, gone *atomic.Bool) func(goroslib.LogLevel, string) {
	return func(level goroslib.LogLevel, msg string) {
		if strings.HasPrefix(msg, "got shutdown request") {
			if gone != nil {
				gone.Store(true)
			}
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

// registration is one topic (name and message type) or service (name and URI).
type registration struct{ name, typ string }

// registered is what one registration told the master, to tell a restarted master again.
type registered struct {
	pubs, subs []registration
	srvs       []registration // typ holds the service's rosrpc:// URI
	// before (may be nil) runs first at every registration in place (SimSide: /use_sim_time).
	before func(context.Context) error
}

// reregisterAttempts is how many registrations in place in a row may fail before run builds
// a new connection (errForgotten).
const reregisterAttempts = 3

// inPlace returns watchMaster's forgotten callback: it registers again in place (again, at uri), counts
// the registration in regs and marks the member connected; after reregisterAttempts failures
// in a row it gives up (errForgotten: run connects again).
func inPlace(log *slog.Logger, regs *atomic.Uint64, connected func(bool), uri string, again func() error) func(error) error {
	failures := 0
	return func(err error) error {
		log.Warn("ros: the master forgot this node (restarted?): registering again", "err", err)
		if err := again(); err != nil {
			failures++
			log.Warn("ros: registering again failed", "err", err, "attempt", failures)
			if errors.Is(err, ErrShutdown) {
				return err
			}
			if failures >= reregisterAttempts {
				return fmt.Errorf("%w: %w", errForgotten, err)
			}
			return nil
		}
		failures = 0
		regs.Add(1)
		connected(true)
		log.Info("ros: registered again", "uri", uri)
		return nil
	}
}

// reregister tells a master that forgot the node about every parameter (the robot description
// too, see offerDescription), publisher, subscriber and service in r, keeping the goroslib node as it is (same slave URI, same TCPROS server), so
// connections to peers that do not register again (rospy and roscpp nodes never do) survive the
// restart. The publishers the master already knows for a subscribed topic are passed to the
// node's own slave API as a publisherUpdate, as the master would.
func reregister(ctx context.Context, rpc *xmlrpc.Client, nm *names, log *slog.Logger, master *apimaster.Client, selfURI string, r *registered) error {
	for _, p := range nm.params {
		if err := setParam(ctx, rpc, nm, p.key, p.val); err != nil {
			return err
		}
	}
	if err := offerDescription(ctx, rpc, nm, log); err != nil {
		return err
	}
	if r.before != nil {
		if err := r.before(ctx); err != nil {
			return err
		}
	}
	for _, p := range r.pubs {
		if _, err := master.RegisterPublisher(p.name, p.typ, selfURI); err != nil {
			return fmt.Errorf("ros: registerPublisher %s: %w", p.name, err)
		}
	}
	for _, sub := range r.subs {
		pubs, err := master.RegisterSubscriber(sub.name, sub.typ, selfURI)
		if err != nil {
			return fmt.Errorf("ros: registerSubscriber %s: %w", sub.name, err)
		}
		if len(pubs) == 0 {
			continue // an empty update would drop the connections to publishers that survived
		}
		if _, err := rpc.Call(ctx, selfURI, "publisherUpdate", xmlrpc.String("/master"),
			xmlrpc.String(sub.name), xmlrpc.Strings(pubs)); err != nil {
			return fmt.Errorf("ros: publisherUpdate %s to self: %w", sub.name, err)
		}
	}
	for _, sv := range r.srvs {
		if err := master.RegisterService(sv.name, sv.typ, selfURI); err != nil {
			return fmt.Errorf("ros: registerService %s: %w", sv.name, err)
		}
	}
	uri, err := master.LookupNode(nm.node)
	if err != nil {
		return fmt.Errorf("ros: lookupNode %s after registering again: %w", nm.node, err)
	}
	if uri != selfURI {
		return fmt.Errorf("%w: another node registered as %s (at %s)", ErrShutdown, nm.node, uri)
	}
	return nil
}
