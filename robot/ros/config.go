package ros

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/flowact/flowact/robot/ros/xmlrpc"
)

// Topics names flowact's ROS interfaces. Names follow ROS rules: "/a" is global, "a" is relative
// to the node's namespace, "~a" is private (under the node's name). Remaps apply after
// resolution. The zero value of each field means its default.
type Topics struct {
	// JointStates: in, sensor_msgs/JointState; default "/joint_states".
	JointStates string `yaml:"joint_states"`
	// Embedding: in, see Config.Embedding; default "/flowact/embedding".
	Embedding string `yaml:"embedding"`
	// Command: out, std_msgs/Float64MultiArray per tick; default "/flowact/command".
	Command string `yaml:"command"`
	// Trajectory: out, trajectory_msgs/JointTrajectory per chunk; default "/flowact/trajectory".
	Trajectory string `yaml:"trajectory"`
	// Diagnostics: out, diagnostic_msgs/DiagnosticArray; default "/diagnostics".
	Diagnostics string `yaml:"diagnostics"`
	// Markers: out, visualization_msgs/MarkerArray, Node.PublishMarkers (the runtime's planned
	// and executed end-effector paths); default "/flowact/path_markers".
	Markers string `yaml:"markers"`
	// Start, Stop, Hold, Reset: services, std_srvs/Trigger; defaults "~start", "~stop",
	// "~hold", "~reset".
	Start string `yaml:"start"`
	Stop  string `yaml:"stop"`
	Hold  string `yaml:"hold"`
	Reset string `yaml:"reset"`
}

// Config configures a Node. The zero value is valid: every empty field takes the default its
// comment gives, most of them from the standard ROS environment variables. The yaml tags name
// the keys of a configuration file (durations as "1s", "250ms").
type Config struct {
	// Name is the node's base name, without slashes; default "flowact".
	Name string `yaml:"name"`
	// Namespace is the node's namespace, e.g. "/robot1"; default $ROS_NAMESPACE, else "/".
	Namespace string `yaml:"namespace"`
	// MasterURI is the master's XML-RPC URI, e.g. "http://10.0.0.2:11311/"; default
	// $ROS_MASTER_URI, else "http://127.0.0.1:11311/".
	MasterURI string `yaml:"master_uri"`
	// Host is the address other nodes reach this one at, and the one it listens on; default
	// $ROS_IP, else $ROS_HOSTNAME, else an address of the interface facing the master.
	Host string `yaml:"host"`
	// Remaps maps a name (topic or service) to its replacement, as "from:=to" on a ROS command
	// line. Both sides are resolved like topic names.
	Remaps map[string]string `yaml:"remaps"`
	// Params are private parameters, as "_key:=value" on a ROS command line: Params["gain"] =
	// "0.5" sets ~gain (e.g. /flowact/gain) on the parameter server, typed by YAML like rosparam
	// (see ParseParam: scalars, lists, dictionaries), every time the node registers.
	Params map[string]string `yaml:"params"`
	// RobotDescription, if set, is the robot's URDF (XML text). At every registration it is set
	// as the parameter robot_description (RobotDescriptionParam, resolved in the node's
	// namespace: /robot_description by default), where rviz's RobotModel display and
	// robot_state_publisher read it, unless the parameter server has one already: a
	// description set by someone else (a launch file's, with meshes) is never overwritten.
	RobotDescription string `yaml:"-"`

	Topics Topics `yaml:"topics"`
	// Embedding is the message type on Topics.Embedding; default EmbeddingMultiArray.
	Embedding EmbeddingKind `yaml:"embedding"`

	// DiagnosticsPeriod is the period of /diagnostics messages; default 1 s.
	DiagnosticsPeriod time.Duration `yaml:"diagnostics_period"`
	// RetryMin and RetryMax bound the exponential backoff between attempts to reach an absent
	// master; defaults 100 ms and 2 s.
	RetryMin time.Duration `yaml:"retry_min"`
	RetryMax time.Duration `yaml:"retry_max"`
	// WatchPeriod is how often the node asks the master whether it still knows it (lookupNode
	// of itself); a master that forgot it (a restart) makes the node register again. Default 1 s.
	WatchPeriod time.Duration `yaml:"watch_period"`
	// Timeout bounds each XML-RPC call and TCPROS handshake; default 10 s (goroslib's own;
	// a loaded Python rosmaster can take seconds to answer, and an unregistration that times
	// out leaves the node listed).
	Timeout time.Duration `yaml:"timeout"`
	// ConnectTimeout bounds Run's wait for its first registration: a master that has not
	// answered and taken the node by then ends Run with ErrMaster. 0 waits as long as it takes
	// (the master may start later; after the first registration a lost master is always waited
	// for).
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// FlushTimeout bounds the wait, when Node.Run's context ends, for the commands and
	// trajectories already written to reach the publishers before the node unregisters (the
	// last commands of a loop braking to rest must not be lost); default DefaultFlushTimeout.
	FlushTimeout time.Duration `yaml:"flush_timeout"`

	// CommandNode is the base name of the node's second connection, the command connection: a
	// goroslib node whose one publisher carries the per-tick commands on Topics.Command, so that
	// a shutdown request from outside (rosnode kill, the master, a node taking the name), which
	// ends the first connection at once, leaves the stream to the robot in place while the loop
	// brakes to rest (see Node.ShutdownRequested). Default Name + "_command". SingleNode turns
	// it off, and the wait for the command topic below with it: the node publishes its commands
	// itself, and a shutdown from outside ends the stream at once (as a calibration procedure,
	// which does not stop on ShutdownRequested and commands beside a stand-in hand, wants).
	CommandNode string `yaml:"command_node"`
	SingleNode  bool   `yaml:"single_node"`
	// BrakeTimeout bounds how long the command connection keeps sending after a shutdown
	// request when Run's context does not end first; default DefaultBrakeTimeout.
	BrakeTimeout time.Duration `yaml:"brake_timeout"`
	// CommandWait bounds the wait, at the first registration, for every other live publisher
	// of Topics.Command to go (an instance this one replaced, still braking through its command
	// connection): two command streams interleaved break the robot's limits, so Run returns
	// ErrCommandTopicBusy when one is still there after CommandWait. Publishers whose node
	// does not answer (killed without unregistering) are ignored. Meanwhile the node listens to
	// the topic: the last command it sees is Driver.ReadReference's. Not with SingleNode. Default
	// DefaultCommandWait.
	CommandWait time.Duration `yaml:"command_wait"`

	// MotorUnits says the robot's joint states are in motor units (raw encoder ticks, as a
	// calibration procedure reads them), not in the model's joint units: readings are then not
	// checked against the model's joint limits as they arrive (JointStates, ReadingTolerance).
	MotorUnits bool `yaml:"motor_units"`

	// Logger receives the node's log (and goroslib's, at debug level); default slog.Default().
	Logger *slog.Logger `yaml:"-"`
	// Getenv reads the environment; default os.Getenv. Tests inject a map.
	Getenv func(string) string `yaml:"-"`
}

