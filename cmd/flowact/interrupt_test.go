package main

import (
	"errors"
	"github.com/flowact/flowact/expert/nn"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flowact/flowact/internal/rostest"
)

// interruptBound is how soon after SIGINT a command must have exited (the issue's "within a
// second"). The binary is built without the race detector for this test: the bound is the
// product's, not the detector's several-fold slowdown.
const interruptBound = time.Second

// TestInterrupt starts demo, collect and bench as processes of the built binary, sends SIGINT
// once each is in the middle of its work, and checks that the process itself exits within
// interruptBound with the status the package documentation gives (demo 0, the batch commands
// 130) and the summary of what ran on stdout.
func TestInterrupt(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "flowact")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out := t.TempDir()
	data := t.TempDir()
	collectInto(t, data, "reach", 4, "7")
	ck := filepath.Join(t.TempDir(), "ck")
	for _, c := range []struct {
		name    string
		args    []string
		working string // in the output once the command is under way
		code    int
		summary []string // in stdout after the interrupt
	}{
		{"demo", []string{"demo", "--headless", "--task", "reach", "--episodes", "50"}, "reach   1/50", 0,
			[]string{"summary:", "interrupted"}},
		{"collect", []string{"collect", "--task", "reach", "--episodes", "2000", "--out", out}, "collect reach: ", exitInterrupted,
			[]string{"collected", "interrupted:"}},
		// Small networks (tinyBench), each case measured for 20 s: SIGINT comes during one.
		{"bench", append(append([]string{}, tinyBench...), "--arch", "mlp", "--solvers", "euler", "--threads", "1", "--duration", "20s", "--strategies", ""), "bench: mlp", exitInterrupted,
			[]string{"interrupted: 0 expert and 0 tick cases finished"}},
		{"eval", []string{"eval", "--episodes", "50", "--task", "reach"}, "eval: ", exitInterrupted,
			[]string{"success", "all "}},
		// A long training: the steps done are written as the checkpoint.
		// (A log line every 4000 steps: a few seconds of this tiny network.)
		{"train", []string{"train", "--data", data, "--out", ck, "--steps", "200000", "--batch", "8", "--hidden", "32", "--layers", "1"},
			"step 4000/", exitInterrupted,
			[]string{"interrupted at step", "checkpoint in " + ck}},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := rostest.Start(t, nil, bin, c.args...)
			p.WaitOutput(t, 60*time.Second, c.working)
			t0 := time.Now()
			if err := p.Process().Signal(syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			p.Exited(t, 30*time.Second)
			took := time.Since(t0)
			code := 0
			if err := p.Err(); err != nil {
				var ee *exec.ExitError
				if !errors.As(err, &ee) {
					t.Fatalf("wait: %v", err)
				}
				code = ee.ExitCode()
			}
			t.Logf("%s exited %v after SIGINT, status %d", c.name, took, code)
			if took > interruptBound {
				t.Errorf("%s took %v to exit after SIGINT, want at most %v; output:\n%s", c.name, took, interruptBound, p.Output())
			}
			if code != c.code {
				t.Errorf("%s: exit status %d, want %d; output:\n%s", c.name, code, c.code, p.Output())
			}
			for _, s := range c.summary {
				if !strings.Contains(p.Stdout(), s) {
					t.Errorf("%s: no %q in the summary:\n%s", c.name, s, p.Stdout())
				}
			}
		})
	}
	// The interrupted training's checkpoint loads, and says where it stopped.
	net, man, err := nn.LoadDir(ck, 1)
	if err != nil {
		t.Fatalf("the interrupted training's checkpoint: %v", err)
	}
	net.Close()
	if !strings.Contains(man.Provenance.Note, "interrupted at step") || man.Provenance.Steps == 0 {
		t.Errorf("provenance %+v does not say where the training stopped", man.Provenance)
	}
}
