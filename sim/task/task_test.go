package task

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flowact/flowact/configs"
	"github.com/flowact/flowact/robot/urdf"
	"github.com/flowact/flowact/sim"
	"github.com/flowact/flowact/sim/vlm"
)

func shipped(t testing.TB, name string) *Robot {
	t.Helper()
	return must[*Robot](t)(ShippedRobot(name))
}

// TestShippedRobot checks that every shipped robot loads at the home position and end-effector
// link of its robot.yaml, and that an unknown name is an error.
func TestShippedRobot(t *testing.T) {
	names, err := configs.Robots()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		rb, err := ShippedRobot(name)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		m, rc, err := urdf.Shipped(name)
		if err != nil {
			t.Fatal(err)
		}
		links := rb.EE.Links()
		if !slices.Equal(rb.Home, rc.HomePosition(m)) || links[len(links)-1] != rc.EELink || rb.Model.DoF() != m.DoF() {
			t.Errorf("%s: home %v, end effector %s; want %v, %s", name, rb.Home, links[len(links)-1], rc.HomePosition(m), rc.EELink)
		}
	}
	if _, err := ShippedRobot("no-such-robot"); err == nil || !strings.HasPrefix(err.Error(), "task: ") {
		t.Errorf("ShippedRobot of an unknown robot: %v, want a task: error", err)
	}
}

func reset(t *testing.T, tk Task, rb *Robot, seed uint64) {
	t.Helper()
	if err := tk.Reset(rand.New(rand.NewPCG(seed, 1)), rb); err != nil {
		t.Fatal(err)
	}
}

func must[T any](t testing.TB) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func TestReach(t *testing.T) {
	rb := shipped(t, "ur5")
	tk := must[*Reach](t)(NewReach(ReachConfig{}))
	start := rb.EEPos(rb.Home)
	for seed := range uint64(20) {
		reset(t, tk, rb, seed)
		var g Truth
		tk.TruthTo(&g, 0)
		var named *sim.Target
		for i := range tk.targets {
			o := &tk.targets[i]
			if o.Pos == g.Goal {
				named = o
			}
			if d := dist(o.Pos, start); d < 0.12 {
				t.Errorf("seed %d: target %s %.3f m from the start", seed, o.Name, d)
			}
			for j := range i {
				if d := dist(o.Pos, tk.targets[j].Pos); d < 0.12 {
					t.Errorf("seed %d: targets %.3f m apart", seed, d)
				}
			}
		}
		if len(tk.targets) != 3 || named == nil || !strings.Contains(tk.Instruction(), named.Color) {
			t.Fatalf("seed %d: %d targets, instruction %q, goal %v", seed, len(tk.targets), tk.Instruction(), g.Goal)
		}
		// A distractor does not count; the named target does, within tolerance.
		var other [3]float64
		for _, o := range tk.targets {
			if o.Pos != g.Goal {
				other = o.Pos
			}
		}
		if tk.Update(0, start) || tk.Update(time.Second, other) || tk.Success() {
			t.Fatalf("seed %d: done or successful away from the named target", seed)
		}
		near := g.Goal
		near[0] += 0.029
		if !tk.Update(2*time.Second, near) || !tk.Success() {
			t.Fatalf("seed %d: 2.9 cm from the target is not a success", seed)
		}
	}
	reset(t, tk, rb, 1)
	if tk.Update(5*time.Second, start) || !tk.Update(6*time.Second, start) || tk.Success() {
		t.Error("reach does not end unsuccessfully at its 6 s time limit")
	}
}

func TestDeterministicReset(t *testing.T) {
	rb := shipped(t, "panda")
	for _, name := range Names() {
		a, b := must[Task](t)(New(Config{Name: name})), must[Task](t)(New(Config{Name: name}))
		reset(t, a, rb, 5)
		reset(t, b, rb, 5)
		var sa, sb vlm.Scene
		a.ObserveTo(&sa, time.Second)
		b.ObserveTo(&sb, time.Second)
		if a.Instruction() != b.Instruction() || sa.Goal != sb.Goal || len(sa.Objects) != len(sb.Objects) {
			t.Errorf("%s: same seed, different scenes: %q %v vs %q %v", name, a.Instruction(), sa.Goal, b.Instruction(), sb.Goal)
		}
		reset(t, b, rb, 6)
		b.ObserveTo(&sb, time.Second)
		if sa.Goal == sb.Goal {
			t.Errorf("%s: seeds 5 and 6 give the same goal", name)
		}
	}
}

