package episode

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flowact/flowact/configs"
	"github.com/flowact/flowact/dataset"
	"github.com/flowact/flowact/robot"
	"github.com/flowact/flowact/sim"
	"github.com/flowact/flowact/sim/demo"
	"github.com/flowact/flowact/sim/task"
	"github.com/flowact/flowact/sim/vlm"
)

func shipped(t testing.TB, name string) *task.Robot {
	t.Helper()
	rb, err := task.ShippedRobot(name)
	if err != nil {
		t.Fatal(err)
	}
	return rb
}

func newTask(t testing.TB, name string) task.Task {
	t.Helper()
	tk, err := task.New(task.Config{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

// smallVLM keeps the expert tests fast: the expert does not read the embedding, and a 4 x 64
// encoder costs 1/16 of the default 16 x 256 one while running the same code.
var smallVLM = vlm.Config{Tokens: 4, Width: 64}

// TestExpertSucceeds runs the scripted expert on seeded episodes of every task at 50 Hz:
// 100 per task on the 6-DoF UR5, 10 per task on the 7-DoF Panda and the 5-DoF arm.
func TestExpertSucceeds(t *testing.T) {
	for _, c := range []struct {
		robot string
		n     int
	}{{"ur5", 100}, {"panda", 10}, {"arm5", 10}} {
		rb := shipped(t, c.robot)
		r, err := New(Config{VLM: smallVLM}, rb)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range task.Names() {
			tk := newTask(t, name)
			ok, left, right := 0, 0, 0
			for seed := range uint64(c.n) {
				res, err := r.Run(context.Background(), tk, seed, nil)
				if err != nil {
					t.Fatal(err)
				}
				if res.Success {
					ok++
				} else {
					t.Logf("%s %s seed %d failed: %+v", c.robot, name, seed, res.Meta)
				}
				if name == "detour" && res.Success {
					// The side the end effector passed on is the side the expert planned.
					if res.Meta.Side != res.Side {
						t.Errorf("%s seed %d: planned side %d, passed on %d", c.robot, seed, res.Side, res.Meta.Side)
					}
					if res.Side > 0 {
						left++
					} else {
						right++
					}
				}
				if n := len(res.Records); n == 0 || res.Records[n-1].T >= tk.TimeLimit() {
					t.Fatalf("%s %s seed %d: %d records, the last at %v", c.robot, name, seed, n, res.Records[n-1].T)
				}
			}
			// >= 99%: at most one failure in 100 (none in 10).
			if ok < c.n-c.n/100 {
				t.Errorf("%s %s: the expert succeeded in %d of %d episodes", c.robot, name, ok, c.n)
			}
			if name == "detour" && c.n == 100 {
				// Binomial(100, 1/2): sd 5; 50 ± 15 (3 sd) holds for a fair coin with
				// probability 99.7%, and fails a coin biased to 0.3 or 0.7 with probability 45%.
				if left < 35 || left > 65 {
					t.Errorf("%s detour: %d left, %d right, want about 50/50", c.robot, left, right)
				}
				t.Logf("%s detour: %d left, %d right", c.robot, left, right)
			}
			t.Logf("%s %s: %d/%d", c.robot, name, ok, c.n)
		}
	}
}

func TestDeterministic(t *testing.T) {
	rb := shipped(t, "ur5")
	cfg := Config{VLM: smallVLM, Sim: sim.Config{Faults: sim.Faults{PositionNoise: 0.001, StateDrop: 0.1}}}
	run := func(seed uint64) *Result {
		r, err := New(cfg, rb)
		if err != nil {
			t.Fatal(err)
		}
		res, err := r.Run(context.Background(), newTask(t, "detour"), seed, nil)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	a, b, c := run(3), run(3), run(4)
	if len(a.Records) != len(b.Records) || a.Meta != b.Meta {
		t.Fatalf("same seed: %d vs %d records, %+v vs %+v", len(a.Records), len(b.Records), a.Meta, b.Meta)
	}
	for i := range a.Records {
		x, y := a.Records[i], b.Records[i]
		if x.T != y.T || x.StateAt != y.StateAt || x.EE != y.EE || !slices.Equal(x.Position, y.Position) ||
			!slices.Equal(x.Command, y.Command) || !slices.Equal(x.Embedding, y.Embedding) {
			t.Fatalf("same seed, record %d differs", i)
		}
	}
	if c.Meta.Instruction == a.Meta.Instruction && len(c.Records) == len(a.Records) && slices.Equal(c.Records[10].Command, a.Records[10].Command) {
		t.Error("seeds 3 and 4 give the same episode")
	}
}

// TestPerturbedDemonstrations: with demo.perturb the robot executes disturbed commands (its
// joint states leave the undisturbed run's) while the records keep the expert's own commands,
// tick for tick the same as without the disturbance (DART).
func TestPerturbedDemonstrations(t *testing.T) {
	rb := shipped(t, "ur5")
	run := func(perturb float64) *Result {
		r, err := New(Config{VLM: smallVLM, Demo: demo.Config{Perturb: perturb}}, rb)
		if err != nil {
			t.Fatal(err)
		}
		res, err := r.Run(context.Background(), newTask(t, "detour"), 5, nil)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	clean, dist := run(0), run(0.04)
	n := min(len(clean.Records), len(dist.Records))
	off := 0.0
	for i := range n {
		a, b := clean.Records[i], dist.Records[i]
		if !slices.Equal(a.Command, b.Command) {
			t.Fatalf("tick %d: recorded command %v disturbed, %v undisturbed; want the expert's own in both", i, b.Command, a.Command)
		}
		for j := range a.Position {
			off = max(off, math.Abs(a.Position[j]-b.Position[j]))
		}
	}
	// A 0.04 rad disturbance with a 0.5 s correlation time moves some joint by well over a
	// hundredth of a radian within an episode of a few seconds.
	if off < 0.01 {
		t.Errorf("the disturbed run's joint states stay within %.4f rad of the undisturbed run's", off)
	}
	if _, err := New(Config{Demo: demo.Config{Perturb: -1}}, rb); err == nil || !strings.Contains(err.Error(), "perturb") {
		t.Errorf("a negative perturb: error %v, want one naming perturb", err)
	}
}

// TestPolicyObservations drives a policy that holds the home position and checks what it sees:
// the state through a 30 ms latency, embeddings at the VLM's 10 Hz with 100 ms latency.
func TestPolicyObservations(t *testing.T) {
	rb := shipped(t, "arm5")
	cfg := Config{VLM: smallVLM, Sim: sim.Config{Faults: sim.Faults{StateLatency: 30 * time.Millisecond}}}
	r, err := New(cfg, rb)
	if err != nil {
		t.Fatal(err)
	}
	var ats []time.Duration
	hold := func(obs *Observation, cmd []float64) error {
		if age := obs.T - obs.State.Stamp.Sub(time.Unix(0, 0)); age != 40*time.Millisecond {
			return fmt.Errorf("state is %v old, want 40ms (the 20 ms tick after 30 ms)", age)
		}
		if obs.Embedding != nil {
			if len(obs.Embedding) != obs.Tokens*obs.Width || obs.Tokens != 4 || obs.Width != 64 {
				return fmt.Errorf("embedding %d values for %d x %d", len(obs.Embedding), obs.Tokens, obs.Width)
			}
			if age := obs.T - obs.EmbeddingAt; age < 100*time.Millisecond || age >= 200*time.Millisecond {
				return fmt.Errorf("embedding is %v old, want [100ms, 200ms)", age)
			}
			if len(ats) == 0 || ats[len(ats)-1] != obs.EmbeddingAt {
				ats = append(ats, obs.EmbeddingAt)
			}
		} else if obs.T >= 100*time.Millisecond {
			return fmt.Errorf("no embedding at %v", obs.T)
		}
		copy(cmd, rb.Home)
		return nil
	}
	res, err := r.Run(context.Background(), newTask(t, "reach"), 1, hold)
	if err != nil {
		t.Fatal(err)
	}
	if res.Success || res.Expert || res.Meta.Elapsed != 6*time.Second {
		t.Errorf("holding still: success %v, expert %v, ended at %v", res.Success, res.Expert, res.Meta.Elapsed)
	}
	// 6 s at 10 Hz, the last one observed at 5.9 s is ready at 6.0 s, when the episode ends.
	if len(ats) != 59 || ats[1]-ats[0] != 100*time.Millisecond {
		t.Errorf("%d embeddings, first two observed at %v", len(ats), ats[:2])
	}
	// The first 40 ms have no visible state: no records.
	if got := res.Records[0].T; got != 40*time.Millisecond {
		t.Errorf("first record at %v, want 40ms", got)
	}
}

func TestPolicyErrorAndCancel(t *testing.T) {
	rb := shipped(t, "ur5")
	r, err := New(Config{VLM: smallVLM}, rb)
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	if _, err := r.Run(context.Background(), newTask(t, "reach"), 1, func(*Observation, []float64) error { return boom }); !errors.Is(err, boom) {
		t.Errorf("policy error: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.Run(ctx, newTask(t, "reach"), 1, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	if _, err := New(Config{Rate: 1e12}, rb); !errors.Is(err, ErrConfig) {
		t.Errorf("rate -1: %v", err)
	}
	if _, err := New(Config{Sim: sim.Config{Initial: []float64{0}}}, rb); !errors.Is(err, ErrConfig) {
		t.Errorf("sim.initial: %v", err)
	}
}

func BenchmarkExpertEpisode(b *testing.B) {
	rb := shipped(b, "ur5")
	r, err := New(Config{}, rb)
	if err != nil {
		b.Fatal(err)
	}
	tk := newTask(b, "detour")
	b.ReportAllocs()
	var seed uint64
	for b.Loop() {
		if _, err := r.Run(context.Background(), tk, seed, nil); err != nil {
			b.Fatal(err)
		}
		seed++
	}
}

func Example() {
	rb, err := task.ShippedRobot("ur5") // configs/robots/ur5: model, end-effector link, home
	if err != nil {
		panic(err)
	}
	r, err := New(Config{Rate: 50}, rb)
	if err != nil {
		panic(err)
	}
	tk, err := task.New(task.Config{Name: "reach"})
	if err != nil {
		panic(err)
	}
	res, err := r.Run(context.Background(), tk, 7, nil) // nil: the scripted expert acts
	if err != nil {
		panic(err)
	}
	fmt.Println(res.Meta.Instruction, res.Success, len(res.Records[0].Command), len(res.Records[len(res.Records)-1].Embedding))
	// Output:
	// go to the green sphere true 6 4096
}

// TestEnvExternalLoop drives an Env the way policy.Loop would: on its clock, at 50 Hz, reading
// the state and writing the scripted expert's commands, with the embedding read from Latest.
func TestEnvExternalLoop(t *testing.T) {
	rb := shipped(t, "ur5")
	r, err := New(Config{VLM: smallVLM}, rb)
	if err != nil {
		t.Fatal(err)
	}
	tk := newTask(t, "reach")
	env, err := r.Start(tk, 7)
	if err != nil {
		t.Fatal(err)
	}
	trace := env.Record()
	ex, err := demo.New(demo.Config{}, rb, rand.New(rand.NewPCG(7, 2)))
	if err != nil {
		t.Fatal(err)
	}
	ex.Reset(rb.Home)
	clk, drv := env.Clock(), env.Driver()
	st := robot.NewState(len(rb.Home))
	cmd := make([]float64, len(rb.Home))
	var g task.Truth
	start := clk.Now()
	embeddings := 0
	var last time.Time
	var loopErr error
	for k := int64(1); ; k++ {
		if err := drv.ReadState(&st); err != nil {
			t.Fatal(err)
		}
		if data, at, tokens, width, err := env.Latest(); err == nil {
			if len(data) != tokens*width || at.After(clk.Now()) {
				t.Fatalf("embedding of %d for %d x %d observed at %v, now %v", len(data), tokens, width, at, clk.Now())
			}
			if at != last {
				embeddings++
				last = at
			}
		} else if !errors.Is(err, ErrNoEmbedding) {
			t.Fatal(err)
		}
		tk.TruthTo(&g, clk.Now().Sub(start))
		ex.CommandTo(cmd, clk.Now().Sub(start), &g)
		if err := drv.WriteCommand(&robot.Command{Position: cmd}); err != nil {
			t.Fatal(err)
		}
		if loopErr = clk.SleepUntil(context.Background(), start.Add(time.Duration(k)*20*time.Millisecond)); loopErr != nil {
			break
		}
	}
	if !errors.Is(loopErr, ErrDone) || !env.Done() || !env.Meta().Success {
		t.Fatalf("loop ended with %v, done %v, %+v", loopErr, env.Done(), env.Meta())
	}
	elapsed := clk.Now().Sub(start)
	if want := int(elapsed/(100*time.Millisecond)) - 1; embeddings < want-1 || embeddings > want+1 {
		t.Errorf("%d embeddings in %v at 10 Hz with 100 ms latency, want about %d", embeddings, elapsed, want)
	}
	// The same episode through Run ends at the same tick.
	res, err := r.Run(context.Background(), newTask(t, "reach"), 7, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Meta.Elapsed != env.Meta().Elapsed {
		t.Errorf("Run ended at %v, the external loop at %v", res.Meta.Elapsed, env.Meta().Elapsed)
	}
	// The trace (Record): every task tick from 0 to the last, 20 ms apart; the end effector is
	// the kinematics of the recorded joints, its last distance to the goal the task's; the same
	// path as Run's records.
	n := len(trace.T)
	if n < 2 || trace.T[0] != 0 || trace.T[n-1] != env.Meta().Elapsed || len(trace.Q) != n || len(trace.EE) != n || len(trace.Goal) != n {
		t.Fatalf("trace of %d ticks from %v to %v (%d, %d, %d), episode %v", n, trace.T[0], trace.T[n-1], len(trace.Q), len(trace.EE), len(trace.Goal), env.Meta().Elapsed)
	}
	for i := 1; i < n; i++ {
		if trace.T[i]-trace.T[i-1] != 20*time.Millisecond {
			t.Fatalf("trace ticks %v and %v", trace.T[i-1], trace.T[i])
		}
	}
	for i := range n {
		if trace.EE[i] != rb.EEPos(trace.Q[i]) || trace.Goal[i] != trace.Goal[0] {
			t.Fatalf("tick %d: end effector %v, kinematics %v; goal %v then %v", i, trace.EE[i], rb.EEPos(trace.Q[i]), trace.Goal[0], trace.Goal[i])
		}
	}
	end := trace.EE[n-1]
	var d2 float64
	for k := range 3 {
		d2 += (end[k] - trace.Goal[n-1][k]) * (end[k] - trace.Goal[n-1][k])
	}
	if math.Abs(math.Sqrt(d2)-env.Meta().Distance) > 1e-12 || trace.Tolerance <= 0 || len(trace.Targets) == 0 {
		t.Errorf("trace: last distance %v, task %v; tolerance %v; %d targets", math.Sqrt(d2), env.Meta().Distance, trace.Tolerance, len(trace.Targets))
	}
	for i, rec := range res.Records {
		if i >= n {
			break
		}
		if rec.T != trace.T[i] || rec.EE != trace.EE[i] {
			t.Fatalf("tick %d: Run recorded %v at %v, the trace %v at %v", i, rec.EE, rec.T, trace.EE[i], trace.T[i])
		}
	}
}

func TestDecodeYAML(t *testing.T) {
	doc := []byte(`
rate: 100
sim:
  lag: {order: 2, frequency: 25, damping: 0.7}
  max_step: 500us
  faults:
    state_latency: 20ms
    state_drop: 0.05
    position_noise: 0.001
    freeze: {enabled: true, at: 2s, for: 300ms}
    stuck_joint: elbow_joint
    stuck: {enabled: true, at: 1s}
    seed: 9
vlm: {tokens: 8, width: 128, rate: 5, latency: 150ms, noise: -1}
demo: {speed: 0.3, iterations: 6}
`)
	var c Config
	if err := configs.Decode("episode.yaml", doc, &c); err != nil {
		t.Fatal(err)
	}
	f := c.Sim.Faults
	if c.Rate != 100 || c.Sim.Lag != (sim.Lag{Order: 2, Frequency: 25, Damping: 0.7}) || c.Sim.MaxStep != 500*time.Microsecond ||
		f.StateLatency != 20*time.Millisecond || f.Freeze != (sim.Window{Enabled: true, At: 2 * time.Second, For: 300 * time.Millisecond}) ||
		f.StuckJoint != "elbow_joint" || c.VLM.Latency != 150*time.Millisecond || c.VLM.Noise != -1 || c.Demo.Iterations != 6 {
		t.Errorf("decoded %+v", c)
	}
	if _, err := New(c, shipped(t, "ur5")); err != nil {
		t.Errorf("decoded config: %v", err)
	}
	if err := configs.Decode("bad.yaml", []byte("sim: {lag: {order: 3}}\n"), &c); err == nil {
		t.Error("lag order 3 decoded without error")
	}
}

// TestDatasetEpisode converts an episode with state latency and drops and checks that aligning
// it at the control rate gives back what the policy saw at every tick from the first embedding on.
func TestDatasetEpisode(t *testing.T) {
	rb := shipped(t, "ur5")
	cfg := Config{VLM: smallVLM, Sim: sim.Config{Faults: sim.Faults{StateLatency: 30 * time.Millisecond, StateDrop: 0.2}}}
	r, err := New(cfg, rb)
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.Run(context.Background(), newTask(t, "detour"), 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Unix(1_700_000_000, 0)
	ep := res.Episode("ur5", start)
	if err := ep.Meta.Validate(); err != nil {
		t.Fatal(err)
	}
	al, err := dataset.Align(ep, 0, dataset.ActionsFromCommand)
	if err != nil {
		t.Fatal(err)
	}
	first := 0
	for res.Records[first].Embedding == nil {
		first++
	}
	recs := res.Records[first:]
	if al.N != len(recs) || !al.Start.Equal(start.Add(recs[0].T)) {
		t.Fatalf("aligned %d ticks from %v, want %d from %v", al.N, al.Start, len(recs), start.Add(recs[0].T))
	}
	for k, rec := range recs {
		if !slices.Equal(al.StateAt(k), rec.Position) || !slices.Equal(al.ActionAt(k), rec.Command) || &al.EmbeddingAt(k)[0] != &rec.Embedding[0] {
			t.Fatalf("tick %d: aligned state, action or embedding differs from the record", k)
		}
	}
	if len(ep.States) >= len(res.Records) {
		t.Errorf("%d states for %d records: dropped samples should not repeat", len(ep.States), len(res.Records))
	}
}

// TestBagRoundTrip writes an expert episode as a ROS bag with package dataset and reads it back
// aligned: the path `flowact collect` takes.
func TestBagRoundTrip(t *testing.T) {
	rb := shipped(t, "arm5")
	r, err := New(Config{VLM: smallVLM}, rb)
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.Run(context.Background(), newTask(t, "reach"), 4, nil)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ep.bag")
	if err := dataset.WriteEpisode(path, res.Episode("arm5", time.Unix(1_700_000_000, 0)), dataset.WriterConfig{Joints: res.Joints}); err != nil {
		t.Fatal(err)
	}
	al, err := dataset.Load(path, dataset.Config{})
	if err != nil {
		t.Fatal(err)
	}
	last := res.Records[len(res.Records)-1]
	if al.Meta.Task != "reach" || al.Meta.Seed != 4 || al.Meta.Success != res.Success || al.Tokens != 4 || al.Width != 64 ||
		!slices.Equal(al.ActionAt(al.N-1), last.Command) || !slices.Equal(al.EmbeddingAt(al.N-1), last.Embedding) {
		t.Errorf("read back %+v, %d ticks; last action %v, want %v", al.Meta, al.N, al.ActionAt(al.N-1), last.Command)
	}
}
