package node

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/flowact/flowact/configs"
	"github.com/flowact/flowact/robot"
	"github.com/flowact/flowact/robot/ros"
	"github.com/flowact/flowact/robot/urdf"
	"github.com/flowact/flowact/sim"
	"github.com/flowact/flowact/sim/episode"
	"github.com/flowact/flowact/sim/task"
)

// recorder is a publisher that keeps what the loop publishes.
type recorder struct {
	mu      sync.Mutex
	states  []robot.State
	clocks  []time.Time
	tfs     [][]ros.Transform
	tfStamp []time.Time
	markers [][]ros.Marker
	frame   string
	embs    []time.Time
	status  []ros.Status
}

func (r *recorder) PublishJointState(st *robot.State) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var c robot.State
	c.CopyFrom(st)
	r.states = append(r.states, c)
}

func (r *recorder) PublishClock(t time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.clocks = append(r.clocks, t)
}

func (r *recorder) PublishTF(stamp time.Time, tfs []ros.Transform) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tfs = append(r.tfs, slices.Clone(tfs))
	r.tfStamp = append(r.tfStamp, stamp)
}

func (r *recorder) PublishMarkers(_ time.Time, frame string, ms []ros.Marker) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.markers = append(r.markers, slices.Clone(ms))
	r.frame = frame
}

func (r *recorder) PublishStatus(_ time.Time, sts ...ros.Status) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status = append(r.status, sts...)
}

func (r *recorder) PublishEmbedding(tokens, width int, data []float32, stamp time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(data) != tokens*width {
		panic("embedding shape")
	}
	r.embs = append(r.embs, stamp)
}

// near reports whether a and b have the same length and differ by at most tol in each element.
func near(a, b []float64, tol float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Abs(a[i]-b[i]) > tol {
			return false
		}
	}
	return true
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func ur5(t testing.TB) (*robot.Model, robot.Config) {
	t.Helper()
	m, rc, err := urdf.Shipped("ur5")
	if err != nil {
		t.Fatal(err)
	}
	return m, rc
}

// runLoop runs n's stepping loop with rec for d of (fake) wall time inside a synctest bubble.
func runLoop(t *testing.T, n *Node, rec *recorder, d time.Duration) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { n.loop(ctx, rec); close(done) }()
	// Half a (wall) period past d: the step due at d has run, the next has not.
	time.Sleep(d + time.Duration(float64(time.Second)/(2*n.cfg.Rate*n.cfg.Speed)))
	cancel()
	<-done
}

