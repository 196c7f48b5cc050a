package dataset

import (
	"fmt"
	"math"
)

// Default topic names (DESIGN.md, "Interfaces to the world").
const (
	DefaultJointStatesTopic = "/joint_states"
	DefaultEmbeddingTopic   = "/flowact/embedding"
	DefaultCommandTopic     = "/flowact/command"
	DefaultEpisodeTopic     = "/flowact/episode"
)

// Topics names the streams of an episode; an empty field takes its Default*Topic.
type Topics struct {
	JointStates string // sensor_msgs/JointState
	Embedding   string // flowact_msgs/Embedding or std_msgs/Float32MultiArray
	Command     string // std_msgs/Float64MultiArray: the actions
	Episode     string // std_msgs/String holding Meta as JSON
}

func (t Topics) withDefaults() Topics {
	def := func(s *string, d string) {
		if *s == "" {
			*s = d
		}
	}
	def(&t.JointStates, DefaultJointStatesTopic)
	def(&t.Embedding, DefaultEmbeddingTopic)
	def(&t.Command, DefaultCommandTopic)
	def(&t.Episode, DefaultEpisodeTopic)
	return t
}

// ActionSource says where actions come from when reading.
type ActionSource uint8

const (
	// ActionsFromCommand reads the command topic (Float64MultiArray, one position target per
	// joint, in the metadata's joint order, or Config.Joints' when the bag has no metadata). A bag
	// without the topic is an error.
	ActionsFromCommand ActionSource = iota
	// ActionsFromNextState derives the action at each control tick from the joint positions at
	// the next tick: for bags with no command topic (a teleoperated or kinesthetic demonstration
	// recorded with `rosbag record /joint_states ...`). The command topic is ignored.
	ActionsFromNextState
)

// Config says how to read episodes. The zero value reads flowact's own bags.
type Config struct {
	Topics Topics
	// Joints is the joint order of states and actions. Nil means the metadata's, or, in a bag
	// without metadata, the order of the first joint-state message.
	Joints []string
	// Rate is the control rate in Hz at which Align samples the streams. 0 means the metadata's;
	// a bag without metadata then needs it set.
	Rate    float64
	Actions ActionSource
	// MaxChunkBytes bounds a bag chunk's decompressed size; 0 means DefaultMaxChunk.
	MaxChunkBytes int64
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.Joints != nil {
		if err := checkJoints(c.Joints); err != nil {
			return fmt.Errorf("dataset: config: %w", err)
		}
	}
	if c.Rate < 0 || math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0) {
		return fmt.Errorf("dataset: config: rate %v Hz: %w", c.Rate, ErrConfiguration)
	}
	if c.Actions > ActionsFromNextState {
		return fmt.Errorf("dataset: config: action source %d: %w", c.Actions, ErrConfiguration)
	}
	if c.MaxChunkBytes < 0 || c.MaxChunkBytes > math.MaxUint32 {
		return fmt.Errorf("dataset: config: MaxChunkBytes %d: %w", c.MaxChunkBytes, ErrConfiguration)
	}
	t := c.Topics.withDefaults()
	seen := map[string]string{}
	for _, p := range [][2]string{{"joint states", t.JointStates}, {"embedding", t.Embedding}, {"command", t.Command}, {"episode", t.Episode}} {
		if other, ok := seen[p[1]]; ok {
			return fmt.Errorf("dataset: config: topic %s used for both %s and %s: %w", p[1], other, p[0], ErrConfiguration)
		}
		seen[p[1]] = p[0]
	}
	return nil
}
