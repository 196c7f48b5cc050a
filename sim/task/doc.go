// Package task holds the simulated tasks the action expert learns and is evaluated on, each a
// Task: reset from a seed (scene randomization), an instruction, a goal the VLM observes, a
// success check and a time limit.
//
//   - reach: several coloured targets; the instruction names one; success when the end effector
//     comes within Tolerance of it.
//   - detour: a target with a sphere obstacle halfway along the straight line from the start;
//     demonstrations pass on its left or right with equal probability, so the mean of the two
//     modes runs through the obstacle. Collision is checked between the obstacle and the end
//     effector, modelled as a sphere of EERadius about the end-effector link's origin, at every
//     control tick; the arm's other links are not checked. Success: within Tolerance of the
//     target with no collision so far.
//   - track: a target moving smoothly and forever; success when, after Settle, the end effector
//     stays within Tolerance of it for at least Fraction of the ticks until the time limit.
//
// Scenes are reachable by construction: every target position is the forward kinematics of a
// joint configuration drawn around the robot's home (within Spread rad on each joint of the
// end-effector chain, clamped to the limits), and the track target follows the forward
// kinematics of a smooth joint-space path.
//
// Units are SI; positions are in the robot's root frame, whose z axis points up (the floor is
// z = 0; targets stay above MinHeight). Time is a time.Duration since the start of the episode,
// advanced by the caller through Update. Config structs have documented zero-value defaults,
// Validate, and yaml tags for configs/tasks. Tasks are not safe for concurrent use.
package task