// TestLoopRates checks, on synctest's fake clock, that one second of real time gives exactly
// Rate joint states, TFRate transforms and MarkerRate marker arrays, stamped on the period grid
// in wall time; that sim time at Speed 2 gives twice the steps, stamped and clocked in sim time;
// and that the VLM's embeddings come at its rate.
func TestLoopRates(t *testing.T) {
	m, rc := ur5(t)
	tests := []struct {
		name                         string
		cfg                          Config
		states, tfs, markers, clocks int
		simTime                      bool
	}{
		{name: "real time 100 Hz", cfg: Config{Task: task.Config{Name: "reach"}}, states: 100, tfs: 50, markers: 10, clocks: 100},
		{name: "real time 40 Hz, tf 20", cfg: Config{Rate: 40, TFRate: 20, Task: task.Config{Name: "detour"}}, states: 40, tfs: 20, markers: 10, clocks: 40},
		{name: "sim time speed 2", cfg: Config{Rate: 50, SimTime: true, Speed: 2}, states: 100, tfs: 100, markers: 20, clocks: 100, simTime: true},
		{name: "embedding", cfg: Config{Rate: 100, Task: task.Config{Name: "track"}, Embedding: true}, states: 100, tfs: 50, markers: 10, clocks: 100},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				tc.cfg.Logger = quiet()
				n, err := New(m, rc, tc.cfg)
				if err != nil {
					t.Fatal(err)
				}
				rec := &recorder{}
				start := time.Now()
				runLoop(t, n, rec, time.Second)
				if len(rec.states) != tc.states || len(rec.tfs) != tc.tfs || len(rec.markers) != tc.markers || len(rec.clocks) != tc.clocks {
					t.Fatalf("%d states, %d tf, %d markers, %d clocks; want %d, %d, %d, %d",
						len(rec.states), len(rec.tfs), len(rec.markers), len(rec.clocks), tc.states, tc.tfs, tc.markers, tc.clocks)
				}
				period := time.Duration(float64(time.Second) / n.cfg.Rate)
				origin := start
				if tc.simTime {
					origin = time.Unix(0, 0) // sim.Config.Start's default
				}
				for k, st := range rec.states {
					if want := origin.Add(time.Duration(k+1) * period); !st.Stamp.Equal(want) {
						t.Fatalf("state %d stamped %v, want %v", k, st.Stamp, want)
					}
					if !slices.Equal(st.Position, n.cfg.Sim.Initial) {
						t.Fatalf("state %d at %v, want home %v", k, st.Position, n.cfg.Sim.Initial)
					}
				}
				if tc.simTime && !rec.clocks[len(rec.clocks)-1].Equal(origin.Add(2*time.Second)) {
					t.Errorf("last /clock %v, want 2 s of sim time", rec.clocks[len(rec.clocks)-1])
				}
				if len(rec.tfs[0]) != m.DoF() || rec.tfs[0][0].Parent == "" {
					t.Errorf("tf %+v", rec.tfs[0])
				}
				if tc.markers > 0 && (rec.frame != m.Root || len(rec.markers[0]) == 0) {
					t.Errorf("markers in %q: %+v", rec.frame, rec.markers[0])
				}
				if tc.cfg.Embedding {
					// Observed at the first step (10 ms) and then every 100 ms, each ready after the
					// default 100 ms latency and stamped with its observation time.
					if len(rec.embs) != 10 || !rec.embs[0].Equal(start.Add(10*time.Millisecond)) || !rec.embs[9].Equal(start.Add(900*time.Millisecond)) {
						t.Errorf("embeddings stamped %v, want 10 from %v", rec.embs, start)
					}
				}
				if s := n.Stats(); s.Steps != int64(len(rec.clocks)) || s.Late != 0 {
					t.Errorf("stats %+v", s)
				}
				// One status per second of ROS time (the default diagnostics period).
				if want := len(rec.clocks) / int(n.cfg.Rate); len(rec.status) != want || rec.status[0].Level != ros.LevelOK || rec.status[0].Name != "flowact: sim" {
					t.Errorf("%d statuses, want %d: %+v", len(rec.status), want, rec.status)
				}
			})
		})
	}
}

