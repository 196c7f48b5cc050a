package safety

import (
	"math"
	"testing"

	"github.com/flowact/flowact/robot"
)

// TestMonitor: hand-made streams with known differences, at 10 Hz on one joint with band [-1, 1],
// 1 rad/s, 2 rad/s^2 and 10 rad/s^3 (per tick: 0.1 rad, 0.02 rad, 0.01 rad of third difference).
func TestMonitor(t *testing.T) {
	m := &robot.Model{Name: "one", Joints: []robot.Joint{{Name: "j", Type: robot.Revolute,
		Limits: robot.Limits{HasPosition: true, Lower: -1, Upper: 1, Velocity: 1, Acceleration: 2, Jerk: 10}}}}
	lim, err := Resolve(m, &Config{})
	if err != nil {
		t.Fatal(err)
	}
	const dt = 0.1
	nan := math.NaN()
	for _, c := range []struct {
		name      string
		start     float64
		vel       float64 // rad/s at the start
		stream    []float64
		want      map[Kind]uint64
		firstTick int64
		firstKind Kind
	}{
		{"at rest", 0, 0, []float64{0, 0, 0}, nil, 0, 0},
		// Third differences of 0.001 per tick, then ones exactly at the limits (0.01 rad per tick),
		// then 0.0111 after 0.001: beyond.
		{"jerk-limited ramp", 0, 0, []float64{0.001, 0.004, 0.009, 0.016, 0.025}, nil, 0, 0},
		{"exact limits", 0, 0, []float64{0.01, 0.03, 0.05}, nil, 0, 0},
		{"jerk beyond", 0, 0, []float64{0.001, 0.0131}, map[Kind]uint64{Jerk: 1}, 1, Jerk},
		{"position", 0.95, 0, []float64{0.95, 0.95, 1.1}, map[Kind]uint64{Position: 1, Velocity: 1, Acceleration: 1, Jerk: 1}, 2, Position},
		{"jump from rest", 0, 0, []float64{0.2}, map[Kind]uint64{Velocity: 1, Acceleration: 1, Jerk: 1}, 0, Velocity},
		{"moving start", 0, 1, []float64{0.1, 0.2, 0.3}, nil, 0, 0},
		{"stop from moving", 0, 1, []float64{0.1, 0.1}, map[Kind]uint64{Acceleration: 1, Jerk: 1}, 1, Acceleration},
		{"nan erases history", 0, 0, []float64{0, nan, 0.5, 0.5}, map[Kind]uint64{NotFinite: 1, Velocity: 0}, 1, NotFinite},
	} {
		t.Run(c.name, func(t *testing.T) {
			mo := NewMonitor(lim, dt)
			mo.ResetMoving([]float64{c.start}, []float64{c.vel}, nil)
			for _, x := range c.stream {
				mo.Observe([]float64{x})
			}
			var total uint64
			for _, k := range []Kind{Position, Velocity, Acceleration, Jerk, NotFinite} {
				if got := mo.Count(k); got != c.want[k] {
					t.Errorf("%v: %d violations, want %d (%v)", k, got, c.want[k], mo)
				}
				total += c.want[k]
			}
			tick, _, kind, _, ok := mo.First()
			if ok != (total > 0) || ok && (tick != c.firstTick || kind != c.firstKind) {
				t.Errorf("first violation %v at %d (%v), want %v at %d", kind, tick, ok, c.firstKind, c.firstTick)
			}
		})
	}
}

func TestMonitorAllocs(t *testing.T) {
	lim, _ := Resolve(testModel(), &Config{})
	mo := NewMonitor(lim, 0.01)
	cmd := []float64{0.1, 0.2, 5}
	if n := testing.AllocsPerRun(100, func() { mo.Observe(cmd) }); n != 0 {
		t.Errorf("%v allocations per sample", n)
	}
}
