// Package node runs the kinematic simulator (package sim) as a ROS 1 node: the stand-in for a
// ROS-controlled arm that `flowact sim` starts and that `flowact run`, rostopic, rviz and rosbag
// talk to as they would to the real robot's drivers and controllers.
//
// # Interfaces (robot/ros.SimSide; names from the robot's robot.yaml topics, remappable)
//
//	out  /joint_states              sensor_msgs/JointState, model order, every step
//	in   topics.command             std_msgs/Float64MultiArray, per tick (group position controller)
//	in   topics.trajectory          trajectory_msgs/JointTrajectory, per chunk
//	                                (joint_trajectory_controller replacement semantics, see sim)
//	out  /tf, /tf_static            tf2_msgs/TFMessage: the moving joints' link frames at TFRate;
//	                                the fixed joints once, latched
//	out  /flowact/markers           visualization_msgs/MarkerArray at MarkerRate: the arm as a stick
//	                                figure (frame-locked to its links, so it moves with /tf; the
//	                                shipped URDFs have no visuals; a prismatic joint's segment is
//	                                drawn at its zero position), the task's targets (spheres) and
//	                                obstacles (capsules: a cylinder and two spheres)
//	out  /clock                     rosgraph_msgs/Clock after every step, with SimTime
//	out  /flowact/embedding         the synthetic VLM's embedding (sim/vlm), with Embedding and a task:
//	                                std_msgs/Float32MultiArray, or flowact_msgs/Embedding with
//	                                ROS.Node.Embedding = ros.EmbeddingCustom (goroslib encodes the
//	                                latter ~250x faster: 37 us against 9 ms for 16 x 256 under -race)
//	out  /diagnostics               diagnostic_msgs/DiagnosticArray "flowact: sim" every
//	                                ROS.Node.DiagnosticsPeriod (1 s): step, command and drop
//	                                counters, the task's progress; WARN when steps ran late
//
// JointTrajectory joint_names are matched by name into model order; a message that names an
// unknown joint, names one twice or leaves one out is dropped, counted and logged (at most once a
// second). Float64MultiArray commands carry one value per joint in model order.
//
// # Time
//
// The node steps the simulator by the period 1/Rate on absolute deadlines (start + k period on
// the wall clock, so lateness does not accumulate; a step that starts after its deadline runs at
// once and is counted in Stats.Late). Each step publishes the newest joint-state sample the
// simulated sensor has made visible (faults included: a dropped or delayed sample is not
// published again, so StateDrop shows as a lower message rate and StateLatency as older
// stamps), stamped with its measurement time.
//
//   - Real time (the default): ROS time is the wall clock. Stamps are the simulation time plus
//     the offset between the wall clock and the simulation clock when stepping began.
//   - SimTime: ROS time is the simulation time, published on /clock after every step; the node
//     sets /use_sim_time so that nodes started after it follow (and deletes it when it stops,
//     so that later nodes do not wait for a clock that is gone). Speed sets how many simulated
//     seconds pass per wall second (2 is twice as fast as real time; +Inf steps as fast as the
//     machine allows). The node never waits for its consumers: a controller that cannot keep up
//     with the chosen speed sees late states and commands that land late, as on a real robot;
//     lockstep evaluation belongs in-process (sim/episode).
//
// Stepping starts once the node has registered with the master, so nothing happens unseen.
//
// # Tasks
//
// With a task (Config.Task.Name), the scene is drawn from Config.Seed at start (sim/task), its
// targets and obstacles are drawn as markers, the task is updated every step with the end
// effector's true position (Node.Meta reports success), and with Embedding the synthetic VLM
// observes it at its own rate and latency. The synthetic VLM stands in for a real one: its
// embedding encodes the instruction's goal through fixed random projections (see sim/vlm).
//
// # Memory and goroutines
//
// Run owns its goroutines (the ROS node's and the stepping loop) and returns after they stop.
// Stepping allocates nothing (sim.Sim.Step); each published message is freshly allocated,
// because goroslib encodes messages later on its own goroutines.
package node
