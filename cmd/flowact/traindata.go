package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/flowact/flowact/fleet"
)

// streamData is `flowact train --data nats://HOST:PORT/STREAM[?robot=R&domain=D&creds=FILE]`:
// a JetStream episode stream as training data. The URL's path is the stream (the hub's
// flowact_episodes, or a robot's flowact_<robot>_episodes); robot keeps one robot's episodes,
// domain is the stream's JetStream domain ("": the server's own), creds a credentials file,
// and user:password@ in the URL logs in with a password. tls:// connects with TLS.
type streamData struct {
	n      natsFlags
	stream string
	robot  string
}

// isStreamData reports whether --data names a stream rather than a directory.
func isStreamData(s string) bool {
	return strings.HasPrefix(s, "nats://") || strings.HasPrefix(s, "tls://")
}

// parseStreamData parses a --data URL.
func parseStreamData(s string) (*streamData, error) {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return nil, usagef("train: --data %q: want nats://HOST:PORT/STREAM", s)
	}
	d := &streamData{stream: strings.Trim(u.Path, "/")}
	if d.stream == "" || strings.ContainsAny(d.stream, "/. *>") {
		return nil, usagef("train: --data %q: the path must name one stream, e.g. nats://%s/%s", s, u.Host, fleet.HubStream)
	}
	q := u.Query()
	for k := range q {
		switch k {
		case "robot", "domain", "creds":
		default:
			return nil, usagef("train: --data %q: unknown parameter %q (want robot, domain or creds)", s, k)
		}
	}
	d.robot = q.Get("robot")
	if d.robot != "" {
		if err := fleet.ValidName(d.robot); err != nil {
			return nil, usagef("train: --data %q: robot: %v", s, err)
		}
	}
	d.n = natsFlags{url: u.Scheme + "://" + u.Host, domain: q.Get("domain"), creds: q.Get("creds"), timeout: 30 * time.Second}
	if u.User != nil {
		d.n.user = u.User.Username()
		d.n.password, _ = u.User.Password()
	}
	return d, nil
}

// export writes the stream's complete episodes as bags into a new temporary directory, as
// `flowact export` writes them (the same bags, byte for byte: the same names, hash and
// samples), and returns it; the caller removes it. Episodes still being recorded or broken are
// reported on progress and left out.
func (d *streamData) export(ctx context.Context, progress io.Writer) (string, error) {
	nc, js, err := d.n.connect(ctx, "flowact train")
	if err != nil {
		return "", err
	}
	defer nc.Close()
	dir, err := os.MkdirTemp("", "flowact-train-stream-")
	if err != nil {
		return "", fmt.Errorf("train: %w", err)
	}
	rep, err := fleet.Export(ctx, js, fleet.ExportConfig{Stream: d.stream, Robot: d.robot, Dir: dir})
	if err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("train: --data: %w", err)
	}
	for _, e := range rep.Skipped {
		fmt.Fprintf(progress, "flowact train: left out: %v\n", e)
	}
	fmt.Fprintf(progress, "flowact train: %d episodes from stream %s (%d left out)\n", len(rep.Episodes), d.stream, len(rep.Skipped))
	return dir, nil
}
