// Package robottest checks that a robot.Driver keeps the contract the control loop relies on
// (TestDriver, Check), in the manner of testing/fstest.TestFS, and provides Fake, an ideal
// position-controlled robot that keeps it.
//
// # The contract
//
// A Driver is the robot as the control loop sees it, in the model's joint order and SI units
// (rad, m, s). The loop calls it from its own goroutine at a fixed rate while the robot (a
// simulator, a ROS graph) runs on others. TestDriver checks, in this order:
//
//  1. Model: Model returns the same valid model (Validate passes, DoF > 0) on every call.
//  2. State: before the robot has reported (Options.Fresh), ReadState returns an error wrapping
//     robot.ErrNoState; after stepping, ReadState returns nil within Options.Settle. With dst
//     slices of length DoF, ReadState fills them in place (it never reallocates them), with finite
//     positions and a non-zero Stamp; it keeps no reference to dst (scribbling over dst does not
//     change the next read); stamps never go backwards. With dst slices of the wrong length it
//     returns an error or resizes them to DoF, and never panics.
//  3. Rejects: WriteCommand returns an error, and the robot keeps its previous target, for a
//     Position of the wrong length (nil, DoF-1, DoF+1) and for a NaN or infinite position.
//     A command with a Velocity feed-forward of length DoF is accepted (drivers may ignore it).
//  4. Track: a target inside the (soft, where given) position limits, written once, is reached
//     within Options.Tolerance in Options.Settle (plus the travel time at the velocity limits) of
//     stepped time, no joint ever farther from the target than at the start (overshoot is
//     allowed); the driver copies the command (changing the caller's slice afterwards has no
//     effect). With Options.VelocityLimited, no joint moves faster than its
//     velocity limit between two samples, and no reported velocity exceeds it.
//  5. Clamp (Options.ClampsPosition): a target beyond a joint's position limits drives it to the
//     limit and no sample ever leaves the limits (by more than Tolerance).
//  6. NoAlloc: ReadState and WriteCommand allocate nothing once warm (testing.AllocsPerRun), so
//     the control tick can allocate nothing.
//  7. Concurrent: ReadState and WriteCommand from two goroutines while the robot steps; run the
//     suite under -race.
//  8. Trajectory, when the driver is a robot.TrajectoryWriter: WriteTrajectory rejects a
//     trajectory with no points, positions that are not DoF per point, times that are negative
//     or not increasing, and non-finite positions; a valid trajectory with a zero Start (start on
//     arrival) ends at its last point within Tolerance once its duration and Settle have passed.
//
// Options.Step advances the robot behind the driver by dt: a simulator steps its clock, a test
// over ROS steps the simulated peer and waits for the state to come back. Time in the suite is
// the stepped time, never the wall clock, so the suite is deterministic for a deterministic
// driver.
//
// # Fake
//
// Fake is the reference driver: an ideal position servo. Each joint moves straight toward its
// target at its velocity limit (in one step when it has none), targets are clamped into the
// position limits, and the reported velocity is the step's mean velocity. It has no state until
// its first Step, like a robot whose first message has not arrived. It implements
// robot.TrajectoryWriter with linear interpolation between points. Its clock starts at the Unix
// epoch and advances only in Step. It is safe for concurrent use and allocates nothing in
// ReadState, WriteCommand and Step.
package robottest
