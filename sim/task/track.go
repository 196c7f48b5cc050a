package task

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/flowact/flowact/sim"
	"github.com/flowact/flowact/sim/vlm"
)

// TrackConfig configures track. The target follows the forward kinematics of
// q(t) = qc + A sin(w t + phi) on each joint of the end-effector chain, with qc drawn like a
// reach target and A, w, phi drawn per joint.
type TrackConfig struct {
	// Tolerance is the tracking distance, m; 0 means 0.04.
	Tolerance float64 `yaml:"tolerance"`
	// TimeLimit is the episode length (track always runs to it); 0 means 8 s.
	TimeLimit time.Duration `yaml:"time_limit"`
	// Settle is the time allowed to catch the target before tracking counts; 0 means 2 s.
	Settle time.Duration `yaml:"settle"`
	// Fraction is the least fraction of ticks after Settle within Tolerance; 0 means 0.9.
	Fraction float64 `yaml:"fraction"`
	// Amplitude is the largest joint amplitude, rad; each joint draws from [Amplitude/2,
	// Amplitude]; 0 means 0.25.
	Amplitude float64 `yaml:"amplitude"`
	// Frequency is the largest joint angular frequency, rad/s; each joint draws from
	// [Frequency/2, Frequency]; 0 means 1.
	Frequency float64 `yaml:"frequency"`
	// MaxSpeed is the target's speed limit, m/s: paths faster anywhere are redrawn; 0 means 0.15.
	MaxSpeed  float64   `yaml:"max_speed"`
	Workspace Workspace `yaml:"workspace"`
}

func (c TrackConfig) withDefaults() TrackConfig {
	if c.Tolerance == 0 {
		c.Tolerance = 0.04
	}
	if c.TimeLimit == 0 {
		c.TimeLimit = 8 * time.Second
	}
	if c.Settle == 0 {
		c.Settle = 2 * time.Second
	}
	if c.Fraction == 0 {
		c.Fraction = 0.9
	}
	if c.Amplitude == 0 {
		c.Amplitude = 0.25
	}
	if c.Frequency == 0 {
		c.Frequency = 1
	}
	if c.MaxSpeed == 0 {
		c.MaxSpeed = 0.15
	}
	if c.Workspace.Spread == 0 {
		c.Workspace.Spread = 0.4 // smaller than reach's 0.6: room for the motion around the centre
	}
	c.Workspace = c.Workspace.withDefaults()
	return c
}

// Validate reports the first invalid field.
func (c TrackConfig) Validate() error {
	c = c.withDefaults()
	for _, f := range []struct {
		name string
		v    float64
	}{{"tolerance", c.Tolerance}, {"amplitude", c.Amplitude}, {"frequency", c.Frequency}, {"max_speed", c.MaxSpeed}} {
		if err := positive("track", f.name, f.v); err != nil {
			return err
		}
	}
	if !(c.Fraction > 0 && c.Fraction <= 1) {
		return fmt.Errorf("%w: track: fraction %v, want (0, 1]", ErrConfig, c.Fraction)
	}
	if c.TimeLimit <= 0 || c.Settle < 0 || c.Settle >= c.TimeLimit {
		return fmt.Errorf("%w: track: settle %v must lie within time_limit %v", ErrConfig, c.Settle, c.TimeLimit)
	}
	return c.Workspace.validate("track")
}

// Track is the track task.
type Track struct {
	cfg         TrackConfig
	rb          *Robot
	joints      []int
	qc, a, w, p []float64     // per chain joint: centre (model order, all joints), amplitude, frequency, phase
	q           []float64     // scratch, model order
	jac         []float64     // 6 x DoF
	cacheT      time.Duration // the time of the cached position and velocity, -1 for none
	cacheP      [3]float64
	cacheV      [3]float64
	target      sim.Target
	instr       string
	in, counted int
	meta        Meta
}

// NewTrack returns a track task; call Reset before use.
func NewTrack(cfg TrackConfig) (*Track, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Track{cfg: cfg.withDefaults()}, nil
}

func (t *Track) Name() string             { return "track" }
func (t *Track) Instruction() string      { return t.instr }
func (t *Track) TimeLimit() time.Duration { return t.cfg.TimeLimit }
func (t *Track) Success() bool            { return t.meta.Success }
func (t *Track) Meta() Meta               { return t.meta }

