package main

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/flowact/flowact/robot/ros"
	"github.com/flowact/flowact/sim/node"
)

// simSettings parses a `flowact sim` command line as the command does: flags, then the private
// parameters among the ROS arguments, then the node's config.
func simSettings(t *testing.T, args ...string) (node.Config, error) {
	t.Helper()
	var o simOptions
	cmd := simCommand(&o)
	if err := cmd.ParseFlags(args); err != nil {
		t.Fatal(err)
	}
	rest := cmd.Flags().Args()
	if err := applyPrivateParams(cmd, rest); err != nil {
		return node.Config{}, err
	}
	_, _, c, err := simNodeConfig(cmd.Flags(), o, rest)
	return c, err
}

// TestSimPrivateParams: each private parameter sets the flag of its name, as that flag would
// (and is still set on the parameter server, as ~key); one that names no setting, a bad value
// and a flag that disagrees are refused naming the parameter.
func TestSimPrivateParams(t *testing.T) {
	cfgFile := filepath.Join(t.TempDir(), "sim.yaml")
	if err := os.WriteFile(cfgFile, []byte("rate: 250\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		params, flags []string
	}{
		{[]string{"_rate:=10"}, []string{"--rate", "10"}},
		{[]string{"_sim_time:=true", "_speed:=4"}, []string{"--sim-time", "--speed", "4"}},
		{[]string{"_task:=reach", "_seed:=7", "_publish_embedding:=true"}, []string{"--task", "reach", "--seed", "7", "--publish-embedding"}},
		{[]string{"_embedding_type:=custom"}, []string{"--embedding-type", "custom"}},
		{[]string{"_robot:=panda"}, []string{"--robot", "panda"}},
		{[]string{"--config", cfgFile, "_rate:=10"}, []string{"--config", cfgFile, "--rate", "10"}}, // a parameter is given explicitly: it overrides the file
		{[]string{"--rate", "10", "_rate:=10.0"}, []string{"--rate", "10"}},                         // agreeing is fine
	} {
		got, err := simSettings(t, tc.params...)
		if err != nil {
			t.Errorf("%v: %v", tc.params, err)
			continue
		}
		want, err := simSettings(t, tc.flags...)
		if err != nil {
			t.Fatalf("%v: %v", tc.flags, err)
		}
		// The parameters are also private parameters for the server; the flags are not.
		for _, p := range tc.params {
			if k, v, ok := strings.Cut(p, ":="); ok {
				if got.ROS.Node.Params[k[1:]] != v {
					t.Errorf("%v: ~%s = %q on the parameter server, want %q", tc.params, k[1:], got.ROS.Node.Params[k[1:]], v)
				}
			}
		}
		got.ROS.Node.Params = nil
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%v: config\n%+v\nwant (as %v)\n%+v", tc.params, got, tc.flags, want)
		}
	}
	if c, err := simSettings(t, "_rate:=10"); err != nil || c.Rate != 10 {
		t.Errorf("_rate:=10: rate %v (%v), want 10", c.Rate, err)
	}
	if c, err := simSettings(t, "_embedding_type:=custom"); err != nil || c.ROS.Node.Embedding != ros.EmbeddingCustom {
		t.Errorf("_embedding_type:=custom: %v (%v)", c.ROS.Node.Embedding, err)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"_no_such:=1"}, "_no_such:=1 sets nothing (settable: _robot, _rate,"},
		{[]string{"_embedding:=true"}, "_embedding:=true sets nothing"}, // a former flag name is not a parameter
		{[]string{"_rate:=fast"}, "private parameter _rate:=fast"},
		{[]string{"--rate", "50", "_rate:=10"}, "_rate:=10 and --rate 50 disagree"},
		{[]string{"_embedding_type:=jpeg"}, `--embedding-type "jpeg"`},
	} {
		_, err := simSettings(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want %q", tc.args, err, tc.want)
		}
	}
}

// TestRunPrivateParams: `flowact run` takes its private parameters the same way; a parameter
// that names no setting is refused before anything is loaded.
func TestRunPrivateParams(t *testing.T) {
	var o runOptions
	cmd := runCommand(&o)
	args := []string{"_log_level:=debug", "_embedding_type:=custom", "_start:=false", "_connect_timeout:=3s", "/joint_states:=/arm/joint_states", "__name:=arm"}
	if err := cmd.ParseFlags(args); err != nil {
		t.Fatal(err)
	}
	if err := applyPrivateParams(cmd, cmd.Flags().Args()); err != nil {
		t.Fatal(err)
	}
	if o.logLevel != "debug" || o.embeddingType != "custom" || o.start || o.connectTimeout.Seconds() != 3 {
		t.Errorf("run %v: log level %q, embedding type %q, start %v, connect timeout %v", args, o.logLevel, o.embeddingType, o.start, o.connectTimeout)
	}
	code, _, stderr := runCLI(t, context.Background(), "run", "_gain:=0.5")
	if code != 2 || !strings.Contains(stderr, "run: private parameter _gain:=0.5 sets nothing (settable: _policy,") {
		t.Errorf("run _gain:=0.5: exit %d, %q; want 2 naming _gain", code, stderr)
	}
	code, _, stderr = runCLI(t, context.Background(), "run", "_start:=maybe")
	if code != 2 || !strings.Contains(stderr, "_start:=maybe") {
		t.Errorf("run _start:=maybe: exit %d, %q; want 2 naming _start", code, stderr)
	}
}
