package task

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/flowact/flowact/sim"
	"github.com/flowact/flowact/sim/vlm"
)

// ReachConfig configures reach.
type ReachConfig struct {
	// Targets is the number of coloured targets, 1..MaxTargets; 0 means 3.
	Targets int `yaml:"targets"`
	// Tolerance is the success distance from the named target's centre, m; 0 means 0.03.
	Tolerance float64 `yaml:"tolerance"`
	// TimeLimit is the episode limit; 0 means 6 s.
	TimeLimit time.Duration `yaml:"time_limit"`
	// MinDistance is the least distance between targets and from the start, m; 0 means 0.12.
	MinDistance float64   `yaml:"min_distance"`
	Workspace   Workspace `yaml:"workspace"`
}

func (c ReachConfig) withDefaults() ReachConfig {
	if c.Targets == 0 {
		c.Targets = 3
	}
	if c.Tolerance == 0 {
		c.Tolerance = 0.03
	}
	if c.TimeLimit == 0 {
		c.TimeLimit = 6 * time.Second
	}
	if c.MinDistance == 0 {
		c.MinDistance = 0.12
	}
	c.Workspace = c.Workspace.withDefaults()
	return c
}

// Validate reports the first invalid field.
func (c ReachConfig) Validate() error {
	c = c.withDefaults()
	if c.Targets < 1 || c.Targets > MaxTargets {
		return fmt.Errorf("%w: reach: targets %d, want 1..%d", ErrConfig, c.Targets, MaxTargets)
	}
	if err := positive("reach", "tolerance", c.Tolerance); err != nil {
		return err
	}
	if err := positive("reach", "min_distance", c.MinDistance); err != nil {
		return err
	}
	if c.TimeLimit <= 0 {
		return fmt.Errorf("%w: reach: time_limit %v", ErrConfig, c.TimeLimit)
	}
	return c.Workspace.validate("reach")
}

// targetRadius is the display radius of a target, m.
const targetRadius = 0.025

// Reach is the reach task.
type Reach struct {
	cfg     ReachConfig
	targets []sim.Target
	goal    int // index of the named target
	instr   string
	meta    Meta
}

// NewReach returns a reach task; call Reset before use.
func NewReach(cfg ReachConfig) (*Reach, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Reach{cfg: cfg.withDefaults()}, nil
}

func (t *Reach) Name() string             { return "reach" }
func (t *Reach) Instruction() string      { return t.instr }
func (t *Reach) TimeLimit() time.Duration { return t.cfg.TimeLimit }
func (t *Reach) Success() bool            { return t.meta.Success }
func (t *Reach) Meta() Meta               { return t.meta }

// Reset places the targets and names one.
func (t *Reach) Reset(r *rand.Rand, rb *Robot) error {
	start := rb.EEPos(rb.Home)
	q := make([]float64, len(rb.Home))
	t.targets = t.targets[:0]
	colours := r.Perm(MaxTargets)[:t.cfg.Targets]
	for _, ci := range colours {
		p, ok := t.cfg.Workspace.place(r, rb, q, func(p [3]float64) bool {
			if dist(p, start) < t.cfg.MinDistance {
				return false
			}
			for _, o := range t.targets {
				if dist(p, o.Pos) < t.cfg.MinDistance {
					return false
				}
			}
			return true
		})
		if !ok {
			return fmt.Errorf("%w: reach: no room for %d targets %v apart around home", ErrPlace, t.cfg.Targets, t.cfg.MinDistance)
		}
		name, rgba := colour(ci)
		t.targets = append(t.targets, sim.Target{Name: name, Color: name, RGBA: rgba, Pos: p, Radius: targetRadius})
	}
	t.goal = r.IntN(len(t.targets))
	name := t.targets[t.goal].Name
	t.instr = fmt.Sprintf(pick(r, []string{"reach the %s target", "touch the %s ball", "go to the %s sphere", "move to the %s one"}), name)
	t.meta = Meta{Task: t.Name(), Instruction: t.instr, Target: name}
	return nil
}

// Update checks the end effector against the named target.
func (t *Reach) Update(now time.Duration, ee [3]float64) bool {
	t.meta.Elapsed = now
	t.meta.Distance = dist(ee, t.targets[t.goal].Pos)
	if t.meta.Distance <= t.cfg.Tolerance {
		t.meta.Success = true
	}
	return t.meta.Success || now >= t.cfg.TimeLimit
}

// ObserveTo shows the VLM the instruction, the named target and the other targets.
func (t *Reach) ObserveTo(sc *vlm.Scene, _ time.Duration) {
	sc.Instruction = t.instr
	sc.Goal = t.targets[t.goal].Pos
	sc.GoalVelocity = [3]float64{}
	sc.Objects = sc.Objects[:0]
	for i, o := range t.targets {
		if i != t.goal {
			sc.Objects = append(sc.Objects, vlm.Object{Pos: o.Pos, Size: o.Radius})
		}
	}
}

// TruthTo gives the named target.
func (t *Reach) TruthTo(g *Truth, _ time.Duration) {
	*g = Truth{Goal: t.targets[t.goal].Pos, Obstacles: g.Obstacles[:0], Tolerance: t.cfg.Tolerance}
}

// SceneTo gives the targets.
func (t *Reach) SceneTo(dst *sim.Scene, _ time.Duration) {
	dst.Targets = append(dst.Targets[:0], t.targets...)
	dst.Obstacles = dst.Obstacles[:0]
}
