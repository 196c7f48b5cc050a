package ros

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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

// The brake connection. goroslib v2.1.4 cancels its node the moment its slave API receives a
// shutdown request (rosnode kill, the master, a node registering with the same name), with no
// hook to refuse or delay it: the publishers go with it, before the loop can send another
// command. So a Node keeps a second goroslib node, named Config.BrakeName, with one publisher
// on the command topic, registered (and so connected to the robot's subscriber) from the start
// but silent. When the first connection is shut down from outside, the node's command queue is
// drained through the brake's publisher instead, so the loop's stop (policy's jerk-limited
// braking) reaches the robot; then the brake unregisters. A starting node waits until no other
// live node publishes on its command topic (awaitCommandTopic) before it registers its brake
// and reports Ready: an instance that took the name over from a braking one does not command
// while the old one brakes.

// ErrCommandTopicBusy: another live node still published on the command topic, or held the
// brake's name, Config.CommandWait after the node's first registration.
var ErrCommandTopicBusy = errors.New("ros: command topic has another publisher")

// brakeSession is one registration of the brake connection.
type brakeSession struct {
	clock   *Clock
	gn      *goroslib.Node
	master  *apimaster.Client
	selfURI string
	pub     *goroslib.Publisher
	reg     registered
	done    chan struct{} // closed when its registration ends
}

func (b *brakeSession) attrs() []any { return []any{"uri", b.selfURI, "brake", true} }

func (b *brakeSession) close() {
	b.clock.detach(b.gn)
	if b.pub != nil {
		b.pub.Close()
	}
	closeGoroslib(b.gn)
}

// brake is a Node's brake connection.
type brake struct {
	n        *Node
	nm       *names // the brake node's: Config.BrakeName, the node's topics, no private params
	log      *slog.Logger
	regs     atomic.Uint64
	shutdown chan string // its own goroslib's shutdown requests (logged; it just goes)
	cur      atomic.Pointer[brakeSession]
	ready    chan struct{} // closed at the first registration
	once     sync.Once
}

func newBrake(n *Node) *brake {
	nm := *n.nm
	nm.cfg.Name = n.nm.cfg.BrakeName
	nm.node = join(nm.cfg.Namespace, nm.cfg.Name)
	nm.params = nil
	return &brake{n: n, nm: &nm, log: n.log.With("brake", nm.node), shutdown: make(chan string, 1), ready: make(chan struct{})}
}

// run runs the brake connection until ctx ends (registering again in place after a master
// restart, connecting again if that fails) or its own node is shut down from outside.
func (b *brake) run(ctx context.Context) error {
	m := member[*brakeSession]{
		nm: b.nm, log: b.log, rpc: b.n.rpc, kind: "brake", regs: &b.regs,
		connect:    b.connect,
		serve:      b.serve,
		registered: func() { b.once.Do(func() { close(b.ready) }) },
	}
	return m.run(ctx)
}

func (b *brake) connect(ctx context.Context) (bs *brakeSession, err error) {
	master, gn, err := joinMaster(ctx, b.nm, b.n.httpc, b.log, b.shutdown, nil)
	if err != nil {
		return nil, err
	}
	bs = &brakeSession{clock: b.n.clock, gn: gn, master: master, done: make(chan struct{})}
	defer func() {
		if err != nil {
			bs.close()
			bs = nil
		}
	}()
	topic := b.nm.topics.Command
	if bs.pub, err = goroslib.NewPublisher(goroslib.PublisherConf{Node: gn, Topic: topic, Msg: &std_msgs.Float64MultiArray{}}); err != nil {
		return bs, fmt.Errorf("ros: brake publisher %s: %w", topic, err)
	}
	bs.reg.pubs = []registration{{topic, typeName(std_msgs.Float64MultiArray{})}, {"/rosout", typeName(rosgraph_msgs.Log{})}}
	if on, _ := gn.ParamIsSet("/use_sim_time"); on {
		if sim, _ := gn.ParamGetBool("/use_sim_time"); sim { // goroslib subscribed to /clock
			bs.reg.subs = []registration{{ClockTopic, typeName(rosgraph_msgs.Clock{})}}
		}
	}
	if bs.selfURI, err = master.LookupNode(b.nm.node); err != nil {
		return bs, fmt.Errorf("ros: lookupNode %s after registering: %w", b.nm.node, err)
	}
	return bs, nil
}

