package policy

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/flowact/flowact/policy/chunk"
)

// TestConfigYAML: the yaml tags decode strictly (unknown keys are errors) into the documented
// fields, durations included.
func TestConfigYAML(t *testing.T) {
	const doc = `
rate: 200
threshold: 12
seed: 7
output: trajectory
chunk:
  strategy: prefix
  blend_ticks: 6
watchdog:
  embedding_max_age: 500ms
  state_max_age: 40ms
limits:
  velocity_scale: 0.5
  joints:
    j0: {upper: 1.5, acceleration: 10}
`
	var c Config
	dec := yaml.NewDecoder(strings.NewReader(doc))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	j0 := c.Limits.Joints["j0"]
	if c.Rate != 200 || c.Threshold != 12 || c.Seed != 7 || c.Output != "trajectory" || c.Chunk.Strategy != chunk.Prefix ||
		c.Chunk.BlendTicks != 6 || c.Watchdog.EmbeddingMaxAge != 500*time.Millisecond || c.Watchdog.StateMaxAge != 40*time.Millisecond ||
		c.Limits.VelocityScale != 0.5 || j0.Upper == nil || *j0.Upper != 1.5 || j0.Acceleration != 10 {
		t.Errorf("decoded %+v", c)
	}
	dec = yaml.NewDecoder(bytes.NewReader([]byte("rate: 100\nchunk:\n  stratgy: blend\n")))
	dec.KnownFields(true)
	if err := dec.Decode(&Config{}); err == nil || !strings.Contains(err.Error(), "stratgy") {
		t.Errorf("a misspelt key: %v", err)
	}
}

// TestRobotLagConfig: the lag leaves the delay margin as it is (the loop shifts chunks by it
// instead: TestRobotLagBookkeeping); a negative or absurd lag is refused.
func TestRobotLagConfig(t *testing.T) {
	for _, tc := range []struct {
		lag    time.Duration
		margin int
		want   int
	}{
		{0, 0, 1},
		{0, -1, 0},
		{60 * time.Millisecond, 0, 1},
		{61 * time.Millisecond, 5, 5},
	} {
		c := Config{Rate: 50, RobotLag: tc.lag, DelayMargin: tc.margin}
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
		if got := c.withDefaults(32).DelayMargin; got != tc.want {
			t.Errorf("lag %v, margin %d: delay margin %d, want %d", tc.lag, tc.margin, got, tc.want)
		}
	}
	for _, lag := range []time.Duration{-time.Millisecond, 11 * time.Second} {
		c := Config{RobotLag: lag}
		if err := c.Validate(); !errors.Is(err, ErrConfig) {
			t.Errorf("robot_lag %v: %v", lag, err)
		}
	}
}
