package policy

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/flowact/flowact/policy/chunk"
	"github.com/flowact/flowact/robot"
)

// lagDriver is a robot whose state at tick k is the command it was sent at tick k - lag (its
// start position before any): a pure command-to-state lag of whole ticks. It records every
// command by tick (from the command's stamp).
type lagDriver struct {
	model *robot.Model
	clk   *simClock
	t0    time.Time
	per   time.Duration
	lag   int64
	start []float64

	mu   sync.Mutex
	sent map[int64][]float64
}

func (d *lagDriver) Model() *robot.Model { return d.model }

func (d *lagDriver) tick(t time.Time) int64 { return int64(t.Sub(d.t0) / d.per) }

func (d *lagDriver) ReadState(dst *robot.State) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.clk.Now()
	pos := d.start
	// The newest command sent at or before tick k - lag (a tick without one holds the last).
	for j := d.tick(now) - d.lag; j >= 0; j-- {
		if c, ok := d.sent[j]; ok {
			pos = c
			break
		}
	}
	copy(dst.Position, pos)
	dst.Stamp = now
	return nil
}

func (d *lagDriver) WriteCommand(c *robot.Command) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.sent[d.tick(c.Stamp)] = slices.Clone(c.Position)
	return nil
}

// ramp is the one plan the rampInferer knows: joint j at tick k is rampV[j] k (rad), slow
// enough (0.1 to 0.3 rad/s at 100 Hz) for the filter to pass it through unchanged.
var rampV = []float64{0.002, -0.001, 0.003}

func ramp(dst []float64, k int64) {
	for j := range dst {
		dst[j] = rampV[j] * float64(k)
	}
}

// rampInferer answers every request with the ramp from the request's Start: row i is the ramp
// at tick req.Start + i. It records each request.
type rampInferer struct {
	h, d int
	reqs []Request // copies (Prefix, Guide and GuideWeights cloned)
}

func (r *rampInferer) Shape() (int, int) { return r.h, r.d }

func (r *rampInferer) Infer(dst *chunk.Chunk, req *Request) error {
	c := *req
	c.Prefix, c.Guide, c.GuideWeights = slices.Clone(req.Prefix), slices.Clone(req.Guide), slices.Clone(req.GuideWeights)
	r.reqs = append(r.reqs, c)
	dst.H, dst.D, dst.Start, dst.Data = r.h, r.d, req.Start, dst.Data[:r.h*r.d]
	for i := range r.h {
		ramp(dst.Data[i*r.d:(i+1)*r.d], req.Start+int64(i))
	}
	copy(dst.Data, req.Prefix)
	return nil
}

// simulateToGoal runs a loop of cfg and deps, with a goal embedding that stays fresh, on clk
// until its end, each inference taking latency of simulated time.
func simulateToGoal(t *testing.T, cfg Config, deps Deps, clk *simClock, latency time.Duration) {
	t.Helper()
	l, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	l.PutEmbedding(goal(clk.end.Add(time.Hour), 0, 0, 0))
	l.Start()
	if err := l.Simulate(t.Context(), latency); !errors.Is(err, errEnd) {
		t.Fatalf("Simulate: %v", err)
	}
}