// TestLoopFaults checks that the simulator's sensor faults show in what the node publishes.
func TestLoopFaults(t *testing.T) {
	m, rc := ur5(t)
	t.Run("drops lower the rate", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			n, err := New(m, rc, Config{Rate: 100, Logger: quiet(), Sim: sim.Config{Faults: sim.Faults{StateDrop: 0.5, Seed: 3}}})
			if err != nil {
				t.Fatal(err)
			}
			rec := &recorder{}
			runLoop(t, n, rec, 4*time.Second)
			// 400 samples each dropped with p = 0.5: 200 ± 10 (one sd), so 150..250 is 5 sd.
			if got := len(rec.states); got < 150 || got > 250 {
				t.Errorf("%d of 400 states published with StateDrop 0.5", got)
			}
			if s := n.Sim().Stats(); int(s.Samples-s.Dropped) < len(rec.states) {
				t.Errorf("published %d states, the sensor kept only %d", len(rec.states), s.Samples-s.Dropped)
			}
		})
	})
	t.Run("latency delays stamps", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			n, err := New(m, rc, Config{Rate: 100, Logger: quiet(), Sim: sim.Config{Faults: sim.Faults{StateLatency: 50 * time.Millisecond}}})
			if err != nil {
				t.Fatal(err)
			}
			rec := &recorder{}
			start := time.Now()
			runLoop(t, n, rec, time.Second)
			last := rec.states[len(rec.states)-1].Stamp
			if want := start.Add(950 * time.Millisecond); !last.Equal(want) {
				t.Errorf("last state at 1 s stamped %v after start, want 950 ms", last.Sub(start))
			}
		})
	})
	t.Run("noise and freeze", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			cfg := Config{Rate: 100, Logger: quiet(), Sim: sim.Config{Faults: sim.Faults{PositionNoise: 0.01, Seed: 1,
				Freeze: sim.Window{Enabled: true, At: 500 * time.Millisecond}}}}
			n, err := New(m, rc, cfg)
			if err != nil {
				t.Fatal(err)
			}
			rec := &recorder{}
			runLoop(t, n, rec, time.Second)
			// Before the freeze: noise about the resting home position with sd 0.01.
			var sum, sum2 float64
			var cnt int
			for _, st := range rec.states[:49] {
				for i, p := range st.Position {
					e := p - n.cfg.Sim.Initial[i]
					sum, sum2, cnt = sum+e, sum2+e*e, cnt+1
				}
			}
			sd := math.Sqrt(sum2/float64(cnt) - (sum/float64(cnt))*(sum/float64(cnt)))
			if sd < 0.008 || sd > 0.012 { // 294 draws: the sample sd is within 4% (1 sd) of 0.01
				t.Errorf("position noise sd %.4f, want 0.01", sd)
			}
			// After it: the same sample, fresh stamps.
			frozen := rec.states[50]
			for _, st := range rec.states[51:] {
				if !slices.Equal(st.Position, frozen.Position) || !st.Stamp.After(frozen.Stamp) {
					t.Fatalf("frozen sensor changed: %v at %v after %v at %v", st.Position, st.Stamp, frozen.Position, frozen.Stamp)
				}
			}
		})
	})
}

// TestLoopCommands checks that commands written to the simulator move the published state.
func TestLoopCommands(t *testing.T) {
	m, rc := ur5(t)
	synctest.Test(t, func(t *testing.T) {
		n, err := New(m, rc, Config{Rate: 100, Logger: quiet()})
		if err != nil {
			t.Fatal(err)
		}
		target := slices.Clone(n.cfg.Sim.Initial)
		target[0] += 0.3
		if err := n.Sim().WriteCommand(&robot.Command{Position: target}); err != nil {
			t.Fatal(err)
		}
		rec := &recorder{}
		runLoop(t, n, rec, 2*time.Second)
		last := rec.states[len(rec.states)-1].Position
		if !near(last, target, 1e-3) {
			t.Fatalf("after 2 s at %v, commanded %v", last, target)
		}
	})
}

