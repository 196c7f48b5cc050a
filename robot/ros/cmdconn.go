package ros

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/goroslib/v2"
	"github.com/bluenviron/goroslib/v2/pkg/apimaster"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/rosgraph_msgs"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/std_msgs"

	"github.com/flowact/flowact/robot"
	"github.com/flowact/flowact/robot/ros/xmlrpc"
)

// The command connection. goroslib v2.1.4 cancels its node the moment its slave API receives a
// shutdown request (rosnode kill, the master, a node registering with the same name), with no
// hook to refuse or delay it: the publishers go with it, before the loop can send another
// command. So a Node publishes its per-tick commands from a second goroslib node of its own,
// named Config.CommandNode, whose only publisher is on the command topic. A shutdown of the
// first node leaves it alone: the loop's stop (policy's jerk-limited braking) goes on reaching
// the robot through it until Run's context ends, with no switch of connections (a switch lost a
// command whenever the master told the robot's subscriber that the first node was gone before
// it told the node to shut down: rosmaster does that in either order when a node takes the
// name). A starting node waits until no other live node publishes on its command topic or
// holds its command connection's name (awaitCommandTopic) before it registers that connection
// and reports Ready: an instance that took the name over from a braking one does not command
// while the old one brakes.

// ErrCommandTopicBusy: another live node still published on the command topic, or held the
// command connection's name, Config.CommandWait after the node's first registration.
var ErrCommandTopicBusy = errors.New("ros: command topic has another publisher")

// cmdSession is one registration of the command connection.
type cmdSession struct {
	clock   *Clock
	gn      *goroslib.Node
	master  *apimaster.Client
	selfURI string
	pub     *goroslib.Publisher
	reg     registered
	done    chan struct{} // closed when its registration ends
}

func (c *cmdSession) attrs() []any { return []any{"uri", c.selfURI, "command_connection", true} }

func (c *cmdSession) close() {
	c.clock.detach(c.gn)
	if c.pub != nil {
		c.pub.Close()
	}
	closeGoroslib(c.gn)
}

// cmdConn is a Node's command connection.
type cmdConn struct {
	n        *Node
	nm       *names // its own: Config.CommandNode, the node's topics, no private params
	log      *slog.Logger
	regs     atomic.Uint64
	shutdown chan string // its own goroslib's shutdown requests
	cur      atomic.Pointer[cmdSession]
	ready    chan struct{} // closed at the first registration
	once     sync.Once
}

func newCmdConn(n *Node) *cmdConn {
	nm := *n.nm
	nm.cfg.Name = n.nm.cfg.CommandNode
	nm.node = join(nm.cfg.Namespace, nm.cfg.Name)
	nm.params = nil
	nm.cfg.RobotDescription = "" // the first connection offers it
	return &cmdConn{n: n, nm: &nm, log: n.log.With("connection", nm.node), shutdown: make(chan string, 1), ready: make(chan struct{})}
}

// run runs the command connection until ctx ends (registering again in place after a master
// restart, connecting again if that fails) or it is shut down from outside: then the node is
// told to stop as if it had been (Node.ShutdownRequested), as nothing reaches the robot any more.
func (c *cmdConn) run(ctx context.Context) error {
	m := member[*cmdSession]{
		nm: c.nm, log: c.log, rpc: c.n.rpc, kind: "command connection", regs: &c.regs,
		connect:    c.connect,
		serve:      c.serve,
		registered: func() { c.once.Do(func() { close(c.ready) }) },
	}
	err := m.run(ctx)
	if errors.Is(err, ErrShutdown) {
		c.n.requestStop(err)
	}
	return err
}

func (c *cmdConn) connect(ctx context.Context) (cs *cmdSession, err error) {
	master, gn, err := joinMaster(ctx, c.nm, c.n.httpc, c.log, c.shutdown, nil)
	if err != nil {
		return nil, err
	}
	cs = &cmdSession{clock: c.n.clock, gn: gn, master: master, done: make(chan struct{})}
	defer func() {
		if err != nil {
			cs.close()
			cs = nil
		}
	}()
	topic := c.nm.topics.Command
	if cs.pub, err = goroslib.NewPublisher(goroslib.PublisherConf{Node: gn, Topic: topic, Msg: &std_msgs.Float64MultiArray{}}); err != nil {
		return cs, fmt.Errorf("ros: publisher %s: %w", topic, err)
	}
	cs.reg.pubs = []registration{{topic, typeName(std_msgs.Float64MultiArray{})}, {"/rosout", typeName(rosgraph_msgs.Log{})}}
	if on, _ := gn.ParamIsSet("/use_sim_time"); on {
		if sim, _ := gn.ParamGetBool("/use_sim_time"); sim { // goroslib subscribed to /clock
			cs.reg.subs = []registration{{ClockTopic, typeName(rosgraph_msgs.Clock{})}}
		}
	}
	if cs.selfURI, err = master.LookupNode(c.nm.node); err != nil {
		return cs, fmt.Errorf("ros: lookupNode %s after registering: %w", c.nm.node, err)
	}
	c.awaitSubscribers(ctx, cs)
	return cs, nil
}

