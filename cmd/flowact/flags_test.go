package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// renamedFlags are the flags renamed for one name per concept (the README's "Flag names"
// table): the command, the former flag with a value, the same setting under the new name.
var renamedFlags = []struct {
	cmd      []string
	old, new []string
}{
	{[]string{"demo"}, []string{"--tasks", "reach,track"}, []string{"--task", "reach,track"}},
	{[]string{"sim"}, []string{"--embedding"}, []string{"--publish-embedding"}},
	{[]string{"sim"}, []string{"--wait", "3s"}, []string{"--connect-timeout", "3s"}},
	{[]string{"calib", "motors"}, []string{"--wait", "3s"}, []string{"--connect-timeout", "3s"}},
	{[]string{"calib", "latency"}, []string{"--wait", "3s"}, []string{"--connect-timeout", "3s"}},
	{[]string{"bench"}, []string{"--chunk", "9"}, []string{"--horizon", "9"}},
	{[]string{"fleet", "push"}, []string{"--robot", "arm-07"}, []string{"--fleet-id", "arm-07"}},
	{[]string{"export"}, []string{"--robot", "arm-07"}, []string{"--fleet-id", "arm-07"}},
	{[]string{"fleet", "push"}, []string{"--domain", "d1"}, []string{"--nats-domain", "d1"}},
	{[]string{"fleet", "status"}, []string{"--creds", "x.creds"}, []string{"--nats-creds", "x.creds"}},
	{[]string{"export"}, []string{"--domain", "d1"}, []string{"--nats-domain", "d1"}},
}

// parsedFlags parses args as the flags of the subcommand path of a fresh root and returns
// every flag's value and whether it was given, by name.
func parsedFlags(t *testing.T, path, args []string) (map[string]string, *cobra.Command) {
	t.Helper()
	root := newRoot(io.Discard, io.Discard)
	cmd, rest, err := root.Find(path)
	if err != nil || len(rest) != 0 {
		t.Fatalf("%v: no such command (%v)", path, err)
	}
	if err := cmd.ParseFlags(args); err != nil {
		t.Fatalf("%v %v: %v", path, args, err)
	}
	got := map[string]string{}
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		got[f.Name] = f.Value.String()
		if f.Changed {
			got[f.Name] += " (given)"
		}
	})
	return got, cmd
}

func TestRenamedFlagsParseAsTheNewOnes(t *testing.T) {
	for _, tc := range renamedFlags {
		name := strings.Join(append(append([]string{}, tc.cmd...), tc.old...), " ")
		t.Run(name, func(t *testing.T) {
			oldSet, _ := parsedFlags(t, tc.cmd, tc.old)
			newSet, _ := parsedFlags(t, tc.cmd, tc.new)
			defaults, _ := parsedFlags(t, tc.cmd, nil)
			for k, v := range newSet {
				if oldSet[k] != v {
					t.Errorf("--%s: %q with the old name, %q with the new", k, oldSet[k], v)
				}
			}
			if len(oldSet) != len(newSet) {
				t.Errorf("%d flags with the old name, %d with the new", len(oldSet), len(newSet))
			}
			newName := strings.TrimPrefix(tc.new[0], "--")
			if newSet[newName] == defaults[newName] {
				t.Fatalf("--%s: %q is its default: the case shows nothing", newName, newSet[newName])
			}
		})
	}
}

// TestHelpListsOnlyNewFlags: no command's --help names a former flag (renamed or legacy).
func TestHelpListsOnlyNewFlags(t *testing.T) {
	hidden := map[string][]string{ // command path -> former names it still takes
		"sim":           {"debug", "robot-dir"},
		"calib motors":  {"debug", "robot-dir"},
		"calib latency": {"debug", "robot-dir"},
		"run":           {"embedding"},
	}
	for _, tc := range renamedFlags {
		p := strings.Join(tc.cmd, " ")
		hidden[p] = append(hidden[p], strings.TrimPrefix(tc.old[0], "--"))
	}
	for p, names := range hidden {
		code, out, stderr := runCLI(t, context.Background(), append(strings.Fields(p), "--help")...)
		if code != 0 {
			t.Fatalf("%s --help: exit %d, %s", p, code, stderr)
		}
		for _, n := range names {
			for _, line := range strings.Split(out, "\n") {
				if fields := strings.Fields(strings.TrimSpace(line)); len(fields) > 0 && strings.TrimSuffix(fields[0], ",") == "--"+n {
					t.Errorf("%s --help lists the former flag --%s: %q", p, n, line)
				}
			}
		}
	}
	// And the new names are listed.
	code, out, _ := runCLI(t, context.Background(), "sim", "--help")
	for _, n := range []string{"--publish-embedding", "--connect-timeout", "--log-level", "--embedding-type"} {
		if code != 0 || !strings.Contains(out, n) {
			t.Errorf("sim --help does not list %s", n)
		}
	}
}

