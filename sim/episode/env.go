package episode

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/flowact/flowact/robot"
	"github.com/flowact/flowact/sim"
	"github.com/flowact/flowact/sim/task"
	"github.com/flowact/flowact/sim/vlm"
)

// Errors of an Env.
var (
	// ErrDone is returned by an Env's clock once the episode is over.
	ErrDone = errors.New("episode: episode over")
	// ErrNoEmbedding is returned by Env.Latest before the first embedding is ready.
	ErrNoEmbedding = errors.New("episode: no embedding yet")
)

// Env is an episode driven by an external control loop, such as policy.Loop in `flowact eval`:
// the loop reads and commands Driver and sleeps on Clock; each SleepUntil steps the simulation
// to the requested time, updating the task and the VLM at every control tick (1/Rate) on the way,
// and returns ErrDone once the task says the episode is over. Latest is the VLM's output. An Env
// is safe for concurrent use.
type Env struct {
	mu     sync.Mutex
	tk     task.Task
	s      *sim.Sim
	rb     *task.Robot
	stream *vlm.Stream
	dt     time.Duration
	next   time.Duration // the next task tick
	t0     time.Time
	done   bool
	truth  robot.State
	sc     vlm.Scene
	scene  sim.Scene
	emb    []float32 // the latest embedding; a new slice for each one, never modified
	embAt  time.Duration
	tokens int
	width  int
	trace  *task.Trace // nil unless Record was called
}

// Start resets tk from seed and returns its episode for an external loop. The simulator starts
// at the robot's home; the first task tick is at time 0, taken now.
func (r *Runner) Start(tk task.Task, seed uint64) (*Env, error) {
	s, err := r.reset(tk, seed)
	if err != nil {
		return nil, err
	}
	e := &Env{tk: tk, s: s, rb: r.rb, stream: vlm.NewStream(r.enc, seed^0x5a5a5a5a), dt: r.dt, t0: s.Now()}
	e.tokens, e.width = r.enc.Shape()
	e.tick()
	return e, nil
}

// Driver returns the simulated robot (also a robot.TrajectoryWriter).
func (e *Env) Driver() *sim.Sim { return e.s }

// Instruction returns the episode's instruction.
func (e *Env) Instruction() string { return e.tk.Instruction() }

// Clock returns the clock that advances the episode.
func (e *Env) Clock() robot.Clock { return envClock{e} }

// Latest returns the newest embedding (Tokens x Width, row-major; shared, never modified) and
// the simulation time its scene was observed, or ErrNoEmbedding before the first is ready.
func (e *Env) Latest() (data []float32, stamp time.Time, tokens, width int, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.emb == nil {
		return nil, time.Time{}, e.tokens, e.width, ErrNoEmbedding
	}
	return e.emb, e.t0.Add(e.embAt), e.tokens, e.width, nil
}

// Record starts recording the episode into a new Trace, from the current tick on (the first,
// when called right after Start), and returns it: each task tick adds the true joint positions,
// the end effector, the goal and the scene. The Trace is the caller's to read once the episode
// is over.
func (e *Env) Record() *task.Trace {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.trace == nil {
		e.trace = new(task.Trace)
		e.s.TrueStateTo(&e.truth)
		e.trace.Add(e.tk, e.s.Elapsed(), e.truth.Position, e.rb.EEPos(e.truth.Position))
	}
	return e.trace
}

// Done reports whether the episode is over.
func (e *Env) Done() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.done
}

// Meta returns the task's metadata so far (Success among it).
func (e *Env) Meta() task.Meta {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.tk.Meta()
}

// tick runs the task and the VLM at the simulator's current time, a tick boundary. e.mu held
// or e not yet shared.
func (e *Env) tick() {
	t := e.s.Elapsed()
	e.s.TrueStateTo(&e.truth)
	ee := e.rb.EEPos(e.truth.Position)
	done := e.tk.Update(t, ee)
	if e.trace != nil {
		e.trace.Add(e.tk, t, e.truth.Position, ee)
	}
	if done {
		e.done = true
		return
	}
	e.tk.SceneTo(&e.scene, t)
	e.s.SetObjects(e.scene.Targets, e.scene.Obstacles) // for a visualizer reading Driver().SceneTo
	if e.stream.Due(t) {
		e.tk.ObserveTo(&e.sc, t)
		e.stream.Observe(t, &e.sc)
	}
	if emb, at, ok := e.stream.Latest(t); ok && (e.emb == nil || at != e.embAt) {
		e.emb, e.embAt = append([]float32(nil), emb...), at
	}
	e.next = t + e.dt
}

// advance steps the simulation to t, ticking the task on the way.
func (e *Env) advance(ctx context.Context, t time.Time) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	for {
		if e.done {
			return ErrDone
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		target := t.Sub(e.t0)
		now := e.s.Elapsed()
		if now >= target {
			return nil
		}
		if target < e.next {
			e.s.Step(target - now)
			return nil
		}
		e.s.Step(e.next - now)
		e.tick()
	}
}

type envClock struct{ e *Env }

func (c envClock) Now() time.Time { return c.e.s.Now() }

func (c envClock) SleepUntil(ctx context.Context, t time.Time) error { return c.e.advance(ctx, t) }