// TestRobotLagBookkeeping: on a robot whose state lags its commands by L ticks, with RobotLag
// saying so, a chunk asked for at tick k starts at k - L (Request.Start), its first L committed
// rows (prefix, and the guide of guided) are exactly the commands the robot was sent at ticks
// k-L .. k-1, and its row i is executed at tick Start + i: an expert whose plan is a fixed
// function of time (the ramp) has the robot commanded on that function, not L ticks behind it.
// Without RobotLag a chunk starts at its request's tick. With a slow expert (a delay of d ticks)
// the shift is cut to leave d + m rows after the arrival (H - shift - d >= d + m, m the delay
// margin, 1 here) once a delay has been measured (from the second request on: the first
// chunk's, the cold start's, serves until the next is measured).
func TestRobotLagBookkeeping(t *testing.T) {
	const rate = 100.0
	per := period(rate)
	for _, c := range []struct {
		strategy chunk.Strategy
		lag      time.Duration // RobotLag, as calib latency measures it (+ half a tick)
		ticks    int64         // L
		latency  time.Duration // the expert's: a delay of ceil(latency / 10 ms) ticks
		shift    int64         // the shift once a delay is measured
		margin   int           // DelayMargin (0: the default, 1)
	}{
		{chunk.Prefix, 35 * time.Millisecond, 3, 0, 3, 0},
		{chunk.Prefix, 75 * time.Millisecond, 7, 0, 7, 0},
		{chunk.Guided, 35 * time.Millisecond, 3, 0, 3, 0},
		{chunk.Blend, 55 * time.Millisecond, 5, 0, 5, 0},
		{chunk.Prefix, 0, 0, 0, 0, 0},
		{chunk.Prefix, 75 * time.Millisecond, 7, 45 * time.Millisecond, 7, 0}, // d = 5: 20 - 10 - 1 = 9 left
		{chunk.Prefix, 75 * time.Millisecond, 7, 65 * time.Millisecond, 5, 0}, // d = 7: 20 - 14 - 1 = 5
		{chunk.Guided, 75 * time.Millisecond, 7, 85 * time.Millisecond, 1, 0}, // d = 9: 20 - 18 - 1 = 1
		{chunk.Prefix, 75 * time.Millisecond, 7, 95 * time.Millisecond, 0, 0}, // d = 10: none
		{chunk.Prefix, 75 * time.Millisecond, 7, 45 * time.Millisecond, 6, 4}, // d = 5, margin 4: 20 - 10 - 4 = 6
	} {
		t.Run(fmt.Sprintf("%s/%v/%v", c.strategy, c.lag, c.latency), func(t *testing.T) {
			if got := LagShift(c.lag, rate); int64(got) != c.ticks {
				t.Fatalf("LagShift(%v, %g) = %d, want %d", c.lag, rate, got, c.ticks)
			}
			clk := &simClock{now: time.Unix(9000, 0)}
			clk.end = clk.now.Add(3 * time.Second)
			drv := &lagDriver{model: armModel(), clk: clk, t0: clk.now, per: per, lag: c.ticks,
				start: make([]float64, 3), sent: map[int64][]float64{}}
			inf := &rampInferer{h: 20, d: 3}
			simulateToGoal(t, Config{Rate: rate, Threshold: 8, RobotLag: c.lag, DelayMargin: c.margin, Chunk: chunk.Config{Strategy: c.strategy}},
				Deps{Driver: drv, Inferer: inf, Clock: clk}, clk, c.latency)
			if len(inf.reqs) < 8 {
				t.Fatalf("%d requests in 3 s", len(inf.reqs))
			}
			// The cold start's chunk (asked for at tick 0, Start -L) starts at its arrival with
			// its row 0, the ramp at -L (below 0): the robot held still before, so none of its
			// rows is in the past. Skipping L rows would have it aim at the ramp at 0 (where it
			// is), then above.
			for k := int64(0); c.ticks > 0 && k < drv.tick(clk.end); k++ {
				if first := drv.sent[k]; first[0] != 0 {
					if !(first[0] < 0 && first[2] < 0) {
						t.Errorf("tick %d, the first move, commanded %v: the cold start's chunk skipped its first rows", k, first)
					}
					break
				}
			}
			conditioned := 0
			for n, r := range inf.reqs {
				shift := c.ticks
				if n >= 1 {
					shift = c.shift
				}
				if r.Start != r.Tick-shift {
					t.Fatalf("request %d at tick %d: Start %d, want %d", n, r.Tick, r.Start, r.Tick-shift)
				}
				rows := r.Prefix
				if c.strategy == chunk.Guided {
					rows = r.Guide[:r.Frozen*3]
				}
				if n == 0 || c.strategy == chunk.Blend {
					if len(rows) != 0 {
						t.Fatalf("request %d (cold start or blend) committed %d rows", n, len(rows)/3)
					}
					continue
				}
				conditioned++
				// The committed rows: the shift's sent commands, then at least the delay (1 tick
				// or more) and the margin of the plan's.
				if p := int64(len(rows) / 3); p < shift+1+int64(max(c.margin, 1)) {
					t.Fatalf("request %d at tick %d: %d committed rows, want at least %d + 2", n, r.Tick, p, shift)
				}
				for i := range shift {
					// Before tick 0 the robot held its start, as the first command does.
					k := max(r.Start+i, 0)
					if got, want := rows[i*3:(i+1)*3], drv.sent[k]; !slices.Equal(got, want) {
						t.Fatalf("request %d at tick %d: committed row %d (tick %d) is %v, the robot was sent %v", n, r.Tick, i, k, got, want)
					}
				}
			}
			if c.strategy != chunk.Blend && conditioned == 0 {
				t.Fatal("no request after the cold start")
			}
			if c.shift == 0 && c.ticks > 0 {
				// d = H/2: each plan runs out as the next chunk arrives, the robot holds, and the
				// chunks resume from where it stopped (not on the ramp's time): nothing to check.
				return
			}
			// After the first chunks' catch-up the robot is commanded on the ramp, on time.
			last := drv.tick(clk.end)
			want := make([]float64, 3)
			for k := last - 100; k < last; k++ {
				ramp(want, k)
				got, ok := drv.sent[k]
				if !ok {
					t.Fatalf("no command at tick %d", k)
				}
				for j := range want {
					if math.Abs(got[j]-want[j]) > 1e-9 {
						t.Fatalf("tick %d: commanded %v, the plan says %v (%.1f ticks behind it)", k, got, want, (want[j]-got[j])/rampV[j])
					}
				}
			}
		})
	}
}

