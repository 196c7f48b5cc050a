package dataset

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/flowact/flowact/robot"
)

// MetaVersion is the version of the metadata JSON that Writer writes and Read accepts.
const MetaVersion = 1

// Meta is an episode's task metadata, stored as JSON in a std_msgs/String on the episode topic.
type Meta struct {
	Version     int      `json:"version"`
	Task        string   `json:"task"`        // task name, e.g. "reach"
	Instruction string   `json:"instruction"` // the language instruction given to the VLM
	Seed        uint64   `json:"seed"`        // the seed the episode was generated from
	Success     bool     `json:"success"`     // the task's success check at the end
	Robot       string   `json:"robot"`       // robot model name
	Joints      []string `json:"joints"`      // joint order of states and actions
	Rate        float64  `json:"rate_hz"`     // control rate, Hz
}

// Validate checks the version, the joint names and the rate.
func (m *Meta) Validate() error {
	if m.Version != MetaVersion {
		return fmt.Errorf("metadata version %d, want %d: %w", m.Version, MetaVersion, ErrMeta)
	}
	if err := checkJoints(m.Joints); err != nil {
		return err
	}
	if !(m.Rate > 0) || math.IsInf(m.Rate, 0) {
		return fmt.Errorf("control rate %v Hz: %w", m.Rate, ErrMeta)
	}
	return nil
}

func checkJoints(names []string) error {
	if len(names) == 0 {
		return fmt.Errorf("no joint names: %w", ErrMeta)
	}
	seen := make(map[string]bool, len(names))
	for _, n := range names {
		if n == "" || seen[n] {
			return fmt.Errorf("joint name %q empty or repeated: %w", n, ErrMeta)
		}
		seen[n] = true
	}
	return nil
}

func jsonMarshal(m *Meta) ([]byte, error) { return json.Marshal(m) }

func decodeMeta(s string) (Meta, error) {
	var m Meta
	d := json.NewDecoder(strings.NewReader(s))
	d.DisallowUnknownFields()
	if err := d.Decode(&m); err != nil {
		return m, fmt.Errorf("%w: %v", ErrMeta, err)
	}
	return m, m.Validate()
}

// JointState is one joint-state measurement in Meta.Joints order (rad, rad/s, N m). Velocity and
// Effort are nil or of the same length as Position.
type JointState struct {
	Stamp                      time.Time
	Position, Velocity, Effort []float64
}

// Action is one position command in Meta.Joints order (rad): the target the controller was told
// to track at Stamp.
type Action struct {
	Stamp    time.Time
	Position []float64
}

// Episode is one recorded episode, each stream in time order. Read returns complete joint-state
// vectors only (see Read for partial messages).
type Episode struct {
	Path   string // the bag it was read from; "" when built in memory
	Meta   Meta
	States []JointState
	// Embeddings are the VLM embeddings, each stamped when it became available to the policy
	// (its arrival, the bag's record time), not when its images were captured: alignment must
	// see the embedding the policy would have had at each tick. The Writer also writes Stamp as
	// the message's header stamp.
	Embeddings []robot.Embedding
	Actions    []Action
}
