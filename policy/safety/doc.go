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
// Relative to the previously sent command (the first one relative to the position Reset was given,
// at rest), every command the Filter produces satisfies, up to floating-point rounding (1e-9
// relative): Lower <= p <= Upper, |v| <= Velocity and |a| <= Acceleration. (A joint that
// starts beyond a soft limit but inside its hard one is never moved further out, and stays
// inside the band once in.) This holds for any
// target, including NaN (treated as hold), while holding and while decelerating. The position
// guarantee without violating the acceleration limit comes from a discrete braking curve: a step
// s is allowed only if the joint can still stop before the limit by shrinking its step by
// A dt^2 per tick (stepLimit), an invariant that braking always preserves.
//
// Jerk is best effort: the filter lets the magnitude of the acceleration grow by at most
// Jerk*dt per tick and brakes the acceleration toward the desired velocity on the analogous
// curve, but it lets the acceleration fall to zero at once (a greedy jerk clamp near a target
// otherwise settles into a limit cycle), and position, velocity and acceleration limits win when
// they conflict (counted as JerkInfeasible). So the jerk limit bounds every rise of the
// acceleration, not its release. Targets that jump are approached without overshooting a static
// target (a braking curve toward the target plus the target's own step).
//
// # Memory and concurrency
//
// A Filter allocates everything in New; Step and Hold allocate nothing and must be called from
// one goroutine (the control tick). Counters are atomic and may be read from any goroutine.
// Machine methods are safe for concurrent use and lock-free.
//
// Sources: the braking-curve limiter follows the idea of ros_control's joint_limits_interface
// (position-dependent velocity bounds from the acceleration limit) made exact for discrete time;
// LeRobot's chunk_safety_processor and joint_trajectory_controller's tolerances motivated the
// NaN, staleness and fault handling.
package safety
