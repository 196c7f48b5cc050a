package master

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowact/flowact/robot/ros/xmlrpc"
)

// Config configures a Master. The zero value serves on 127.0.0.1:11311, ROS's default.
type Config struct {
	// Addr is the listen address host:port. "" means 127.0.0.1:11311; port 0 picks a free
	// port; an empty host (":11311") listens on every interface.
	Addr string
	// Logger receives registration events (Debug) and failed slave calls (Warn); nil discards.
	Logger *slog.Logger

	// AdvertiseHost is the host written in URI and returned by getUri. "" means the listen
	// host, or the machine's host name when listening on every interface.
	AdvertiseHost string
	// RunID is stored as /run_id, which roslaunch checks; "" means a random UUID (version 4),
	// as roscore makes.
	RunID string
	// SlaveTimeout bounds each call to a node (publisherUpdate, paramUpdate, shutdown);
	// 0 means 5 s.
	SlaveTimeout time.Duration
	// MaxBodyBytes bounds a request body; 0 means xmlrpc.DefaultMaxBodyBytes (64 MiB).
	MaxBodyBytes int64
}

// Defaults for the zero Config fields.
const (
	DefaultAddr         = "127.0.0.1:11311"
	DefaultSlaveTimeout = 5 * time.Second
	// notifyWorkers is how many slave calls run at once; rosmaster uses 3 threads. More helps
	// when some nodes are dead and their calls wait for the timeout.
	notifyWorkers = 8
	// maxQueue bounds the pending calls to one node. publisherUpdates for one topic coalesce,
	// so only a flood of parameter changes to a stalled subscriber reaches it.
	maxQueue = 1024
)

// Validate checks the address and the limits.
func (c Config) Validate() error {
	addr := c.Addr
	if addr == "" {
		addr = DefaultAddr
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("master: address %q: %w", c.Addr, err)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("master: address %q: port %q is not a number in 0..65535", c.Addr, port)
	}
	if c.SlaveTimeout < 0 {
		return fmt.Errorf("master: negative SlaveTimeout %v", c.SlaveTimeout)
	}
	if c.MaxBodyBytes < 0 {
		return fmt.Errorf("master: negative MaxBodyBytes %d", c.MaxBodyBytes)
	}
	return nil
}

// Master is an embedded ROS 1 master: the Master API and the Parameter Server API over
// XML-RPC. Create it with New, serve with Start (or Run), stop with Close.
type Master struct {
	cfg    Config
	log    *slog.Logger
	runID  string
	mux    *xmlrpc.Mux
	client *xmlrpc.Client

	mu     sync.Mutex // guards reg and params, like rosmaster's ps_lock
	reg    *registry
	params *paramTree

	life     sync.Mutex // guards the fields below
	started  bool
	closed   bool
	ln       net.Listener
	srv      *http.Server
	uri      atomic.Pointer[string] // read by getUri without the life lock
	notify   *notifier
	serveErr chan error
	grace    time.Duration // how long Close lets calls under way answer

	// Connections that have sent no request yet, which http.Server.Shutdown would wait for (it
	// takes a new connection for one about to send a request, for 5 s): Close closes them, and
	// every connection accepted after closing is set. A client whose request was canceled while
	// it dialed keeps such a connection in its idle pool.
	cmu     sync.Mutex
	silent  map[net.Conn]struct{}
	closing bool
	cut     int // connections Close closed this way (for tests)
}

// closeGrace is how long Close lets calls under way answer before it cuts their connections.
const closeGrace = 2 * time.Second

// New validates c and builds a Master; it does no I/O.
func New(c Config) (*Master, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if c.SlaveTimeout == 0 {
		c.SlaveTimeout = DefaultSlaveTimeout
	}
	log := c.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	client, err := xmlrpc.NewClient(xmlrpc.ClientConfig{Timeout: c.SlaveTimeout})
	if err != nil {
		return nil, fmt.Errorf("master: %w", err)
	}
	m := &Master{cfg: c, log: log, runID: c.RunID, client: client, reg: newRegistry(), params: newParamTree(),
		grace: closeGrace, silent: map[net.Conn]struct{}{}}
	if m.runID == "" {
		m.runID = newUUID()
	}
	m.params.set("/run_id", xmlrpc.String(m.runID)) //nolint:errcheck // only the root can fail
	m.mux = xmlrpc.NewMux()
	m.mux.MaxBodyBytes = c.MaxBodyBytes
	m.routes()
	return m, nil
}

// newUUID returns a random version 4 UUID.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// RunID returns the value of /run_id set at construction.
func (m *Master) RunID() string { return m.runID }

