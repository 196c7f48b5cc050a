package main

import (
	"bytes"
	"context"
	"runtime/debug"
	"strings"
	"testing"
)

// runCLI runs one command line in-process and returns its exit status and output.
func runCLI(t *testing.T, ctx context.Context, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(ctx, args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--no-such-flag"},
		{"master", "--no-such-flag"},
		{"master", "extra-arg"},
		{"master", "--addr", "not an address"},
	} {
		code, _, stderr := runCLI(t, context.Background(), args...)
		if code == 0 {
			t.Errorf("%q: exit 0, want non-zero", args)
		}
		if n := strings.Count(strings.TrimSpace(stderr), "\n"); n != 0 || !strings.HasPrefix(stderr, "flowact: ") {
			t.Errorf("%q: stderr %q, want one line starting with \"flowact: \"", args, stderr)
		}
	}
}

// TestVersion: --version prints the module version and the VCS stamps of the build.
func TestVersion(t *testing.T) {
	code, out, stderr := runCLI(t, context.Background(), "--version")
	if code != 0 || !strings.HasPrefix(out, "flowact ") || strings.Count(out, "\n") != 1 || stderr != "" {
		t.Errorf("--version: exit %d, %q, %q", code, out, stderr)
	}
	bi := &debug.BuildInfo{Main: debug.Module{Path: "github.com/flowact/flowact", Version: "v0.3.0"}, Settings: []debug.BuildSetting{
		{Key: "vcs.modified", Value: "true"}, {Key: "vcs", Value: "git"},
		{Key: "vcs.revision", Value: "1a2b3c4d5e6f7a8b9c0d1a2b3c4d5e6f7a8b9c0d"}, {Key: "vcs.time", Value: "2026-12-07T05:00:00Z"}}}
	for _, tc := range []struct {
		bi   *debug.BuildInfo
		ok   bool
		want string
	}{
		{bi, true, "v0.3.0 (commit 1a2b3c4d5e6f, 2026-12-07T05:00:00Z, modified)"},
		{&debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abc"}, {Key: "vcs.modified", Value: "false"}}}, true, "(devel) (commit abc)"},
		{&debug.BuildInfo{}, true, "(devel)"},
		{nil, false, "unknown (no build information)"},
	} {
		if got := version(tc.bi, tc.ok); got != tc.want {
			t.Errorf("version = %q, want %q", got, tc.want)
		}
	}
}

// TestUsageExitStatus: an unknown command or a stray argument is bad usage, exit 2 as the
// README says, in one line.
func TestUsageExitStatus(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"trian"}, `flowact: unknown command "trian" (flowact --help lists them)` + "\n"},
		{[]string{"master", "extra-arg"}, `flowact: unknown command "extra-arg" for "flowact master"` + "\n"},
		{[]string{"--no-such-flag"}, "flowact: unknown flag: --no-such-flag\n"},
	} {
		if code, _, stderr := runCLI(t, context.Background(), tc.args...); code != 2 || stderr != tc.want {
			t.Errorf("%q: exit %d, stderr %q; want 2 and %q", tc.args, code, stderr, tc.want)
		}
	}
}
