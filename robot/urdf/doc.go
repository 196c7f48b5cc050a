// Package urdf reads robot descriptions in the Unified Robot Description Format
// (https://wiki.ros.org/urdf/XML) into a robot.Model, and loads a shipped robot (URDF plus
// robot.yaml) from a file system with LoadConfig.
//
// What is read: <link> names; <joint> name, type, <parent>, <child>, <origin xyz rpy> (m, rad;
// rpy are fixed-axis roll, pitch, yaw: R = Rz(yaw) Ry(pitch) Rx(roll)), <axis xyz> (normalized;
// default 1 0 0), <limit lower upper velocity effort> and <safety_controller> (to
// robot.SoftLimits). Visual, collision, inertial, transmission and gazebo elements are ignored.
// Units are URDF's: SI, rad for revolute and continuous joints, m for prismatic ones.
//
// Semantics follow urdfdom: revolute and prismatic joints need a <limit> with velocity and
// effort (lower and upper default to 0); a continuous joint's lower and upper are ignored; a
// velocity or effort of 0 reads as "not given" (robot.Limits). The model's actuated joints
// (revolute, continuous, prismatic) and its fixed joints each keep document order; the root is
// the one link that is no joint's child.
//
// Refused with ErrUnsupported: floating and planar joints (flowact drives fixed-base serial
// robots), <mimic> joints (a mimic joint is not independently actuated; describe a gripper with
// one actuated joint), and unexpanded xacro. Everything else that is wrong -- a missing or
// repeated name, an undeclared parent or child link, a link with two parent joints, several root
// links, a cycle, a number that is not finite -- is an ErrInvalid error naming the joint or link.
// Parse never panics on its input (FuzzParse).
//
// LoadDescription gives the text for ROS's robot_description parameter: the URDF as it is when
// it has visual geometry, else Describe's URDF generated from the model (same kinematics and
// limits, a stick figure as visual geometry), so that rviz draws the shipped robots too.
package urdf
