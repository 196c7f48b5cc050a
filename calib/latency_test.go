package calib_test

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/flowact/flowact/calib"
	"github.com/flowact/flowact/policy/safety"
	"github.com/flowact/flowact/robot"
	"github.com/flowact/flowact/robot/urdf"
	"github.com/flowact/flowact/sim"
)

// TestEstimateLag recovers known fractional delays of a smooth random signal (the measured
// signal is the commanded one delayed by linear interpolation, plus noise).
func TestEstimateLag(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const k, d = 3000, 2
	cmd := make([]float64, k*d)
	for j := range d {
		x, v := 0.0, 0.0
		for i := range k {
			v = 0.9*v + 0.01*rng.NormFloat64()
			x += v
			cmd[i*d+j] = x
		}
	}
	for _, delay := range []float64{0, 1, 2.5, 3.25, 7.8, 12.5} {
		meas := make([]float64, k*d)
		for j := range d {
			for i := range k {
				s := float64(i) - delay
				i0 := int(math.Floor(s))
				f := s - float64(i0)
				a, b := cmd[max(i0, 0)*d+j], cmd[min(max(i0+1, 0), k-1)*d+j]
				meas[i*d+j] = a + f*(b-a) + 1e-4*rng.NormFloat64()
			}
		}
		got, peak, err := calib.EstimateLag(cmd, meas, d, 20, nil)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(got-delay) > 0.1 || peak < 0.9 {
			t.Errorf("delay %v: estimated %v (peak %.3f)", delay, got, peak)
		}
	}
	if _, _, err := calib.EstimateLag(cmd, make([]float64, k*d), d, 20, nil); !errors.Is(err, calib.ErrNoLag) {
		t.Errorf("a state that never moves: %v", err)
	}
	if _, _, err := calib.EstimateLag(cmd[:40], cmd[:40], d, 20, nil); !errors.Is(err, calib.ErrNoLag) {
		t.Errorf("too short a record: %v", err)
	}
}

// TestMeasureLatency runs the latency procedure on the simulator (on its clock: no wall time)
// with a known command delay, jitter and state latency, at 50 and 500 Hz, and checks the
// estimate within one control tick of the true lag. The true lag, in ticks of period T, is
// (delay + jitter/2 + latency + tau)/T + 1/2: a command written at tick k takes effect at
// kT + delay (+ jitter), the state read at tick j is the sample taken at jT - latency, and the
// half tick is the zero-order hold between commands (with a pure delay, the shift between the
// two sequences is floor((delay + latency)/T) + 1, within half a tick of that). The servo's
// time constant tau is kept under a quarter tick and the simulated joints have no velocity or
// acceleration limit (the excitation is shaped by the filter with the UR5's limits), so that the
// simulated lag is the transport lag configured, with nothing left to the servo's dynamics.
func TestMeasureLatency(t *testing.T) {
	m, rc, err := urdf.Shipped("ur5")
	if err != nil {
		t.Fatal(err)
	}
	free := *m
	free.Joints = append([]robot.Joint(nil), m.Joints...)
	for i := range free.Joints {
		l := &free.Joints[i].Limits
		l.Velocity, l.Acceleration, l.Jerk = 0, 0, 0
	}
	ms := time.Millisecond
	for _, tc := range []struct {
		name                   string
		rate                   float64
		delay, jitter, latency time.Duration
		tau                    time.Duration
		dur                    time.Duration
	}{
		{"50Hz", 50, 30 * ms, 0, 15 * ms, ms / 2, 24 * time.Second},
		{"50Hz jitter", 50, 30 * ms, 20 * ms, 15 * ms, ms / 2, 24 * time.Second},
		{"50Hz long", 50, 95 * ms, 10 * ms, 40 * ms, 2 * ms, 24 * time.Second},
		{"500Hz", 500, 7 * ms, 0, 4 * ms, ms / 4, 16 * time.Second},
		{"500Hz jitter", 500, 7 * ms, 6 * ms, 4 * ms, ms / 4, 16 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := sim.New(&free, sim.Config{
				Initial:      rc.HomePosition(m),
				Lag:          sim.Lag{TimeConstant: tc.tau},
				SensorPeriod: ms,
				Faults:       sim.Faults{CommandDelay: tc.delay, CommandJitter: tc.jitter, StateLatency: tc.latency, Seed: 5},
			})
			if err != nil {
				t.Fatal(err)
			}
			s.Step(100 * ms) // a first state past the latency
			lim, err := safety.Resolve(m, &safety.Config{})
			if err != nil {
				t.Fatal(err)
			}
			f := safety.NewFilter(lim, 1/tc.rate)
			cfg := calib.LatencyConfig{Rate: tc.rate, Duration: tc.dur, Seed: 9, MaxLag: 200 * ms}
			d := &remodel{Sim: s, m: m} // the procedure sees the UR5's limits
			lat, err := calib.MeasureLatency(context.Background(), d, s.Clock(), f, cfg)
			if err != nil {
				t.Fatal(err)
			}
			T := 1 / tc.rate
			want := (tc.delay+tc.jitter/2+tc.latency+tc.tau).Seconds()/T + 0.5
			t.Logf("lag %.3f ticks (%.2f ms) [%.3f, %.3f], true %.3f, peak %.3f", lat.Ticks, 1e3*lat.Seconds, lat.Low, lat.High, want, lat.Peak)
			if math.Abs(lat.Ticks-want) > 1 {
				t.Errorf("lag %.3f ticks, true %.3f: off by more than one tick", lat.Ticks, want)
			}
			if !(lat.Low <= lat.Ticks && lat.Ticks <= lat.High) || lat.High-lat.Low > 3 {
				t.Errorf("interval [%.3f, %.3f] around %.3f", lat.Low, lat.High, lat.Ticks)
			}
			if math.Abs(lat.Seconds-lat.Ticks*T) > 1e-12 {
				t.Errorf("seconds %v for %v ticks", lat.Seconds, lat.Ticks)
			}
			// The excitation stayed inside the filter's limits: the simulator never clamped.
			var tr robot.State
			s.TrueStateTo(&tr)
			for i, j := range m.Joints {
				if l := j.Limits; tr.Position[i] < l.Lower || tr.Position[i] > l.Upper {
					t.Errorf("%s at %v outside its limits", j.Name, tr.Position[i])
				}
			}
		})
	}
}