func (b *brake) serve(ctx context.Context, bs *brakeSession) error {
	b.cur.Store(bs)
	defer func() {
		b.cur.Store(nil)
		close(bs.done)
	}()
	again := inPlace(b.log, &b.regs, func(bool) {}, bs.selfURI, func() error {
		return reregister(ctx, b.n.rpc, b.nm, bs.master, bs.selfURI, &bs.reg)
	})
	return watchMaster(ctx, b.log, b.nm.cfg.WatchPeriod, b.shutdown, bs.master, b.nm.node, bs.selfURI,
		func(bool) {}, func(err error) error {
			// After a master restart the main connection registers first: the master tells the
			// subscribers of the command topic about each registration with the whole list of
			// its publishers, and a list with only the brake would make them drop their
			// connections to the main one (goroslib's subscribers do), losing commands.
			if _, lerr := bs.master.LookupNode(b.n.nm.node); lerr != nil {
				return nil // not yet: look again at the next watch
			}
			return again(err)
		})
}

// brakeThrough sends the node's commands through the brake connection bs after the first
// connection (s) was shut down from outside, until ctx ends (the loop has stopped) or
// Config.BrakeTimeout has passed, then flushes what is queued. Sim time follows the brake's
// /clock meanwhile.
func (n *Node) brakeThrough(ctx context.Context, s *session, bs *brakeSession) {
	if s.sim {
		n.clock.detach(s.gn)
		n.clock.set(true, bs.gn)
	}
	n.log.Warn("ros: shut down from outside: commands go through the brake connection until the loop stops",
		"brake", n.brk.nm.node, "timeout", n.nm.cfg.BrakeTimeout)
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	n.cmd.sending.Store(true)
	wg.Go(func() {
		defer n.cmd.sending.Store(false)
		n.sendCommands(sctx, bs.pub, nil)
	})
	t := time.NewTimer(n.nm.cfg.BrakeTimeout)
	select {
	case <-ctx.Done():
		n.flush()
	case <-t.C:
		n.log.Warn("ros: the brake connection stops: the loop did not stop within the brake timeout", "timeout", n.nm.cfg.BrakeTimeout)
	case <-bs.done:
		n.log.Warn("ros: the brake connection ended while braking: the command stream ends here")
	}
	t.Stop()
	cancel()
	wg.Wait()
}

// awaitCommandTopic returns nil once no live node but this one publishes on the command topic
// and no live node holds the brake's name (at once, normally), or when ctx ends;
// ErrCommandTopicBusy after Config.CommandWait. A node that took this one's name over from
// another instance finds that instance's brake connection on both counts while it brakes
// (registering the brake's name would shut it down).
func (n *Node) awaitCommandTopic(ctx context.Context, s *session) error {
	topic := n.nm.topics.Command
	deadline := time.Now().Add(n.nm.cfg.CommandWait)
	logged := false
	var sub *goroslib.Subscriber
	defer func() {
		if sub != nil {
			sub.Close()
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
			n.log.Warn("ros: waiting for other nodes on the command topic or under the brake's name to go (an instance this one replaced, braking?)",
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
			return fmt.Errorf("%w: %s: %v still there after %v (a publisher of the topic, or a node named as this one's brake connection); two command streams interleaved break the robot's limits: stop it first", ErrCommandTopicBusy, topic, others, n.nm.cfg.CommandWait)
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
// and the node with the brake's name, if they answer at their slave API (a node killed without
// unregistering does not).
func (n *Node) commandPublishers(ctx context.Context, master *apimaster.Client) ([]string, error) {
	st, err := master.GetSystemState()
	if err != nil {
		return nil, fmt.Errorf("ros: getSystemState: %w", err)
	}
	var nodes []string
	if n.brk != nil {
		nodes = append(nodes, n.brk.nm.node)
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
		uri, err := master.LookupNode(node)
		if err != nil {
			continue // unknown, or gone meanwhile
		}
		pctx, cancel := context.WithTimeout(ctx, min(n.nm.cfg.Timeout, time.Second))
		_, err = n.rpc.Call(pctx, uri, "getPid", xmlrpc.String(n.nm.node))
		cancel()
		if err == nil {
			others = append(others, node)
		}
	}
	return others, nil
}
