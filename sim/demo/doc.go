// Package demo holds the scripted experts that produce demonstrations for the simulated tasks:
// a Cartesian path for the end effector with minimum-jerk timing, turned into joint targets at
// the control rate by inverse kinematics.
//
// Path. From the end effector's start position p0 to the goal g the path is
// p(s) = p0 + s (g - p0) + sin(pi s) b, with s(t) = 10 u^3 - 15 u^4 + 6 u^5, u = t/T, the
// minimum-jerk time scaling (Flash and Hogan 1985), so the end effector starts and stops with zero
// velocity and acceleration. b is zero unless an obstacle comes within EERadius + Clearance of the
// straight line; then b is a bulge (the detour's via point is the midpoint plus b) to the left or
// right with equal probability, horizontal and perpendicular to g - p0, tilted up or down by up to
// Tilt, just long enough to clear every obstacle by Clearance along the whole path, times a
// random factor in [1, 1 + ViaJitter]. T is the path's length over a speed drawn from
// Speed (1 ± SpeedJitter), at least MinDuration. A moving goal (track) is pursued: the path
// blends from p0 to the goal's current position, p(t) = p0 + s(t) (g(t) - p0), and follows the
// goal after T.
//
// Inverse kinematics. IK moves the joints toward an end-effector position by damped least squares
// on the position rows of the chain's geometric Jacobian (Wampler 1986; Nakamura and Hanafusa
// 1986): dq = J^T (J J^T + lambda^2 I)^-1 e, plus a null-space pull toward the home
// configuration, (I - J^+ J) k (q_home - q), with J^+ the damped pseudo-inverse; each step is
// limited to MaxStep rad and clamped into the position limits. Orientation is free.
//
// Disturbed demonstrations. With Config.Perturb the robot executes the expert's commands plus
// a slow, smooth random disturbance (Perturbation: an Ornstein-Uhlenbeck process low-passed at
// its own rate) while the episode records the expert's own commands (DART, Laskey et al. 2017).
// The expert's command is a function of time, not of the state, so from wherever the
// disturbance took the arm the recorded action leads back to the expert's path: a policy trained
// on them learns to recover from its own drift instead of continuing it.
//
// Units are SI; positions are in the robot's root frame; time is a time.Duration since the start
// of the episode. An Expert is not safe for concurrent use; CommandTo allocates nothing.
package demo
