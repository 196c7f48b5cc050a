// Package master is an embedded ROS 1 master: the Master API and the Parameter Server API
// (http://wiki.ros.org/ROS/Master_API, http://wiki.ros.org/ROS/Parameter_Server) served over
// XML-RPC in-process, so that flowact runs on a machine without ROS and the real ROS tools
// (rostopic, rosnode, rosparam, roslaunch, rospy and roscpp nodes) work against it. Its
// semantics follow ros_comm's rosmaster (master_api.py, registrations.py, paramserver.py),
// studied, not copied.
//
// # Lifecycle
//
// New validates a Config and does no I/O; Start listens and serves in its own goroutines; URI
// gives "http://host:port/"; Close stops serving, ends calls to nodes under way and waits for
// every goroutine (idempotent). Run(ctx) does Start, waits, and Close.
//
// # Implemented
//
// Every method answers rosmaster's [code, statusMessage, value] triple, code 1 success, 0
// failure, -1 caller error (bad arity, a non-string caller_id, an invalid name or URI, an unknown
// parameter or node), with rosmaster's error values and messages. Names are resolved against
// the caller_id like rosgraph.names.resolve_name (relative, ~private, global).
//
//   - Registration: registerPublisher / unregisterPublisher (answer the subscriber URIs and
//     send publisherUpdate to every subscriber), registerSubscriber / unregisterSubscriber
//     (answer the publisher URIs), registerService / unregisterService / lookupService (one
//     provider per service, the last one wins), lookupNode, getPublishedTopics (a subgraph
//     prefix filters), getTopicTypes (types are remembered after the topic goes, as in
//     rosmaster), getSystemState, getUri, getPid.
//   - A node is known from its first registration until its last is removed. When a node name
//     registers again from another slave URI, the old node is sent shutdown("... new node
//     registered with same name") and all its registrations are dropped.
//   - Parameter server: a tree of namespaces (dicts, from XML-RPC structs) and leaf values
//     (any other value; lists are leaves, even lists of structs). setParam of a struct replaces
//     the whole namespace; setting below a leaf turns it into a namespace; getParam of a
//     namespace returns a struct in insertion order; deleteParam, hasParam, getParamNames
//     (leaves only), searchParam (from the caller's private namespace up to the root, matching
//     the key's first segment), subscribeParam / unsubscribeParam with paramUpdate: a change
//     notifies subscribers of the key and of namespaces above it (not the node that made it),
//     and subscribers below it with their part of the new value or {} when it is gone. A -1
//     answer to paramUpdate drops that subscription. /run_id holds a UUID from the start.
//   - system.multicall (rospy unregisters through it, roslaunch uploads parameters through it)
//     and system.listMethods, from package xmlrpc.
//
// # Calls to nodes
//
// publisherUpdate, paramUpdate and shutdown are queued, never made on the request path: the
// registering call returns at once. Calls to one node run one at a time, in order (a subscriber
// never receives an older publisher list after a newer one); up to 8 nodes are called in
// parallel, each call bounded by Config.SlaveTimeout (5 s). A pending publisherUpdate for a topic
// is replaced by a newer one; a node's queue holds at most 1024 calls, past which the oldest is
// dropped. Stats counts calls answered, failed and dropped.
//
// # Differences from rosmaster
//
//   - When a node is replaced by another of the same name, the subscribers of the topics the
//     old node published get a new publisherUpdate; rosmaster leaves them with the dead URI.
//   - unsubscribeParam answers the number of subscriptions removed (0 or 1); rosmaster always
//     answers 1.
//   - Lists in getSystemState, getPublishedTopics and getTopicTypes are sorted by name;
//     rosmaster's follow its dict order.
//   - shutdown is not served: an embedded master is stopped by its owner, not over the network.
//     serviceUpdate (never sent by rosmaster either) is not sent.
//   - No ROS_MASTER_URI, ROS_HOSTNAME or ROS_IP are read: the caller sets Config.Addr and
//     Config.AdvertiseHost.
//   - Slave calls have a timeout; rosmaster's have none, so a hung node can hold one of its
//     three threads for good.
package master