// Reset draws the target's path.
func (t *Track) Reset(r *rand.Rand, rb *Robot) error {
	n := len(rb.Home)
	t.rb = rb
	t.joints = rb.EE.Joints()
	t.qc, t.q, t.jac = make([]float64, n), make([]float64, n), make([]float64, 6*n)
	k := len(t.joints)
	t.a, t.w, t.p = make([]float64, k), make([]float64, k), make([]float64, k)
	ws := t.cfg.Workspace
	t.cacheT = -1
	const draws = 200
	for range draws {
		ws.sampleQ(t.qc, r, rb, ws.Spread)
		for i := range k {
			sign := float64(1 - 2*r.IntN(2))
			t.a[i] = sign * t.cfg.Amplitude * (0.5 + 0.5*r.Float64())
			t.w[i] = t.cfg.Frequency * (0.5 + 0.5*r.Float64())
			t.p[i] = 2 * math.Pi * r.Float64()
		}
		t.cacheT = -1
		if t.feasible() {
			name, rgba := colour(r.IntN(MaxTargets))
			t.target = sim.Target{Name: name, Color: name, RGBA: rgba, Radius: targetRadius}
			t.instr = fmt.Sprintf(pick(r, []string{"follow the %s ball", "track the moving %s target", "keep up with the %s sphere"}), name)
			t.in, t.counted = 0, 0
			t.meta = Meta{Task: t.Name(), Instruction: t.instr, Target: name}
			return nil
		}
	}
	return fmt.Errorf("%w: track: no path within the limits, above %v m and slower than %v m/s in %d draws", ErrPlace, ws.MinHeight, t.cfg.MaxSpeed, draws)
}

// feasible checks the drawn path over the episode: joint limits, height, speed.
func (t *Track) feasible() bool {
	for k, i := range t.joints {
		if l := t.rb.Model.Joints[i].Limits; l.HasPosition {
			ai := math.Abs(t.a[k])
			if t.qc[i]-ai < l.Lower || t.qc[i]+ai > l.Upper {
				return false
			}
		}
	}
	const samples = 200
	for s := range samples + 1 {
		at := time.Duration(int64(t.cfg.TimeLimit) * int64(s) / samples)
		p, v := t.at(at)
		if p[2] < t.cfg.Workspace.MinHeight || math.Sqrt(v[0]*v[0]+v[1]*v[1]+v[2]*v[2]) > t.cfg.MaxSpeed {
			return false
		}
	}
	return true
}

// at returns the target's position and velocity at time at: p = FK(q(t)), v = J(q(t)) q'(t).
// The last result is cached: Update, ObserveTo and TruthTo ask for the same tick.
func (t *Track) at(at time.Duration) (p, v [3]float64) {
	if at == t.cacheT {
		return t.cacheP, t.cacheV
	}
	p, v = t.eval(at)
	t.cacheT, t.cacheP, t.cacheV = at, p, v
	return p, v
}

func (t *Track) eval(at time.Duration) (p, v [3]float64) {
	copy(t.q, t.qc)
	s := at.Seconds()
	n := len(t.q)
	for k, i := range t.joints {
		t.q[i] += t.a[k] * math.Sin(t.w[k]*s+t.p[k])
	}
	p = t.rb.EEPos(t.q)
	t.rb.EE.Jacobian(t.jac, t.q)
	for k, i := range t.joints {
		qd := t.a[k] * t.w[k] * math.Cos(t.w[k]*s+t.p[k])
		for r := range 3 {
			v[r] += t.jac[r*n+i] * qd
		}
	}
	return p, v
}

// Update counts the ticks within tolerance after Settle; the episode ends at the time limit.
func (t *Track) Update(now time.Duration, ee [3]float64) bool {
	p, _ := t.at(now)
	m := &t.meta
	m.Elapsed = now
	m.Distance = dist(ee, p)
	if now >= t.cfg.Settle {
		t.counted++
		if m.Distance <= t.cfg.Tolerance {
			t.in++
		}
		m.Tracked = float64(t.in) / float64(t.counted)
	}
	if now >= t.cfg.TimeLimit {
		m.Success = t.counted > 0 && m.Tracked >= t.cfg.Fraction
		return true
	}
	return false
}

// ObserveTo shows the VLM the instruction and the target with its velocity.
func (t *Track) ObserveTo(sc *vlm.Scene, now time.Duration) {
	sc.Instruction = t.instr
	sc.Goal, sc.GoalVelocity = t.at(now)
	sc.Objects = sc.Objects[:0]
}

// TruthTo gives the target's position and velocity.
func (t *Track) TruthTo(g *Truth, now time.Duration) {
	p, v := t.at(now)
	*g = Truth{Goal: p, GoalVelocity: v, Moving: true, Obstacles: g.Obstacles[:0], Tolerance: t.cfg.Tolerance}
}

// SceneTo gives the target where it is at now.
func (t *Track) SceneTo(dst *sim.Scene, now time.Duration) {
	tg := t.target
	tg.Pos, _ = t.at(now)
	dst.Targets = append(dst.Targets[:0], tg)
	dst.Obstacles = dst.Obstacles[:0]
}
