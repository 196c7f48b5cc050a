// Package onboard is flowact's onboard runtime: the real-time control loop (package policy)
// wired to a ROS 1 graph (package robot/ros). It is what `flowact run` runs against a robot and
// what `flowact demo` runs against the simulator node, the same code in both.
//
// # Wiring
//
//	ros.Node ─ /joint_states ──────> JointStates mailbox ─> ros.Driver.ReadState ─┐
//	         ─ embedding topic ────> Embeddings mailbox (an EmbeddingSource) ───────┤
//	                                  (std_msgs/Float32MultiArray or               │
//	                                   flowact_msgs/Embedding, Config.ROS.Embedding)│
//	                                                                    policy.Loop (ticks on the
//	                                                                    node's Clock: wall or /clock)
//	ros.Driver.WriteCommand ─> command topic (std_msgs/Float64MultiArray), every tick   │
//	ros.Driver.WriteTrajectory ─> trajectory topic, per plan change (loop.output: trajectory)
//	policy.Snapshot (every loop.telemetry_period, default 1 s) ─> /diagnostics status
//	                                                              "flowact: policy"
//	~start ~stop ~hold ~reset (std_srvs/Trigger) ─> Loop.Start, Stop, Hold, Reset
//	policy.Deps.Plan (at every splice) + JointStates.PositionsTo ─> forward kinematics of
//	  Config.EELink ─> /flowact/path_markers (visualization_msgs/MarkerArray, every
//	  Config.MarkerPeriod): the planned path and the executed one (bounded history)
//	Config.WrapDriver, if set, sits between ros.Driver and the loop (`flowact run --nats`: the
//	  episode recorder's tap); Config.Recorder also gets the snapshots (fleet telemetry)
//
// A robot in motor units (Config.Transmissions, from `flowact run --calib`) has calib.Wrap
// between the ROS driver and the loop: ReadState maps ticks to joint angles, WriteCommand and
// WriteTrajectory map joint targets to ticks, so the loop and the expert see joint units only.
//
// # Lifetime and shutdown
//
// Run starts the node, which waits for the ROS master (at most Config.ROS.ConnectTimeout: an
// unreachable master is then an error wrapping ros.ErrMaster, not an endless wait; 0 waits as
// long as it takes) and registers. Then it runs the loop (Started at once when Config.Start is
// set; otherwise idle until the ~start service). When its context ends it shuts down in the
// order STYLE.md asks for: the loop decelerates the robot to a stop within its limits and
// returns, then the node hands the last commands to its publishers (at most
// Config.ROS.FlushTimeout), unregisters every topic and service from the master, and Run
// returns nil. Told to go from outside (rosnode kill, the master's shutdown request, another
// node taking its name) the loop is stopped the same way, its braking commands going through
// the node's command connection (robot/ros: Config.CommandNode), and Run returns nil. If the node
// ends on its own first (it could not register again) the loop is stopped and Run returns the
// node's error.
//
// Run owns every goroutine it starts and returns after they have stopped.
package onboard