// Defaults of Config and Topics.
const (
	DefaultName              = "flowact"
	DefaultMasterURI         = "http://127.0.0.1:11311/"
	DefaultDiagnosticsPeriod = time.Second
	DefaultRetryMin          = 100 * time.Millisecond
	DefaultRetryMax          = 2 * time.Second
	DefaultWatchPeriod       = time.Second
	DefaultTimeout           = 10 * time.Second
	// DefaultBrakeTimeout: a loop brakes from full speed within V/A + 2A/J plus a few ticks
	// (policy/safety's StopTicks), under 2 s for the shipped robots.
	DefaultBrakeTimeout = 10 * time.Second
	// DefaultCommandWait: an instance this one replaced brakes for at most DefaultBrakeTimeout.
	DefaultCommandWait = DefaultBrakeTimeout + 5*time.Second
	// DefaultFlushTimeout: a command waits at most one sender wake-up (microseconds); 200 ms
	// covers a loaded machine and still ends a SIGINT promptly.
	DefaultFlushTimeout = 200 * time.Millisecond
)

// DefaultTopics are the default names of Topics.
var DefaultTopics = Topics{
	JointStates: "/joint_states",
	Embedding:   "/flowact/embedding",
	Command:     "/flowact/command",
	Trajectory:  "/flowact/trajectory",
	Diagnostics: "/diagnostics",
	Markers:     "/flowact/path_markers",
	Start:       "~start",
	Stop:        "~stop",
	Hold:        "~hold",
	Reset:       "~reset",
}

// ErrConfig is wrapped by every configuration error.
var ErrConfig = errors.New("ros: invalid config")

