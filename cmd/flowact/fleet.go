package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/flowact/flowact/fleet"
)

// natsFlags are the connection flags of the fleet tools (fleet, export).
type natsFlags struct {
	url, domain                 string
	creds, nkey, user, password string
	tlsCA, tlsCert, tlsKey      string
	timeout                     time.Duration
}

func (n *natsFlags) add(f *pflag.FlagSet) {
	f.StringVar(&n.url, "nats", "nats://127.0.0.1:4222", "NATS server URL(s), comma-separated")
	f.StringVar(&n.domain, "nats-domain", "hub", "JetStream domain of the fleet's buckets and streams (\"\": the server's own)")
	f.StringVar(&n.creds, "nats-creds", "", "NATS credentials file (JWT and nkey seed)")
	f.StringVar(&n.nkey, "nkey", "", "nkey seed file")
	f.StringVar(&n.user, "user", "", "user name")
	f.StringVar(&n.password, "password", "", "password")
	f.StringVar(&n.tlsCA, "tls-ca", "", "roots verifying the server (PEM)")
	f.StringVar(&n.tlsCert, "tls-cert", "", "client certificate (PEM)")
	f.StringVar(&n.tlsKey, "tls-key", "", "client key (PEM)")
	f.DurationVar(&n.timeout, "timeout", 30*time.Second, "how long to wait for the server")
}

// natsRenames are the former names of the connection flags (collect's names now).
var natsRenames = map[string]string{"domain": "nats-domain", "creds": "nats-creds"}

// withRenames returns natsRenames and more.
func withRenames(more map[string]string) map[string]string {
	m := map[string]string{}
	for k, v := range natsRenames {
		m[k] = v
	}
	for k, v := range more {
		m[k] = v
	}
	return m
}

func (n *natsFlags) config() fleet.Config {
	return fleet.Config{URL: n.url, Creds: n.creds, NKey: n.nkey, User: n.user, Password: n.password,
		TLS: fleet.TLS{CA: n.tlsCA, Cert: n.tlsCert, Key: n.tlsKey}, ConnectTimeout: n.timeout}
}

// connect connects, failing (rather than retrying forever, as a robot does) when the server
// does not answer within the timeout.
func (n *natsFlags) connect(ctx context.Context, name string) (*nats.Conn, jetstream.JetStream, error) {
	cfg := n.config()
	cfg.Robot = "tool" // only for validation
	if err := cfg.Validate(); err != nil {
		return nil, nil, usageError{err}
	}
	cfg.Robot = ""
	nc, err := fleet.Connect(cfg, "", name, nil)
	if err != nil {
		return nil, nil, err
	}
	deadline := time.Now().Add(n.timeout)
	for !nc.IsConnected() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			last := nc.LastError()
			nc.Close()
			if last != nil {
				return nil, nil, fmt.Errorf("%s: could not connect to %s within %v: %v", name, n.url, n.timeout, last)
			}
			return nil, nil, fmt.Errorf("%s: no NATS server at %s within %v", name, n.url, n.timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var js jetstream.JetStream
	if n.domain != "" {
		js, err = jetstream.NewWithDomain(nc, n.domain)
	} else {
		js, err = jetstream.New(nc)
	}
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}

func newFleetCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "fleet push|status",
		Short: "Roll models out to robots and list the fleet's status (NATS)",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newFleetPushCmd(), newFleetStatusCmd())
	return cmd
}

