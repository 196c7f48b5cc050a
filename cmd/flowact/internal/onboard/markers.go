package onboard

import (
	"context"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowact/flowact/policy"
	"github.com/flowact/flowact/robot"
	"github.com/flowact/flowact/robot/ros"
)

// Defaults of the path markers.
const (
	// DefaultMarkerPeriod: 10 Hz, the simulator's marker rate, enough for rviz to follow.
	DefaultMarkerPeriod = 100 * time.Millisecond
	// DefaultPathHistory: 600 points of the executed path, a minute at 10 Hz.
	DefaultPathHistory = 600
	// pathStep is the least end-effector move, m, that adds a point to the executed path, so a
	// robot at rest does not fill the history with one point.
	pathStep  = 1e-3
	pathWidth = 0.01 // m, the line strips' width
	// republish: unchanged paths are published again this often, for an rviz started later
	// (markers are not latched).
	republish = time.Second
)

// Marker namespaces on the path topic.
const (
	NSPlan     = "plan"     // the current plan's end-effector path
	NSExecuted = "executed" // the measured end-effector path, the last PathHistory points
)

// pathMarkers draws the end effector's planned path (the plan the loop is shown at every splice,
// through forward kinematics) and executed path (the measured joint states', a bounded history)
// on the node's markers topic. ObservePlan runs on the control tick: it copies the plan into a
// preallocated buffer when the drawing goroutine does not hold it, else counts a skip; the rest
// runs on the drawing goroutine.
type pathMarkers struct {
	node  *ros.Node
	chain *robot.Chain
	root  string
	d     int

	mu      sync.Mutex
	plan    []float64 // H x D, the last plan shown
	n       int       // values in plan
	fresh   bool
	skipped atomic.Uint64 // plans not copied: the drawing goroutine held the buffer

	// The drawing goroutine's.
	rows     []float64
	planPts  [][3]float64
	exec     [][3]float64 // oldest first, at most cap
	q        []float64
	markers  []ros.Marker
	history  int
	hasShown bool
	quiet    time.Duration // since the last publication
}

var _ policy.PlanObserver = (*pathMarkers)(nil)

func newPathMarkers(node *ros.Node, model *robot.Model, eeLink string, h, history int) (*pathMarkers, error) {
	chain, err := model.Chain(eeLink)
	if err != nil {
		return nil, err
	}
	d := model.DoF()
	return &pathMarkers{
		node: node, chain: chain, root: model.Root, d: d,
		plan: make([]float64, h*d), rows: make([]float64, h*d),
		planPts: make([][3]float64, 0, h), exec: make([][3]float64, 0, history),
		q: make([]float64, d), history: history,
	}, nil
}

// ObservePlan keeps the plan for the next drawing; it never blocks.
func (p *pathMarkers) ObservePlan(_ int64, rows []float64) {
	if !p.mu.TryLock() {
		p.skipped.Add(1)
		return
	}
	p.n = copy(p.plan, rows)
	p.fresh = true
	p.mu.Unlock()
}

// run draws every period until ctx ends.
func (p *pathMarkers) run(ctx context.Context, period time.Duration) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		p.draw(period)
	}
}

// draw samples the executed path and publishes both paths, when they changed or every
// republish; period is the time since the last draw.
func (p *pathMarkers) draw(period time.Duration) {
	p.mu.Lock()
	fresh := p.fresh
	n := copy(p.rows, p.plan[:p.n])
	p.fresh = false
	p.mu.Unlock()
	if fresh {
		p.planPts = p.planPts[:0]
		for i := 0; i+p.d <= n; i += p.d {
			p.planPts = append(p.planPts, p.ee(p.rows[i:i+p.d]))
		}
	}
	moved := false
	if p.node.JointStates().PositionsTo(p.q) {
		x := p.ee(p.q)
		if len(p.exec) == 0 || dist(p.exec[len(p.exec)-1], x) >= pathStep {
			if len(p.exec) == p.history {
				p.exec = append(p.exec[:0], p.exec[1:]...)
			}
			p.exec = append(p.exec, x)
			moved = true
		}
	}
	p.quiet += period
	if !fresh && !moved && p.hasShown && p.quiet < republish {
		return
	}
	p.hasShown, p.quiet = true, 0
	p.node.PublishMarkers(p.node.Clock().Now(), p.root, p.build())
}

// build returns the markers of both paths (a line strip needs two points; rviz refuses fewer).
func (p *pathMarkers) build() []ros.Marker {
	p.markers = p.markers[:0]
	for _, m := range []struct {
		ns   string
		pts  [][3]float64
		rgba [4]float32
	}{
		{NSPlan, p.planPts, [4]float32{0.1, 0.8, 0.2, 1}},    // green: where the plan goes
		{NSExecuted, p.exec, [4]float32{0.9, 0.5, 0.1, 0.8}}, // orange: where the arm went
	} {
		if len(m.pts) < 2 {
			continue
		}
		p.markers = append(p.markers, ros.Marker{NS: m.ns, Shape: ros.MarkerLineStrip, Pose: robot.Identity,
			Scale: [3]float64{pathWidth, 0, 0}, RGBA: m.rgba, Points: append([][3]float64(nil), m.pts...)})
	}
	return p.markers
}

func (p *pathMarkers) ee(q []float64) [3]float64 {
	var pose robot.Pose
	p.chain.Pose(&pose, q)
	return pose.Pos
}

func dist(a, b [3]float64) float64 {
	return math.Sqrt((a[0]-b[0])*(a[0]-b[0]) + (a[1]-b[1])*(a[1]-b[1]) + (a[2]-b[2])*(a[2]-b[2]))
}