// awaitSubscribers waits until every live node the master lists as a subscriber of the command
// topic has connected to cs's publisher (cs's own slave API lists the connection in getBusInfo
// once the TCPROS handshake is done), at most Config.CommandWait. goroslib drops what is
// published before a subscriber has connected, so a loop that started at once would send its
// first commands into the void: a robot that missed them, still holding another instance's last
// command, then sees a step (TestFaultsOverROS/duplicate_node: twice the acceleration and 12
// times the jerk limit at the robot). A robot that subscribes later gets the stream from then
// on, as from any ROS publisher.
func (c *cmdConn) awaitSubscribers(ctx context.Context, cs *cmdSession) {
	topic := c.nm.topics.Command
	deadline := time.Now().Add(c.nm.cfg.CommandWait)
	own := []string{c.nm.node, c.n.nm.node}
	var missing []string
	for {
		missing = missing[:0]
		st, err := cs.master.GetSystemState()
		if err == nil {
			connected := c.connectedSubscribers(ctx, cs)
			for _, e := range st.SubscribedTopics {
				if e.Name != topic {
					continue
				}
				for _, node := range e.Nodes {
					if !slices.Contains(own, node) && !slices.Contains(connected, node) && c.n.alive(ctx, cs.master, node) {
						missing = append(missing, node)
					}
				}
			}
			if len(missing) == 0 {
				return
			}
		}
		if !time.Now().Before(deadline) {
			c.log.Warn("ros: commanding before every subscriber of the command topic has connected", "topic", topic, "missing", missing, "err", err, "waited", c.nm.cfg.CommandWait)
			return
		}
		tm := time.NewTimer(10 * time.Millisecond)
		select {
		case <-ctx.Done():
			tm.Stop()
			return
		case <-tm.C:
		}
	}
}

// connectedSubscribers returns the nodes connected to cs's publishers (getBusInfo: [id,
// destination, direction, transport, topic, connected] per connection).
func (c *cmdConn) connectedSubscribers(ctx context.Context, cs *cmdSession) []string {
	pctx, cancel := context.WithTimeout(ctx, min(c.nm.cfg.Timeout, time.Second))
	defer cancel()
	res, err := c.n.rpc.Call(pctx, cs.selfURI, "getBusInfo", xmlrpc.String(c.nm.node))
	if err != nil {
		return nil
	}
	triple, _ := res.AsArray()
	if len(triple) != 3 {
		return nil
	}
	conns, _ := triple[2].AsArray()
	var nodes []string
	for _, conn := range conns {
		f, _ := conn.AsArray()
		if len(f) < 5 {
			continue
		}
		dest, _ := f[1].AsString()
		dir, _ := f[2].AsString()
		if dir == "o" {
			nodes = append(nodes, dest)
		}
	}
	return nodes
}

// serve sends the node's commands through cs until ctx ends (the node is done), its master
// cannot take it back, or it is shut down from outside.
func (c *cmdConn) serve(ctx context.Context, cs *cmdSession) error {
	n := c.n
	n.cmd.discard() // queued while no connection existed: stale
	sctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	n.cmd.sending.Store(true)
	wg.Go(func() {
		defer n.cmd.sending.Store(false)
		n.sendCommands(sctx, cs.pub, nil)
	})
	c.cur.Store(cs)
	defer func() {
		c.cur.Store(nil)
		cancel()
		wg.Wait()
		close(cs.done)
	}()
	return watchMaster(ctx, c.log, c.nm.cfg.WatchPeriod, c.shutdown, cs.master, c.nm.node, cs.selfURI,
		func(bool) {}, inPlace(c.log, &c.regs, func(bool) {}, cs.selfURI, func() error {
			return reregister(ctx, n.rpc, c.nm, c.log, cs.master, cs.selfURI, &cs.reg)
		}))
}

// keepCommanding holds the node, after its first connection was shut down from outside (s),
// until ctx ends (the loop has stopped), Config.BrakeTimeout has passed, or the command
// connection cs ends: meanwhile the loop's stop reaches the robot through cs. Sim time
// follows cs's /clock.
func (n *Node) keepCommanding(ctx context.Context, s *session, cs *cmdSession) {
	if s.sim {
		n.clock.detach(s.gn)
		n.clock.set(true, cs.gn)
	}
	n.log.Warn("ros: shut down from outside: the command connection carries the loop's stop",
		"connection", n.cc.nm.node, "timeout", n.nm.cfg.BrakeTimeout)
	t := time.NewTimer(n.nm.cfg.BrakeTimeout)
	defer t.Stop()
	select {
	case <-ctx.Done():
		// Unregister the command connection now: the first connection's close may wait for
		// net/http (see closeGoroslib), and an instance that took the name over waits for
		// this one to go before it commands.
		n.flush()
		n.ccStop()
	case <-t.C:
		n.log.Warn("ros: the loop did not stop within the brake timeout: unregistering", "timeout", n.nm.cfg.BrakeTimeout)
	case <-cs.done:
		n.log.Warn("ros: the command connection ended while braking: the command stream ends here")
	}
}