// ParseArgs takes the ROS arguments out of args (as roscpp's ros::init does) into c and returns
// the others in order: "from:=to" remaps, "__name:=n", "__ns:=/ns", "__master:=uri",
// "__ip:=addr", "__hostname:=host", "_key:=value" private params. Other "__x:=" special keys
// (__log, ...) are accepted and ignored.
func (c *Config) ParseArgs(args []string) (rest []string, err error) {
	for _, a := range args {
		from, to, ok := strings.Cut(a, ":=")
		if !ok || from == "" || strings.HasPrefix(a, "-") {
			rest = append(rest, a)
			continue
		}
		switch {
		case from == "__name":
			c.Name = to
		case from == "__ns":
			c.Namespace = to
		case from == "__master":
			c.MasterURI = to
		case from == "__ip", from == "__hostname":
			c.Host = to
		case strings.HasPrefix(from, "__"):
			// __log, __param, ...: roscpp's other special keys, not meaningful here.
		case strings.HasPrefix(from, "_"):
			if c.Params == nil {
				c.Params = map[string]string{}
			}
			c.Params[from[1:]] = to
		default:
			if to == "" {
				return nil, fmt.Errorf("%w: remap %q has an empty target", ErrConfig, a)
			}
			if c.Remaps == nil {
				c.Remaps = map[string]string{}
			}
			c.Remaps[from] = to
		}
	}
	return rest, nil
}

