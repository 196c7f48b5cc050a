// Package rostest holds the helpers that flowact's tests use against Debian's ROS 1: requiring
// the tools, free loopback ports, the environment a ROS tool runs in, starting rosmaster, and
// running rostopic, rosnode, rosparam, roslaunch, rosbag and rospy scripts as child processes.
// Only tests import it.
//
// Requiring ROS: Require and RequirePython fail the test when the environment variable CI is set
// and something is missing (CI installs ROS, so a missing tool is a broken machine), and skip it
// otherwise.
//
// Tools: Debian installs ROS 1 under /usr/bin and its Python modules for /usr/bin/python3; another
// python3 earlier on PATH may not see rospy. So a tool named without a slash is /usr/bin/<name>,
// and Env puts /usr/bin first on PATH (roslaunch runs scripts that start "#!/usr/bin/env python3").
//
// Processes: every process Start starts gets its own process group, so that signals reach the
// children it starts (roslaunch's nodes, rosbag record's recorder), and is killed (the whole group)
// and waited for when the test ends. Output is kept in memory: Stdout alone, for parsing, and
// Output, stdout and stderr interleaved, for failure messages.
//
// Time: helpers that wait take their bound as an argument and fail the test with what they waited
// for; polling is every 20 ms.
//
// Imports: the standard library only. The packages of the ROS stack (robot/ros/xmlrpc,
// robot/ros/master, robot/ros) test themselves with this package from inside (package master,
// not master_test), so importing any of them here would be an import cycle. That is why
// StartRosmaster asks rosmaster's getPid with a hand-written XML-RPC call rather than with
// robot/ros/xmlrpc, and why an embedded-master helper is not here.
package rostest
