package task

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/flowact/flowact/sim"
	"github.com/flowact/flowact/sim/vlm"
)

// DetourConfig configures detour.
type DetourConfig struct {
	// Tolerance is the success distance from the target's centre, m; 0 means 0.03.
	Tolerance float64 `yaml:"tolerance"`
	// TimeLimit is the episode limit; 0 means 6 s.
	TimeLimit time.Duration `yaml:"time_limit"`
	// MinDistance is the least horizontal distance from the start to the target, m; 0 means 0.25.
	MinDistance float64 `yaml:"min_distance"`
	// ObstacleRadius is the obstacle sphere's radius, m; 0 means 0.05.
	ObstacleRadius float64 `yaml:"obstacle_radius"`
	// EERadius is the end effector's collision radius, m; 0 means 0.02.
	EERadius  float64   `yaml:"ee_radius"`
	Workspace Workspace `yaml:"workspace"`
}

func (c DetourConfig) withDefaults() DetourConfig {
	if c.Tolerance == 0 {
		c.Tolerance = 0.03
	}
	if c.TimeLimit == 0 {
		c.TimeLimit = 6 * time.Second
	}
	if c.MinDistance == 0 {
		c.MinDistance = 0.25
	}
	if c.ObstacleRadius == 0 {
		c.ObstacleRadius = 0.05
	}
	if c.EERadius == 0 {
		c.EERadius = 0.02
	}
	c.Workspace = c.Workspace.withDefaults()
	return c
}

// Validate reports the first invalid field. The obstacle must leave room at both ends:
// ObstacleRadius + EERadius + Tolerance < MinDistance/2.
func (c DetourConfig) Validate() error {
	c = c.withDefaults()
	for _, f := range []struct {
		name string
		v    float64
	}{{"tolerance", c.Tolerance}, {"min_distance", c.MinDistance}, {"obstacle_radius", c.ObstacleRadius}, {"ee_radius", c.EERadius}} {
		if err := positive("detour", f.name, f.v); err != nil {
			return err
		}
	}
	if c.TimeLimit <= 0 {
		return fmt.Errorf("%w: detour: time_limit %v", ErrConfig, c.TimeLimit)
	}
	if c.ObstacleRadius+c.EERadius+c.Tolerance >= c.MinDistance/2 {
		return fmt.Errorf("%w: detour: obstacle_radius %v + ee_radius %v + tolerance %v leave no room within min_distance/2 = %v",
			ErrConfig, c.ObstacleRadius, c.EERadius, c.Tolerance, c.MinDistance/2)
	}
	return c.Workspace.validate("detour")
}

// Detour is the detour task.
type Detour struct {
	cfg      DetourConfig
	target   sim.Target
	obstacle sim.Obstacle
	lateral  [3]float64 // unit, horizontal, to the left of the start-to-target direction
	closest  float64    // smallest distance from the end effector to the obstacle's centre
	instr    string
	meta     Meta
}

// NewDetour returns a detour task; call Reset before use.
func NewDetour(cfg DetourConfig) (*Detour, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Detour{cfg: cfg.withDefaults()}, nil
}

func (t *Detour) Name() string             { return "detour" }
func (t *Detour) Instruction() string      { return t.instr }
func (t *Detour) TimeLimit() time.Duration { return t.cfg.TimeLimit }
func (t *Detour) Success() bool            { return t.meta.Success }
func (t *Detour) Meta() Meta               { return t.meta }

// Reset places the target and the obstacle halfway to it.
func (t *Detour) Reset(r *rand.Rand, rb *Robot) error {
	start := rb.EEPos(rb.Home)
	q := make([]float64, len(rb.Home))
	p, ok := t.cfg.Workspace.place(r, rb, q, func(p [3]float64) bool {
		return math.Hypot(p[0]-start[0], p[1]-start[1]) >= t.cfg.MinDistance
	})
	if !ok {
		return fmt.Errorf("%w: detour: no target %v m from the start around home", ErrPlace, t.cfg.MinDistance)
	}
	name, rgba := colour(r.IntN(MaxTargets))
	t.target = sim.Target{Name: name, Color: name, RGBA: rgba, Pos: p, Radius: targetRadius}
	c := [3]float64{(start[0] + p[0]) / 2, (start[1] + p[1]) / 2, (start[2] + p[2]) / 2}
	t.obstacle = sim.Obstacle{Name: "obstacle", A: c, B: c, Radius: t.cfg.ObstacleRadius}
	h := math.Hypot(p[0]-start[0], p[1]-start[1])
	t.lateral = [3]float64{-(p[1] - start[1]) / h, (p[0] - start[0]) / h, 0} // z × direction
	t.closest = math.Inf(1)
	t.instr = fmt.Sprintf(pick(r, []string{
		"reach the %s target without hitting the obstacle",
		"go around the obstacle to the %s ball",
		"avoid the obstacle and touch the %s sphere",
	}), name)
	t.meta = Meta{Task: t.Name(), Instruction: t.instr, Target: name, Clearance: math.Inf(1)}
	return nil
}

// Update checks for a collision, records the side of the closest pass, then checks the target.
func (t *Detour) Update(now time.Duration, ee [3]float64) bool {
	m := &t.meta
	m.Elapsed = now
	c := t.obstacle.A
	if d := dist(ee, c); d < t.closest {
		t.closest = d
		if s := (ee[0]-c[0])*t.lateral[0] + (ee[1]-c[1])*t.lateral[1]; s > 0 {
			m.Side = 1
		} else if s < 0 {
			m.Side = -1
		}
	}
	clear := t.obstacle.Dist(ee) - t.cfg.EERadius
	m.Clearance = min(m.Clearance, clear)
	if clear < 0 {
		m.Collided = true
	}
	m.Distance = dist(ee, t.target.Pos)
	if !m.Collided && m.Distance <= t.cfg.Tolerance {
		m.Success = true
	}
	return m.Success || m.Collided || now >= t.cfg.TimeLimit
}

// ObserveTo shows the VLM the instruction, the target and the obstacle.
func (t *Detour) ObserveTo(sc *vlm.Scene, _ time.Duration) {
	sc.Instruction = t.instr
	sc.Goal = t.target.Pos
	sc.GoalVelocity = [3]float64{}
	sc.Objects = append(sc.Objects[:0], vlm.Object{Pos: t.obstacle.A, Size: t.obstacle.Radius})
}

// TruthTo gives the target and the obstacle.
func (t *Detour) TruthTo(g *Truth, _ time.Duration) {
	*g = Truth{
		Goal:      t.target.Pos,
		Obstacles: append(g.Obstacles[:0], t.obstacle),
		EERadius:  t.cfg.EERadius,
		Tolerance: t.cfg.Tolerance,
	}
}

// SceneTo gives the target and the obstacle.
func (t *Detour) SceneTo(dst *sim.Scene, _ time.Duration) {
	dst.Targets = append(dst.Targets[:0], t.target)
	dst.Obstacles = append(dst.Obstacles[:0], t.obstacle)
}

// Lateral returns the unit horizontal vector pointing left of the start-to-target direction
// (seen from above): a pass on that side of the obstacle is Side +1.
func (t *Detour) Lateral() [3]float64 { return t.lateral }