// awaitCommandTopic returns nil once no live node but this one publishes on the command topic
// and no live node holds the command connection's name (at once, normally), or when ctx ends;
// ErrCommandTopicBusy after Config.CommandWait. A node that took this one's name over from
// another instance finds that instance's command connection on both counts while it brakes
// (registering the same name would shut it down).
func (n *Node) awaitCommandTopic(ctx context.Context, s *session) error {
	topic := n.nm.topics.Command
	deadline := time.Now().Add(n.nm.cfg.CommandWait)
	logged := false
	var sub *goroslib.Subscriber
	defer func() {
		if sub != nil {
			sub.Close()
			if tr, ok := http.DefaultTransport.(*http.Transport); ok {
				tr.CloseIdleConnections()
			}
		}
	}()
	for {
		others, err := n.commandPublishers(ctx, s.master)
		if err == nil && len(others) == 0 {
			if logged {
				n.log.Info("ros: the command topic is ours alone now", "topic", topic, "reference", n.ref.Load() != nil)
			}
			return nil
		}
		if err != nil {
			n.log.Debug("ros: publishers of the command topic not read", "err", err)
		} else if !logged {
			n.log.Warn("ros: waiting for other nodes on the command topic or under the command connection's name to go (an instance this one replaced, braking?)",
				"topic", topic, "nodes", others, "timeout", n.nm.cfg.CommandWait)
			logged = true
			// Meanwhile, listen to what they command: the robot holds their last command,
			// where the loop should start (Driver.ReadReference). Nothing of ours is sent yet.
			dec := commandDecoder{cmd: robot.Command{Position: make([]float64, n.model.DoF())}}
			var serr error
			sub, serr = goroslib.NewSubscriber(goroslib.SubscriberConf{Node: s.gn, Topic: topic, QueueSize: subscriberQueue,
				Callback: func(m *std_msgs.Float64MultiArray) {
					if c, err := dec.decode(m, n.model.DoF()); err == nil {
						pos := slices.Clone(c.Position)
						n.ref.Store(&pos)
					}
				}})
			if serr != nil {
				n.log.Warn("ros: could not listen to the command topic while waiting", "err", serr)
				sub = nil
			}
		}
		if !time.Now().Before(deadline) {
			if err != nil {
				return fmt.Errorf("%w: %s: publishers not read within %v: %v", ErrCommandTopicBusy, topic, n.nm.cfg.CommandWait, err)
			}
			return fmt.Errorf("%w: %s: %v still there after %v (a publisher of the topic, or a node named as this one's command connection); two command streams interleaved break the robot's limits: stop it first", ErrCommandTopicBusy, topic, others, n.nm.cfg.CommandWait)
		}
		// goroslib's XML-RPC clients (on http.DefaultTransport) may hold a connection to the
		// other node's slave API that never carries a request; net/http's Shutdown, as that
		// node closes, waits 5 s for it (see closeGoroslib).
		if tr, ok := http.DefaultTransport.(*http.Transport); ok {
			tr.CloseIdleConnections()
		}
		tm := time.NewTimer(min(50*time.Millisecond, time.Until(deadline)))
		select {
		case <-ctx.Done():
			tm.Stop()
			return nil
		case <-tm.C:
		}
	}
}

// commandPublishers returns the nodes other than this one that publish on the command topic,
// and the node with the command connection's name, if they answer at their slave API (a node
// killed without unregistering does not).
func (n *Node) commandPublishers(ctx context.Context, master *apimaster.Client) ([]string, error) {
	st, err := master.GetSystemState()
	if err != nil {
		return nil, fmt.Errorf("ros: getSystemState: %w", err)
	}
	var nodes []string
	if n.cc != nil {
		nodes = append(nodes, n.cc.nm.node)
	}
	for _, e := range st.PublishedTopics {
		if e.Name == n.nm.topics.Command {
			nodes = append(nodes, e.Nodes...)
		}
	}
	var others []string
	for _, node := range nodes {
		if node == n.nm.node || slices.Contains(others, node) {
			continue
		}
		if n.alive(ctx, master, node) {
			others = append(others, node)
		}
	}
	return others, nil
}

// alive reports whether node is known to master and answers at its slave API (a node killed
// without unregistering does not).
func (n *Node) alive(ctx context.Context, master *apimaster.Client, node string) bool {
	uri, err := master.LookupNode(node)
	if err != nil {
		return false // unknown, or gone meanwhile
	}
	pctx, cancel := context.WithTimeout(ctx, min(n.nm.cfg.Timeout, time.Second))
	defer cancel()
	_, err = n.rpc.Call(pctx, uri, "getPid", xmlrpc.String(n.nm.node))
	return err == nil
}
