package fleet

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/nats-io/nats.go"
)

// InboxPrefix is the reply-subject prefix of a robot's connection, _INBOX_<robot>: with it a
// robot's permissions can allow replies to itself only (see RobotPermissions).
func InboxPrefix(robot string) string { return "_INBOX_" + robot }

// Connect connects to cfg.URL (not "embedded": the caller starts the embedded server and passes
// its ClientURL as url, or "" for cfg.URL) with cfg's credentials and TLS. The connection never
// gives up: it reconnects forever, and a server that is down at the start is retried like a cut
// link (nats.RetryOnFailedConnect), so Connect does not wait for it. Connection events are
// logged on log.
func Connect(cfg Config, url, name string, log *slog.Logger) (*nats.Conn, error) {
	cfg = cfg.withDefaults()
	log = orDiscard(log)
	if url == "" {
		url = cfg.URL
	}
	if url == Embedded {
		return nil, fmt.Errorf("%w: Connect needs the embedded server's URL", ErrConfig)
	}
	opts := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(100 * time.Millisecond),
		nats.ReconnectJitter(50*time.Millisecond, 100*time.Millisecond),
		nats.RetryOnFailedConnect(true),
		nats.Timeout(cfg.ConnectTimeout),
		nats.PingInterval(2 * time.Second),
		nats.MaxPingsOutstanding(3),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			log.Info("fleet: disconnected", "name", name, "err", err)
		}),
		nats.ReconnectHandler(func(c *nats.Conn) { log.Info("fleet: reconnected", "name", name, "url", c.ConnectedUrl()) }),
		nats.ErrorHandler(func(_ *nats.Conn, s *nats.Subscription, err error) {
			subj := ""
			if s != nil {
				subj = s.Subject
			}
			log.Warn("fleet: nats error", "name", name, "subject", subj, "err", err)
		}),
	}
	if cfg.Robot != "" {
		opts = append(opts, nats.CustomInboxPrefix(InboxPrefix(cfg.Robot)))
	}
	switch {
	case cfg.Creds != "":
		opts = append(opts, nats.UserCredentials(cfg.Creds))
	case cfg.NKey != "":
		o, err := nats.NkeyOptionFromSeed(cfg.NKey)
		if err != nil {
			return nil, fmt.Errorf("fleet: nkey %s: %w", cfg.NKey, err)
		}
		opts = append(opts, o)
	case cfg.User != "":
		opts = append(opts, nats.UserInfo(cfg.User, cfg.Password))
	}
	if cfg.TLS != (TLS{}) {
		tc, err := cfg.TLS.Config()
		if err != nil {
			return nil, err
		}
		opts = append(opts, nats.Secure(tc))
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("fleet: connect %s: %w", url, err)
	}
	return nc, nil
}

// Config loads the TLS files into a client tls.Config.
func (t TLS) Config() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if t.CA != "" {
		b, err := os.ReadFile(t.CA)
		if err != nil {
			return nil, fmt.Errorf("fleet: tls ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("fleet: tls ca %s: no PEM certificate: %w", t.CA, ErrConfig)
		}
		tc.RootCAs = pool
	}
	if t.Cert != "" {
		c, err := tls.LoadX509KeyPair(t.Cert, t.Key)
		if err != nil {
			return nil, fmt.Errorf("fleet: tls cert: %w", err)
		}
		tc.Certificates = []tls.Certificate{c}
	}
	return tc, nil
}

// ServerTLS loads a server certificate (and, with ca, the roots that verify clients'
// certificates, then required) into a server tls.Config.
func ServerTLS(cert, key, ca string) (*tls.Config, error) {
	if cert == "" || key == "" {
		return nil, errors.New("fleet: server tls: cert and key required")
	}
	c, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		return nil, fmt.Errorf("fleet: server tls: %w", err)
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{c}}
	if ca != "" {
		b, err := os.ReadFile(ca)
		if err != nil {
			return nil, fmt.Errorf("fleet: server tls ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("fleet: server tls ca %s: no PEM certificate", ca)
		}
		tc.ClientCAs, tc.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return tc, nil
}
