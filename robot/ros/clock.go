package ros

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/bluenviron/goroslib/v2"

	"github.com/flowact/flowact/robot"
)

// Clock is the node's robot.Clock: ROS time. When the parameter /use_sim_time is true at
// registration, time is the simulation time published on /clock (rosgraph_msgs/Clock) and
// SleepUntil waits for /clock to reach its deadline; otherwise it is the wall clock. Until the
// node has registered with a master, and when /use_sim_time is false, it is the wall clock.
// As in roscpp, sim time is zero (the Unix epoch) until the first /clock message.
//
// goroslib subscribes to /clock itself when /use_sim_time is set (and refuses a second
// subscription to the same topic in one node), so Clock reads goroslib's sim time rather than
// subscribing again; after a re-registration it follows the new connection.
type Clock struct {
	mu      sync.Mutex
	sim     bool           // following /clock
	gn      *goroslib.Node // the connection whose /clock drives sim time; nil while disconnected
	last    time.Time      // sim time when the previous connection closed
	changed chan struct{}  // closed and replaced whenever sim or gn changes
	ended   bool           // the node's Run has returned
}

var _ robot.Clock = (*Clock)(nil)

func newClock() *Clock { return &Clock{changed: make(chan struct{})} }

// set switches the source: sim time from gn's /clock when sim is set, else the wall clock.
func (c *Clock) set(sim bool, gn *goroslib.Node) {
	c.mu.Lock()
	c.sim, c.gn = sim, gn
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
}

// end marks the node's Run over: a sleep on sim time, which no /clock can advance any more,
// returns robot.ErrClosed instead of waiting for a connection that will not come.
func (c *Clock) end() {
	c.mu.Lock()
	c.ended = true
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
}

// detach freezes sim time at its current value while the connection gn closes. A clock that
// follows another connection already (the command connection's) is left as it is.
func (c *Clock) detach(gn *goroslib.Node) {
	c.mu.Lock()
	if c.gn != gn {
		c.mu.Unlock()
		return
	}
	if c.sim {
		if t := gn.TimeNow(); t.After(c.last) {
			c.last = t
		}
	}
	c.gn = nil
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
}

func (c *Clock) isEnded() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ended
}

// Sim reports whether the clock follows /clock.
func (c *Clock) Sim() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sim
}

// read returns the time and, in sim mode, the connection to wait on (nil while disconnected).
func (c *Clock) read() (now time.Time, sim bool, gn *goroslib.Node, changed <-chan struct{}) {
	c.mu.Lock()
	sim, gn, last, changed := c.sim, c.gn, c.last, c.changed
	c.mu.Unlock()
	if !sim {
		return time.Now(), false, nil, changed
	}
	now = last
	if gn != nil {
		// A new connection reads zero until its first /clock: never go back in time.
		if t := gn.TimeNow(); t.After(now) {
			now = t
		}
	}
	return now, true, gn, changed
}

// Now returns the current ROS time.
func (c *Clock) Now() time.Time {
	now, _, _, _ := c.read()
	return now
}

// SleepUntil returns nil once the clock reaches t (at once if it has), or ctx.Err().
func (c *Clock) SleepUntil(ctx context.Context, t time.Time) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		now, sim, gn, changed := c.read()
		if !now.Before(t) {
			return nil
		}
		if sim && gn == nil && c.isEnded() {
			return fmt.Errorf("ros: sim time stopped with the node: %w", robot.ErrClosed)
		}
		var wake <-chan time.Time
		var tm *time.Timer
		switch {
		case !sim:
			tm = time.NewTimer(t.Sub(now))
			wake = tm.C
		case gn != nil:
			// Wake at the next /clock message and look again. goroslib's sleeps are relative
			// to its own sim time when registered, which a /clock message may change between
			// our reading and the registration, so a longer sleep could overshoot; a
			// zero-length one ends at the next message in any case (and, before the first
			// message, at the first).
			wake = gn.TimeSleepChan(0)
		}
		// sim time while disconnected: wake stays nil, wait for a connection.
		select {
		case <-wake:
		case <-ctx.Done():
		case <-changed:
		}
		if tm != nil {
			tm.Stop()
		}
	}
}
