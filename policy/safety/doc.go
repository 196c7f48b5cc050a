// Package safety is the last stage of flowact's control tick: it turns a desired joint target
// into a command that is guaranteed to respect the robot's limits, and it holds the supervisory
// state machine (idle, running, holding, stopping, fault) that start/stop/hold/reset services
// drive.
//
// # Units and layout
//
// SI units, float64, joint order of the robot model (robot.Model.Joints). The filter works in
// ticks of a fixed control period dt (s); velocities, accelerations and jerks are finite
// differences of consecutive commands at that period:
//
//	v_k = (p_k - p_{k-1}) / dt,   a_k = (v_k - v_{k-1}) / dt,   j_k = (a_k - a_{k-1}) / dt.
//
// # Limits
//
// Limits come from the robot model: the hard position band [Lower, Upper] (narrowed to the URDF
// soft limits of a <safety_controller> when given), Velocity, Acceleration and Jerk. Config may
// only tighten them (Resolve returns an error naming the joint otherwise). The filter needs a
// position band for every non-continuous joint, a velocity limit and an acceleration limit for
// every joint (from the model or from config); jerk is optional.
//
// # Guarantee
//
// Relative to the previously sent commands (the first ones relative to the state Reset or
// ResetMoving was given: at rest, or moving at the measured velocity with zero acceleration),
// every command the Filter produces satisfies, up to floating-point rounding,
//
//	Lower <= p <= Upper,  |v| <= Velocity,  |a| <= Acceleration,  |j| <= Jerk
//
// for every joint with a jerk limit (Jerk > 0), on every tick: for any target stream, NaN and
// Inf targets (treated as hold) included, while tracking, approaching a target, stopping before
// a position limit, reversing there, releasing the acceleration, holding, and starting. Rounding
// is 1e-9 relative to the limit plus what float64 positions carry: a k-th difference of
// positions of magnitude |p| is only known to about 2^-52 |p| / dt^k (the Monitor's tolerance),
// and a position limit is approached to within 8 2^-52 N^2 |p| (N the braking ticks; 2e-10 rad
// for a UR5 at 500 Hz). Exceptions, all counted: a start beyond a limit (ResetMoving with a
// velocity beyond the limit, or one that cannot stop inside the band; a position between the
// band and the hard band, as for Reset) is braked at the acceleration and jerk limits and may
// exceed the velocity limit or the band by at most what that braking needs (StartBeyond); Follow
// of a command the filter did not make is recovered from the same way.
//
// Joints without a jerk limit (Jerk == 0: a robot that publishes none, or a config that sets
// none) keep the second-order filter: position, velocity and acceleration as above, the jerk
// unbounded (the acceleration may change from -A to A in a tick). That is the option for robots
// without jerk limits; give a jerk limit in the robot config (limits.joints.<name>.jerk) to get
// the third-order guarantee.
//
// # How: a braking invariant, one order up
//
// Second order (no jerk limit): a step s is allowed only if the joint can still stop before the
// limit by shrinking its step by A dt^2 per tick (stepLimit), an invariant that braking always
// preserves.
//
// Third order (jerk.go): per joint, a discrete-time time-optimal braking law brings the velocity
// to zero at the acceleration and jerk limits (ramp, plateau, then the exact discrete form of
// the braking curve a = -sqrt(2 J v), landing with the last tick partial), as Ruckig's velocity
// interface does in continuous time. A state is admissible when the law's trajectory from it
// stays in the band and under the velocity limit; the law's next state is then admissible too,
// because the law depends on the state alone and its trajectory from the next state is the
// tail of the one before. Each tick the filter takes the step closest to what the target wants
// whose next state is admissible (found by bisection between the wanted step and the law's,
// which is always admissible), and evaluates the law's trajectory in closed form (arithmetic
// sums over its phases) in well under a microsecond. So every reachable state is admissible
// and every command is within all four limits: the feasibility is invariant, not a best effort.
// The wanted step lands on the target when the joint is on its path (a three-tick look-ahead
// matches a target that moves within the limits exactly), and otherwise is the one whose
// braking, relative to the target moving on at its current velocity, ends on the target (found
// by regula falsi): a static target is approached time-optimally up to a tick and without
// overshoot, a feasible moving one is caught and then tracked exactly. Tests check the closed
// form against the stepped law, the invariant on a grid of states, and adversarial target
// streams (jumps, steps across the range, reversals at the limits, oscillation, noise, NaN,
// holds mid-motion, moving targets, starts with velocity) with a Monitor; see docs/safety.md
// for the cost on the closed loop.
//
// # Memory and concurrency
//
// A Filter allocates everything in New; Step, Hold, Follow and StopTicks allocate nothing and
// must be called from one goroutine (the control tick). A Monitor's Observe allocates nothing.
// Counters are atomic and may be read from any goroutine.
// Machine methods are safe for concurrent use and lock-free.
//
// Sources: the braking-curve limiter follows the idea of ros_control's joint_limits_interface
// (position-dependent velocity bounds from the acceleration limit) made exact for discrete time;
// the third-order generator follows Ruckig (Berscheid and Kröger, "Jerk-limited Real-time
// Trajectory Generation with Arbitrary Target States", RSS 2021, doi:10.15607/RSS.2021.XVII.015):
// time-optimal jerk-limited profiles per joint, here as a discrete-time braking law and an
// invariant instead of a profile solve; LeRobot's chunk_safety_processor and joint_trajectory_controller's tolerances motivated the
// NaN, staleness and fault handling.
package safety
