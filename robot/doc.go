// Package robot holds the robot model (joints, limits, kinematic tree), the joint state and
// command types, the VLM embedding (the policy's other input), and the Driver interface that the control loop, the simulator and the ROS
// adapter share.
//
// Units are SI: positions in rad (revolute, continuous) or m (prismatic), velocities in rad/s or
// m/s, accelerations per s^2, jerks per s^3, efforts in N m or N. Values are float64.
//
// Joint order is the model's: Model.Joints lists the actuated joints (revolute, continuous,
// prismatic) in the order of the URDF document, and every slice of joint values in this package
// (State.Position, Command.Position, ...) follows it. A ROS message's order is never used; the ROS
// adapter matches by name.
//
// A zero limit field means "not given" (see Limits); the safety filter refuses to run a joint
// whose position or velocity limit is unknown unless configuration supplies one.
package robot