// withDefaults returns c with every empty field filled in.
func (c Config) withDefaults() Config {
	getenv := c.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	c.Getenv = getenv
	if c.Name == "" {
		c.Name = DefaultName
	}
	if c.Namespace == "" {
		c.Namespace = getenv("ROS_NAMESPACE")
	}
	if c.Namespace == "" {
		c.Namespace = "/"
	}
	if c.Namespace != "/" {
		// ROS accepts "ns", "/ns" and "/ns/" alike.
		c.Namespace = "/" + strings.Trim(c.Namespace, "/")
	}
	if c.MasterURI == "" {
		c.MasterURI = getenv("ROS_MASTER_URI")
	}
	if c.MasterURI == "" {
		c.MasterURI = DefaultMasterURI
	}
	if c.Host == "" {
		c.Host = getenv("ROS_IP")
	}
	if c.Host == "" {
		c.Host = getenv("ROS_HOSTNAME")
	}
	t, d := &c.Topics, DefaultTopics
	for _, f := range []struct {
		v   *string
		def string
	}{
		{&t.JointStates, d.JointStates}, {&t.Embedding, d.Embedding}, {&t.Command, d.Command},
		{&t.Trajectory, d.Trajectory}, {&t.Diagnostics, d.Diagnostics}, {&t.Markers, d.Markers},
		{&t.Start, d.Start}, {&t.Stop, d.Stop}, {&t.Hold, d.Hold}, {&t.Reset, d.Reset},
	} {
		if *f.v == "" {
			*f.v = f.def
		}
	}
	if c.DiagnosticsPeriod == 0 {
		c.DiagnosticsPeriod = DefaultDiagnosticsPeriod
	}
	if c.RetryMin == 0 {
		c.RetryMin = DefaultRetryMin
	}
	if c.RetryMax == 0 {
		c.RetryMax = DefaultRetryMax
	}
	if c.WatchPeriod == 0 {
		c.WatchPeriod = DefaultWatchPeriod
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.FlushTimeout == 0 {
		c.FlushTimeout = DefaultFlushTimeout
	}
	if c.CommandNode == "" {
		c.CommandNode = c.Name + "_command"
	}
	if c.BrakeTimeout == 0 {
		c.BrakeTimeout = DefaultBrakeTimeout
	}
	if c.CommandWait == 0 {
		c.CommandWait = DefaultCommandWait
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate reports whether c, with its defaults and environment applied, is usable.
func (c *Config) Validate() error {
	_, err := c.resolve()
	return err
}

// names is a resolved Config: absolute names after remapping, the master's host:port, typed
// private params.
type names struct {
	cfg        Config
	node       string            // absolute node name, e.g. /robot1/flowact
	masterAddr string            // host:port
	topics     Topics            // absolute, remapped
	remaps     map[string]string // absolute from -> absolute to
	params     []param
}

// param is one private parameter: key absolute, value typed by YAML.
type param struct {
	key string
	val xmlrpc.Value
}

func (c *Config) resolve() (*names, error) {
	cfg := c.withDefaults()
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...)
	}
	if strings.ContainsAny(cfg.Name, "/~") || !validBaseName(cfg.Name) {
		return nil, bad("node name %q: want letters, digits and underscores, starting with a letter", cfg.Name)
	}
	if cfg.Namespace != "/" {
		for _, part := range strings.Split(cfg.Namespace[1:], "/") {
			if !validBaseName(part) {
				return nil, bad("namespace %q: segment %q is not a valid ROS name", cfg.Namespace, part)
			}
		}
	}
	u, err := url.Parse(cfg.MasterURI)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return nil, bad("master URI %q: want http://host:port/", cfg.MasterURI)
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil {
		host, port = u.Host, "11311"
	}
	if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 {
		return nil, bad("master URI %q: port %q", cfg.MasterURI, port)
	}
	if cfg.RetryMin < 0 || cfg.RetryMax < cfg.RetryMin {
		return nil, bad("retry backoff %v..%v", cfg.RetryMin, cfg.RetryMax)
	}
	if !cfg.SingleNode && (cfg.CommandNode == cfg.Name || !validBaseName(cfg.CommandNode)) {
		return nil, bad("command node name %q: want letters, digits and underscores, starting with a letter, other than the node's", cfg.CommandNode)
	}
	if cfg.WatchPeriod < 0 || cfg.Timeout < 0 || cfg.DiagnosticsPeriod < 0 || cfg.ConnectTimeout < 0 || cfg.FlushTimeout < 0 ||
		cfg.BrakeTimeout < 0 || cfg.CommandWait < 0 {
		return nil, bad("negative period or timeout")
	}
	if cfg.Embedding > EmbeddingCustom {
		return nil, bad("embedding kind %v", cfg.Embedding)
	}
	n := &names{cfg: cfg, masterAddr: net.JoinHostPort(host, port)}
	n.node = join(cfg.Namespace, cfg.Name)
	remaps := make(map[string]string, len(cfg.Remaps))
	for from, to := range cfg.Remaps {
		f, err := n.resolveName(from)
		if err != nil {
			return nil, bad("remap %s:=%s: %v", from, to, err)
		}
		t, err := n.resolveName(to)
		if err != nil {
			return nil, bad("remap %s:=%s: %v", from, to, err)
		}
		remaps[f] = t
	}
	tp := cfg.Topics
	for _, f := range []*string{&tp.JointStates, &tp.Embedding, &tp.Command, &tp.Trajectory,
		&tp.Diagnostics, &tp.Markers, &tp.Start, &tp.Stop, &tp.Hold, &tp.Reset} {
		r, err := n.resolveName(*f)
		if err != nil {
			return nil, bad("topic %q: %v", *f, err)
		}
		if to, ok := remaps[r]; ok {
			r = to
		}
		*f = r
	}
	n.topics = tp
	n.remaps = remaps
	for key, v := range cfg.Params {
		if !validBaseName(key) {
			return nil, bad("private param %q: not a valid ROS name", key)
		}
		val, err := ParseParam(v)
		if err != nil {
			return nil, bad("private param _%s:=%s: %v", key, v, err)
		}
		n.params = append(n.params, param{key: join(n.node, key), val: val})
	}
	return n, nil
}

// resolveName makes name absolute: "/a" stays, "~a" goes under the node's name, "a" under its
// namespace. It does not apply remaps.
func (n *names) resolveName(name string) (string, error) {
	if name == "" {
		return "", errors.New("empty name")
	}
	var abs string
	switch name[0] {
	case '/':
		abs = name
	case '~':
		abs = join(n.node, strings.TrimPrefix(name[1:], "/"))
	default:
		abs = join(n.cfg.Namespace, name)
	}
	if len(abs) > 1 && strings.HasSuffix(abs, "/") {
		abs = abs[:len(abs)-1]
	}
	for _, part := range strings.Split(abs[1:], "/") {
		if !validBaseName(part) {
			return "", fmt.Errorf("%q: segment %q is not a valid ROS name", name, part)
		}
	}
	return abs, nil
}

func join(ns, name string) string {
	if ns == "/" {
		return "/" + name
	}
	return ns + "/" + name
}

// validBaseName reports whether s is a ROS graph resource base name: a letter first, then
// letters, digits and underscores.
func validBaseName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		letter := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
		if i == 0 && !letter {
			return false
		}
		if !letter && !(r >= '0' && r <= '9') && r != '_' {
			return false
		}
	}
	return true
}