// TestLegacyFlags: the former flags whose value does not map one to one still give the same
// settings, and using one says what replaced it.
func TestLegacyFlags(t *testing.T) {
	for _, p := range [][]string{{"sim"}, {"calib", "motors"}} {
		_, cmd := parsedFlags(t, p, []string{"--debug"})
		lvl, _ := cmd.Flags().GetString("log-level")
		dbg, _ := cmd.Flags().GetBool("debug")
		if got := logLevel(cmd.Flags(), lvl, dbg); got != "debug" {
			t.Errorf("%v --debug: level %q, want debug", p, got)
		}
		_, cmd = parsedFlags(t, p, []string{"--debug", "--log-level", "warn"})
		lvl, _ = cmd.Flags().GetString("log-level")
		if got := logLevel(cmd.Flags(), lvl, true); got != "warn" {
			t.Errorf("%v --debug --log-level warn: level %q, want warn (the new flag wins)", p, got)
		}
	}

	for _, tc := range []struct {
		args         []string
		typ, subject string
		err          string
	}{
		{[]string{"--embedding", "custom"}, "custom", "", ""},
		{[]string{"--embedding-type", "custom"}, "custom", "", ""},
		{[]string{"--embedding", "nats:vlm.emb"}, "multiarray", "vlm.emb", ""},
		{[]string{"--nats-embedding", "vlm.emb"}, "multiarray", "vlm.emb", ""},
		{[]string{"--embedding", "custom", "--embedding-type", "multiarray"}, "", "", "disagree"},
		{[]string{"--embedding", "nats:a", "--nats-embedding", "b"}, "", "", "disagree"},
	} {
		var o runOptions
		cmd := runCommand(&o)
		if err := cmd.ParseFlags(tc.args); err != nil {
			t.Fatal(err)
		}
		err := o.legacyEmbedding(cmd.Flags())
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("run %v: error %v, want %q", tc.args, err, tc.err)
			}
		case err != nil:
			t.Errorf("run %v: %v", tc.args, err)
		case o.embeddingType != tc.typ || o.natsEmbedding != tc.subject:
			t.Errorf("run %v: --embedding-type %q --nats-embedding %q, want %q %q", tc.args, o.embeddingType, o.natsEmbedding, tc.typ, tc.subject)
		}
	}

	// sim --robot-dir DIR is --robot DIR.
	dir := t.TempDir()
	var o simOptions
	cmd := simCommand(&o)
	if err := cmd.ParseFlags([]string{"--robot-dir", dir}); err != nil {
		t.Fatal(err)
	}
	_, _, _, errOld := simNodeConfig(cmd.Flags(), o, nil)
	o = simOptions{}
	cmd = simCommand(&o)
	if err := cmd.ParseFlags([]string{"--robot", dir}); err != nil {
		t.Fatal(err)
	}
	_, _, _, errNew := simNodeConfig(cmd.Flags(), o, nil)
	if errOld == nil || errNew == nil || !strings.Contains(errNew.Error(), "robot.yaml") || errOld.Error() != errNew.Error() {
		t.Errorf("an empty robot directory: --robot-dir: %v; --robot: %v; want the same robot.yaml error", errOld, errNew)
	}
}

// TestDeprecationNote: a former flag works and says, once, what to use instead.
func TestDeprecationNote(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"demo", "--tasks", "juggle"}, &stdout, &stderr)
	if code != 2 || !strings.Contains(stderr.String(), "juggle") {
		t.Errorf("demo --tasks juggle: exit %d, %q; want 2 naming juggle (the old flag parsed)", code, stderr.String())
	}
	if n := strings.Count(stderr.String(), "--tasks is deprecated; use --task"); n != 1 {
		t.Errorf("demo --tasks: %d deprecation notes in %q, want 1", n, stderr.String())
	}
}
