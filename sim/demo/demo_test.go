package demo

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/flowact/flowact/sim/task"
)

func shipped(t testing.TB, name string) *task.Robot {
	t.Helper()
	rb, err := task.ShippedRobot(name)
	if err != nil {
		t.Fatal(err)
	}
	return rb
}

func TestIKConverges(t *testing.T) {
	for _, name := range []string{"ur5", "panda", "arm5"} {
		rb := shipped(t, name)
		ik := NewIK(rb, 0.01, 0.05, 0.2)
		r := rand.New(rand.NewPCG(1, 2))
		q := make([]float64, len(rb.Home))
		goal := make([]float64, len(rb.Home))
		worst := 0.0
		for range 50 {
			// A reachable target: the end effector at home moved by up to 0.5 rad per joint.
			for i := range goal {
				goal[i] = rb.Home[i] + 0.5*(2*r.Float64()-1)
				if l := rb.Model.Joints[i].Limits; l.HasPosition {
					goal[i] = min(max(goal[i], l.Lower), l.Upper)
				}
			}
			target := rb.EEPos(goal)
			copy(q, rb.Home)
			worst = max(worst, ik.Solve(q, target, 100))
			for i, v := range q {
				if l := rb.Model.Joints[i].Limits; l.HasPosition && (v < l.Lower || v > l.Upper) {
					t.Fatalf("%s: joint %d at %g outside its limits", name, i, v)
				}
			}
		}
		// DLS converges linearly near a solution; 100 steps leave well under a tenth of a mm.
		if worst > 1e-4 {
			t.Errorf("%s: worst IK error %.2g m after 100 steps", name, worst)
		}
		if allocs := testing.AllocsPerRun(20, func() { ik.Solve(q, rb.EEPos(rb.Home), 4) }); allocs != 0 {
			t.Errorf("%s: Solve allocates %v times", name, allocs)
		}
	}
}

