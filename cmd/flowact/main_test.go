package main

import (
	"bytes"
	"context"
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
