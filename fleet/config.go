package fleet

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// Defaults of Config, each used when its field is zero.
const (
	// DefaultPublishTimeout bounds one JetStream publish, from sending to its acknowledgement.
	// An R3 stream acknowledges in milliseconds; a leader election takes a few seconds, after
	// which the publish is retried with the same message ID.
	DefaultPublishTimeout = 2 * time.Second
	// DefaultWindow is how many episode messages are in flight (published, not yet
	// acknowledged) at once.
	DefaultWindow = 256
	// DefaultDuplicateWindow is the streams' duplicate window (JetStream's own default): a
	// message republished with the same ID within it is stored once.
	DefaultDuplicateWindow = 2 * time.Minute
	// DefaultTelemetryRate is the rate telemetry is published at, Hz.
	DefaultTelemetryRate = 1.0
	// DefaultTelemetryQueue is the number of telemetry samples the queue between the loop and
	// the publisher holds; a sample offered to a full queue is dropped and counted.
	DefaultTelemetryQueue = 8
	// DefaultConnectTimeout bounds one attempt to dial the server.
	DefaultConnectTimeout = 10 * time.Second
	// DefaultSegmentBytes is the size at which the spool starts a new segment file.
	DefaultSegmentBytes = 8 << 20
	// DefaultEpisodeMax is the longest episode `flowact run` records before it starts the
	// next one (a policy left running for hours still makes episodes a trainer can hold).
	DefaultEpisodeMax = 5 * time.Minute
	// DefaultRecordQueue is the number of records (a joint state read, a command sent, a
	// trajectory point) the queue between the control tick and `flowact run`'s episode
	// recorder holds: 8 s of a 500 Hz loop's states and commands; a full queue drops the
	// record and counts it.
	DefaultRecordQueue = 8192
	// Embedded is the Config.URL that runs a nats-server inside the process.
	Embedded = "embedded"
)

// ErrConfig is wrapped by every configuration error.
var ErrConfig = errors.New("fleet: bad config")

// Config is the fleet link of one robot: the `fleet:` block of a policy file. The zero value is
// the link switched off (URL ""); every other zero field means the default its comment gives.
type Config struct {
	// Robot is this robot's id in the fleet: its subjects are flowact.<Robot>.>, its episode
	// stream flowact_<Robot>_episodes, its keys in the status and model buckets <Robot>.
	// Letters, digits, '-' and '_' only (it is a subject token and part of stream names);
	// required when URL is set.
	Robot string `yaml:"robot"`
	// URL is the NATS server the robot talks to: "" switches the link off, "embedded" runs a
	// nats-server with JetStream inside the process (the demo and small setups; see Embedded*),
	// anything else is a nats:// or tls:// URL, or several separated by commas (a cluster).
	URL string `yaml:"url"`
	// Domain is the JetStream domain of the server the robot writes its episodes to, its local
	// leaf node in production; "" means the server's default (no domain).
	Domain string `yaml:"domain"`
	// HubDomain is the JetStream domain holding the fleet's buckets (status, models,
	// checkpoints); "" means Domain's (a robot connected straight to the hub).
	HubDomain string `yaml:"hub_domain"`
	// Spool is the directory of the episode spool, where every recorded message is written
	// before it is published; "" means flowact-spool-<Robot> under the user's cache directory.
	Spool string `yaml:"spool"`
	// PublishTimeout bounds one publish; 0 means DefaultPublishTimeout.
	PublishTimeout time.Duration `yaml:"publish_timeout"`
	// Window is the number of episode messages in flight; 0 means DefaultWindow.
	Window int `yaml:"window"`
	// DuplicateWindow is the episode stream's duplicate window; 0 means DefaultDuplicateWindow.
	DuplicateWindow time.Duration `yaml:"duplicate_window"`
	// Replicas is the episode stream's replica count (1, 3 or 5 on a cluster); 0 means 1.
	Replicas int `yaml:"replicas"`
	// TelemetryRate is how often telemetry is published, Hz; 0 means DefaultTelemetryRate.
	TelemetryRate float64 `yaml:"telemetry_rate_hz"`
	// TelemetryQueue is the telemetry queue's capacity; 0 means DefaultTelemetryQueue.
	TelemetryQueue int `yaml:"telemetry_queue"`
	// Embedding is the subject remote embeddings arrive on (`flowact run --embedding
	// nats:SUBJECT`); "" means flowact.<Robot>.embedding.
	Embedding string `yaml:"embedding"`
	// NoRecord keeps `flowact run` from recording episodes to the robot's stream (it records
	// whenever the link is on otherwise; `flowact demo --fleet` records its own).
	NoRecord bool `yaml:"no_record"`
	// EpisodeMax is the longest episode `flowact run` records: a longer run of the policy is
	// cut into episodes of this length; 0 means DefaultEpisodeMax.
	EpisodeMax time.Duration `yaml:"episode_max"`
	// RecordQueue is the capacity, in records, of the queue between the control tick and the
	// episode recorder; 0 means DefaultRecordQueue.
	RecordQueue int `yaml:"record_queue"`
	// Models makes the robot watch its key in the model bucket and install the models it names.
	Models bool `yaml:"models"`
	// ConnectTimeout bounds one attempt to dial the server (the link keeps trying, a server
	// that is down is like a cut link); 0 means DefaultConnectTimeout.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// Credentials: at most one of Creds (a .creds file: JWT and nkey seed), NKey (a file holding
	// an nkey seed, "SU..."), and User with Password.
	Creds    string `yaml:"creds"`
	NKey     string `yaml:"nkey"`
	User     string `yaml:"user"`
	Password string `yaml:"password"`
	// TLS configures TLS to the server; the zero value uses TLS only for tls:// URLs, with the
	// system's roots.
	TLS TLS `yaml:"tls"`
}

