package ros

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/flowact/flowact/robot/ros/xmlrpc"
)

func TestParseArgs(t *testing.T) {
	var c Config
	rest, err := c.ParseArgs([]string{"run", "--verbose", "joint_states:=/arm/joint_states", "__name:=pilot",
		"__ns:=/robot1", "_gain:=0.5", "_joints:=[a, b]", "__log:=/tmp/x", "__master:=http://m:11311",
		"__ip:=10.0.0.3", "-x:=y", "cfg.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rest, []string{"run", "--verbose", "-x:=y", "cfg.yaml"}) {
		t.Errorf("rest = %q", rest)
	}
	if c.Name != "pilot" || c.Namespace != "/robot1" || c.MasterURI != "http://m:11311" || c.Host != "10.0.0.3" {
		t.Errorf("config = %+v", c)
	}
	if !maps.Equal(c.Remaps, map[string]string{"joint_states": "/arm/joint_states"}) {
		t.Errorf("remaps = %v", c.Remaps)
	}
	if !maps.Equal(c.Params, map[string]string{"gain": "0.5", "joints": "[a, b]"}) {
		t.Errorf("params = %v", c.Params)
	}
	if _, err := c.ParseArgs([]string{"a:="}); !errors.Is(err, ErrConfig) {
		t.Errorf("empty remap target: err = %v", err)
	}
}

func TestResolve(t *testing.T) {
	env := envMap{"ROS_MASTER_URI": "http://10.1.2.3:11411", "ROS_HOSTNAME": "robot.local", "ROS_NAMESPACE": "/lab"}
	tests := []struct {
		name    string
		cfg     Config
		node    string
		master  string
		host    string
		topics  Topics
		wantErr string
	}{
		{name: "defaults from env", cfg: Config{Getenv: env.get}, node: "/lab/flowact", master: "10.1.2.3:11411", host: "robot.local",
			topics: Topics{JointStates: "/joint_states", Embedding: "/flowact/embedding", Command: "/flowact/command",
				Trajectory: "/flowact/trajectory", Diagnostics: "/diagnostics", Markers: "/flowact/path_markers", Start: "/lab/flowact/start",
				Stop: "/lab/flowact/stop", Hold: "/lab/flowact/hold", Reset: "/lab/flowact/reset"}},
		{name: "no env", cfg: Config{Getenv: envMap{}.get, Name: "pilot", Namespace: "robot1/"}, node: "/robot1/pilot",
			master: "127.0.0.1:11311",
			topics: Topics{JointStates: "/joint_states", Embedding: "/flowact/embedding", Command: "/flowact/command",
				Trajectory: "/flowact/trajectory", Diagnostics: "/diagnostics", Markers: "/flowact/path_markers", Start: "/robot1/pilot/start",
				Stop: "/robot1/pilot/stop", Hold: "/robot1/pilot/hold", Reset: "/robot1/pilot/reset"}},
		{name: "relative topics and remaps", cfg: Config{Getenv: envMap{}.get, Namespace: "/r",
			Topics: Topics{JointStates: "joint_states", Command: "~cmd", Start: "begin", Markers: "~paths"},
			Remaps: map[string]string{"joint_states": "/hw/joint_states", "~cmd": "cmd_out", "/diagnostics": "diag"}},
			node: "/r/flowact", master: "127.0.0.1:11311",
			topics: Topics{JointStates: "/hw/joint_states", Embedding: "/flowact/embedding", Command: "/r/cmd_out",
				Trajectory: "/flowact/trajectory", Diagnostics: "/r/diag", Markers: "/r/flowact/paths", Start: "/r/begin",
				Stop: "/r/flowact/stop", Hold: "/r/flowact/hold", Reset: "/r/flowact/reset"}},
		{name: "bad name", cfg: Config{Getenv: envMap{}.get, Name: "a/b"}, wantErr: "node name"},
		{name: "bad namespace", cfg: Config{Getenv: envMap{}.get, Namespace: "/1x"}, wantErr: "namespace"},
		{name: "bad master", cfg: Config{Getenv: envMap{}.get, MasterURI: "127.0.0.1:11311"}, wantErr: "master URI"},
		{name: "bad master port", cfg: Config{Getenv: envMap{}.get, MasterURI: "http://h:99999/"}, wantErr: "port"},
		{name: "bad topic", cfg: Config{Getenv: envMap{}.get, Topics: Topics{Command: "/a//b"}}, wantErr: "topic"},
		{name: "bad remap", cfg: Config{Getenv: envMap{}.get, Remaps: map[string]string{"a": "b c"}}, wantErr: "remap"},
		{name: "bad param", cfg: Config{Getenv: envMap{}.get, Params: map[string]string{"x": "~"}}, wantErr: "null"},
		{name: "bad backoff", cfg: Config{Getenv: envMap{}.get, RetryMin: 2e9, RetryMax: 1e9}, wantErr: "backoff"},
		{name: "bad kind", cfg: Config{Getenv: envMap{}.get, Embedding: 7}, wantErr: "embedding kind"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			nm, err := tc.cfg.resolve()
			if tc.wantErr != "" {
				if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want ErrConfig mentioning %q", err, tc.wantErr)
				}
				if tc.cfg.Validate() == nil {
					t.Error("Validate accepts it")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if nm.node != tc.node || nm.masterAddr != tc.master || nm.cfg.Host != tc.host || nm.topics != tc.topics {
				t.Errorf("got node %q master %q host %q topics %+v", nm.node, nm.masterAddr, nm.cfg.Host, nm.topics)
			}
		})
	}
}

func TestParseParam(t *testing.T) {
	tests := []struct {
		in   string
		want xmlrpc.Value
	}{
		{"0.5", xmlrpc.Double(0.5)},
		{"3", xmlrpc.Int(3)},
		{"4000000000", xmlrpc.Double(4e9)},
		{"true", xmlrpc.Bool(true)},
		{"hello world", xmlrpc.String("hello world")},
		{"'3'", xmlrpc.String("3")},
		{"", xmlrpc.String("")},
		{"[1, 2.5, x]", xmlrpc.Array(xmlrpc.Int(1), xmlrpc.Double(2.5), xmlrpc.String("x"))},
		{"{kp: [1, 2], name: arm}", xmlrpc.Struct(
			xmlrpc.Member{Name: "kp", Value: xmlrpc.Array(xmlrpc.Int(1), xmlrpc.Int(2))},
			xmlrpc.Member{Name: "name", Value: xmlrpc.String("arm")})},
	}
	for _, tc := range tests {
		got, err := ParseParam(tc.in)
		if err != nil || !xmlrpc.Equal(got, tc.want) {
			t.Errorf("ParseParam(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"null", "[1, ~]", "{[a]: 1}", "[a"} {
		if _, err := ParseParam(bad); err == nil {
			t.Errorf("ParseParam(%q) accepted", bad)
		}
	}
	f, err := Float64s(xmlrpc.Array(xmlrpc.Int(1), xmlrpc.Double(2.5)))
	if err != nil || !slices.Equal(f, []float64{1, 2.5}) {
		t.Errorf("Float64s = %v, %v", f, err)
	}
	if _, err := Float64s(xmlrpc.Array(xmlrpc.String("a"))); err == nil {
		t.Error("Float64s accepts a string")
	}
}

// FuzzParseParam: any text either fails cleanly or yields a value that encodes.
func FuzzParseParam(f *testing.F) {
	for _, s := range []string{"0.5", "[1, 2]", "{a: {b: [x, 1e3]}}", "&a [*a]", "!!binary aGk="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseParam(s)
		if err == nil {
			_ = xmlrpc.AppendValue(nil, v)
		}
	})
}

func TestConfigYAML(t *testing.T) {
	const doc = `
name: pilot
master_uri: http://10.0.0.2:11311/
remaps: {/joint_states: /arm/joint_states}
params: {rate: "50"}
topics: {command: /arm/command}
embedding: flowact_msgs/Embedding
watch_period: 250ms
`
	var c Config
	dec := yaml.NewDecoder(strings.NewReader(doc))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatal(err)
	}
	if c.Name != "pilot" || c.Embedding != EmbeddingCustom || c.WatchPeriod != 250*time.Millisecond ||
		c.Topics.Command != "/arm/command" || c.Remaps["/joint_states"] != "/arm/joint_states" || c.Params["rate"] != "50" {
		t.Errorf("decoded %+v", c)
	}
	var k EmbeddingKind
	if err := k.UnmarshalText([]byte("std_msgs/Float64MultiArray")); err == nil {
		t.Error("a wrong embedding type accepted")
	}
	out, err := yaml.Marshal(struct{ E EmbeddingKind }{EmbeddingCustom})
	if err != nil || !strings.Contains(string(out), "flowact_msgs/Embedding") {
		t.Errorf("marshal: %s, %v", out, err)
	}
}