// TestRobotLagRefused: a lag of a horizon or more leaves no row of a chunk in the future.
func TestRobotLagRefused(t *testing.T) {
	drv := &lagDriver{model: armModel(), clk: &simClock{}, per: 10 * time.Millisecond, start: make([]float64, 3), sent: map[int64][]float64{}}
	_, err := New(Config{Rate: 100, Threshold: 8, RobotLag: 205 * time.Millisecond}, Deps{Driver: drv, Inferer: &rampInferer{h: 20, d: 3}})
	if !errors.Is(err, ErrConfig) {
		t.Fatalf("a 20-tick lag with 20-tick chunks: %v, want ErrConfig", err)
	}
	if _, err := New(Config{Rate: 100, Threshold: 8, RobotLag: 195 * time.Millisecond}, Deps{Driver: drv, Inferer: &rampInferer{h: 20, d: 3}}); err != nil {
		t.Fatalf("a 19-tick lag with 20-tick chunks: %v", err)
	}
}

// TestLagShift: the measured lag (calib latency's convention, a held command's half tick
// included) in ticks, rounded half down.
func TestLagShift(t *testing.T) {
	for _, c := range []struct {
		lag  time.Duration
		rate float64
		want int
	}{
		{0, 50, 0},
		{10 * time.Millisecond, 50, 0},  // half a tick: the hold alone
		{30 * time.Millisecond, 50, 1},  // a delay of one period
		{140 * time.Millisecond, 50, 7}, // 7 ticks measured: 6.5 of delay, reaching back 7
		{147144 * time.Microsecond, 50, 7},
		{150 * time.Millisecond, 50, 7}, // exactly 7.5: a delay of 7 periods
		{150*time.Millisecond + time.Microsecond, 50, 8},
		{11 * time.Millisecond, 500, 5},
	} {
		if got := LagShift(c.lag, c.rate); got != c.want {
			t.Errorf("LagShift(%v, %g) = %d, want %d", c.lag, c.rate, got, c.want)
		}
	}
}