// TLS names the PEM files of a TLS setup. The zero value is no client certificate and the
// system's roots.
type TLS struct {
	CA   string `yaml:"ca"`   // roots that verify the server ("" the system's)
	Cert string `yaml:"cert"` // client certificate (with Key), for servers that verify clients
	Key  string `yaml:"key"`
}

// On reports whether the link is configured.
func (c *Config) On() bool { return c.URL != "" }

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// ValidName checks a robot id or domain: letters, digits, '-' and '_', at most 64 bytes.
func ValidName(s string) error {
	if len(s) > 64 || !nameRE.MatchString(s) {
		return fmt.Errorf("%w: %q: want 1 to 64 letters, digits, '-' or '_'", ErrConfig, s)
	}
	return nil
}

// Validate checks the config without I/O.
func (c *Config) Validate() error {
	if !c.On() {
		return nil
	}
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...))
	}
	if c.Robot == "" {
		bad("robot: required with url")
	} else if err := ValidName(c.Robot); err != nil {
		bad("robot: %v", err)
	}
	for _, d := range []struct{ key, v string }{{"domain", c.Domain}, {"hub_domain", c.HubDomain}} {
		if d.v != "" && ValidName(d.v) != nil {
			bad("%s: %q: want letters, digits, '-' or '_'", d.key, d.v)
		}
	}
	if c.URL != Embedded {
		for _, u := range strings.Split(c.URL, ",") {
			p, err := url.Parse(strings.TrimSpace(u))
			if err != nil || p.Host == "" {
				bad("url: %q: want %q or nats://host:port[,...]", u, Embedded)
				continue
			}
			switch p.Scheme {
			case "nats", "tls", "ws", "wss":
			default:
				bad("url: %q: scheme %q (want nats, tls, ws or wss)", u, p.Scheme)
			}
		}
	}
	if c.PublishTimeout < 0 || c.DuplicateWindow < 0 || c.ConnectTimeout < 0 {
		bad("publish_timeout, duplicate_window and connect_timeout may not be negative")
	}
	if c.DuplicateWindow != 0 && c.DuplicateWindow < time.Second {
		bad("duplicate_window %v: at least 1s", c.DuplicateWindow)
	}
	if c.Window < 0 || c.Window > 1<<16 {
		bad("window %d: want 0 (default %d) to 65536", c.Window, DefaultWindow)
	}
	switch c.Replicas {
	case 0, 1, 3, 5:
	default:
		bad("replicas %d: want 1, 3 or 5", c.Replicas)
	}
	if c.TelemetryRate < 0 || math.IsNaN(c.TelemetryRate) || math.IsInf(c.TelemetryRate, 0) || c.TelemetryRate > 1000 {
		bad("telemetry_rate_hz %v: want 0 (default %g) to 1000", c.TelemetryRate, DefaultTelemetryRate)
	}
	if c.EpisodeMax < 0 || (c.EpisodeMax != 0 && c.EpisodeMax < time.Second) {
		bad("episode_max %v: want 0 (default %v) or at least 1s", c.EpisodeMax, DefaultEpisodeMax)
	}
	if c.RecordQueue < 0 || (c.RecordQueue != 0 && c.RecordQueue < 16) || c.RecordQueue > 1<<20 {
		bad("record_queue %d: want 0 (default %d) or 16 to 1048576", c.RecordQueue, DefaultRecordQueue)
	}
	if c.TelemetryQueue < 0 || c.TelemetryQueue > 1<<16 {
		bad("telemetry_queue %d: want 0 (default %d) to 65536", c.TelemetryQueue, DefaultTelemetryQueue)
	}
	if c.Embedding != "" {
		if err := validSubject(c.Embedding); err != nil {
			bad("embedding: %v", err)
		}
	}
	n := 0
	for _, s := range []string{c.Creds, c.NKey, c.User} {
		if s != "" {
			n++
		}
	}
	if n > 1 {
		bad("creds, nkey and user: set at most one")
	}
	if c.Password != "" && c.User == "" {
		bad("password without user")
	}
	if (c.TLS.Cert == "") != (c.TLS.Key == "") {
		bad("tls: cert and key go together")
	}
	return errors.Join(errs...)
}

