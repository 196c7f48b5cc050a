package task

import (
	"time"

	"github.com/flowact/flowact/sim"
)

// Trace is an episode recorded tick by tick, for reports and plots: the true joint positions,
// the end effector's and the goal's positions at each task tick, and the scene (targets and
// obstacles) as it was at the last one. Add appends one tick; the caller owns the Trace.
type Trace struct {
	T    []time.Duration // task ticks, since the start of the episode
	Q    [][]float64     // true joint positions, model order, rad (or m)
	EE   [][3]float64    // the end effector's true position, m
	Goal [][3]float64    // the goal's position (track's moves), m
	// Tolerance is the task's success distance, m; EERadius the end effector's collision
	// radius (0 for tasks without obstacles), m.
	Tolerance float64
	EERadius  float64
	// Targets and Obstacles are the scene at the last tick added.
	Targets   []sim.Target
	Obstacles []sim.Obstacle

	truth Truth
	scene sim.Scene
}

// Add records tick t of tk: the true joint positions q (copied) and the end effector's position
// ee, the goal and the scene from tk.
func (tr *Trace) Add(tk Task, t time.Duration, q []float64, ee [3]float64) {
	tk.TruthTo(&tr.truth, t)
	tk.SceneTo(&tr.scene, t)
	tr.T = append(tr.T, t)
	tr.Q = append(tr.Q, append([]float64(nil), q...))
	tr.EE = append(tr.EE, ee)
	tr.Goal = append(tr.Goal, tr.truth.Goal)
	tr.Tolerance, tr.EERadius = tr.truth.Tolerance, tr.truth.EERadius
	tr.Targets = append(tr.Targets[:0], tr.scene.Targets...)
	tr.Obstacles = append(tr.Obstacles[:0], tr.scene.Obstacles...)
}