func TestDetour(t *testing.T) {
	rb := shipped(t, "ur5")
	tk := must[*Detour](t)(NewDetour(DetourConfig{}))
	start := rb.EEPos(rb.Home)
	for seed := range uint64(20) {
		reset(t, tk, rb, seed)
		var g Truth
		tk.TruthTo(&g, 0)
		o := g.Obstacles[0]
		goal := g.Goal
		mid := [3]float64{(start[0] + goal[0]) / 2, (start[1] + goal[1]) / 2, (start[2] + goal[2]) / 2}
		if dist(o.A, mid) > 1e-12 || o.Dist(start) < 0.05 || o.Dist(goal) < 0.05 {
			t.Fatalf("seed %d: obstacle at %v (midpoint %v), %.3f from the start, %.3f from the goal", seed, o.A, mid, o.Dist(start), o.Dist(goal))
		}
		// The straight line, the mean of a left and a right pass, runs through the obstacle.
		lat := tk.Lateral()
		off := 2 * (o.Radius + g.EERadius) // a bulge this high clears on a path >= 0.25 m long
		var hit bool
		for i := range 101 {
			s := float64(i) / 100
			b := off * math.Sin(math.Pi*s)
			var l, r, mean [3]float64
			for k := range 3 {
				line := start[k] + s*(goal[k]-start[k])
				l[k], r[k] = line+b*lat[k], line-b*lat[k]
				mean[k] = (l[k] + r[k]) / 2
			}
			hit = hit || o.Dist(mean)-g.EERadius < 0
			if o.Dist(l)-g.EERadius < 0 || o.Dist(r)-g.EERadius < 0 {
				t.Fatalf("seed %d: a %.3f m bulge does not clear the obstacle", seed, off)
			}
		}
		if !hit {
			t.Fatalf("seed %d: the mean path misses the obstacle", seed)
		}
		// Pass left, then reach: success with Side +1. Pass right: Side -1.
		for _, side := range []float64{1, -1} {
			reset(t, tk, rb, seed)
			for i := range 101 {
				s := float64(i) / 100
				var p [3]float64
				for k := range 3 {
					p[k] = start[k] + s*(goal[k]-start[k]) + side*off*math.Sin(math.Pi*s)*lat[k]
				}
				if tk.Update(time.Duration(i)*20*time.Millisecond, p) {
					break
				}
			}
			m := tk.Meta()
			if !m.Success || m.Collided || m.Side != int(side) || m.Clearance <= 0 {
				t.Fatalf("seed %d side %v: %+v", seed, side, m)
			}
		}
		// Straight through: collision, the episode ends unsuccessfully.
		reset(t, tk, rb, seed)
		if !tk.Update(time.Second, o.A) || tk.Success() || !tk.Meta().Collided {
			t.Fatalf("seed %d: the obstacle's centre is not a collision: %+v", seed, tk.Meta())
		}
		// Touching the target after a collision is no success.
		if tk.Update(2*time.Second, goal); tk.Success() {
			t.Fatalf("seed %d: success after a collision", seed)
		}
	}
}

func TestTrack(t *testing.T) {
	for _, name := range []string{"ur5", "panda", "arm5"} {
		rb := shipped(t, name)
		tk := must[*Track](t)(NewTrack(TrackConfig{}))
		for seed := range uint64(5) {
			reset(t, tk, rb, seed)
			var g Truth
			const dt = 20 * time.Millisecond
			moved := 0.0
			var prev [3]float64
			for k := 0; ; k++ {
				now := time.Duration(k) * dt
				tk.TruthTo(&g, now)
				// The velocity is the derivative of the position (central difference).
				pa, _ := tk.at(now - time.Millisecond)
				pb, _ := tk.at(now + time.Millisecond)
				for i := range 3 {
					if fd := (pb[i] - pa[i]) / 0.002; math.Abs(fd-g.GoalVelocity[i]) > 1e-4 {
						t.Fatalf("%s seed %d at %v: velocity %v, finite difference %g in %d", name, seed, now, g.GoalVelocity, fd, i)
					}
				}
				if k > 0 {
					moved += dist(prev, g.Goal)
				}
				prev = g.Goal
				if tk.Update(now, g.Goal) {
					break
				}
			}
			if !tk.Success() || tk.Meta().Tracked != 1 {
				t.Fatalf("%s seed %d: following the target exactly is not a success: %+v", name, seed, tk.Meta())
			}
			if moved < 0.1 {
				t.Errorf("%s seed %d: the target moved only %.3f m in 8 s", name, seed, moved)
			}
			// Standing still at the start fails.
			reset(t, tk, rb, seed)
			start := rb.EEPos(rb.Home)
			for k := 0; !tk.Update(time.Duration(k)*dt, start); k++ {
			}
			if tk.Success() {
				t.Fatalf("%s seed %d: standing still tracks the target: %+v", name, seed, tk.Meta())
			}
		}
	}
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"reach", Config{Name: "reach"}, true},
		{"detour", Config{Name: "detour"}, true},
		{"track", Config{Name: "track"}, true},
		{"unknown", Config{Name: "push"}, false},
		{"too many targets", Config{Name: "reach", Reach: ReachConfig{Targets: 7}}, false},
		{"negative tolerance", Config{Name: "reach", Reach: ReachConfig{Tolerance: -1}}, false},
		{"spread", Config{Name: "reach", Reach: ReachConfig{Workspace: Workspace{Spread: 4}}}, false},
		{"crowded detour", Config{Name: "detour", Detour: DetourConfig{ObstacleRadius: 0.2}}, false},
		{"settle past the limit", Config{Name: "track", Track: TrackConfig{Settle: 9 * time.Second}}, false},
		{"fraction", Config{Name: "track", Track: TrackConfig{Fraction: 1.5}}, false},
	}
	for _, c := range cases {
		_, err := New(c.cfg)
		if (err == nil) != c.ok || (err != nil && !errors.Is(err, ErrConfig)) {
			t.Errorf("%s: %v, want ok %v", c.name, err, c.ok)
		}
	}
}