// validSubject checks a publish subject: dot-separated non-empty tokens, no wildcards, no spaces.
func validSubject(s string) error {
	if s == "" || strings.ContainsAny(s, " \t\r\n*>") {
		return fmt.Errorf("subject %q: no spaces or wildcards", s)
	}
	for _, t := range strings.Split(s, ".") {
		if t == "" {
			return fmt.Errorf("subject %q: empty token", s)
		}
	}
	return nil
}

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	if c.PublishTimeout == 0 {
		c.PublishTimeout = DefaultPublishTimeout
	}
	if c.Window == 0 {
		c.Window = DefaultWindow
	}
	if c.DuplicateWindow == 0 {
		c.DuplicateWindow = DefaultDuplicateWindow
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.TelemetryRate == 0 {
		c.TelemetryRate = DefaultTelemetryRate
	}
	if c.TelemetryQueue == 0 {
		c.TelemetryQueue = DefaultTelemetryQueue
	}
	if c.EpisodeMax == 0 {
		c.EpisodeMax = DefaultEpisodeMax
	}
	if c.RecordQueue == 0 {
		c.RecordQueue = DefaultRecordQueue
	}
	if c.Embedding == "" {
		c.Embedding = EmbeddingSubject(c.Robot)
	}
	if c.HubDomain == "" {
		c.HubDomain = c.Domain
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	return c
}

// Names of subjects, streams, buckets and keys (see the package documentation).
const (
	// Prefix is the first token of every flowact subject.
	Prefix = "flowact"
	// HubStream is the hub's episode stream, sourcing every robot's.
	HubStream = "flowact_episodes"
	// StatusBucket is the KV bucket of last statuses, one key per robot.
	StatusBucket = "flowact_status"
	// ModelBucket is the KV bucket naming each robot's model: key <robot>, value an object name
	// in CheckpointBucket.
	ModelBucket = "flowact_models"
	// CheckpointBucket is the Object Store bucket of model bundles.
	CheckpointBucket = "flowact_checkpoints"
)

// RobotSubjects is the subject space of a robot: flowact.<robot>.>.
func RobotSubjects(robot string) string { return Prefix + "." + robot + ".>" }

// EpisodeSubjects is the subject filter of a robot's episodes: flowact.<robot>.episodes.>.
func EpisodeSubjects(robot string) string { return Prefix + "." + robot + ".episodes.>" }

// EpisodeSubject is the subject of one episode's messages.
func EpisodeSubject(robot, episode string) string {
	return Prefix + "." + robot + ".episodes." + episode
}

// TelemetrySubject is where a robot's telemetry is published: flowact.<robot>.telemetry.
func TelemetrySubject(robot string) string { return Prefix + "." + robot + ".telemetry" }

// EmbeddingSubject is the default subject of a robot's remote embeddings.
func EmbeddingSubject(robot string) string { return Prefix + "." + robot + ".embedding" }

// EpisodeStream is the name of a robot's episode stream.
func EpisodeStream(robot string) string { return "flowact_" + robot + "_episodes" }