// TestTrajectoryStart checks that a trajectory's start, in ROS (wall) time, maps to the matching
// simulation time in real-time mode: the arm holds until then and reaches the point on time.
func TestTrajectoryStart(t *testing.T) {
	m, rc := ur5(t)
	synctest.Test(t, func(t *testing.T) {
		n, err := New(m, rc, Config{Rate: 100, Logger: quiet()})
		if err != nil {
			t.Fatal(err)
		}
		home := n.cfg.Sim.Initial
		target := slices.Clone(home)
		target[1] += 0.2
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		rec := &recorder{}
		start := time.Now()
		go func() { n.loop(ctx, rec); close(done) }()
		time.Sleep(5 * time.Millisecond)
		// Start in 500 ms (wall time); reach the target 1 s after that.
		tr := robot.Trajectory{Start: start.Add(500 * time.Millisecond), TimeFromStart: []time.Duration{time.Second}, Positions: target}
		if err := (rosSink{n}).WriteTrajectory(&tr); err != nil {
			t.Fatal(err)
		}
		var st robot.State
		time.Sleep(480 * time.Millisecond)
		n.Sim().TrueStateTo(&st)
		if !slices.Equal(st.Position, home) {
			t.Errorf("moved before the trajectory's start: %v", st.Position)
		}
		time.Sleep(1500 * time.Millisecond) // 1.985 s: 485 ms after the last point's time
		n.Sim().TrueStateTo(&st)
		if !near(st.Position, target, 1e-3) {
			t.Errorf("at %v, want %v", st.Position, target)
		}
		cancel()
		<-done
	})
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"zero", Config{}, true},
		{"sim time fast", Config{SimTime: true, Speed: math.Inf(1)}, true},
		{"negative rate", Config{Rate: -1}, false},
		{"NaN rate", Config{Rate: math.NaN()}, false},
		{"rate too high", Config{Rate: 5000}, false},
		{"tf above rate", Config{Rate: 10, TFRate: 20}, false},
		{"marker above rate", Config{Rate: 10, MarkerRate: 20}, false},
		{"speed without sim time", Config{Speed: 2}, false},
		{"negative speed", Config{SimTime: true, Speed: -1}, false},
		{"embedding without task", Config{Embedding: true}, false},
		{"unknown task", Config{Task: task.Config{Name: "juggle"}}, false},
		{"bad sim", Config{Sim: sim.Config{Lag: sim.Lag{Order: 3}}}, false},
		{"task and embedding", Config{Task: task.Config{Name: "reach"}, Embedding: true}, true},
	}
	for _, tc := range tests {
		err := tc.cfg.Validate()
		if tc.ok != (err == nil) {
			t.Errorf("%s: Validate() = %v", tc.name, err)
		}
		if err != nil && !errors.Is(err, ErrConfig) && !errors.Is(err, sim.ErrConfig) && !errors.Is(err, task.ErrConfig) {
			t.Errorf("%s: %v wraps no config error", tc.name, err)
		}
	}
	m, rc := ur5(t)
	if _, err := New(m, rc, Config{ROS: ros.SimSideConfig{TF: "bad name"}}); err == nil {
		t.Error("New accepted a bad topic name")
	}
	if _, err := New(nil, rc, Config{}); !errors.Is(err, ErrConfig) {
		t.Errorf("nil model: %v", err)
	}
}

// TestShippedRobots builds a node for every shipped robot with each task, and checks that it
// publishes its robot.yaml's topics, its joints' home positions, one frame per joint and the
// task's markers.
func TestShippedRobots(t *testing.T) {
	robots, err := configs.Robots()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range robots {
		for _, tk := range task.Names() {
			t.Run(name+"/"+tk, func(t *testing.T) {
				m, rc, err := urdf.Shipped(name)
				if err != nil {
					t.Fatal(err)
				}
				synctest.Test(t, func(t *testing.T) {
					n, err := New(m, rc, Config{Rate: 50, Task: task.Config{Name: tk}, Seed: 11, Embedding: true, Logger: quiet()})
					if err != nil {
						t.Fatal(err)
					}
					if tp := n.Topics(); tp.JointStates != rc.Topics.JointStates || tp.Trajectory != rc.Topics.Trajectory {
						t.Errorf("topics %+v, robot.yaml %+v", tp, rc.Topics)
					}
					rec := &recorder{}
					runLoop(t, n, rec, 200*time.Millisecond)
					// Embeddings: observed at 20 ms and 100 ms, each ready 100 ms later.
					if len(rec.states) != 10 || len(rec.tfs) != 10 || len(rec.markers) != 2 || len(rec.embs) != 2 {
						t.Fatalf("%d states, %d tf, %d markers, %d embeddings in 200 ms at 50 Hz", len(rec.states), len(rec.tfs), len(rec.markers), len(rec.embs))
					}
					for i, j := range m.Joints {
						if want, ok := rc.Home[j.Name]; ok && rec.states[0].Position[i] != want {
							t.Errorf("joint %s at %v, home %v", j.Name, rec.states[0].Position[i], want)
						}
					}
					if len(rec.tfs[0]) != m.DoF() || len(rec.markers[0]) == 0 || n.Instruction() == "" {
						t.Errorf("%d frames, %d markers, instruction %q", len(rec.tfs[0]), len(rec.markers[0]), n.Instruction())
					}
				})
			})
		}
	}
}

