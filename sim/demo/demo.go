package demo

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/flowact/flowact/sim/task"
)

// Config configures an Expert. The zero value is a usable default.
type Config struct {
	// Speed is the mean end-effector speed along the path, m/s; 0 means 0.2.
	Speed float64 `yaml:"speed"`
	// SpeedJitter is the relative spread of the speed, drawn uniformly from Speed (1 ± SpeedJitter),
	// in [0, 1); 0 means 0.25.
	SpeedJitter float64 `yaml:"speed_jitter"`
	// MinDuration is the shortest motion; 0 means 1 s.
	MinDuration time.Duration `yaml:"min_duration"`
	// Clearance is the distance kept between the end effector's collision sphere and obstacles,
	// m; 0 means 0.03.
	Clearance float64 `yaml:"clearance"`
	// ViaJitter scales the detour bulge by a factor drawn from [1, 1 + ViaJitter]; 0 means 0.5.
	ViaJitter float64 `yaml:"via_jitter"`
	// Tilt is the largest tilt of the detour bulge out of the horizontal, rad; 0 means 0.3.
	Tilt float64 `yaml:"tilt"`
	// Lambda is the IK damping, m; 0 means 0.01.
	Lambda float64 `yaml:"lambda"`
	// Iterations is the number of IK steps per control tick; 0 means 4.
	Iterations int `yaml:"iterations"`
	// Posture is the IK's null-space gain toward home per step; 0 means 0.05.
	Posture float64 `yaml:"posture"`
	// MaxStep is the largest joint change per IK step, rad; 0 means 0.2.
	MaxStep float64 `yaml:"max_step"`
	// Perturb is the standard deviation, rad per joint, of a disturbance added to the commands
	// the robot executes but not to those recorded (see Perturbation); 0 means none.
	Perturb float64 `yaml:"perturb"`
	// PerturbTime is the disturbance's correlation time; 0 means 0.5 s.
	PerturbTime time.Duration `yaml:"perturb_time"`
}

func (c Config) withDefaults() Config {
	def := func(v *float64, d float64) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.Speed, 0.2)
	def(&c.SpeedJitter, 0.25)
	def(&c.Clearance, 0.03)
	def(&c.ViaJitter, 0.5)
	def(&c.Tilt, 0.3)
	def(&c.Lambda, 0.01)
	def(&c.Posture, 0.05)
	def(&c.MaxStep, 0.2)
	if c.MinDuration == 0 {
		c.MinDuration = time.Second
	}
	if c.Iterations == 0 {
		c.Iterations = 4
	}
	if c.PerturbTime == 0 {
		c.PerturbTime = 500 * time.Millisecond
	}
	return c
}

// ErrConfig is wrapped by configuration errors.
var ErrConfig = errors.New("demo: bad config")

// Validate reports the first invalid field.
func (c Config) Validate() error {
	c = c.withDefaults()
	ok := func(v float64) bool { return v > 0 && !math.IsInf(v, 0) }
	switch {
	case !ok(c.Speed):
		return fmt.Errorf("%w: speed %v", ErrConfig, c.Speed)
	case !(c.SpeedJitter >= 0 && c.SpeedJitter < 1):
		return fmt.Errorf("%w: speed_jitter %v, want [0, 1)", ErrConfig, c.SpeedJitter)
	case c.MinDuration < 0:
		return fmt.Errorf("%w: min_duration %v", ErrConfig, c.MinDuration)
	case !ok(c.Clearance), !(c.ViaJitter >= 0) || math.IsInf(c.ViaJitter, 0), !(c.Tilt >= 0 && c.Tilt < math.Pi/2):
		return fmt.Errorf("%w: clearance %v, via_jitter %v or tilt %v", ErrConfig, c.Clearance, c.ViaJitter, c.Tilt)
	case !ok(c.Lambda), !ok(c.Posture), !ok(c.MaxStep), c.Iterations < 0:
		return fmt.Errorf("%w: IK lambda %v, posture %v, max_step %v or iterations %d", ErrConfig, c.Lambda, c.Posture, c.MaxStep, c.Iterations)
	case !(c.Perturb >= 0) || math.IsInf(c.Perturb, 0) || c.PerturbTime < 0:
		return fmt.Errorf("%w: perturb %v rad, perturb_time %v: want a finite std >= 0 and a time >= 0", ErrConfig, c.Perturb, c.PerturbTime)
	}
	return nil
}

// Expert is a scripted demonstrator for one robot.
type Expert struct {
	cfg     Config
	rb      *task.Robot
	ik      *IK
	r       *rand.Rand
	q       []float64 // the IK solution, the last command
	start   [3]float64
	goal    [3]float64
	bulge   [3]float64
	dur     time.Duration
	side    int
	planned bool
}

