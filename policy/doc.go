// Package policy is flowact's real-time control loop: it executes the action expert's chunks on
// a robot at a fixed rate, smoothly and within its limits, while the expert thinks in the
// background.
//
// # The tick
//
// The loop's core is Loop.Step(now): the control tick of the period robot time now falls in,
// tick k = floor((now - start) / period), start being the first Step's time (as
// joint_trajectory_controller's update(time, period)). Three drivers call it:
//
//   - Loop.Run ticks on absolute deadlines start + k/Rate of an injected robot.Clock (the wall
//     clock, ROS sim time, or testing/synctest's fake time), with inference on its own worker
//     goroutine;
//   - Loop.Simulate ticks on a simulated clock whose SleepUntil advances the simulation
//     (sim/episode), and runs each inference between two ticks, holding its chunk for a given
//     simulated latency: deterministic, independent of the machine (flowact eval);
//   - a caller's own scheduler calls Step, and InferPending between Steps (flowact bench).
//
// A Step that comes more than a period late runs once, as the tick of the period it falls in
// (late by less than a period), and counts the ticks it skipped as overruns: the loop never
// bursts to catch up, tick k always means the time start + k/Rate, so actions stay aligned with
// time, and each command is one step of the safety filter from the one before (the robot
// received nothing for the skipped periods). Each tick
//
//  1. reads the latest joint state from the driver (robot.Driver.ReadState does not block) and
//     the latest embedding from an atomic.Pointer mailbox (PutEmbedding) or an EmbeddingSource;
//  2. takes a finished chunk if one is ready (from Run's worker: a non-blocking receive; else
//     the chunk InferPending holds, once its latency has passed), checks it
//     (safety.CheckChunk) and splices it (policy/chunk);
//  3. asks for a new chunk (to Run's worker: a non-blocking send) when the actions left in the
//     plan fall to Threshold and no request is in flight;
//  4. runs the safety filter (policy/safety), always last, and writes the command.
//
// The tick allocates nothing (tested with testing.AllocsPerRun) and shares nothing with slow
// code but channels with room and atomics; Start, Stop, Hold and Reset (for ROS Trigger
// services) and every read of telemetry are lock-free.
//
// # Time and delay bookkeeping
//
// Time is counted in ticks. Each request carries the tick k0 at which its observation (joint
// state and embedding) was taken, and the chunk it yields is H x D absolute joint targets
// (rad, model order) whose row i is the action for tick k0+i. A chunk that arrives at tick n
// has its first d = n-k0 rows in the past and they are never executed; the delay d is measured
// in ticks actually elapsed, not guessed from wall time. A chunk with d >= H is dropped
// (ChunkLate). Rows are in the past only for ticks the robot spent executing the plan: if the
// plan ended at tick e < n (or there was none, as at the cold start), the robot held still from
// e on, so only the e-k0 rows before it (none at the cold start) are skipped and the chunk
// resumes from the next row at tick n. Skipping all d rows would command the robot to where the
// chunk expected it to be by now: a jump of up to d ticks of motion (at the cold start, the
// first inference's whole latency). The prefix strategy needs the delay before the chunk
// exists: it conditions the expert on the plan's actions for [k0, k0+p) with p the largest
// delay of the last DelayWindow chunks (plus DelayMargin; Threshold before any delay was
// measured), cut at the plan's end (if the chunk comes later the robot holds the plan's last
// action, which is where the expert continues from; with no plan left the prefix is that held
// action repeated, never zeros). The first inference of the worker (the cold start: lazy
// allocation, caches) is never counted, so one slow start does not inflate later prefixes. The
// guided strategy uses the same frozen length and steers the sampler toward the whole remaining
// plan (chunk.GuideWeights). With chunk.Config.GuidedPrefix it also gives the expert the frozen
// rows as a prefix, but for those the previous plan placed in its last PrefixTail rows (5: at
// 300 ms of delay at 50 Hz the frozen rows reach the previous plan's end, and feeding its
// farthest guesses back as the next prefix is what made the prefix strategy lose a moving
// target); the chunk is still steered onto every frozen row, and all of them are committed.
//
// A robot whose state lags its commands (Config.RobotLag, measured by `flowact calib latency`)
// shifts this bookkeeping: the state read at tick k reflects the commands of tick k - L
// (L = LagShift(RobotLag, Rate): the measured lag rounded half down, since the measurement
// counts half a tick for the hold between commands), so the chunk asked for at k starts at
// k0 = k - L (Request.Start; Request.Tick stays k), its first L + d rows are in the past, and the
// committed prefix (or the guided strategy's frozen rows) is the L commands actually sent for
// [k - L, k), kept in a ring of the last L commands (what the filter last commanded each tick:
// a command the driver refused leaves the one before; a tick without one, before the first or
// while idle, takes the next tick's), followed by the plan's actions from k as above. The
// expert sees the same thing as without a lag: a state, and the actions that followed it. The
// delay estimate and DelayMargin stay what they are without a lag; L must be below H. A slow
// expert gets a smaller shift: once a delay d has been measured the shift is at most
// H - 2d - DelayMargin, which leaves the chunk d + DelayMargin rows after its arrival, so that
// the next one, asked for at once, arrives before the plan runs out (with H = 32, 300 ms of
// inference at 50 Hz, d = 15, and the shipped policy's margin of 5, no shift; the full 7 there
// left 10 rows and starved the robot). RobotLag 0 is the bookkeeping above, bit for bit.
// One action per tick: Rate is the policy's action rate; a faster servo rate is the driver's.
//
// # Output
//
// The tick's commands leave through an output (output.go), chosen by Config.Output; the tick
// calls the same methods either way. By default every tick writes one position command
// (robot.Driver.WriteCommand: a group position controller). With Output "trajectory" the output
// wraps the same filter and writes a robot.Trajectory (a joint_trajectory_controller) only when
// what the robot should do changes: a chunk is spliced, or the robot must hold or stop. The
// trajectory is the safety filter's own future, predicted by a scratch copy of the filter over
// the plan and then a stop to rest, one point per tick, so the robot follows exactly the
// commands the per-tick output would have sent; while it runs, the tick follows the
// trajectory's points (safety.Filter.Follow) so that the next trajectory starts from the
// robot's reference. A trajectory always ends at rest: if the loop dies, the robot stops within
// its limits.
//
// # Precision and normalization
//
// The robot side is float64 in SI units; the expert works in normalized float32 (package
// expert). The worker is where they meet: Normalizer.NormalizeState (float64 -> float32),
// the expert's sampler from seeded noise (request n uses the PCG stream (Seed, n)), then
// Normalizer.UnnormalizeActions (float32 -> float64). With a prefix (or guided's frozen rows),
// the committed rows are written back bit for bit after sampling, so the executed actions
// never change. A panicking inferer faults the loop (ErrInferPanic) instead of the process.
//
// # Loading a checkpoint
//
// Load (LoadDir for a directory on disk) turns a checkpoint (expert/ckpt: safetensors weights and
// a JSON manifest; any fs.FS, such as the binary's embedded configs.FS) and a robot model into a
// Checkpoint, and Checkpoint.Expert into the loop's Inferer: normalization statistics and mode,
// action frame (Frame) and state input (StateInput: the joints, or the joints and the end
// effector's position by forward kinematics from LoadConfig.EELink), the network from
// expert/nn, and a sampler (SamplerConfig, or any expert.Sampler). Load checks everything that
// must agree before a robot moves: the statistics against the network's shapes, the network
// against the robot's joint count, the statistics' joint names against the robot's order;
// errors are *CheckpointError naming the checkpoint. Training writes the same artifact
// (Normalization.Encode), so what a checkpoint means is decoded in exactly one place. A
// checkpoint trained with the regression objective (the manifest's "objective") gives an Expert
// that evaluates the network once, at x = 0 and t = 0, and ignores the sampler, the noise and the
// committed prefix (Expert.SetRegressor): the deterministic baseline of
// docs/flow-vs-regression.md.
//
// Load lives here rather than in a package of its own because its product is this package's
// Expert configured with this package's Frame, StateInput and Norm, and because the design puts
// it here (policy may import expert/..., robot and calib/norm, and nothing that reads bags): a
// separate package would only re-export them. The network package it links, expert/nn, is plain
// Go with no bag library, no gorgonia and no testing (arch_test.go keeps it so).
//
// # Safety
//
// See policy/safety: limits from the robot model that config may only tighten; NaN/Inf or
// wrong-shape chunks rejected; watchdogs (embedding stale: finish the plan, then hold; joint
// state stale: decelerate to a stop and drop the plan; no chunk at the end of the plan: hold);
// the state machine idle -> running -> holding / stopping -> fault, with a latched fault.
//
// The out-of-distribution gate (Config.Gate, off by default) uses the expert's own signal: with
// gate.samples K the Expert draws K chunks from each observation in one batched network call
// (the first is executed; the plan is the same as with one sample) and reports their spread,
// the root mean square over the uncommitted elements of the samples' standard deviation in
// normalized units (chunk.Chunk.Spread; Telemetry.Spread, /diagnostics). With gate.max_spread
// set, a chunk above it is not executed: the loop drops the plan and decelerates to a stop on
// the ordinary hold path (within every limit), counts it (Counters.Gated), says so in the
// snapshot's message, and keeps asking; the next chunk within the threshold moves the robot
// again. The spread cannot flag a state the expert never saw and is confidently wrong about (a
// robot pose outside its demonstrations): for that the Expert also reports how far the observed
// state lay beyond the range of the checkpoint's training data, in standard deviations of each
// feature (chunk.Chunk.StateOut, from the normalization statistics' min and max; Telemetry
// StateOut), and gate.max_state_out holds on it the same way, naming the joint farthest out.
// docs/ood-gate.md has what each signal separates and their false-hold rates.
//
// # Goroutines and memory
//
// Run owns every goroutine it starts (the inference worker, the watchdog logger, the telemetry
// recorder) and returns only after they have stopped (Simulate starts only the watchdog logger
// and calls the recorder itself) (it waits for an inference in flight). On
// cancellation it first decelerates the robot to a stop within its limits (at most the braking
// time; with trajectory output, one stop trajectory), then returns ctx's error; a driver that
// reports robot.ErrClosed ends it too. New allocates every buffer; an Embedding put into the
// mailbox must not be modified afterwards.
//
// # Telemetry
//
// Telemetry holds atomic counters and fixed-bucket histograms (Histogram.Record is lock-free and
// allocates nothing): tick period, jitter and cost, inference latency, observation-to-command
// latency, delay and queue depth at arrival, the seam metrics of the configured strategy; clamp
// and watchdog counters live in the filter and watchdogs. Snapshot copies everything (with a
// diagnostic level and message) for /diagnostics, and a Recorder (the fleet link) receives one
// every TelemetryPeriod on the loop's own goroutine.
package policy
