package task

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/flowact/flowact/robot"
	"github.com/flowact/flowact/robot/urdf"
	"github.com/flowact/flowact/sim"
	"github.com/flowact/flowact/sim/vlm"
)

// Robot is the arm a task is set for.
type Robot struct {
	Model *robot.Model
	EE    *robot.Chain // root to the end-effector link
	Home  []float64    // where episodes start, model order
}

// NewRobot returns the Robot for model m with end-effector link ee and home configuration home
// (nil for zeros clamped into the limits).
func NewRobot(m *robot.Model, ee string, home []float64) (*Robot, error) {
	c, err := m.Chain(ee)
	if err != nil {
		return nil, fmt.Errorf("task: %w", err)
	}
	if home == nil {
		home = make([]float64, m.DoF())
		for i, j := range m.Joints {
			if j.Limits.HasPosition {
				home[i] = min(max(0, j.Limits.Lower), j.Limits.Upper)
			}
		}
	}
	if len(home) != m.DoF() {
		return nil, fmt.Errorf("task: %d home positions for %d joints", len(home), m.DoF())
	}
	return &Robot{Model: m, EE: c, Home: append([]float64(nil), home...)}, nil
}

// ShippedRobot returns the Robot of the robot name shipped in the binary (urdf.Shipped), with the
// end-effector link and home position of its robot.yaml.
func ShippedRobot(name string) (*Robot, error) {
	m, rc, err := urdf.Shipped(name)
	if err != nil {
		return nil, fmt.Errorf("task: %w", err)
	}
	return NewRobot(m, rc.EELink, rc.HomePosition(m))
}

// EEPos returns the end effector's position at joint values q.
func (rb *Robot) EEPos(q []float64) [3]float64 {
	var p robot.Pose
	rb.EE.Pose(&p, q)
	return p.Pos
}

// Task is one kind of episode. Reset must come first; Update then advances it tick by tick.
type Task interface {
	// Name is the task's name: "reach", "detour" or "track".
	Name() string
	// Reset draws a new scene from r for the arm rb starting at rb.Home.
	Reset(r *rand.Rand, rb *Robot) error
	// Instruction is the episode's instruction text.
	Instruction() string
	// TimeLimit is the episode's length limit.
	TimeLimit() time.Duration
	// Update advances the task to time t with the end effector's true position ee and reports
	// whether the episode is over (success, failure, or the time limit).
	Update(t time.Duration, ee [3]float64) (done bool)
	// Success reports whether the episode has succeeded so far.
	Success() bool
	// ObserveTo writes what the VLM sees at time t into sc, reusing sc.Objects.
	ObserveTo(sc *vlm.Scene, t time.Duration)
	// TruthTo writes the privileged state at time t for a scripted expert into g, reusing its
	// slices.
	TruthTo(g *Truth, t time.Duration)
	// SceneTo writes the targets and obstacles at time t, for display, into dst's Targets and
	// Obstacles (reused).
	SceneTo(dst *sim.Scene, t time.Duration)
	// Meta returns the episode's metadata so far.
	Meta() Meta
}

// Truth is the privileged state a scripted expert plans with.
type Truth struct {
	Goal         [3]float64 // the named target's position, m
	GoalVelocity [3]float64 // m/s
	Moving       bool       // the goal moves (track)
	Obstacles    []sim.Obstacle
	EERadius     float64 // the end effector's collision radius, m
	Tolerance    float64 // success tolerance, m
}

// Meta describes an episode, for datasets and evaluation reports.
type Meta struct {
	Task        string
	Instruction string
	Target      string  // the named target
	Success     bool    // so far
	Collided    bool    // detour: the end effector touched the obstacle
	Side        int     // detour: +1 the end effector passed left of the obstacle (seen from above, facing the target), -1 right, 0 not yet
	Clearance   float64 // detour: smallest end-effector surface distance to the obstacle, m
	Distance    float64 // distance from the end effector to the goal at the last update, m
	Tracked     float64 // track: fraction of ticks after Settle within Tolerance
	Elapsed     time.Duration
}

// ErrConfig is wrapped by configuration errors; ErrPlace by failures to build a scene.
var (
	ErrConfig = errors.New("task: bad config")
	ErrPlace  = errors.New("task: cannot place the scene")
)