func TestInv3(t *testing.T) {
	a := [9]float64{4, 1, 2, 1, 3, 0.5, 2, 0.5, 5}
	ai, ok := inv3(a)
	if !ok {
		t.Fatal("singular")
	}
	for r := range 3 {
		for c := range 3 {
			s := 0.0
			for k := range 3 {
				s += a[r*3+k] * ai[k*3+c]
			}
			if want := float64(btoi(r == c)); math.Abs(s-want) > 1e-12 {
				t.Fatalf("A A^-1 [%d,%d] = %g", r, c, s)
			}
		}
	}
	if _, ok := inv3([9]float64{1, 2, 3, 2, 4, 6, 0, 0, 1}); ok {
		t.Error("a singular matrix inverted")
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// plan runs the expert through a static task's truth without a simulator and returns the end
// effector's commanded path at phase u = 0, 0.01, ..., 1 of the motion.
func plan(t *testing.T, rb *task.Robot, g *task.Truth, seed uint64) (path [][3]float64, e *Expert) {
	t.Helper()
	e, err := New(Config{}, rb, rand.New(rand.NewPCG(seed, 2)))
	if err != nil {
		t.Fatal(err)
	}
	e.Reset(rb.Home)
	cmd := make([]float64, len(rb.Home))
	e.CommandTo(cmd, 0, g)
	const steps = 100
	for i := 0; i <= steps; i++ {
		// Small ticks keep the IK, which moves from the last solution, on the path.
		for k := 1; k <= 2; k++ {
			e.CommandTo(cmd, e.Duration()*time.Duration(2*i-2+k)/(2*steps), g)
		}
		path = append(path, rb.EEPos(cmd))
	}
	return path, e
}

// TestDetourModes checks the two modes on one scene: each demonstration clears the obstacle, the
// sides split evenly, and the mean path runs through the obstacle.
func TestDetourModes(t *testing.T) {
	rb := shipped(t, "ur5")
	tk, err := task.NewDetour(task.DetourConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if err := tk.Reset(rand.New(rand.NewPCG(3, 1)), rb); err != nil {
		t.Fatal(err)
	}
	var g task.Truth
	tk.TruthTo(&g, 0)
	o := g.Obstacles[0]
	const n = 40
	mean := make([][3]float64, 101)
	left := 0
	for seed := range uint64(n) {
		path, e := plan(t, rb, &g, seed)
		if e.Side() == 1 {
			left++
		}
		for i, p := range path {
			if c := o.Dist(p) - g.EERadius; c < 0.02 { // Clearance 0.03 less 1 cm of IK lag
				t.Fatalf("seed %d: demonstration passes %.3f m from the obstacle at phase %d", seed, c, i)
			}
			for k := range 3 {
				mean[i][k] += p[k] / n
			}
		}
		if d := math.Sqrt(sq(path[100][0]-g.Goal[0]) + sq(path[100][1]-g.Goal[1]) + sq(path[100][2]-g.Goal[2])); d > 1e-3 {
			t.Fatalf("seed %d: the path ends %.4f m from the goal", seed, d)
		}
	}
	t.Logf("%d of %d demonstrations pass left", left, n)
	// Binomial(40, 1/2): sd 3.2; 20 ± 9 (3 sd) holds for a fair coin with probability 99.7%.
	if left < 11 || left > 29 {
		t.Errorf("%d of %d demonstrations pass left, want about half", left, n)
	}
	inside := false
	for _, p := range mean {
		inside = inside || o.Dist(p) < 0
	}
	if !inside {
		t.Error("the mean of the demonstrations misses the obstacle")
	}
}

func sq(v float64) float64 { return v * v }

// TestMinimumJerkTiming checks the reach path's timing: at rest at both ends, the midpoint at
// half time, the peak speed 1.875 times the mean (10 u^3 - 15 u^4 + 6 u^5 has slope 1.875 at 1/2).
func TestMinimumJerkTiming(t *testing.T) {
	rb := shipped(t, "panda")
	start := rb.EEPos(rb.Home)
	g := task.Truth{Goal: [3]float64{start[0] + 0.2, start[1] - 0.1, start[2] - 0.1}, Tolerance: 0.03}
	path, e := plan(t, rb, &g, 1)
	L := math.Sqrt(sq(0.2) + sq(0.1) + sq(0.1))
	speed := func(i int) float64 {
		a, b := path[i], path[i+1]
		return math.Sqrt(sq(b[0]-a[0])+sq(b[1]-a[1])+sq(b[2]-a[2])) / (e.Duration().Seconds() / 100)
	}
	mean := L / e.Duration().Seconds()
	if v0, v1 := speed(0), speed(99); v0 > 0.01*mean || v1 > 0.01*mean {
		t.Errorf("end speeds %.4f and %.4f m/s, want near 0 (mean %.3f)", v0, v1, mean)
	}
	if peak := (speed(49) + speed(50)) / 2; math.Abs(peak/mean-1.875) > 0.01 {
		t.Errorf("peak speed %.4f is %.3f times the mean, want 1.875", peak, peak/mean)
	}
	if e.Side() != 0 {
		t.Errorf("no obstacle, but side %d", e.Side())
	}
}

func TestDeterministic(t *testing.T) {
	rb := shipped(t, "ur5")
	start := rb.EEPos(rb.Home)
	g := task.Truth{Goal: [3]float64{start[0], start[1] + 0.3, start[2]}, EERadius: 0.02,
		Obstacles: nil}
	a, _ := plan(t, rb, &g, 7)
	b, _ := plan(t, rb, &g, 7)
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("same seed, paths differ at %d", i)
		}
	}
}

// lowerBy10cm returns the expert of a UR5 reset at home, a goal 10 cm below its end effector
// there, and a command buffer.
func lowerBy10cm(tb testing.TB) (*Expert, *task.Truth, []float64) {
	tb.Helper()
	rb := shipped(tb, "ur5")
	e, err := New(Config{}, rb, rand.New(rand.NewPCG(1, 1)))
	if err != nil {
		tb.Fatal(err)
	}
	e.Reset(rb.Home)
	g := &task.Truth{Goal: rb.EEPos(rb.Home)}
	g.Goal[2] -= 0.1
	return e, g, make([]float64, len(rb.Home))
}

func TestCommandAllocs(t *testing.T) {
	e, g, cmd := lowerBy10cm(t)
	now := time.Duration(0)
	if allocs := testing.AllocsPerRun(50, func() { e.CommandTo(cmd, now, g); now += 20 * time.Millisecond }); allocs != 0 {
		t.Errorf("CommandTo allocates %v times", allocs)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []Config{{Speed: -1}, {SpeedJitter: 1}, {Tilt: 2}, {Lambda: math.NaN()}, {Iterations: -1}, {MinDuration: -1}} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
	if err := (Config{}).Validate(); err != nil {
		t.Errorf("zero config: %v", err)
	}
}

func BenchmarkCommandTo(b *testing.B) {
	e, g, cmd := lowerBy10cm(b)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		e.CommandTo(cmd, time.Duration(i%100)*20*time.Millisecond, g)
	}
}