// New returns an expert for rb drawing its variations from r.
func New(cfg Config, rb *task.Robot, r *rand.Rand) (*Expert, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	return &Expert{cfg: cfg, rb: rb, r: r, ik: NewIK(rb, cfg.Lambda, cfg.Posture, cfg.MaxStep), q: make([]float64, len(rb.Home))}, nil
}

// Reset starts an episode with the arm at joint positions q0.
func (e *Expert) Reset(q0 []float64) {
	copy(e.q, q0)
	e.start = e.rb.EEPos(q0)
	e.planned = false
	e.side = 0
	e.bulge = [3]float64{}
}

// Side returns the detour side of the current plan: +1 left of the start-to-goal direction seen
// from above, -1 right, 0 no detour.
func (e *Expert) Side() int { return e.side }

// Duration returns the planned motion's duration (zero before the first CommandTo).
func (e *Expert) Duration() time.Duration { return e.dur }

// CommandTo writes the joint targets for time t into dst (length DoF), given the task's truth
// at t. The first call plans the episode's path. It allocates nothing.
func (e *Expert) CommandTo(dst []float64, t time.Duration, g *task.Truth) {
	if !e.planned {
		e.plan(g)
	}
	u := min(1, max(0, float64(t)/float64(e.dur)))
	s := u * u * u * (10 - 15*u + 6*u*u)
	goal := e.goal
	if g.Moving {
		goal = g.Goal
	}
	b := math.Sin(math.Pi * s)
	var p [3]float64
	for k := range 3 {
		p[k] = e.start[k] + s*(goal[k]-e.start[k]) + b*e.bulge[k]
	}
	e.ik.Solve(e.q, p, e.cfg.Iterations)
	copy(dst, e.q)
}

// plan draws the episode's speed and, when an obstacle is in the way, the detour.
func (e *Expert) plan(g *task.Truth) {
	e.planned = true
	e.goal = g.Goal
	speed := e.cfg.Speed * (1 + e.cfg.SpeedJitter*(2*e.r.Float64()-1))
	d := sub(e.goal, e.start)
	length := norm(d)
	if e.blocked(g, [3]float64{}) {
		e.side = 1 - 2*e.r.IntN(2)
		// Horizontal, perpendicular to d, to the left (z × d); then tilted about d.
		h := math.Hypot(d[0], d[1])
		lat := [3]float64{-d[1] / h, d[0] / h, 0}
		if h == 0 {
			lat = [3]float64{0, 1, 0}
		}
		dn := scale(d, 1/length)
		up := cross(dn, lat)
		a := e.cfg.Tilt * (2*e.r.Float64() - 1)
		dir := add(scale(lat, float64(e.side)*math.Cos(a)), scale(up, math.Sin(a)))
		// The smallest bulge that clears, growing by 10%: at most 40 steps (45x the start).
		r0 := g.EERadius + e.cfg.Clearance
		for _, o := range g.Obstacles {
			r0 = max(r0, o.Radius+g.EERadius+e.cfg.Clearance)
		}
		amount := r0
		for range 40 {
			if !e.blocked(g, scale(dir, amount)) {
				break
			}
			amount *= 1.1
		}
		amount *= 1 + e.cfg.ViaJitter*e.r.Float64()
		e.bulge = scale(dir, amount)
		length += 2 * amount // the bulge adds about twice its height to the path
	}
	if g.Moving {
		speed *= 1.5 // catch a moving goal before it gets far
	}
	e.dur = max(e.cfg.MinDuration, time.Duration(length/speed*float64(time.Second)))
}

// blocked reports whether the path with bulge b passes closer than EERadius + Clearance to an
// obstacle, checked at 100 points.
func (e *Expert) blocked(g *task.Truth, b [3]float64) bool {
	const samples = 100
	for i := range samples + 1 {
		s := float64(i) / samples
		bs := math.Sin(math.Pi * s)
		var p [3]float64
		for k := range 3 {
			p[k] = e.start[k] + s*(e.goal[k]-e.start[k]) + bs*b[k]
		}
		for _, o := range g.Obstacles {
			if o.Dist(p) < g.EERadius+e.cfg.Clearance {
				return true
			}
		}
	}
	return false
}

func sub(a, b [3]float64) [3]float64 { return [3]float64{a[0] - b[0], a[1] - b[1], a[2] - b[2]} }
func add(a, b [3]float64) [3]float64 { return [3]float64{a[0] + b[0], a[1] + b[1], a[2] + b[2]} }
func scale(a [3]float64, s float64) [3]float64 {
	return [3]float64{a[0] * s, a[1] * s, a[2] * s}
}
func norm(a [3]float64) float64 { return math.Sqrt(a[0]*a[0] + a[1]*a[1] + a[2]*a[2]) }
func cross(a, b [3]float64) [3]float64 {
	return [3]float64{a[1]*b[2] - a[2]*b[1], a[2]*b[0] - a[0]*b[2], a[0]*b[1] - a[1]*b[0]}
}