// colour returns the name and display colour of target colour i < MaxTargets.
func colour(i int) (string, [4]float32) {
	palette := [MaxTargets]struct {
		name string
		rgba [4]float32
	}{
		{"red", [4]float32{0.9, 0.1, 0.1, 1}},
		{"green", [4]float32{0.1, 0.8, 0.2, 1}},
		{"blue", [4]float32{0.1, 0.3, 0.9, 1}},
		{"yellow", [4]float32{0.95, 0.85, 0.1, 1}},
		{"purple", [4]float32{0.6, 0.2, 0.8, 1}},
		{"orange", [4]float32{1, 0.5, 0, 1}},
	}
	return palette[i].name, palette[i].rgba
}

// MaxTargets is the number of distinct target colours.
const MaxTargets = 6

// Names returns the task names New accepts.
func Names() []string { return []string{"reach", "detour", "track"} }

// Config selects and configures a task; only the named task's section is used.
type Config struct {
	Name   string       `yaml:"name"` // "reach", "detour" or "track"
	Reach  ReachConfig  `yaml:"reach"`
	Detour DetourConfig `yaml:"detour"`
	Track  TrackConfig  `yaml:"track"`
}

// Validate checks the name and the named task's section.
func (c Config) Validate() error {
	switch c.Name {
	case "reach":
		return c.Reach.Validate()
	case "detour":
		return c.Detour.Validate()
	case "track":
		return c.Track.Validate()
	}
	return fmt.Errorf("%w: unknown task %q (want one of %v)", ErrConfig, c.Name, Names())
}

// New returns the task that cfg names.
func New(cfg Config) (Task, error) {
	switch cfg.Name {
	case "reach":
		return NewReach(cfg.Reach)
	case "detour":
		return NewDetour(cfg.Detour)
	case "track":
		return NewTrack(cfg.Track)
	}
	return nil, fmt.Errorf("%w: unknown task %q (want one of %v)", ErrConfig, cfg.Name, Names())
}

// Workspace is how targets are placed: around the home configuration.
type Workspace struct {
	// Spread is the half-width, rad (or m), of the uniform draw around home of each joint on the
	// end-effector chain; 0 means 0.6 (0.4 for track).
	Spread float64 `yaml:"spread"`
	// MinHeight is the lowest target height above the root frame's z = 0, m; 0 means 0.05.
	MinHeight float64 `yaml:"min_height"`
}

func (w Workspace) withDefaults() Workspace {
	if w.Spread == 0 {
		w.Spread = 0.6
	}
	if w.MinHeight == 0 {
		w.MinHeight = 0.05
	}
	return w
}

func (w Workspace) validate(task string) error {
	if !(w.Spread >= 0) || w.Spread > math.Pi || math.IsNaN(w.MinHeight) || math.IsInf(w.MinHeight, 0) {
		return fmt.Errorf("%w: %s: workspace spread %v (want 0..pi) or min_height %v", ErrConfig, task, w.Spread, w.MinHeight)
	}
	return nil
}

// sampleQ draws a configuration around home into q.
func (w Workspace) sampleQ(q []float64, r *rand.Rand, rb *Robot, spread float64) {
	copy(q, rb.Home)
	for _, i := range rb.EE.Joints() {
		q[i] += spread * (2*r.Float64() - 1)
		if l := rb.Model.Joints[i].Limits; l.HasPosition {
			q[i] = min(max(q[i], l.Lower), l.Upper)
		}
	}
}

// place draws a target position satisfying ok, up to maxDraws times.
func (w Workspace) place(r *rand.Rand, rb *Robot, q []float64, ok func(p [3]float64) bool) ([3]float64, bool) {
	const maxDraws = 1000
	for range maxDraws {
		w.sampleQ(q, r, rb, w.Spread)
		p := rb.EEPos(q)
		if p[2] >= w.MinHeight && ok(p) {
			return p, true
		}
	}
	return [3]float64{}, false
}

func dist(a, b [3]float64) float64 {
	d := [3]float64{a[0] - b[0], a[1] - b[1], a[2] - b[2]}
	return math.Sqrt(d[0]*d[0] + d[1]*d[1] + d[2]*d[2])
}

// positive checks a config field that must be > 0 after defaults.
func positive(task, field string, v float64) error {
	if !(v > 0) || math.IsInf(v, 0) {
		return fmt.Errorf("%w: %s: %s %v must be positive", ErrConfig, task, field, v)
	}
	return nil
}

func pick(r *rand.Rand, phrases []string) string { return phrases[r.IntN(len(phrases))] }
