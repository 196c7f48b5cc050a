package policy

import (
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/flowact/flowact/expert/ode"
	"github.com/flowact/flowact/policy/chunk"
	"github.com/flowact/flowact/policy/safety"
	"github.com/flowact/flowact/robot"
	"github.com/flowact/flowact/sim"
)

// TestAdversarial: garbage chunks (far outside the limits, jumping every row, NaN, Inf, wrong
// shapes, random latencies), a joint state that goes stale and comes back, and random
// start/hold/stop/fault/reset commands. The driver checks every command against the robot
// model's position, velocity and acceleration limits relative to the previous one.
func TestAdversarial(t *testing.T) {
	for _, rate := range []float64{50, 1000} {
		synctest.Test(t, func(t *testing.T) {
			per := period(rate)
			model := armModel()
			drv := newDriver(t, model, per, []float64{1.9, -1.4, 0})
			const h, d = 25, 3
			var mu sync.Mutex
			r := rand.New(rand.NewPCG(uint64(rate), 9))
			inf := inferFunc{h: h, d: d, f: func(dst *chunk.Chunk, req *Request) error {
				mu.Lock()
				mode, lat := r.IntN(7), time.Duration(r.IntN(2*h))*per/2+time.Microsecond
				vals := make([]float64, h*d)
				for i := range vals {
					vals[i] = (r.Float64()*2 - 1) * 50
				}
				mu.Unlock()
				time.Sleep(lat)
				dst.H, dst.D, dst.Data = h, d, dst.Data[:h*d]
				switch mode {
				case 0: // far outside every limit, jumping every row
					copy(dst.Data, vals)
				case 1: // a smooth ramp far beyond the upper limits
					for i := range h {
						for j := range d {
							dst.Data[i*d+j] = req.Position[j] + float64(i)*0.5
						}
					}
				case 2:
					copy(dst.Data, vals)
					dst.Data[int(math.Abs(vals[0]))%(h*d)] = math.NaN()
				case 3:
					copy(dst.Data, vals)
					dst.Data[h*d-1] = math.Inf(1)
				case 4:
					dst.H = h + 1
				case 6: // a short slice of its own
					dst.Data = make([]float64, h*d-5)
				case 5: // a plausible chunk: hold where it is
					for i := range h {
						copy(dst.Data[i*d:(i+1)*d], req.Position)
					}
				}
				return nil
			}}
			l, err := New(Config{Rate: rate, Threshold: 8}, Deps{Driver: drv, Inferer: inf})
			if err != nil {
				t.Fatal(err)
			}
			l.Start()
			cr := rand.New(rand.NewPCG(3, uint64(rate)))
			runFor(t, l, 20*time.Second, func(el time.Duration) {
				if el%(100*time.Millisecond) != 0 {
					return
				}
				if cr.IntN(3) > 0 {
					l.PutEmbedding(goal(time.Now(), 0))
				}
				switch cr.IntN(40) {
				case 0:
					drv.setFrozen(true)
				case 1, 2, 3:
					drv.setFrozen(false)
				case 4:
					l.Hold()
				case 5:
					l.Stop()
				case 6:
					l.Fault("test")
				case 7, 8:
					l.Reset()
				case 9, 10, 11, 12:
					l.Start()
				}
			})
			tel := l.Telemetry()
			fc := l.Filter()
			t.Logf("%g Hz: %d commands; %d chunks, %d rejected, %d late; clamps: pos %d vel %d acc %d; max |v|/limit %.3f, |a|/limit %.3f",
				rate, drv.commands(), tel.Chunks.Load(), tel.Rejected.Load(), tel.Late.Load(),
				fc.Count(-1, safety.Position), fc.Count(-1, safety.Velocity), fc.Count(-1, safety.Acceleration), drv.maxV, drv.maxA)
			if drv.commands() < 100 || tel.Chunks.Load() < 5 || tel.Rejected.Load() < 5 {
				t.Errorf("the adversary was not exercised: %d commands, %d chunks, %d rejected", drv.commands(), tel.Chunks.Load(), tel.Rejected.Load())
			}
		})
	}
}

// simDriver runs a sim.Sim on the synctest clock (the bubble's time since t0 is the sim's time
// since its start) and checks every command against the model's limits.
type simDriver struct {
	s      *sim.Sim
	t0, s0 time.Time
	chk    *driver
	trajs  []robot.Trajectory // recorded for checkReference
}

func (d *simDriver) Model() *robot.Model { return d.s.Model() }
func (d *simDriver) sync()               { d.s.StepTo(d.s0.Add(time.Since(d.t0))) }

func (d *simDriver) ReadState(dst *robot.State) error {
	d.sync()
	if err := d.s.ReadState(dst); err != nil {
		return err
	}
	dst.Stamp = d.t0.Add(dst.Stamp.Sub(d.s0))
	return nil
}

func (d *simDriver) WriteCommand(c *robot.Command) error {
	d.sync()
	d.chk.WriteCommand(c)
	return d.s.WriteCommand(c)
}

