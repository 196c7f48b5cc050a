package episode

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/flowact/flowact/robot"
	"github.com/flowact/flowact/sim"
	"github.com/flowact/flowact/sim/demo"
	"github.com/flowact/flowact/sim/task"
	"github.com/flowact/flowact/sim/vlm"
)

// Config configures a Runner.
type Config struct {
	// Rate is the control rate, Hz; 0 means 50.
	Rate float64     `yaml:"rate"`
	Sim  sim.Config  `yaml:"sim"`
	VLM  vlm.Config  `yaml:"vlm"`
	Demo demo.Config `yaml:"demo"`
}

// DefaultRate and MaxRate are the default and the largest control rate, Hz.
const (
	DefaultRate = 50.0
	MaxRate     = 10000.0
)

// ErrConfig is wrapped by configuration errors.
var ErrConfig = errors.New("episode: bad config")

// Validate reports the first invalid field.
func (c Config) Validate() error {
	if !(c.Rate >= 0 && c.Rate <= MaxRate) {
		return fmt.Errorf("%w: rate %v Hz, want 0..%v", ErrConfig, c.Rate, MaxRate)
	}
	if c.Sim.Initial != nil {
		return fmt.Errorf("%w: sim.initial is set by the runner (the robot's home)", ErrConfig)
	}
	if err := c.Sim.Validate(); err != nil {
		return fmt.Errorf("episode: %w", err)
	}
	if err := c.VLM.Validate(); err != nil {
		return fmt.Errorf("episode: %w", err)
	}
	if err := c.Demo.Validate(); err != nil {
		return fmt.Errorf("episode: %w", err)
	}
	return nil
}

// Observation is what a policy sees at a tick.
type Observation struct {
	T time.Duration // since the start of the episode
	// State is read through the simulator's faults; Stamp is the measurement time. Its slices
	// are the runner's, valid during the call only.
	State robot.State
	// Embedding is the newest VLM embedding, Tokens x Width row-major, or nil before the first
	// is ready. It is the episode's record of it: read it, do not modify it.
	Embedding     []float32
	Tokens, Width int
	EmbeddingAt   time.Duration // when the embedded scene was observed; -1 before the first
	Instruction   string
}

// Policy writes the joint command for one tick into cmd (length DoF, model order). An error
// ends the episode and is returned by Run.
type Policy func(obs *Observation, cmd []float64) error

// Record is one tick of an episode.
type Record struct {
	T           time.Duration // since the start of the episode
	StateAt     time.Duration // measurement time of the state, since the start
	Position    []float64     // the joint state the policy saw, model order
	Velocity    []float64
	Embedding   []float32     // nil before the first embedding is ready; shared while unchanged
	EmbeddingAt time.Duration // observation time of the embedding; -1 before the first
	Command     []float64     // the joint position command, model order
	EE          [3]float64    // the end effector's true position, m
}

// Result is a finished episode.
type Result struct {
	Seed          uint64
	Meta          task.Meta
	Success       bool
	Rate          float64
	Tokens, Width int
	Joints        []string // joint names, model order
	Expert        bool     // the scripted expert acted
	Side          int      // the expert's detour side (+1 left, -1 right, 0 none)
	Records       []Record
}

// Runner runs episodes of a robot. It is not safe for concurrent use; make one per goroutine.
type Runner struct {
	cfg   Config
	rb    *task.Robot
	enc   *vlm.Encoder
	dt    time.Duration
	sc    vlm.Scene
	tr    task.Truth
	st    robot.State
	truth robot.State
	// lower, upper are the joints' position limits (infinite where a joint has none), for the
	// disturbed demonstrations.
	lower, upper []float64
}

// New returns a runner for rb.
func New(cfg Config, rb *task.Robot) (*Runner, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if j := cfg.Sim.Faults.StuckJoint; j != "" && rb.Model.Index(j) < 0 {
		return nil, fmt.Errorf("%w: sim.faults.stuck_joint %q is not a joint of %q", ErrConfig, j, rb.Model.Name)
	}
	if cfg.Rate == 0 {
		cfg.Rate = DefaultRate
	}
	enc, err := vlm.NewEncoder(cfg.VLM)
	if err != nil {
		return nil, err
	}
	r := &Runner{cfg: cfg, rb: rb, enc: enc, dt: time.Duration(float64(time.Second) / cfg.Rate), st: robot.NewState(len(rb.Home))}
	for _, j := range rb.Model.Joints {
		lo, hi := math.Inf(-1), math.Inf(1)
		if j.Limits.HasPosition {
			lo, hi = j.Limits.Lower, j.Limits.Upper
		}
		r.lower, r.upper = append(r.lower, lo), append(r.upper, hi)
	}
	return r, nil
}