// Start listens and serves in its own goroutines. It fails if the address is taken, or if the
// Master was started or closed before.
func (m *Master) Start() error {
	m.life.Lock()
	defer m.life.Unlock()
	if m.closed {
		return errors.New("master: Start after Close")
	}
	if m.started {
		return errors.New("master: started twice")
	}
	ln, err := net.Listen("tcp", m.cfg.Addr)
	if err != nil {
		return fmt.Errorf("master: %w", err)
	}
	host, _, _ := net.SplitHostPort(m.cfg.Addr)
	if m.cfg.AdvertiseHost != "" {
		host = m.cfg.AdvertiseHost
	} else if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		if host, err = os.Hostname(); err != nil {
			ln.Close()
			return fmt.Errorf("master: listening on every interface, and no host name to advertise: %w", err)
		}
	}
	port := ln.Addr().(*net.TCPAddr).Port
	uri := "http://" + net.JoinHostPort(host, strconv.Itoa(port)) + "/"
	m.uri.Store(&uri)
	m.ln = ln
	m.srv = &http.Server{
		Handler:           m.mux,
		ReadHeaderTimeout: 10 * time.Second,
		// A request body (a roslaunch upload of a few MB over loopback) arrives well inside a
		// minute; idle keep-alive connections of nodes that went away are closed after 90 s.
		ReadTimeout: time.Minute,
		IdleTimeout: 90 * time.Second,
		ErrorLog:    slog.NewLogLogger(m.log.Handler(), slog.LevelDebug),
		ConnState:   m.connState,
	}
	m.notify = newNotifier(m.client, m.log, notifyWorkers, maxQueue, m.paramRejected)
	m.serveErr = make(chan error, 1)
	m.started = true
	srv := m.srv
	go func() {
		err := srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		m.serveErr <- err
	}()
	m.log.Info("master: serving", "uri", uri, "run_id", m.runID)
	return nil
}

// URI returns the master's XML-RPC URI, "http://host:port/", once started ("" before).
func (m *Master) URI() string {
	if p := m.uri.Load(); p != nil {
		return *p
	}
	return ""
}

// Close stops serving, ends slave calls under way, and waits for every goroutine of the
// Master. It is idempotent and safe before Start.
func (m *Master) Close() error {
	m.life.Lock()
	defer m.life.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	var err error
	if m.started {
		m.cmu.Lock()
		m.closing = true
		for c := range m.silent {
			c.Close()
			m.cut++
		}
		m.cmu.Unlock()
		// Handlers never block, so a short grace period lets calls under way answer.
		ctx, cancel := context.WithTimeout(context.Background(), m.grace)
		if e := m.srv.Shutdown(ctx); e != nil {
			m.srv.Close()
		}
		cancel()
		err = <-m.serveErr
		m.serveErr <- nil // for Run, which may be waiting too
		m.notify.stop()
	}
	m.client.Close()
	return err
}

// connState keeps the set of connections that have sent no request, and closes those accepted
// once Close began.
func (m *Master) connState(c net.Conn, s http.ConnState) {
	m.cmu.Lock()
	defer m.cmu.Unlock()
	if s != http.StateNew {
		delete(m.silent, c)
		return
	}
	if m.closing {
		c.Close()
		return
	}
	m.silent[c] = struct{}{}
}

// Run starts the Master if needed, serves until ctx ends or serving fails, and closes it. It
// returns nil when ctx ended it.
func (m *Master) Run(ctx context.Context) error {
	m.life.Lock()
	started := m.started
	m.life.Unlock()
	if !started {
		if err := m.Start(); err != nil {
			return err
		}
	}
	select {
	case <-ctx.Done():
		return m.Close()
	case err := <-m.serveErr:
		m.serveErr <- err
		if cerr := m.Close(); err == nil {
			err = cerr
		}
		return err
	}
}

// Stats counts the master's calls to nodes' slave APIs.
type Stats struct {
	SlaveCalls   uint64 // publisherUpdate, paramUpdate and shutdown calls that were answered
	SlaveFailed  uint64 // calls that failed: refused, timed out, faulted
	SlaveDropped uint64 // calls dropped unmade: a node's queue overflowed, or the master closed
}

// Stats returns the counters so far (zero before Start).
func (m *Master) Stats() Stats {
	m.life.Lock()
	n := m.notify
	m.life.Unlock()
	if n == nil {
		return Stats{}
	}
	return Stats{SlaveCalls: n.sent.Load(), SlaveFailed: n.failed.Load(), SlaveDropped: n.dropped.Load()}
}

// enqueue hands a slave call to the notifier; without one (not started) it is dropped.
func (m *Master) enqueue(api string, t task) {
	if n := m.notify; n != nil {
		n.enqueue(api, t)
	}
}
