// Package fleet is flowact's link to a robot fleet over NATS (github.com/nats-io/nats.go) and
// JetStream: recorded episodes go to a stream, telemetry to a subject and a key-value bucket,
// remote embeddings come from a subject, models from an Object Store. It is the only package of
// flowact that imports nats.go and nats-server (arch_test.go checks it); it sees robot and
// dataset, not policy: the binary hands it telemetry as values and a model installer as an
// interface.
//
// # Topology
//
// A robot talks to a local nats-server with JetStream: embedded in the binary for the demo and
// small setups (Server; `flowact run --nats embedded`, `flowact hub`), a separate leaf node in
// production. In production the robot's server has its own JetStream domain (the robot's id)
// and connects as a leaf node to the hub; the hub's stream HubStream sources each robot's
// episode stream from the robot's domain across the leaf link (AddRobotSource), so a cut link
// costs lag, not data. A small setup connects robots straight to the hub (no domains).
//
// # Names
//
//	flowact.<robot>.>                   every subject of a robot (RobotSubjects)
//	flowact.<robot>.episodes.<episode>  the messages of one episode (EpisodeSubject)
//	flowact.<robot>.telemetry           telemetry, JSON Status plus the loop's snapshot (core NATS)
//	flowact.<robot>.embedding           remote embeddings, flowact_msgs/Embedding bytes (default)
//	flowact.<robot>.source.>            the robot's server delivering its episodes to the hub's
//	                                    stream across the leaf link (SourceDeliverPrefix)
//	flowact_<robot>_episodes            the robot's episode stream (EpisodeStream), file storage,
//	                                    no limits, duplicate window Config.DuplicateWindow (2 min)
//	flowact_episodes                    the hub's stream sourcing every robot's (HubStream)
//	flowact_status                      KV bucket: key <robot>, the robot's last Status (JSON)
//	flowact_models                      KV bucket: key <robot>, the object name of its model
//	flowact_checkpoints                 Object Store: model bundles (tar: checkpoint files and
//	                                    fleet.json, a BundleManifest)
//
// A robot id and an episode id are subject tokens: letters, digits, '-' and '_'.
//
// # Episodes and their guarantees
//
// An Episode (Log.Begin) has dataset.Writer's methods and checks. Each call appends one record
// to the disk spool (spool.go: segment files of CRC-checked records), never touching the network;
// Close syncs the spool to disk. Log.Run reads the spool in order and publishes it, Config.Window
// messages at a time, as asynchronous JetStream publishes with a deadline (PublishTimeout); each
// message carries Nats-Msg-Id <robot>.<episode>.<seq>, Flowact-Kind and Flowact-Seq headers.
// Every message not acknowledged (a timeout, a reconnect failing the pending futures, a leader
// election, a server down) is published again with the same ID after a backoff, until the stream
// acknowledges it; only then does the spool's acknowledged position move past it (a file beside
// the segments), and segments wholly before it are deleted. So:
//
//   - nothing recorded is lost while the spool's disk survives: a message stays in the spool
//     until the stream has acknowledged it, across cut links, dead servers and restarts of the
//     robot (the next Log.Run replays from the acknowledged position); a robot crash may lose
//     what was appended after the last Episode.Close or segment rotation and not yet written
//     back by the OS (the spool syncs at those points, not on every message);
//   - nothing is stored twice as long as a republish comes within the stream's duplicate window
//     (2 min by default) of the first attempt: JetStream drops a message whose ID it has seen in
//     the window and acknowledges it as a duplicate (counted in LogStats.Duplicates). A link to
//     the stream's server down for longer than the window, with an acknowledgement lost just
//     before, can store a message twice; with a local leaf node (production) the robot's link to
//     its stream is loopback. Export refuses an episode with a repeated message rather than
//     write it;
//   - order: the stream's order of an episode's messages may differ from the recording order
//     after a republish; Flowact-Seq gives the recording order, and Export uses it;
//   - the hub's copy comes from JetStream stream sourcing, which resumes where it stopped after a
//     cut link or a hub restart.
//
// `flowact run` with the link on records what the policy does as episodes (the binary's
// runrecord.go): a driver wrapper copies each new joint state the loop reads and each command
// (or trajectory) the driver takes into a bounded queue of preallocated records, which the tick
// fills without blocking or allocating (a full queue drops the record, counted in the telemetry
// as episode_records_dropped); a recorder goroutine drains it into an Episode. An episode runs
// from the loop's start (~start, or --start) to its return to idle (~stop, once at rest), a
// fault, or the runtime's shutdown, and is cut at Config.EpisodeMax (5 min); it holds the states
// the loop read, its embeddings, the commands the robot took (or, with trajectory output, the
// trajectory points that ran) and metadata without a task. `flowact demo --fleet` records its
// own episodes with each task's metadata (Config.NoRecord).
//
// Export reads complete episodes (1..n by Flowact-Seq, begin first, end last and counting n)
// back into ROS bags with the writer config they were recorded with: the same bytes as
// dataset.WriteEpisode writes from the same episode, hence the same training samples. `flowact
// train --data nats://HOST:PORT/STREAM` trains on a stream by exporting it so.
//
// # Telemetry
//
// Telemetry.Offer hands a Sample to a bounded queue (Config.TelemetryQueue) and never blocks; a
// full queue drops the sample and counts it. Telemetry.Run publishes the newest sample
// Config.TelemetryRate times a second on the telemetry subject (at most once: core NATS) and puts
// the robot's Status (state, faults, counters, model, last refused rollout, episode and spool
// counts) in the status bucket. `nats sub flowact.r1.telemetry` and `nats kv get flowact_status
// r1` read them.
//
// # Remote embeddings
//
// Embeddings is a latest-value mailbox fed by a subscription: each message is the ROS 1
// serialization of flowact_msgs/Embedding (AppendEmbedding, DecodeEmbedding), checked as
// robot/ros checks the ROS topic's (shape 1..MaxEmbeddingValues, payload 4 x tokens x width
// bytes); the stamp is the header's, or the receive time when it is zero, so the loop's
// staleness watchdog applies unchanged. Latest neither blocks nor allocates.
//
// # Model rollout
//
// Push uploads a bundle (Bundle: the checkpoint directory's files and a BundleManifest naming the
// robot model, its joint order and each file's SHA-256) to the Object Store and sets the robot's
// key. Rollout watches the key; for each new name it downloads the object to a temporary
// directory, checks the SHA-256 of what it wrote against the object's digest before anything
// is unpacked (a failed download is deleted), unpacks plain files only, checks each against the
// manifest, checks the manifest's robot model and joints against the robot's, and only then
// hands the directory to the binary's Installer, which loads and checks the checkpoint and swaps
// the expert between chunks. A refused model leaves the running one in place and is reported in
// the status (Status.ModelError).
//
// # Credentials
//
// Config takes a .creds file, an nkey seed file, or a user and password, and TLS files. A hub's
// Auth gives each robot LeafPermissions: publish only under flowact.<robot>.>, manage only its
// own stream, put only its own status key, read only its own model key (also across domains,
// $JS.<hub>.API, as a robot on a leaf node reaches the hub's buckets), receive only on its own
// subjects and inbox (_INBOX_<robot>, which Connect sets), and what the hub's sourcing of its
// stream needs: the hub's requests into the robot's domain come in, replies go to $JSC.R.>,
// deliveries under flowact.<robot>.source. Robots may read any bundle in the checkpoint store:
// what a robot cannot read is which model another robot runs.
//
// A robot's leaf node links to the hub as the robot's user (a nats-leaf:// URL with the robot's
// user and password, or its creds), and nats-server applies that user's permissions to the link
// as the leaf's view (the leaf port has no users of its own: ServerConfig.LeafUsers would only
// authenticate, with no permissions). So what a robot may do, its leaf link may carry, and no
// more: TestFleetLeafPermissions shows robot r1, on its own leaf, cannot publish under r2's
// prefix, receive r2's subjects, read r2's model key or reach r2's stream, while the hub sources
// both streams; the same checks on a hub whose robots have every permission find all four.
// Residual: every robot may publish to $JSC.R.> (the hub's reply subjects for consumer
// creation) and receive $JS.FC.> (flow control); their subjects carry random tokens per request.
//
// # Goroutines
//
// Log.Run, Telemetry.Run, Embeddings.Run and Rollout.Run each run until their context ends and
// return; their caller owns them. Server.Close shuts the embedded server down and waits.
// Libraries log through the *slog.Logger they are given, never print.
package fleet
