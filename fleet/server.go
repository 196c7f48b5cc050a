package fleet

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// ServerConfig configures an embedded nats-server: the hub (`flowact hub`) or a robot's local
// server (`flowact run --nats embedded`). The zero value is a server on 127.0.0.1:4222 with
// JetStream in a temporary directory, no domain, no leaf nodes and no authentication.
type ServerConfig struct {
	// Name is the server's name; "" lets nats-server pick one.
	Name string
	// Host is the address clients connect to; "" means 127.0.0.1 (loopback only).
	Host string
	// Port is the client port; 0 means 4222, -1 a free port.
	Port int
	// StoreDir is the JetStream store; "" means a new temporary directory.
	StoreDir string
	// Domain is the server's JetStream domain; "" means none.
	Domain string
	// LeafPort, when not 0, accepts leaf node connections (the hub); -1 means a free port.
	LeafPort int
	// LeafNoAdvertise keeps the leaf port out of what the server tells leaf nodes (behind a
	// proxy or NAT, leaf nodes must use the address they were given).
	LeafNoAdvertise bool
	// Hub, when set, connects this server as a leaf node to a hub's leaf port (a robot's local
	// server): URL like nats-leaf://user:pass@host:7422, with Creds an optional .creds file.
	Hub      string
	HubCreds string
	// Users, when set, require authentication: robots and operators by password or nkey, each
	// with its permissions (see RobotPermissions); leaf connections authenticate as these users
	// too, with the same permissions (LeafPermissions), unless LeafUsers is set. LeafUsers
	// authenticate leaf connections only: nats-server binds them to an account but applies no
	// permissions of theirs to the link (use Users to narrow a robot's leaf link).
	Users     []*server.User
	NkeyUsers []*server.NkeyUser
	LeafUsers []*server.User
	// TLS, when set, makes clients connect with TLS.
	TLS *tls.Config
	// Logger receives the server's log at debug level (notices at info); nil means discard.
	Logger *slog.Logger
}

// Server is an embedded nats-server. NewServer builds it without I/O; Start starts it; Close
// shuts it down and waits.
type Server struct {
	s    *server.Server
	opts *server.Options
	log  *slog.Logger
	tmp  string // a store directory Start made, removed by Close
}

// NewServer builds a server from cfg.
func NewServer(cfg ServerConfig) (*Server, error) {
	o := &server.Options{
		ServerName:      cfg.Name,
		Host:            cfg.Host,
		Port:            cfg.Port,
		JetStream:       true,
		StoreDir:        cfg.StoreDir,
		JetStreamDomain: cfg.Domain,
		NoSigs:          true,
		Users:           cfg.Users,
		Nkeys:           cfg.NkeyUsers,
		TLSConfig:       cfg.TLS,
	}
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	if o.Port == 0 {
		o.Port = 4222
	}
	if cfg.TLS != nil {
		o.TLS = true
		o.TLSTimeout = 2
	}
	if cfg.Domain != "" {
		if err := ValidName(cfg.Domain); err != nil {
			return nil, fmt.Errorf("fleet: server domain: %w", err)
		}
	}
	if cfg.LeafPort != 0 {
		o.LeafNode.Host = o.Host
		o.LeafNode.Port = cfg.LeafPort
		if cfg.LeafPort < 0 {
			p, err := FreePort(o.Host)
			if err != nil {
				return nil, err
			}
			o.LeafNode.Port = p
		}
		o.LeafNode.Users = cfg.LeafUsers
		o.LeafNode.NoAdvertise = cfg.LeafNoAdvertise
	}
	if cfg.Hub != "" {
		u, err := url.Parse(cfg.Hub)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("%w: hub %q: want nats-leaf://[user:pass@]host:port", ErrConfig, cfg.Hub)
		}
		o.LeafNode.Remotes = []*server.RemoteLeafOpts{{URLs: []*url.URL{u}, Credentials: cfg.HubCreds}}
		o.LeafNode.ReconnectInterval = 100 * time.Millisecond
	}
	return &Server{opts: o, log: cfg.Logger}, nil
}

// Start starts the server (creating a temporary store directory if none was given) and waits,
// at most 10 s, until it accepts clients.
func (s *Server) Start() error {
	if s.opts.StoreDir == "" {
		dir, err := os.MkdirTemp("", "flowact-nats-")
		if err != nil {
			return fmt.Errorf("fleet: nats-server store: %w", err)
		}
		s.opts.StoreDir, s.tmp = dir, dir
	}
	ns, err := server.NewServer(s.opts)
	if err != nil {
		return fmt.Errorf("fleet: nats-server: %w", err)
	}
	if s.log != nil {
		ns.SetLoggerV2(slogAdapter{s.log}, true, false, false)
	}
	s.s = ns
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return fmt.Errorf("fleet: nats-server not ready within 10s")
	}
	return nil
}

// ClientURL returns the URL clients connect to.
func (s *Server) ClientURL() string { return s.s.ClientURL() }

// LeafURL returns the URL leaf nodes connect to ("" without a leaf port).
func (s *Server) LeafURL() string {
	if s.opts.LeafNode.Port == 0 {
		return ""
	}
	return fmt.Sprintf("nats-leaf://%s", net.JoinHostPort(s.opts.LeafNode.Host, strconv.Itoa(s.opts.LeafNode.Port)))
}

// FreePort returns a TCP port free on host at the time of the call.
func FreePort(host string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, fmt.Errorf("fleet: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// StoreDir returns the JetStream store directory.
func (s *Server) StoreDir() string { return s.s.StoreDir() }

// LeafNodes returns the number of leaf connections.
func (s *Server) LeafNodes() int { return s.s.NumLeafNodes() }

// Close shuts the server down and waits for it. It is idempotent.
func (s *Server) Close() {
	if s.s != nil {
		s.s.Shutdown()
		s.s.WaitForShutdown()
	}
	if s.tmp != "" {
		os.RemoveAll(s.tmp)
		s.tmp = ""
	}
}

// NATS returns the nats-server itself (for tests and tools).
func (s *Server) NATS() *server.Server { return s.s }

// slogAdapter is nats-server's Logger on a *slog.Logger.
type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Noticef(format string, v ...any) {
	a.l.Debug("nats-server: " + fmt.Sprintf(format, v...))
}
func (a slogAdapter) Warnf(format string, v ...any) {
	a.l.Warn("nats-server: " + fmt.Sprintf(format, v...))
}
func (a slogAdapter) Fatalf(format string, v ...any) {
	a.l.Error("nats-server: " + fmt.Sprintf(format, v...))
}
func (a slogAdapter) Errorf(format string, v ...any) {
	a.l.Error("nats-server: " + fmt.Sprintf(format, v...))
}
func (a slogAdapter) Debugf(format string, v ...any) {
	a.l.Debug("nats-server: " + fmt.Sprintf(format, v...))
}
func (a slogAdapter) Tracef(format string, v ...any) {
	a.l.Debug("nats-server: " + fmt.Sprintf(format, v...))
}