func TestPlaceFails(t *testing.T) {
	rb := shipped(t, "ur5")
	// Six targets 1 m apart around home do not fit.
	tk := must[*Reach](t)(NewReach(ReachConfig{Targets: 6, MinDistance: 1}))
	if err := tk.Reset(rand.New(rand.NewPCG(1, 1)), rb); !errors.Is(err, ErrPlace) {
		t.Errorf("impossible scene: %v, want ErrPlace", err)
	}
}

func TestDecodeYAML(t *testing.T) {
	doc := []byte(`
name: track
track:
  tolerance: 0.05
  time_limit: 10s
  settle: 1500ms
  workspace: {spread: 0.3, min_height: 0.1}
`)
	var c Config
	if err := configs.Decode("track.yaml", doc, &c); err != nil {
		t.Fatal(err)
	}
	want := TrackConfig{Tolerance: 0.05, TimeLimit: 10 * time.Second, Settle: 1500 * time.Millisecond, Workspace: Workspace{Spread: 0.3, MinHeight: 0.1}}
	if c.Name != "track" || c.Track != want {
		t.Errorf("decoded %+v", c)
	}
	for _, bad := range []string{"name: track\ntrack: {tolerence: 0.1}\n", "name: track\ntrack: {settle: 20s}\n", "name: juggle\n"} {
		if err := configs.Decode("bad.yaml", []byte(bad), &c); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// TestTrace: a Trace records every tick Update saw, with the goal and the scene; the clearance
// computed from it (Obstacle.Dist minus EERadius, as reports plot it) has the task's minimum.
func TestTrace(t *testing.T) {
	rb := shipped(t, "ur5")
	tk := must[*Detour](t)(NewDetour(DetourConfig{}))
	reset(t, tk, rb, 3)
	var g Truth
	tk.TruthTo(&g, 0)
	start := rb.EEPos(rb.Home)
	var tr Trace
	q := append([]float64(nil), rb.Home...)
	for i := range 50 {
		at := time.Duration(i) * 20 * time.Millisecond
		// Straight toward the goal, through the obstacle: the clearance goes negative.
		s := float64(i) / 49
		var ee [3]float64
		for k := range 3 {
			ee[k] = start[k] + s*(g.Goal[k]-start[k])
		}
		q[0] = float64(i) // joints are recorded as given
		done := tk.Update(at, ee)
		tr.Add(tk, at, q, ee)
		if done {
			break
		}
	}
	n := len(tr.T)
	if n == 0 || tr.Q[n-1][0] != float64(n-1) || tr.Goal[0] != g.Goal || len(tr.Obstacles) != 1 || tr.EERadius != g.EERadius || tr.Tolerance != g.Tolerance || len(tr.Targets) != 1 {
		t.Fatalf("trace of %d ticks: last joints %v, goal %v (want %v), %d obstacles, radius %v, tolerance %v, %d targets",
			n, tr.Q[n-1], tr.Goal[0], g.Goal, len(tr.Obstacles), tr.EERadius, tr.Tolerance, len(tr.Targets))
	}
	clear := math.Inf(1)
	for _, ee := range tr.EE {
		clear = math.Min(clear, tr.Obstacles[0].Dist(ee)-tr.EERadius)
	}
	if m := tk.Meta(); clear != m.Clearance || !m.Collided || tr.T[n-1] != m.Elapsed {
		t.Errorf("clearance from the trace %v, the task's %v (collided %v); last tick %v, elapsed %v", clear, m.Clearance, m.Collided, tr.T[n-1], m.Elapsed)
	}
}
