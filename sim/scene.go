package sim

import (
	"context"
	"math"
	"time"

	"github.com/flowact/flowact/robot"
)

// Clock is a robot.Clock on simulation time: SleepUntil steps the simulation to the requested
// time and returns at once, so a loop paced by it runs faster than real time. Only one loop
// should sleep on a Clock: each SleepUntil advances the shared simulation.
type Clock struct{ s *Sim }

// Clock returns a clock that drives s.
func (s *Sim) Clock() Clock { return Clock{s} }

// Now returns the simulation time.
func (c Clock) Now() time.Time { return c.s.Now() }

// SleepUntil steps the simulation to t (nothing when t has passed) unless ctx is done.
func (c Clock) SleepUntil(ctx context.Context, t time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.s.StepTo(t)
	return nil
}

// Target is a goal marker: a coloured sphere.
type Target struct {
	Name   string     // unique within the scene, e.g. "red"
	Color  string     // the colour word the instruction uses
	RGBA   [4]float32 // display colour, components in [0, 1]
	Pos    [3]float64 // centre in the robot's root frame, m
	Radius float64    // display radius, m
}

// Obstacle is a capsule: the points within Radius of the segment A-B (a sphere when A == B), in
// the robot's root frame, m.
type Obstacle struct {
	Name   string
	A, B   [3]float64
	Radius float64
}

// Dist returns the distance from p to the obstacle's surface, negative inside.
func (o *Obstacle) Dist(p [3]float64) float64 {
	return segDist(p, o.A, o.B) - o.Radius
}

// segDist returns the distance from p to the segment a-b.
func segDist(p, a, b [3]float64) float64 {
	ab := sub(b, a)
	ap := sub(p, a)
	l2 := dot(ab, ab)
	u := 0.0
	if l2 > 0 {
		u = clamp(dot(ap, ab)/l2, 0, 1)
	}
	d := [3]float64{ap[0] - u*ab[0], ap[1] - u*ab[1], ap[2] - u*ab[2]}
	return math.Sqrt(dot(d, d))
}

func sub(a, b [3]float64) [3]float64 { return [3]float64{a[0] - b[0], a[1] - b[1], a[2] - b[2]} }
func dot(a, b [3]float64) float64    { return a[0]*b[0] + a[1]*b[1] + a[2]*b[2] }

// Frame is one transform of the kinematic tree, as /tf carries it: the child link's frame in the
// parent link's frame.
type Frame struct {
	Parent, Child string
	Pose          robot.Pose
}

// Scene is what a visualizer shows: the robot's link frames at Stamp, and the task's targets
// and obstacles.
type Scene struct {
	Stamp     time.Time
	Frames    []Frame // one per joint: the actuated ones in model order, then the fixed ones
	Targets   []Target
	Obstacles []Obstacle
}

// SetObjects replaces the scene's targets and obstacles with copies of the given ones.
func (s *Sim) SetObjects(targets []Target, obstacles []Obstacle) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.targets = append(s.targets[:0], targets...)
	s.obstacles = append(s.obstacles[:0], obstacles...)
}

// SceneTo writes the current scene into dst, reusing its slices; it allocates nothing once they
// have grown. Frames use the true joint positions.
func (s *Sim) SceneTo(dst *Scene) {
	s.mu.Lock()
	defer s.mu.Unlock()
	dst.Stamp = s.cfg.Start.Add(s.t)
	dst.Frames = dst.Frames[:0]
	for i := range s.m.Joints {
		j := &s.m.Joints[i]
		dst.Frames = append(dst.Frames, Frame{Parent: j.Parent, Child: j.Child, Pose: j.Transform(s.q[i])})
	}
	for i := range s.m.Fixed {
		j := &s.m.Fixed[i]
		dst.Frames = append(dst.Frames, Frame{Parent: j.Parent, Child: j.Child, Pose: j.Origin})
	}
	dst.Targets = append(dst.Targets[:0], s.targets...)
	dst.Obstacles = append(dst.Obstacles[:0], s.obstacles...)
}

// Run steps s in time with clk, by period at absolute deadlines (start + k period, so lateness
// does not accumulate), until ctx is done; it returns ctx's error. It is how a simulator node runs
// in real time (robot.WallClock; set Config.Start to the wall time at construction so stamps are
// wall times) or on ROS sim time. A step that finds its deadline already passed runs at once; the
// number of such late steps is returned by Late.
func (s *Sim) Run(ctx context.Context, clk robot.Clock, period time.Duration) error {
	if period <= 0 {
		panic("sim: Run with a non-positive period")
	}
	start := clk.Now()
	for k := int64(1); ; k++ {
		deadline := start.Add(time.Duration(k) * period)
		if clk.Now().After(deadline) {
			s.mu.Lock()
			s.late++
			s.mu.Unlock()
		}
		if err := clk.SleepUntil(ctx, deadline); err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		s.Step(period)
	}
}

// Late returns how many of Run's steps started after their deadline.
func (s *Sim) Late() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.late
}
