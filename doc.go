// Package flowact is an on-robot runtime for the action expert of a vision-language-action
// policy: conditional flow matching in expert/, the real-time control loop in policy/, the robot
// model and ROS adapter in robot/, a kinematic simulator in sim/, and one binary in cmd/flowact.
//
// This root package holds no code; its tests keep the architecture of DESIGN.md: which packages
// may import which (see arch_test.go).
package flowact
