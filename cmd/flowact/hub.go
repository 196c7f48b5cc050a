package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/flowact/flowact/configs"
	"github.com/flowact/flowact/fleet"
)

// hubOptions are the flags of `flowact hub`.
type hubOptions struct {
	host, store, domain, auth string
	port, leafPort, replicas  int
	sources                   []string
	tlsCert, tlsKey, tlsCA    string
	logLevel                  string
}

func newHubCmd() *cobra.Command {
	var o hubOptions
	cmd := &cobra.Command{
		Use:   "hub [--port 4222] [--leaf-port 7422] [--store DIR] [--auth FILE] [--source ROBOT[@DOMAIN]]...",
		Short: "Run the fleet's hub: an embedded nats-server with JetStream, the fleet's buckets and episode stream",
		Long: `Run an embedded nats-server with JetStream (domain --domain) that robots connect to, directly
(small setups: flowact run --nats nats://HUB:4222) or through their own leaf node (--leaf-port).
At start it creates the fleet's buckets if missing: flowact_status (KV, last status per robot),
flowact_models (KV, the model each robot runs) and flowact_checkpoints (Object Store, model
bundles), and, for each --source ROBOT[@DOMAIN], adds that robot's episode stream (in the
robot's JetStream domain when given: a robot on a leaf node) to the hub's stream
flowact_episodes. --auth FILE (YAML: robots and operators, each with a password or a public
nkey; for a robot on its own leaf node, the domain of its server when not its name) confines
each robot, connected directly or through its leaf node as its user, to its own subjects and
model key. SIGINT or SIGTERM shuts it down.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(cmd.ErrOrStderr(), o.logLevel)
			if err != nil {
				return err
			}
			cfg := fleet.ServerConfig{Name: "flowact-hub", Host: o.host, Port: o.port, StoreDir: o.store, Domain: o.domain, LeafPort: o.leafPort, Logger: log}
			if o.tlsCert != "" || o.tlsKey != "" {
				if cfg.TLS, err = fleet.ServerTLS(o.tlsCert, o.tlsKey, o.tlsCA); err != nil {
					return usageError{err}
				}
			}
			// The hub's own connection: a user only this process knows, with every permission.
			self := fleet.AuthUser{Name: "flowact-hub", Password: randomToken()}
			if o.auth != "" {
				var a fleet.Auth
				b, err := os.ReadFile(o.auth)
				if err != nil {
					return usageError{err}
				}
				if err := configs.Decode(o.auth, b, &a); err != nil {
					return usageError{oneLine(err)}
				}
				a.Operators = append(a.Operators, self)
				// Leaf connections authenticate as these users too (nats-server falls back to
				// the client users when the leaf port has none of its own), with the same
				// permissions: a robot's leaf link carries only what the robot may.
				cfg.Users, cfg.NkeyUsers = a.Users(o.domain)
			}
			srcs := map[string]string{}
			for _, s := range o.sources {
				robot, domain, _ := strings.Cut(s, "@")
				if err := fleet.ValidName(robot); err != nil {
					return usagef("hub: --source %q: %v", s, err)
				}
				srcs[robot] = domain
			}
			srv, err := fleet.NewServer(cfg)
			if err != nil {
				return usageError{err}
			}
			if err := srv.Start(); err != nil {
				return err
			}
			defer srv.Close()
			opts := []nats.Option{nats.InProcessServer(srv.NATS())}
			if o.auth != "" {
				opts = append(opts, nats.UserInfo(self.Name, self.Password))
			}
			nc, err := nats.Connect("", opts...)
			if err != nil {
				return fmt.Errorf("hub: %w", err)
			}
			defer nc.Close()
			if err := setupHub(cmd.Context(), nc, srcs, o.replicas); err != nil {
				return err
			}
			leaf := ""
			if u := srv.LeafURL(); u != "" {
				leaf = ", leaf nodes at " + u
			}
			fmt.Fprintf(cmd.OutOrStdout(), "flowact hub: clients at %s%s, JetStream domain %q, store %s\n", srv.ClientURL(), leaf, o.domain, srv.StoreDir())
			<-cmd.Context().Done()
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.host, "host", "127.0.0.1", "address to listen on (0.0.0.0: every interface)")
	f.IntVar(&o.port, "port", 4222, "client port (-1: a free port)")
	f.IntVar(&o.leafPort, "leaf-port", 7422, "leaf node port (0: no leaf nodes, -1: a free port)")
	f.StringVar(&o.store, "store", "", "JetStream store directory (default: a new temporary directory, removed at exit)")
	f.StringVar(&o.domain, "domain", "hub", "JetStream domain of the hub (\"\": none)")
	f.StringVar(&o.auth, "auth", "", "YAML file of robots and operators (name and password, or name and public nkey)")
	f.StringSliceVar(&o.sources, "source", nil, "robot whose episode stream the hub stream sources, as ROBOT or ROBOT@DOMAIN (repeatable)")
	f.IntVar(&o.replicas, "replicas", 1, "replicas of the hub's stream and buckets (1 on a single server)")
	f.StringVar(&o.tlsCert, "tls-cert", "", "server certificate (PEM): clients must use TLS")
	f.StringVar(&o.tlsKey, "tls-key", "", "server key (PEM)")
	f.StringVar(&o.tlsCA, "tls-ca", "", "roots verifying client certificates (then required)")
	f.StringVar(&o.logLevel, "log-level", "info", "log level on stderr: debug, info, warn or error")
	return cmd
}

// setupHub creates the fleet's buckets and adds the robot sources to the hub's stream.
func setupHub(ctx context.Context, nc *nats.Conn, sources map[string]string, replicas int) error {
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	c, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := fleet.StatusKV(c, js); err != nil {
		return err
	}
	if _, err := fleet.ModelKV(c, js); err != nil {
		return err
	}
	if _, err := fleet.CheckpointStore(c, js); err != nil {
		return err
	}
	for robot, domain := range sources {
		if err := fleet.AddRobotSource(c, js, robot, domain, replicas); err != nil {
			return err
		}
	}
	return nil
}

func randomToken() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
