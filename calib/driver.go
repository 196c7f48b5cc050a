package calib

import (
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/flowact/flowact/robot"
)

// Driver is a robot.Driver in joint units around a driver in motor units: ReadState maps the
// inner driver's motor positions, velocities and efforts to the joints (Set.PositionToJoint,
// VelocityToJoint, EffortToJoint), WriteCommand maps joint targets and feed-forward velocities to
// the motors. The loop and the expert above it never see motor units. Create one with Wrap.
type Driver struct {
	in  robot.Driver
	set *Set

	rmu sync.Mutex
	rst robot.State // the inner state, motor units

	wmu  sync.Mutex
	wpos []float64
	wvel []float64
	wcmd robot.Command
	wtr  robot.Trajectory
}

// TrajectoryDriver is a Driver around a robot.TrajectoryWriter: it maps trajectories too.
type TrajectoryDriver struct {
	*Driver
	tw robot.TrajectoryWriter
}

var (
	_ robot.Driver           = (*Driver)(nil)
	_ robot.Driver           = (*TrajectoryDriver)(nil)
	_ robot.TrajectoryWriter = (*TrajectoryDriver)(nil)
)

// ErrCommand is wrapped by the errors of malformed commands and trajectories given to a Driver.
var ErrCommand = errors.New("calib: bad command")

// Wrap returns the joint-unit face of the motor-unit driver in: a *TrajectoryDriver when in is a
// robot.TrajectoryWriter, else a *Driver. The inner driver's model must have the set's joints in
// the set's order (it is usually the same model).
func Wrap(in robot.Driver, s *Set) (robot.Driver, error) {
	if in == nil || s == nil {
		return nil, fmt.Errorf("%w: nil driver or set", ErrTransmission)
	}
	if im := in.Model(); im != s.m && !slices.Equal(im.Names(), s.m.Names()) {
		return nil, fmt.Errorf("%w: the driver's joints %v are not the set's %v", ErrTransmission, im.Names(), s.m.Names())
	}
	n := s.m.DoF()
	d := &Driver{in: in, set: s, rst: robot.NewState(n), wpos: make([]float64, n), wvel: make([]float64, n)}
	if tw, ok := in.(robot.TrajectoryWriter); ok {
		return &TrajectoryDriver{Driver: d, tw: tw}, nil
	}
	return d, nil
}

// Inner returns the wrapped driver.
func (d *Driver) Inner() robot.Driver { return d.in }

// Set returns the transmissions.
func (d *Driver) Set() *Set { return d.set }

// Model returns the joint model.
func (d *Driver) Model() *robot.Model { return d.set.m }

// ReadState reads the inner driver's state and writes it in joint units into dst, whose slices
// must have length DoF. It allocates nothing.
func (d *Driver) ReadState(dst *robot.State) error {
	n := len(d.set.joints)
	if len(dst.Position) != n || len(dst.Velocity) != n || len(dst.Effort) != n {
		return fmt.Errorf("calib: ReadState: state has %d/%d/%d values for %d joints", len(dst.Position), len(dst.Velocity), len(dst.Effort), n)
	}
	d.rmu.Lock()
	defer d.rmu.Unlock()
	if err := d.in.ReadState(&d.rst); err != nil {
		return err
	}
	dst.Stamp = d.rst.Stamp
	d.set.PositionToJoint(dst.Position, d.rst.Position)
	d.set.VelocityToJoint(dst.Velocity, d.rst.Velocity)
	d.set.EffortToJoint(dst.Effort, d.rst.Effort)
	return nil
}

// WriteCommand maps c to motor units and writes it to the inner driver (which copies what it
// keeps). A command of the wrong length is refused with ErrCommand; non-finite values stay
// non-finite, for the inner driver to refuse. It allocates nothing.
func (d *Driver) WriteCommand(c *robot.Command) error {
	n := len(d.set.joints)
	if len(c.Position) != n || c.Velocity != nil && len(c.Velocity) != n {
		return fmt.Errorf("%w: %d positions and %d velocities for %d joints", ErrCommand, len(c.Position), len(c.Velocity), n)
	}
	d.wmu.Lock()
	defer d.wmu.Unlock()
	d.set.PositionToMotor(d.wpos, c.Position)
	d.wcmd = robot.Command{Stamp: c.Stamp, Position: d.wpos}
	if c.Velocity != nil {
		d.set.VelocityToMotor(d.wvel, c.Velocity)
		d.wcmd.Velocity = d.wvel
	}
	return d.in.WriteCommand(&d.wcmd)
}

// WriteTrajectory maps every point of tr to motor units and writes it to the inner driver.
// Malformed point counts are refused with ErrCommand; the rest of the checking is the inner
// driver's. Its buffer grows to the longest trajectory, then is reused.
func (d *TrajectoryDriver) WriteTrajectory(tr *robot.Trajectory) error {
	n := len(d.set.joints)
	k := len(tr.TimeFromStart)
	if k == 0 || len(tr.Positions) != k*n {
		return fmt.Errorf("%w: trajectory has %d positions for %d points of %d joints", ErrCommand, len(tr.Positions), k, n)
	}
	d.wmu.Lock()
	defer d.wmu.Unlock()
	buf := slices.Grow(d.wtr.Positions[:0], k*n)[:k*n]
	for p := range k {
		d.set.PositionToMotor(buf[p*n:(p+1)*n], tr.Positions[p*n:(p+1)*n])
	}
	d.wtr = robot.Trajectory{Start: tr.Start, TimeFromStart: tr.TimeFromStart, Positions: buf}
	err := d.tw.WriteTrajectory(&d.wtr)
	d.wtr.TimeFromStart = nil // the caller's; do not keep it
	return err
}