func (d *simDriver) WriteTrajectory(tr *robot.Trajectory) error {
	d.sync()
	d.trajs = append(d.trajs, robot.Trajectory{Start: tr.Start, TimeFromStart: slices.Clone(tr.TimeFromStart), Positions: slices.Clone(tr.Positions)})
	c := *tr
	c.Start = d.s0.Add(tr.Start.Sub(d.t0))
	return d.s.WriteTrajectory(&c)
}

// TestSimFaults runs the loop on the simulator under each of its faults, with goals at the edge
// of the position limits, and checks every command against the limits and the simulated joints'
// true positions against the position limits.
func TestSimFaults(t *testing.T) {
	win := sim.Window{Enabled: true, At: time.Second, For: 2 * time.Second}
	faults := []struct {
		name  string
		f     sim.Faults
		stale bool // the state is always older than the watchdog's 100 ms: the robot must not move
	}{
		{"none", sim.Faults{}, false},
		{"latency 30ms", sim.Faults{StateLatency: 30 * time.Millisecond}, false},
		{"latency 150ms", sim.Faults{StateLatency: 150 * time.Millisecond}, true},
		{"drops", sim.Faults{StateDrop: 0.5, Seed: 1}, false},
		{"noise", sim.Faults{PositionNoise: 0.01, VelocityNoise: 0.1, Seed: 2}, false},
		{"freeze", sim.Faults{Freeze: win}, false},
		{"command delay", sim.Faults{CommandDelay: 50 * time.Millisecond}, false},
		{"stuck joint", sim.Faults{StuckJoint: "j0", Stuck: win}, false},
	}
	for _, out := range []string{"command", "trajectory"} {
		for _, fc := range faults {
			t.Run(out+"/"+fc.name, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					model := armModel()
					s, err := sim.New(model, sim.Config{Faults: fc.f, Initial: []float64{0.5, -0.5, 0}})
					if err != nil {
						t.Fatal(err)
					}
					per := 10 * time.Millisecond
					drv := &simDriver{s: s, t0: time.Now(), s0: s.Now(), chk: newDriver(t, model, per, []float64{0.5, -0.5, 0})}
					m := newPlanModel(40, 3)
					m.sigma = 0.2
					cfg := Config{Rate: 100, Threshold: 10, Output: out}
					if fc.f.PositionNoise > 0 {
						// The state guard's tolerance must cover the sensor's noise: two
						// readings with 0.01 rad of noise differ by 0.014 rad (one standard
						// deviation), so the default 0.01 rad would refuse a pair in a few
						// hundred; 8 x the noise is over 5 standard deviations.
						cfg.Watchdog.StateTolerance = 8 * fc.f.PositionNoise
					}
					l, err := New(cfg, Deps{Driver: drv, Inferer: NewExpert(m, &ode.Fixed{Method: ode.Euler, Steps: 4}, nil, 5)})
					if err != nil {
						t.Fatal(err)
					}
					l.Start()
					goals := [][]float32{{1.99, -1.49, 3}, {-1.99, 1.49, -3}}
					var truth robot.State = robot.NewState(3)
					runFor(t, l, 5*time.Second, func(el time.Duration) {
						l.PutEmbedding(goal(time.Now(), goals[int(el/(1500*time.Millisecond))%2]...))
						s.TrueStateTo(&truth)
						for j, jt := range model.Joints {
							if lim := jt.Limits; lim.HasPosition && (truth.Position[j] < lim.Lower-1e-9 || truth.Position[j] > lim.Upper+1e-9) {
								t.Fatalf("at %v joint %s is at %g, outside [%g, %g]", el, jt.Name, truth.Position[j], lim.Lower, lim.Upper)
							}
						}
					})
					pc := l.Filter().Count(-1, safety.Position)
					t.Logf("%d commands, %d chunks, position clamps %d, stale trips %d, max |v|/limit %.2f |a|/limit %.2f",
						drv.chk.commands(), l.Telemetry().Chunks.Load(), pc, l.Watchdogs().Count(safety.StateStale), drv.chk.maxV, drv.chk.maxA)
					if n := l.Telemetry().WriteErrors.Load(); n != 0 {
						t.Errorf("%d commands or trajectories refused by the simulator", n)
					}
					sent := drv.chk.commands()
					if out == "trajectory" {
						sent = len(drv.trajs)
						if sent > 0 {
							checkReference(t, model, per, drv.trajs)
						}
					}
					switch {
					case fc.stale && (sent != 0 || !l.Watchdogs().Active(safety.StateStale)):
						t.Errorf("%d commands with an always stale state (state_stale active %v)", sent, l.Watchdogs().Active(safety.StateStale))
					case !fc.stale && out == "command" && sent < 300:
						t.Errorf("only %d commands", sent)
					case !fc.stale && out == "trajectory" && sent < 10:
						t.Errorf("only %d trajectories", sent)
					}
				})
			})
		}
	}
}