// Encoder returns the runner's synthetic VLM.
func (r *Runner) Encoder() *vlm.Encoder { return r.enc }

// reset draws tk's scene from seed and returns a simulator at the robot's home whose random
// faults are seeded from seed too.
func (r *Runner) reset(tk task.Task, seed uint64) (*sim.Sim, error) {
	if err := tk.Reset(rand.New(rand.NewPCG(seed, 1)), r.rb); err != nil {
		return nil, fmt.Errorf("episode: seed %d: %w", seed, err)
	}
	scfg := r.cfg.Sim
	scfg.Initial = r.rb.Home
	scfg.Faults.Seed ^= seed * 0x9e3779b97f4a7c15 // golden-ratio mix: distinct episodes, distinct faults
	return sim.New(r.rb.Model, scfg)
}

// Run runs one episode of tk from seed, with pol acting, or the scripted expert when pol is nil.
func (r *Runner) Run(ctx context.Context, tk task.Task, seed uint64, pol Policy) (*Result, error) {
	s, err := r.reset(tk, seed)
	if err != nil {
		return nil, err
	}
	var ex *demo.Expert
	var perturb *demo.Perturbation
	if pol == nil {
		if ex, err = demo.New(r.cfg.Demo, r.rb, rand.New(rand.NewPCG(seed, 2))); err != nil {
			return nil, err
		}
		ex.Reset(r.rb.Home)
		perturb = r.cfg.Demo.Perturbation(len(r.rb.Home), r.dt, rand.New(rand.NewPCG(seed, 3)))
	}
	t0 := s.Now()
	stream := vlm.NewStream(r.enc, seed^0x5a5a5a5a)
	tokens, width := r.enc.Shape()
	n := len(r.rb.Home)
	ticks := int(tk.TimeLimit()/r.dt) + 2
	res := &Result{
		Seed: seed, Rate: r.cfg.Rate, Tokens: tokens, Width: width,
		Joints: r.rb.Model.Names(), Expert: ex != nil,
		Records: make([]Record, 0, ticks),
	}
	slab := make([]float64, 0, 3*n*ticks)
	take := func(v []float64) []float64 {
		if len(slab)+len(v) > cap(slab) {
			slab = make([]float64, 0, 3*n*ticks)
		}
		slab = append(slab, v...)
		return slab[len(slab)-len(v) : len(slab) : len(slab)]
	}
	obs := Observation{Tokens: tokens, Width: width, Instruction: tk.Instruction()}
	cmd, exec := make([]float64, n), make([]float64, n)
	var emb []float32 // the current embedding's copy, shared by records
	var embAt time.Duration = -1
	for k := 0; ; k++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		t := time.Duration(k) * r.dt
		s.TrueStateTo(&r.truth)
		ee := r.rb.EEPos(r.truth.Position)
		if tk.Update(t, ee) {
			break
		}
		if stream.Due(t) {
			tk.ObserveTo(&r.sc, t)
			stream.Observe(t, &r.sc)
		}
		if err := s.ReadState(&r.st); errors.Is(err, robot.ErrNoState) {
			s.Step(r.dt)
			continue
		} else if err != nil {
			return nil, err
		}
		e, at, ok := stream.Latest(t)
		if ok && at != embAt {
			emb, embAt = append([]float32(nil), e...), at
		}
		obs.T, obs.State, obs.Embedding, obs.EmbeddingAt = t, r.st, emb, embAt
		if ex != nil {
			tk.TruthTo(&r.tr, t)
			ex.CommandTo(cmd, t, &r.tr)
		} else if err := pol(&obs, cmd); err != nil {
			return nil, fmt.Errorf("episode: policy at %v: %w", t, err)
		}
		// The robot executes the expert's command disturbed (when configured); the record keeps
		// the expert's own.
		copy(exec, cmd)
		if perturb != nil {
			perturb.Apply(exec, r.lower, r.upper)
		}
		if err := s.WriteCommand(&robot.Command{Position: exec}); err != nil {
			return nil, fmt.Errorf("episode: command at %v: %w", t, err)
		}
		res.Records = append(res.Records, Record{
			T: t, StateAt: r.st.Stamp.Sub(t0), Position: take(r.st.Position), Velocity: take(r.st.Velocity),
			Embedding: emb, EmbeddingAt: embAt, Command: take(cmd), EE: ee,
		})
		s.Step(r.dt)
	}
	res.Meta = tk.Meta()
	res.Success = tk.Success()
	if ex != nil {
		res.Side = ex.Side()
	}
	return res, nil
}
