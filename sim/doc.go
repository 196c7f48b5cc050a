// Package sim is a kinematic simulator of a position-controlled arm: a robot.Driver and
// robot.TrajectoryWriter that stands in for a ROS-controlled robot in tests, the demo and
// evaluation. Its subpackages hold the tasks (sim/task), a synthetic VLM (sim/vlm), scripted
// demonstrators (sim/demo) and the episode runner (sim/episode).
//
// # Model
//
// Each actuated joint tracks a reference r through a lag, integrated in substeps of at most
// Config.MaxStep (1 ms by default):
//
//   - first order: q' = (r - q) / tau, integrated exactly over a substep as
//     q <- r + (q - r) exp(-h/tau), so a step response is 1 - exp(-t/tau);
//   - second order: q” = wn^2 (r - q) - 2 zeta wn q', integrated by semi-implicit Euler.
//
// With the first-order lag the velocity toward the reference is also held to the braking bound
// below with the reference in place of the limit, so an acceleration-limited joint stops at a
// step's target instead of overshooting it (the lag alone asks for more deceleration than the
// limit allows); the second-order lag keeps its own dynamics, overshoot included.
//
// The resulting velocity is then limited, in this order, by the joint's acceleration limit, its
// velocity limit and a braking bound that lets the joint stop at its position limit with the
// acceleration limit (the discrete bound v <= b h (sqrt(1/4 + 2d/(b h^2)) - 1/2), d the distance to
// the limit, b = 8/9 of the limit to leave room for the last step); position limits clamp last.
// A joint that starts inside its limits at rest never exceeds a position, velocity or acceleration
// limit. Limits come from the robot model; a zero limit means none.
// References are clamped into the position limits. Effort is not simulated (zero).
//
// # Commands
//
// WriteCommand sets a per-tick reference (a group position controller) and cancels any
// trajectory. WriteTrajectory follows joint_trajectory_controller's replacement semantics: a new
// trajectory takes over at its start time (a zero Start means on arrival; a start in the past
// means on arrival too); the old trajectory, or the held reference, runs until then; the first
// segment leads from the reference the old plan gives at the start time to the first point;
// points at or before the start time are dropped. Between points the reference is interpolated
// linearly in time, as joint_trajectory_controller does for position-only points; after the
// last point it holds the last point.
//
// # Time
//
// The simulator owns its clock: Now starts at Config.Start (the Unix epoch by default, like ROS
// sim time) and advances only in Step. Clock returns a robot.Clock whose SleepUntil steps the
// simulation to the requested time, so a control loop driven by it runs as fast as it can compute
// and every run is reproducible. The sensor samples the joints every Config.SensorPeriod (by
// default once at the end of every Step) and stamps each sample with its measurement time.
//
// # Faults
//
// Faults (see Faults) delay, drop, perturb or freeze the joint state, delay commands (by a fixed
// delay plus a seeded uniform jitter, in order) or stick a joint. The random ones (drops, noise,
// jitter) draw from a PCG source seeded by Faults.Seed, so a run is reproducible; the freeze and the stuck joint act in configured windows of simulation time.
// Stats counts samples, drops and applied commands.
//
// # Motors
//
// With Config.Motors the simulator is a robot whose hardware speaks motor units, for the
// calibration procedures of package calib to be tested end to end: ReadState gives, and
// WriteCommand and WriteTrajectory take, encoder ticks (or motor rad), with per-joint offsets,
// gear ratios, direction flips, resolutions and wrapping counters. A commanded tick is read in
// the counter window that held the initial position, as a servo's position mode does. The
// joints themselves, the tasks, TrueStateTo and ReferenceTo stay in joint units, and
// WriteJointCommand moves the joints in joint units (a hand or teach pendant: the operator of a
// calibration).
//
// # Running
//
// In-process, the caller steps the simulation (Step, StepTo) or a control loop sleeps on Clock.
// A simulator node runs it with Run, which steps at absolute deadlines of any robot.Clock (the
// wall clock or ROS /clock) and counts late steps.
//
// # Memory and concurrency
//
// A Sim is safe for concurrent use. Step, ReadState, WriteCommand and SceneTo allocate nothing
// once their buffers have grown to the run's needs (trajectory and delayed-command buffers grow
// on demand, then are reused). The scene (SceneTo) gives link frames, targets and obstacles as
// plain values for a ROS node to publish as /tf and markers.
package sim