// TestSameSceneAsEpisode checks that a node shows the scene of sim/episode's episode with the
// same seed: `flowact sim --task T --seed N` is episode N of `flowact collect` and `eval`.
func TestSameSceneAsEpisode(t *testing.T) {
	m, rc := ur5(t)
	for _, name := range task.Names() {
		for _, seed := range []uint64{1, 7, 1234} {
			n, err := New(m, rc, Config{Task: task.Config{Name: name}, Seed: seed, Logger: quiet()})
			if err != nil {
				t.Fatal(err)
			}
			rb, err := task.NewRobot(m, rc.EELink, n.cfg.Sim.Initial)
			if err != nil {
				t.Fatal(err)
			}
			r, err := episode.New(episode.Config{}, rb)
			if err != nil {
				t.Fatal(err)
			}
			tk, err := task.New(task.Config{Name: name})
			if err != nil {
				t.Fatal(err)
			}
			env, err := r.Start(tk, seed)
			if err != nil {
				t.Fatal(err)
			}
			var a, b sim.Scene
			n.tk.SceneTo(&a, 0)
			tk.SceneTo(&b, 0)
			if env.Instruction() != n.Instruction() || !slices.Equal(a.Targets, b.Targets) || !slices.Equal(a.Obstacles, b.Obstacles) {
				t.Errorf("%s seed %d: node %q %+v, episode %q %+v", name, seed, n.Instruction(), a.Targets, env.Instruction(), b.Targets)
			}
		}
	}
}

