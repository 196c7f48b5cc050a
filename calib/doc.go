// Package calib maps joints to motors and measures a robot's command-to-state lag.
//
// # Joint <-> motor
//
// Each actuated joint is driven by one motor through a Transmission, ros_control's
// SimpleTransmission followed by an encoder:
//
//	motor = Reduction · (joint - Offset)        motor rad; joint in rad (revolute) or m (prismatic)
//	ticks = round(motor · Resolution / 2π)      when Resolution > 0
//	ticks = ticks mod Wrap, in [0, Wrap)        when Wrap > 0 (a single-turn absolute encoder)
//
// Units: the joint side is SI (rad, m, rad/s, m/s, N m, N). The motor side is in encoder ticks
// when Resolution > 0, else in motor rad. Sign: a negative Reduction flips the direction (the
// joint's positive direction is the URDF axis's); Direction reports it. Offset is the joint
// value at motor zero. Velocities scale by Scale (no rounding, no wrap); efforts by the
// Reduction alone, conserving power (joint effort = motor effort · Reduction).
//
// The wrap rule: a wrapping counter must not wrap inside the joint's travel [Lower, Upper]: the
// ticks of both travel ends (rounded) must lie in one window [k·Wrap, (k+1)·Wrap). Then a tick
// read anywhere in the travel decodes to one joint value, k·Wrap + tick. NewSet refuses a
// transmission that breaks the rule, naming the joint value where the counter wraps; a
// continuous joint (no travel bounds) cannot have a wrapping counter. LeRobot's SO-100 arms with
// Feetech servos fail this way when a servo's zero is homed inside its range.
//
// The inverse is exact to the encoder: joint -> motor -> joint returns the joint value to within
// half a tick (0.5/|Scale|) over the whole travel, and motor -> joint -> motor returns every tick
// of the travel exactly (Set.PositionToJoint, Set.PositionToMotor).
//
// Wrap puts a Set around a motor-unit robot.Driver, so that the control loop and the expert see
// only joint units; it passes trajectories through when the inner driver takes them.
//
// # Sources: one per joint
//
// Resolve picks the transmissions of a robot whose driver speaks motor units from exactly one of:
//
//  1. a calibration File (YAML, versioned, strict), written by `flowact calib motors`: when
//     given, it is the whole truth for every joint, nothing merged;
//  2. else the nominal (design) transmissions (Nominal): the URDF's <transmission> elements
//     (SimpleTransmission: <mechanicalReduction>, <joint><offset>) where present, and robot.yaml's
//     motors block (robot.Motor: direction · gear_ratio, offset, resolution, wrap) for the other
//     joints. A joint in both is refused;
//  3. else none: the driver speaks joint units.
//
// Whether a driver speaks motor units is the deployment's to say: most ROS robots publish
// /joint_states in joint units already (their hardware interface applies the transmissions), and
// then nothing is wrapped. flowact wraps a driver only when told to: the simulator with a motor
// face (`flowact sim --motors`, `flowact calib ... --sim`), or a calibration file given to the
// command. The nominal transmissions are always what `flowact calib motors` checks a measurement
// against: a measured direction that disagrees with the nominal one, a reduction off by more
// than its tolerance, or an offset more than a quarter motor turn from it, is refused.
//
// # Motor calibration
//
// CalibrateMotors runs the guided procedure: an Operator puts the arm at the hold pose (the
// middle of every joint's travel) and the offsets follow from the ticks read there; then at the
// hold pose plus a known positive step on every joint, which gives each direction and checks the
// reduction's magnitude; then each joint is swept slowly over its travel (inside its limits)
// through the new calibration while the motor positions are recorded, checking that the counter
// does not wrap inside the travel and that the motor follows.
//
// # Latency
//
// The command-to-state lag is the time from a position command to the measured state that
// reflects it: transport both ways, the controller's delay and its tracking lag. MeasureLatency
// excites one joint at a time around a hold pose with a small, band-limited pseudo-random
// signal shaped by the safety filter, records commanded and measured positions every tick, and
// estimates the lag as the peak of their cross-correlation (of the differenced signals, so drift
// and a constant offset do not matter), refined below one tick by fitting a parabola through
// the peak and its neighbours, as UMI's latency calibration does (Chi et al. 2024,
// "Universal Manipulation Interface"). The 95% confidence interval is the whole-record estimate
// ± t(0.975, S-1)·sd/√S, sd the spread of the estimates of S independent segments of the record.
// Ticks count the loop's own ticks (state read, then command written, each tick), so a command
// whose effect the state shows at the very next read has a lag of one tick. In the simulator a
// pure transport delay d (command delay, mean jitter and state latency) measures
// d/T + 1/2 ticks to within half a tick, the half being the zero-order hold between commands;
// a servo's tracking lag (the first-order lag's tau, acceleration limits) adds to it, as it
// does on a real robot. The lag is the robot's: a calibration file carries it (File.Lag, the
// lag key) beside the transmissions, and the loop shifts its chunks by it
// (policy.Config.RobotLag, policy.LagShift).
//
// Time comes from the driver's clock (robot.Clock): under the simulator the whole procedure runs
// on simulated time, reproducibly.
package calib