// TestMeasureLatencyRefuses: a joint stuck for the whole run gives no lag.
func TestMeasureLatencyRefuses(t *testing.T) {
	m, rc, err := urdf.Shipped("ur5")
	if err != nil {
		t.Fatal(err)
	}
	s, err := sim.New(m, sim.Config{Initial: rc.HomePosition(m), Faults: sim.Faults{StuckJoint: "elbow_joint", Stuck: sim.Window{Enabled: true}}})
	if err != nil {
		t.Fatal(err)
	}
	s.Step(10 * time.Millisecond)
	lim, err := safety.Resolve(m, &safety.Config{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := calib.LatencyConfig{Rate: 50, Duration: 10 * time.Second, Joints: []string{"elbow_joint"}, MaxLag: 200 * time.Millisecond}
	if _, err := calib.MeasureLatency(context.Background(), s, s.Clock(), safety.NewFilter(lim, 0.02), cfg); !errors.Is(err, calib.ErrNoLag) {
		t.Errorf("stuck joint: %v", err)
	}
	cfg.Joints = []string{"thumb"}
	if _, err := calib.MeasureLatency(context.Background(), s, s.Clock(), safety.NewFilter(lim, 0.02), cfg); !errors.Is(err, calib.ErrConfig) {
		t.Errorf("unknown joint: %v", err)
	}
}

// remodel is a simulator seen with another model (same joints, other limits).
type remodel struct {
	*sim.Sim
	m *robot.Model
}

func (r *remodel) Model() *robot.Model { return r.m }

// writeTimes is a driver that records the clock time of every command written.
type writeTimes struct {
	*remodel
	at []time.Time
}

func (w *writeTimes) WriteCommand(c *robot.Command) error {
	w.at = append(w.at, w.Sim.Now())
	return w.Sim.WriteCommand(c)
}

// TestMeasureLatencyStarved: a process starved now and then (100 ms every 2 s at 50 Hz) takes
// its late ticks late, counted, instead of catching up in a burst (no two commands ever leave
// at one instant, which a position controller would see as a jump of the missed ticks), and
// still measures the lag within one tick.
func TestMeasureLatencyStarved(t *testing.T) {
	m, rc, err := urdf.Shipped("ur5")
	if err != nil {
		t.Fatal(err)
	}
	ms := time.Millisecond
	free := *m // as in TestMeasureLatency: the simulated lag is the transport lag alone
	free.Joints = append([]robot.Joint(nil), m.Joints...)
	for i := range free.Joints {
		l := &free.Joints[i].Limits
		l.Velocity, l.Acceleration, l.Jerk = 0, 0, 0
	}
	s, err := sim.New(&free, sim.Config{Initial: rc.HomePosition(m), Lag: sim.Lag{TimeConstant: ms / 2}, SensorPeriod: ms,
		Faults: sim.Faults{CommandDelay: 30 * ms, StateLatency: 15 * ms, Seed: 5}})
	if err != nil {
		t.Fatal(err)
	}
	s.Step(100 * ms)
	lim, err := safety.Resolve(m, &safety.Config{})
	if err != nil {
		t.Fatal(err)
	}
	d := &writeTimes{remodel: &remodel{Sim: s, m: m}}
	clk := &starved{s: s, every: 100, stall: 100 * ms}
	cfg := calib.LatencyConfig{Rate: 50, Duration: 24 * time.Second, Seed: 9, MaxLag: 200 * ms}
	lat, err := calib.MeasureLatency(context.Background(), d, clk, safety.NewFilter(lim, 1/cfg.Rate), cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := (30*ms+15*ms+ms/2).Seconds()*cfg.Rate + 0.5
	t.Logf("lag %.3f ticks [%.3f, %.3f], true %.3f, peak %.3f, %d late ticks", lat.Ticks, lat.Low, lat.High, want, lat.Peak, lat.Late)
	if math.Abs(lat.Ticks-want) > 1 {
		t.Errorf("lag %.3f ticks, true %.3f: off by more than one tick", lat.Ticks, want)
	}
	if stalls := clk.n / clk.every; lat.Late != stalls {
		t.Errorf("%d late ticks counted, %d stalls", lat.Late, stalls)
	}
	for i := 1; i < len(d.at); i++ {
		if !d.at[i].After(d.at[i-1]) {
			t.Fatalf("commands %d and %d both left at %v: a burst", i-1, i, d.at[i].Sub(d.at[0]))
		}
	}
}
