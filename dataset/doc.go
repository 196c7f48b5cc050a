// Package dataset reads and writes flowact's training data: episodes stored as ROS bags (format
// v2.0), aligned at the control rate and cut into (embedding, state, action chunk) samples.
//
// # Episodes on disk
//
// One bag per episode. A Writer records four topics (names configurable in Topics):
//
//	/joint_states       sensor_msgs/JointState       measured joint positions (rad), velocities, efforts
//	/flowact/embedding  flowact_msgs/Embedding       VLM embedding, tokens x width float32 (or
//	                    (or std_msgs/Float32MultiArray with dims [tokens, width])
//	/flowact/command    std_msgs/Float64MultiArray   the actions: one position target per joint
//	/flowact/episode    std_msgs/String              Meta as JSON (task, instruction, seed, success,
//	                                                 robot, joint names, control rate)
//
// Because these are plain ROS messages with their genuine MD5 sums and definitions, `rosbag info`,
// `rosbag check` and `rostopic echo -b` read flowact's bags, and a user's own `rosbag record` is
// training data too: Read takes topic names from Config, accepts either embedding type, and
// derives actions from the next joint positions (ActionsFromNextState) when no commands were
// recorded. A bag without metadata needs Config.Rate, and takes the joint order from
// Config.Joints or its first joint-state message. The ROS 1 serialization of these five types
// is written here by hand (msg.go): package dataset imports nothing of flowact's and no ROS
// client library. Bags are written with github.com/foxglove/go-rosbag and read by a scanner of
// our own that checks every length in the file (bag.go explains why).
//
// # Time and alignment
//
// Times are ROS times (time.Time, UTC), the bag's record times. Align samples every stream at
// the control rate with sample-and-hold (each stream's latest value at or before the tick), from
// the first tick at which every stream has a value to the last tick covered by joint states and
// actions; see Aligned. Joint order is Meta.Joints everywhere: a message's order is never used.
//
// # Samples and batches
//
// A sample at tick k is the embedding (Tokens x Width float32), the state (D float64, rad) and
// the action chunk of ticks k..k+H-1 (H x D float64, row-major); past the episode's end the chunk
// repeats the last action and a mask marks those rows 0. Split divides episodes (not samples)
// into training and validation sets, deterministically from a seed. LoadEpisodes reads a set of
// bags (all in memory; Successful keeps the successful ones), Hash fingerprints them for a
// checkpoint's provenance.
//
// # Training examples
//
// Examples is what the expert trains on, in physical units: a uniformly drawn episode, a
// uniformly drawn tick of it, the state there (the joint positions, and the end effector's
// position when ExamplesConfig.EndEffector is set) and the next H actions, absolute or relative
// to the tick's positions (ExamplesConfig.Relative). Examples.AccumulateTo feeds the same states
// and actions to normalization statistics (calib/norm's Accumulator is an Adder), and
// Examples.DrawTo is the example source of expert/train's ExampleSource, which normalizes them.
// Neither package imports this one: both name the small interface they consume.
//
// # Errors and memory
//
// Bad bags (not a bag, truncated, a missing topic, a wrong type or MD5, decreasing stamps,
// malformed messages, NaN values) give a *BagError naming the file, the topic and the record
// offset, wrapping a sentinel such as ErrTruncated; ReadDir skips such bags and reports
// them in an Errors list; LoadEpisodes stops at the first. Nothing in the package panics on file contents. Episodes own
// their slices; Aligned shares its embeddings with the Episode it came from; Sample slices
// belong to the caller and are reused.
package dataset