// TestNewTopics checks that topics come from robot.yaml unless the config names them.
func TestNewTopics(t *testing.T) {
	m, rc := ur5(t)
	n, err := New(m, rc, Config{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	tp := n.Topics()
	if tp.JointStates != rc.Topics.JointStates || tp.Command != rc.Topics.Command || tp.Trajectory != rc.Topics.Trajectory {
		t.Errorf("topics %+v, robot.yaml %+v", tp, rc.Topics)
	}
	var cfg Config
	cfg.ROS.Node.Topics.Command = "/my/command"
	cfg.ROS.Node.Remaps = map[string]string{rc.Topics.Trajectory: "/my/trajectory"}
	if n, err = New(m, rc, cfg); err != nil {
		t.Fatal(err)
	}
	if tp := n.Topics(); tp.Command != "/my/command" || tp.Trajectory != "/my/trajectory" || n.Name() != "/"+ros.DefaultSimName {
		t.Errorf("topics %+v, name %s", tp, n.Name())
	}
}

// TestArmMarkers checks the stick figure: a sphere per joint in its child link's frame, and a
// cylinder per joint offset in the parent link's frame running from the parent's origin to the
// joint's.
func TestArmMarkers(t *testing.T) {
	m, _ := ur5(t)
	ms := armMarkers(m)
	joints := append(append([]robot.Joint(nil), m.Joints...), m.Fixed...)
	spheres, cylinders := 0, 0
	for _, mk := range ms {
		if !mk.FrameLocked || mk.NS != nsArm {
			t.Errorf("marker %+v", mk)
		}
		switch mk.Shape {
		case ros.MarkerSphere:
			spheres++
		case ros.MarkerCylinder:
			cylinders++
			var j *robot.Joint
			for i := range joints {
				if joints[i].Parent == mk.Frame && j == nil {
					half := mk.Pose.Rotate([3]float64{0, 0, mk.Scale[2] / 2})
					end := [3]float64{mk.Pose.Pos[0] + half[0], mk.Pose.Pos[1] + half[1], mk.Pose.Pos[2] + half[2]}
					start := [3]float64{mk.Pose.Pos[0] - half[0], mk.Pose.Pos[1] - half[1], mk.Pose.Pos[2] - half[2]}
					if near(end[:], joints[i].Origin.Pos[:], 1e-9) && near(start[:], []float64{0, 0, 0}, 1e-9) {
						j = &joints[i]
					}
				}
			}
			if j == nil {
				t.Errorf("cylinder %+v runs between no link origin and joint origin", mk)
			}
		}
	}
	if spheres != len(joints) || cylinders == 0 || cylinders > len(joints) {
		t.Errorf("%d spheres, %d cylinders for %d joints", spheres, cylinders, len(joints))
	}
}

// TestMarkers checks the capsule geometry: the cylinder's z axis runs from A to B.
func TestMarkers(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 100 {
		u := [3]float64{r.NormFloat64(), r.NormFloat64(), r.NormFloat64()}
		l := math.Sqrt(u[0]*u[0] + u[1]*u[1] + u[2]*u[2])
		u = [3]float64{u[0] / l, u[1] / l, u[2] / l}
		got := robot.Pose{Rot: robot.RotZTo(u)}.Rotate([3]float64{0, 0, 1})
		if !near(got[:], u[:], 1e-12) {
			t.Fatalf("RotZTo(%v) takes z to %v", u, got)
		}
	}
	for _, u := range [][3]float64{{0, 0, 1}, {0, 0, -1}} {
		if got := (robot.Pose{Rot: robot.RotZTo(u)}).Rotate([3]float64{0, 0, 1}); math.Abs(got[2]-u[2]) > 1e-12 {
			t.Errorf("RotZTo(%v) takes z to %v", u, got)
		}
	}
	ms := appendMarkers(nil,
		[]sim.Target{{Name: "red", RGBA: [4]float32{1, 0, 0, 1}, Pos: [3]float64{1, 2, 3}, Radius: 0.02}},
		[]sim.Obstacle{{A: [3]float64{0, 0, 0}, B: [3]float64{0, 0, 0.4}, Radius: 0.05}, {A: [3]float64{1, 1, 1}, B: [3]float64{1, 1, 1}, Radius: 0.1}})
	if len(ms) != 1+3+1 {
		t.Fatalf("%d markers, want 5: %+v", len(ms), ms)
	}
	if ms[0].Scale != [3]float64{0.04, 0.04, 0.04} || ms[0].NS != nsTargets || ms[0].RGBA[0] != 1 {
		t.Errorf("target marker %+v", ms[0])
	}
	cyl := ms[3]
	if cyl.Shape != ros.MarkerCylinder || cyl.Pose.Pos != [3]float64{0, 0, 0.2} || cyl.Scale != [3]float64{0.1, 0.1, 0.4} {
		t.Errorf("cylinder %+v", cyl)
	}
	ids := map[int32]bool{}
	for _, m := range ms[1:] {
		if ids[m.ID] {
			t.Errorf("obstacle id %d twice", m.ID)
		}
		ids[m.ID] = true
	}
}

// counter is a publisher that counts steps (clock calls) and ends the loop after limit.
type counter struct {
	steps, limit int
	cancel       func()
}

func (c *counter) PublishJointState(*robot.State) {}
func (c *counter) PublishClock(time.Time) {
	if c.steps++; c.steps == c.limit {
		c.cancel()
	}
}
func (c *counter) PublishTF(time.Time, []ros.Transform)            {}
func (c *counter) PublishMarkers(time.Time, string, []ros.Marker)  {}
func (c *counter) PublishEmbedding(int, int, []float32, time.Time) {}
func (c *counter) PublishStatus(time.Time, ...ros.Status)          {}

// unpaced returns a UR5 reach node at 100 Hz on sim time at speed +Inf, and run, which runs its
// loop without ROS for steps steps.
func unpaced(tb testing.TB, steps int) (n *Node, run func()) {
	tb.Helper()
	m, rc := ur5(tb)
	n, err := New(m, rc, Config{Rate: 100, SimTime: true, Speed: math.Inf(1), Task: task.Config{Name: "reach"}, Logger: quiet()})
	if err != nil {
		tb.Fatal(err)
	}
	return n, func() {
		ctx, cancel := context.WithCancel(context.Background())
		n.loop(ctx, &counter{limit: steps, cancel: cancel})
	}
}

// TestUnpaced checks that sim time at speed +Inf runs faster than real time: 10 s of simulation
// at 100 Hz in well under 10 s of wall time (about 0.1 s on a laptop; under -race on a loaded
// 2-core machine still far below the bound).
func TestUnpaced(t *testing.T) {
	n, run := unpaced(t, 1000)
	start := time.Now()
	run()
	if wall := time.Since(start); wall > 5*time.Second || n.Sim().Elapsed() != 10*time.Second {
		t.Errorf("%v of simulation in %v of wall time", n.Sim().Elapsed(), wall)
	}
}

// BenchmarkStep measures one step of the node's loop (simulate 10 ms in 1 ms substeps, read the
// sensor, update the task, every other step the link frames) without ROS publishing.
func BenchmarkStep(b *testing.B) {
	_, run := unpaced(b, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	run()
}

// TestStepAllocs proves that a step allocates nothing once its buffers have grown, with every
// output due (joint states, /clock, /tf, markers, embeddings), except on diagnostic steps.
func TestStepAllocs(t *testing.T) {
	m, rc := ur5(t)
	for _, tk := range task.Names() {
		n, err := New(m, rc, Config{Rate: 100, TFRate: 100, MarkerRate: 100, SimTime: true, Task: task.Config{Name: tk}, Embedding: true, Logger: quiet()})
		if err != nil {
			t.Fatal(err)
		}
		l := n.newStepper(&counter{limit: -1, cancel: func() {}}, 0)
		k := int64(0)
		next := func() {
			if k++; k%l.diagEvery == 0 {
				k++
			}
			l.step(k)
		}
		for range 30 { // grow the buffers: the first embedding is ready after 100 ms
			next()
		}
		if a := testing.AllocsPerRun(200, next); a != 0 {
			t.Errorf("%s: a step allocates %v times", tk, a)
		}
	}
}

// TestPause checks, on synctest's fake clock, that PauseWhen stops the simulation after the
// first step at which its condition holds, that nothing steps or publishes while paused however
// long the pause, and that Resume steps on at the rate without catching up on the paused time
// (sim time: /clock continues from where it stood).
func TestPause(t *testing.T) {
	m, rc := ur5(t)
	synctest.Test(t, func(t *testing.T) {
		n, err := New(m, rc, Config{Rate: 100, SimTime: true, Speed: 1, Logger: quiet()})
		if err != nil {
			t.Fatal(err)
		}
		target := slices.Clone(n.cfg.Sim.Initial)
		target[0] += 1
		if err := n.Sim().WriteCommand(&robot.Command{Position: target}); err != nil {
			t.Fatal(err)
		}
		const at = 0.1 // rad
		var seen float64
		hit := n.PauseWhen(func(s *robot.State) bool { seen = s.Position[0]; return s.Position[0]-n.cfg.Sim.Initial[0] >= at })
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		rec := &recorder{}
		go func() { n.loop(ctx, rec); close(done) }()
		<-hit
		steps, clocks := n.Stats().Steps, len(rec.clocks)
		var st robot.State
		n.Sim().TrueStateTo(&st)
		if st.Position[0] != seen || seen-n.cfg.Sim.Initial[0] < at {
			t.Fatalf("paused at %v, the breakpoint saw %v (threshold %v past %v)", st.Position[0], seen, at, n.cfg.Sim.Initial[0])
		}
		// The step before the breakpoint's did not satisfy it: the pause is at the first one.
		rec.mu.Lock()
		before := rec.states[len(rec.states)-2].Position[0]
		rec.mu.Unlock()
		if before-n.cfg.Sim.Initial[0] >= at {
			t.Errorf("the step before the pause was already %v past the start", before-n.cfg.Sim.Initial[0])
		}
		time.Sleep(5 * time.Second)
		if s := n.Stats().Steps; s != steps || len(rec.clocks) != clocks {
			t.Fatalf("paused for 5 s: %d steps and %d clocks, want %d and %d", s, len(rec.clocks), steps, clocks)
		}
		last := rec.clocks[len(rec.clocks)-1]
		n.Resume()
		time.Sleep(time.Second + 5*time.Millisecond)
		if got := n.Stats().Steps - steps; got != 100 {
			t.Errorf("1 s after Resume: %d steps, want 100 (no catching up)", got)
		}
		if d := rec.clocks[clocks].Sub(last); d != 10*time.Millisecond {
			t.Errorf("/clock after Resume moved by %v, want one period", d)
		}
		n.Pause()
		n.Pause() // idempotent
		s := n.Stats().Steps
		time.Sleep(time.Second)
		if n.Stats().Steps != s {
			t.Errorf("Pause: stepped on")
		}
		n.Resume()
		n.Resume()
		cancel()
		<-done
	})
}
