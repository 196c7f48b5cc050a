// Package msgs holds flowact's own ROS 1 message types in goroslib's conventions (a struct whose
// embedded msg.Package tag names the ROS package; field names map to snake_case). Their .msg
// definitions ship in the repository's msgs/ folder, a catkin package that rospy and roscpp users
// build; the MD5 sums here are checked against genmsg's algorithm so both sides agree.
//
// Embedding (flowact_msgs/Embedding) carries a VLM embedding, a tokens x width row-major float32
// matrix, as a little-endian byte payload: goroslib decodes a uint8[] field with one copy, while a
// float32[] field is decoded element by element through reflection (see the ros package's
// benchmarks for the measured difference).
package msgs