func newFleetPushCmd() *cobra.Command {
	var (
		n                  natsFlags
		robotID, robotName string
		name, note         string
	)
	cmd := &cobra.Command{
		Use:   "push CHECKPOINT --fleet-id ID [--model ROBOT] [--name OBJECT]",
		Short: "Upload a checkpoint to the fleet's Object Store and point a robot's model key at it",
		Long: `Check that the checkpoint directory loads and fits the robot model (--model: a shipped robot
or a robot directory, default ur5), bundle its files with a manifest (robot model, joint order,
SHA-256 of every file), upload the bundle to the Object Store flowact_checkpoints as --name
(default: <fleet-id>-<UTC time>) and set the robot's key in flowact_models to it. The robot,
watching its key, downloads, verifies and swaps the model between chunks, or refuses it and
says why in its status (flowact fleet status).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := args[0]
			if err := fleet.ValidName(robotID); err != nil {
				return usagef("fleet push: --fleet-id: %v", err)
			}
			if err := checkRobot(robotName); err != nil {
				return usagef("fleet push: --model: %v", err)
			}
			// The checkpoint must load and fit the robot model before it goes anywhere.
			lp, err := loadPolicy(&PolicyFile{Robot: robotName}, dir)
			if err != nil {
				return err
			}
			lp.Close()
			model, _, err := openRobot(robotName)
			if err != nil {
				return err
			}
			bundle, bm, err := fleet.Bundle(dir, model, note)
			if err != nil {
				return err
			}
			if name == "" {
				name = robotID + "-" + time.Now().UTC().Format("20060102T150405Z")
			}
			ctx := cmd.Context()
			nc, js, err := n.connect(ctx, "flowact fleet push")
			if err != nil {
				return err
			}
			defer nc.Close()
			c, cancel := context.WithTimeout(ctx, n.timeout)
			defer cancel()
			info, err := fleet.Push(c, js, robotID, name, bundle)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "pushed %s (%d bytes, %s, %d files for %s) and pointed %s at it\n",
				name, info.Size, info.Digest, len(bm.Files), bm.Robot, robotID)
			return nil
		},
	}
	f := cmd.Flags()
	n.add(f)
	f.StringVar(&robotID, "fleet-id", "", "the robot's id in the fleet (required)")
	f.StringVar(&robotName, "model", "ur5", "the robot model the checkpoint is for: a shipped robot or a robot directory")
	f.StringVar(&name, "name", "", "object name (default: <fleet-id>-<UTC time>)")
	f.StringVar(&note, "note", "", "a note kept in the bundle's manifest")
	cmd.MarkFlagRequired("fleet-id")
	renameFlags(cmd, withRenames(map[string]string{"robot": "fleet-id"}))
	return cmd
}

func newFleetStatusCmd() *cobra.Command {
	var (
		n      natsFlags
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "status",
		Short: "List the robots' last status: model, state, episodes, faults, last seen",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			nc, js, err := n.connect(ctx, "flowact fleet status")
			if err != nil {
				return err
			}
			defer nc.Close()
			c, cancel := context.WithTimeout(ctx, n.timeout)
			defer cancel()
			sts, err := fleet.Statuses(c, js)
			if err != nil {
				return err
			}
			models := map[string]string{}
			if kv, err := js.KeyValue(c, fleet.ModelBucket); err == nil {
				for _, s := range sts {
					if e, err := kv.Get(c, s.Robot); err == nil {
						models[s.Robot] = string(e.Value())
					}
				}
			}
			slices.SortFunc(sts, func(a, b fleet.Status) int { return strings.Compare(a.Robot, b.Robot) })
			w := cmd.OutOrStdout()
			if asJSON {
				return json.NewEncoder(w).Encode(sts)
			}
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ROBOT\tSTATE\tMODEL\tWANTED\tEPISODES\tSUCCESSES\tFAULTS\tSPOOL\tLAST SEEN\tREFUSED")
			now := time.Now()
			for _, s := range sts {
				running := s.Model
				if running == "" {
					running = "(started with)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s ago\t%s\n", s.Robot, s.State, running, models[s.Robot],
					s.Episodes, s.Successes, s.Faults, s.Spool.Pending, now.Sub(s.Time).Round(time.Second), s.ModelError)
			}
			return tw.Flush()
		},
	}
	n.add(cmd.Flags())
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the statuses as JSON")
	renameFlags(cmd, natsRenames)
	return cmd
}

func newExportCmd() *cobra.Command {
	var (
		n             natsFlags
		stream, robot string
		out           string
		asJSON        bool
	)
	cmd := &cobra.Command{
		Use:   "export --out DIR [--stream flowact_episodes] [--fleet-id ID] [--nats URL]",
		Short: "Write the complete episodes of a JetStream stream as ROS bags (training data)",
		Long: `Read every complete episode of a stream (the hub's flowact_episodes, or a robot's
flowact_<robot>_episodes) and write it as DIR/<robot>-<episode>.bag with the writer config it
was recorded with: the same bag, byte for byte, as the robot would have written, so flowact
train --data DIR reads the same samples. Bags already in DIR are skipped; episodes still being
recorded or with a message missing or repeated are reported and skipped.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return usagef("export: --out is required")
			}
			if robot != "" {
				if err := fleet.ValidName(robot); err != nil {
					return usagef("export: --fleet-id: %v", err)
				}
			}
			ctx := cmd.Context()
			nc, js, err := n.connect(ctx, "flowact export")
			if err != nil {
				return err
			}
			defer nc.Close()
			rep, err := fleet.Export(ctx, js, fleet.ExportConfig{Stream: stream, Robot: robot, Dir: out,
				Skip: func(r, ep string) bool { return fileExistsAt(filepath.Join(out, r+"-"+ep+".bag")) }})
			if err != nil {
				return err
			}
			for _, e := range rep.Skipped {
				fmt.Fprintf(cmd.ErrOrStderr(), "flowact: %v\n", e)
			}
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(rep)
			}
			msgs := 0
			for _, e := range rep.Episodes {
				msgs += e.Messages
			}
			fmt.Fprintf(cmd.OutOrStdout(), "exported %d episodes (%d messages) from %s to %s; %d skipped\n", len(rep.Episodes), msgs, stream, out, len(rep.Skipped))
			return nil
		},
	}
	f := cmd.Flags()
	n.add(f)
	f.StringVar(&stream, "stream", fleet.HubStream, "stream to read")
	f.StringVar(&robot, "fleet-id", "", "only the episodes of the robot with this fleet id")
	f.StringVar(&out, "out", "", "output directory (created if missing)")
	f.BoolVar(&asJSON, "json", false, "print what was exported as JSON")
	renameFlags(cmd, withRenames(map[string]string{"robot": "fleet-id"}))
	return cmd
}

func fileExistsAt(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
