// Package ros is flowact's ROS 1 adapter: a typed node over goroslib (v2.1.4; this is the only
// package that imports it) with latest-value mailboxes for what flowact reads and non-blocking
// publishers for what it writes, and a robot.Driver on top.
//
// # Interfaces (defaults; every name is configurable in Config.Topics and remappable)
//
//	in   /joint_states        sensor_msgs/JointState          -> JointStates mailbox (model order)
//	in   /flowact/embedding   std_msgs/Float32MultiArray      -> Embeddings mailbox
//	                          or flowact_msgs/Embedding (Config.Embedding = EmbeddingCustom)
//	out  /flowact/command     std_msgs/Float64MultiArray      per control tick (Driver.WriteCommand)
//	out  /flowact/trajectory  trajectory_msgs/JointTrajectory per chunk (Driver.WriteTrajectory)
//	out  /diagnostics         diagnostic_msgs/DiagnosticArray every Config.DiagnosticsPeriod
//	out  /flowact/path_markers visualization_msgs/MarkerArray  Node.PublishMarkers (line strips)
//	param robot_description   Config.RobotDescription, set at registration unless already set
//	srv  ~start ~stop ~hold ~reset  std_srvs/Trigger, answered by Handlers (e.g. /flowact/start)
//
// Joint order is always the robot model's: JointState messages are matched by name (partial
// messages merge, unknown names are ignored and counted, each joint keeps its own stamp and
// receive time), commands are published in model order (layout.dim[0] = {"joints", DoF, DoF})
// and trajectories carry joint_names in model order, time_from_start per point and
// header.stamp = robot.Trajectory.Start. Units are SI (rad, m, s) as in package robot.
//
// An embedding is a tokens x width float32 matrix, row-major. As Float32MultiArray its
// layout.dim must be [tokens, width] (strides tokens*width and width, or 0); as
// flowact_msgs/Embedding (msgs/flowact_msgs/msg/Embedding.msg in this repository, Go type in
// robot/ros/msgs) it is header, tokens, width and uint8[] data = 4*tokens*width little-endian
// bytes. Embeddings handed out by Embeddings.Latest are shared and immutable.
//
// # Names, remaps, parameters
//
// Names resolve as in ROS: "/a" is global, "a" is relative to the namespace, "~a" is private
// (under the node name). Config.ParseArgs reads a ROS command line: "from:=to" remaps (both
// sides resolved, applied to every topic and service name), "__name:=", "__ns:=", "__master:=",
// "__ip:=", "__hostname:=", and "_key:=value" private parameters, which are typed as YAML
// like rosparam does (ParseParam: scalars, lists, dictionaries) and set under the node's name
// (e.g. /flowact/key) on every registration. Node.Param, SetParam and ParamFloat64s read and
// write parameters of any shape. Config.RobotDescription (a URDF) is set as robot_description
// in the node's namespace, by the Node and the SimSide alike, only when the parameter server
// has none: a description someone else set is never overwritten (a different robot's is
// logged as a warning).
//
// # Memory and goroutines
//
// Subscriber callbacks only decode and store: JointStates.Store copies DoF values under a mutex
// (no allocation); an embedding keeps the Float32MultiArray's own data (goroslib allocates every
// message afresh) or converts the custom payload into a fresh slice, and is published with one
// atomic pointer swap; Embeddings.Latest and Driver.ReadState allocate nothing. Driver.WriteCommand copies positions into a preallocated slot and signals a
// sender goroutine (no allocation, no blocking); that goroutine builds a fresh message per
// command, because goroslib encodes messages later on its own goroutines and a message can never
// be reused. A value not consumed before the next one arrives is replaced and counted
// (Overwritten / dropped), never queued. Node.Run owns every goroutine it starts and returns only
// after they and goroslib's have stopped.
//
// # Files and subpackages, by concept
//
//	node.go, driver.go, jointstate.go,   the robot side: Node, its mailboxes, its robot.Driver,
//	embedding.go, clock.go, outbound.go  ROS time, the non-blocking senders
//	simside.go, simside_msg.go           the simulator's face (SimSide): publishes what a
//	                                     ROS-controlled arm publishes, takes flowact's commands
//	member.go                            what both share: the connect/register/serve loop
//	                                     (waiting for the master, ConnectTimeout, registering
//	                                     again after a restart), joining and watching the master
//	config.go, params.go                 names, remaps, the environment, parameters
//	msgs/                                flowact_msgs/Embedding, the wire codec's Go type
//	master/                              the embedded ROS master (flowact master, the demo)
//	xmlrpc/                              flowact's XML-RPC codec (parameters, the master API)
//
// Shutdown: when Node.Run's context ends, the node first waits (at most Config.FlushTimeout)
// until every command and trajectory written through its Driver has been handed to goroslib's
// publisher, so that the last commands of a loop braking to rest are not lost, then
// unregisters. goroslib v2.1.4 cannot wait for its own socket writers: a message it is writing
// at that instant can still be cut off.
//
// # Measured
//
// BenchmarkEmbeddingDecode (goroslib's wire decode plus ours, both message kinds at 16 x 256
// and 64 x 1024), BenchmarkJointStateLatency (publish -> mailbox over loopback TCPROS, median
// and p99, beside BenchmarkLoopbackBaseline, raw loopback TCP timed the same way),
// BenchmarkDriverTick and BenchmarkJointStatesStore. A loop that spin-waits for new data takes a
// CPU from goroslib's goroutines and multiplies its latency (about 100x measured on two cores):
// wait on the clock instead.
//
// # goroslib v2.1.4 gaps, and how this package covers them
//
//   - It ignores ROS_MASTER_URI, ROS_IP and ROS_HOSTNAME: Config reads them (through
//     Config.Getenv) and passes the master address and host explicitly. It does read
//     ROS_NAMESPACE and lets it override any other namespace, so New refuses a namespace that
//     disagrees with a set ROS_NAMESPACE instead of silently using the wrong one.
//   - It does not wait for the master (NewNode fails): Run probes the master with getUri and
//     retries with exponential backoff between Config.RetryMin and RetryMax, logging once at warn
//     level and then at debug; Config.ConnectTimeout, when set, bounds the wait for the first
//     registration (ErrMaster).
//   - It never re-registers: Run asks the master lookupNode(self) every Config.WatchPeriod. A
//     connection error means the master is down; existing peer-to-peer connections keep
//     working and nothing is torn down. An "unknown node" answer means the master restarted and
//     forgot the node: Run registers every parameter, publisher, subscriber (with a
//     publisherUpdate to itself for the publishers the master knows) and service again, in
//     place, with the same slave URI and TCPROS server, so connections to peers that never
//     re-register (rospy and roscpp nodes do not) survive the restart; only if that fails three
//     times does it build a new goroslib node (Node.Registrations counts registrations).
//     SimSide does the same, so the robot's command subscription survives a master restart
//     with no command lost. A different URI means another node took the name; like a shutdown
//     request from the master (rosnode kill), which goroslib only reports through its log
//     callback, it ends the registration with ErrShutdown.
//   - It cancels its node the moment its slave API gets a shutdown request (rosnode kill, the
//     master, a node registering with the same name), publishers included, with no way to
//     refuse or delay it. A Node therefore publishes its per-tick commands from a second
//     goroslib node, the command connection (Config.CommandNode, default <name>_command,
//     listed by rosnode list and as the publisher of the command topic), which a shutdown of
//     the first leaves alone: the loop's stop goes on reaching the robot through it until Run's
//     context ends, then both unregister (cmdconn.go). No switch of publishers happens, so no
//     command is lost when rosmaster tells the robot's subscriber that the first node is gone
//     before it tells that node to shut down. A starting node is Ready only once no other live
//     node publishes on its command topic or holds its command connection's name (an instance
//     it replaced, still braking), else Run ends with ErrCommandTopicBusy after
//     Config.CommandWait; while it waits it listens to the topic, and the last command it sees
//     is Driver.ReadReference's (where the loop starts). Config.SingleNode keeps the commands
//     on the first node (flowact calib).
//   - It has no signal handling: Run unregisters everything (services, subscribers, publishers,
//     then the node and its /rosout publisher) when its context ends; callers connect the context
//     to SIGINT and SIGTERM (signal.NotifyContext).
//   - A QueueSize-0 subscriber runs the callback on the socket reader, so a slow callback leaves
//     data queued in TCP buffers and arbitrarily stale. With QueueSize 1 goroslib has the
//     opposite flaw: a full queue drops the NEWEST message, so the latest value is lost when it
//     arrives while the callback runs and one message waits (seen in the conformance test under
//     -race). Subscribers here use a queue of 4 (subscriberQueue) and callbacks that only store
//     into a latest-value mailbox in microseconds: the queue drains at once, nothing goes
//     stale, and the newest value wins in the mailbox. goroslib's own drops are silent and cannot
//     be counted from outside; the mailboxes count what they overwrite.
//   - It decodes float32[] element by element through reflection (one allocation per element):
//     BenchmarkEmbeddingDecode measures Float32MultiArray against flowact_msgs/Embedding, whose
//     uint8[] payload goroslib decodes with one copy.
//   - Its parameter API handles scalars only: parameters go through flowact's own XML-RPC codec
//     (robot/ros/xmlrpc), so lists and dictionaries work both ways.
//   - Its XML-RPC clients run on http.DefaultTransport, where two calls dialled at once can leave
//     a connection that never carries a request, and its Close shuts its slave API server down
//     with net/http's Shutdown, which waits 5 s for such a connection: closing a node beside a
//     peer in the same process (the demo) took up to 5 s. Nodes here close DefaultTransport's
//     idle connections first (closeGoroslib); a peer in another process can still cause it.
//   - It logs to stdout by default: the node sends goroslib's log to Config.Logger (slog) only.
//   - With /use_sim_time it subscribes to /clock itself and refuses a second subscription, so
//     Clock reads goroslib's sim time (see Clock) and follows re-registrations.
//   - It applies "from:=to" arguments from os.Args by exact string match to the names it is
//     given; names given to it here are already resolved and remapped, so that second pass only
//     matters for a remap whose source is another remap's target.
package ros
