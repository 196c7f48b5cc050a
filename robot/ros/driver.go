package ros

import (
	"fmt"
	"math"

	"github.com/flowact/flowact/robot"
)

// Driver is the robot.Driver over a Node: ReadState reads the JointState mailbox, WriteCommand
// publishes std_msgs/Float64MultiArray (positions in model order, for a group position
// controller), WriteTrajectory publishes trajectory_msgs/JointTrajectory (for a
// joint_trajectory_controller). Neither write blocks: each goes into a latest-value mailbox that
// a sender goroutine of the node drains into goroslib's publisher; while the node is not
// registered, writes are accepted and dropped (counted). After Run returns they fail with
// robot.ErrClosed.
type Driver struct {
	n *Node
}

var (
	_ robot.Driver           = (*Driver)(nil)
	_ robot.TrajectoryWriter = (*Driver)(nil)
	_ robot.ReferenceReader  = (*Driver)(nil)
)

// Model returns the robot model.
func (d *Driver) Model() *robot.Model { return d.n.model }

// ReadState copies the latest merged joint state into dst; see JointStates.ReadState.
func (d *Driver) ReadState(dst *robot.State) error { return d.n.joints.ReadState(dst) }

// WriteCommand queues c.Position for publication, after the commands queued before it (none is
// ever replaced); it rejects a wrong length or a non-finite position, and returns
// robot.ErrBusy when the queue is full (the publisher's sender has not run for 64 commands;
// while no master connection exists the oldest queued command gives way instead). It
// does not allocate. Velocity feed-forward has no place in a Float64MultiArray
// position command and is not sent.
func (d *Driver) WriteCommand(c *robot.Command) error {
	if d.n.done.Load() {
		return robot.ErrClosed
	}
	if len(c.Position) != d.n.model.DoF() {
		return fmt.Errorf("ros: command has %d positions, model %q has %d joints", len(c.Position), d.n.model.Name, d.n.model.DoF())
	}
	for i, p := range c.Position {
		if math.IsNaN(p) || math.IsInf(p, 0) {
			return fmt.Errorf("ros: command position of joint %q is %v", d.n.model.Joints[i].Name, p)
		}
	}
	if c.Velocity != nil && len(c.Velocity) != len(c.Position) {
		return fmt.Errorf("ros: command has %d velocities for %d joints", len(c.Velocity), len(c.Position))
	}
	if !d.n.cmd.put(c.Position) {
		return robot.ErrBusy
	}
	return nil
}

// WriteTrajectory builds a JointTrajectory (joint_names in model order, time_from_start from
// tr, header.stamp = tr.Start) and queues it; a trajectory not yet sent is replaced, and so are
// per-tick commands not yet sent.
func (d *Driver) WriteTrajectory(tr *robot.Trajectory) error {
	if d.n.done.Load() {
		return robot.ErrClosed
	}
	m, err := trajectoryMsg(d.n.model.Names(), tr)
	if err != nil {
		return err
	}
	// The newest instruction wins, as on a joint_trajectory_controller: per-tick commands still
	// queued would override the trajectory when they arrive, so they are dropped (counted).
	d.n.cmd.discard()
	d.n.traj.put(m)
	return nil
}

// ReadReference copies the last command another node sent on the command topic while this
// one waited for it to go (an instance this one replaced, braking through its command connection;
// see Config.CommandWait) into dst: the position the robot holds. It reports false when there
// was none, and once this driver has written a command or a trajectory of its own.
func (d *Driver) ReadReference(dst []float64) bool {
	n := d.n
	if n.cmd.written.Load() > 0 || n.traj.written.Load() > 0 {
		return false
	}
	p := n.ref.Load()
	if p == nil || len(*p) != len(dst) {
		return false
	}
	copy(dst, *p)
	return true
}

// DriverStats counts what the driver's outputs did. All counters only grow.
type DriverStats struct {
	Commands, CommandsSent, CommandsDropped             uint64
	Trajectories, TrajectoriesSent, TrajectoriesDropped uint64
}

// Stats returns the counters.
func (d *Driver) Stats() DriverStats {
	n := d.n
	return DriverStats{
		Commands: n.cmd.written.Load(), CommandsSent: n.cmd.sent.Load(), CommandsDropped: n.cmd.dropped.Load(),
		Trajectories: n.traj.written.Load(), TrajectoriesSent: n.traj.sent.Load(), TrajectoriesDropped: n.traj.dropped.Load(),
	}
}
