package calib

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"gonum.org/v1/gonum/stat/distuv"

	"github.com/flowact/flowact/robot"
)

// Shaper turns a desired target into the command sent this tick, within the robot's limits:
// policy/safety's Filter (its Reset and Step) is the one flowact uses, so that the excitation
// respects the same position, velocity, acceleration and jerk limits as the control loop.
type Shaper interface {
	Reset(pos []float64) error
	Step(dst, target []float64)
}

// LatencyConfig configures MeasureLatency. The zero value is the defaults given per field.
type LatencyConfig struct {
	// Rate is the control rate in Hz at which the excitation is commanded and the state read;
	// in [10, 2000]; 0 means 100. Use the policy's loop rate: the lag is reported in its ticks.
	Rate float64 `yaml:"rate"`
	// Duration is the length of the excitation; 0 means 20 s.
	Duration time.Duration `yaml:"duration"`
	// Amplitude is the excitation's peak deviation from the hold pose (rad or m); 0 means 0.05.
	// It is capped at a tenth of each joint's travel.
	Amplitude float64 `yaml:"amplitude"`
	// Dwell is the mean time each random excitation target is held (each dwell is uniform in
	// [0.5, 1.5] times it): it sets the excitation's bandwidth; 0 means 150 ms.
	Dwell time.Duration `yaml:"dwell"`
	// Segments is how many independent segments the record is cut into for the confidence
	// interval, >= 3; 0 means 8.
	Segments int `yaml:"segments"`
	// MaxLag is the largest lag searched; 0 means 500 ms.
	MaxLag time.Duration `yaml:"max_lag"`
	// Joints names the excited joints, each with its own independent signal; nil means all.
	Joints []string `yaml:"joints"`
	// Seed seeds the excitation (PCG stream (Seed, 0x1a7e)).
	Seed uint64 `yaml:"seed"`
}

func (c LatencyConfig) withDefaults() LatencyConfig {
	if c.Rate == 0 {
		c.Rate = 100
	}
	if c.Duration == 0 {
		c.Duration = 20 * time.Second
	}
	if c.Amplitude == 0 {
		c.Amplitude = 0.05
	}
	if c.Dwell == 0 {
		c.Dwell = 150 * time.Millisecond
	}
	if c.Segments == 0 {
		c.Segments = 8
	}
	if c.MaxLag == 0 {
		c.MaxLag = 500 * time.Millisecond
	}
	return c
}

// Validate checks the fields; zero fields take their defaults first.
func (c LatencyConfig) Validate() error {
	c = c.withDefaults()
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...)
	}
	switch {
	case !(c.Rate >= 10 && c.Rate <= 2000):
		return bad("rate %g Hz not in [10, 2000]", c.Rate)
	case c.Duration < 0 || c.Dwell < 0 || c.MaxLag < 0:
		return bad("duration %v, dwell %v and max_lag %v must not be negative", c.Duration, c.Dwell, c.MaxLag)
	case !(c.Amplitude > 0) || math.IsInf(c.Amplitude, 0):
		return bad("amplitude %g must be positive and finite", c.Amplitude)
	case c.Segments < 3:
		return bad("segments %d: need at least 3 for an interval", c.Segments)
	}
	ticks := c.Duration.Seconds() * c.Rate
	lag := c.MaxLag.Seconds() * c.Rate
	if lag < 2 {
		return bad("max_lag %v is under two ticks at %g Hz", c.MaxLag, c.Rate)
	}
	if ticks/float64(c.Segments) < 4*lag {
		return bad("duration %v in %d segments: each segment must be at least 4 times max_lag %v", c.Duration, c.Segments, c.MaxLag)
	}
	return nil
}

// Latency is a measured command-to-state lag. Ticks are control ticks at Rate: a command
// written at tick k shows in the state read at tick k + Ticks (state read before the command is
// written each tick, as the control loop does).
type Latency struct {
	Rate    float64 // Hz
	Ticks   float64 // the estimate over the whole record, sub-tick
	Seconds float64 // Ticks / Rate
	// Low and High bound the 95% confidence interval in ticks: Ticks ± t(0.975, S-1)·sd/√S,
	// sd the standard deviation of the S segments' estimates.
	Low, High float64
	Segments  []float64 // each segment's estimate, ticks
	// Peak is the normalized cross-correlation at the lag, in [-1, 1]: near 1 when the state
	// follows the commands closely; the estimate is refused below MinPeak.
	Peak float64
	// Late counts the ticks that woke a period or more late (a starved process: the clock ran
	// on meanwhile) and were taken then instead of in a burst; the estimate assumes evenly
	// spaced ticks, so a record with many late ticks is less accurate than its interval says.
	Late int
}

// MinPeak is the lowest normalized cross-correlation peak accepted: below it the measured state
// barely follows the excitation (a stuck joint, a state that does not update, heavy noise).
const MinPeak = 0.3

// ErrNoLag is wrapped when no lag can be estimated from a record.
var ErrNoLag = errors.New("calib: no lag found")

// EstimateLag returns the lag in ticks (sub-tick) of the measured positions meas behind the
// commanded positions cmd, both K x D row-major (tick k, joint j at k*D+j), and the normalized
// peak of their cross-correlation. Only the joints with mask[j] (nil: all) count. It correlates
// the first differences (velocities per tick) of each joint, normalized by their energy, sums
// over joints, takes the lag in [0, maxLag] with the highest correlation, and refines it by the
// vertex of the parabola through that lag and its neighbours.
func EstimateLag(cmd, meas []float64, d, maxLag int, mask []bool) (ticks, peak float64, err error) {
	if d <= 0 || len(cmd) != len(meas) || len(cmd)%d != 0 {
		return 0, 0, fmt.Errorf("%w: %d commanded and %d measured values for %d joints", ErrNoLag, len(cmd), len(meas), d)
	}
	k := len(cmd) / d
	if maxLag < 1 || k < 2*maxLag+4 {
		return 0, 0, fmt.Errorf("%w: %d ticks are too few for lags up to %d", ErrNoLag, k, maxLag)
	}
	r := make([]float64, maxLag+2) // lags 0..maxLag+1 (the last for the parabola)
	var used int
	n := k - 1 - (maxLag + 1) // differences common to every lag
	for j := range d {
		if mask != nil && !mask[j] {
			continue
		}
		var ex, ey float64
		for i := range n {
			x := cmd[(i+1)*d+j] - cmd[i*d+j]
			ex += x * x
		}
		for i := range k - 1 {
			y := meas[(i+1)*d+j] - meas[i*d+j]
			ey += y * y
		}
		ey *= float64(n) / float64(k-1)
		if ex == 0 || ey == 0 || math.IsNaN(ex+ey) || math.IsInf(ex+ey, 0) {
			continue
		}
		norm := 1 / math.Sqrt(ex*ey)
		for l := range r {
			var s float64
			for i := range n {
				x := cmd[(i+1)*d+j] - cmd[i*d+j]
				y := meas[(i+l+1)*d+j] - meas[(i+l)*d+j]
				s += x * y
			}
			r[l] += s * norm
		}
		used++
	}
	if used == 0 {
		return 0, 0, fmt.Errorf("%w: no joint was both excited and moving", ErrNoLag)
	}
	best := 0
	for l := 1; l <= maxLag; l++ {
		if r[l] > r[best] {
			best = l
		}
	}
	peak = min(r[best]/float64(used), 1) // the energies are over slightly different windows
	ticks = float64(best)
	if best > 0 {
		a, b, c := r[best-1], r[best], r[best+1]
		if den := a - 2*b + c; den < 0 {
			ticks += min(max(0.5*(a-c)/den, -0.5), 0.5)
		}
	}
	return ticks, peak, nil
}

// estimate computes the Latency of a whole record and of its segments.
func estimate(cmd, meas []float64, d int, cfg LatencyConfig, mask []bool) (Latency, error) {
	maxLag := int(math.Ceil(cfg.MaxLag.Seconds() * cfg.Rate))
	lat := Latency{Rate: cfg.Rate}
	var err error
	lat.Ticks, lat.Peak, err = EstimateLag(cmd, meas, d, maxLag, mask)
	if err != nil {
		return lat, err
	}
	if lat.Peak < MinPeak {
		return lat, fmt.Errorf("%w: the state barely follows the commands (correlation peak %.2f < %.2f)", ErrNoLag, lat.Peak, MinPeak)
	}
	lat.Seconds = lat.Ticks / cfg.Rate
	k := len(cmd) / d
	seg := k / cfg.Segments
	var mean, m2 float64
	for s := range cfg.Segments {
		lo, hi := s*seg*d, (s+1)*seg*d
		t, _, err := EstimateLag(cmd[lo:hi], meas[lo:hi], d, maxLag, mask)
		if err != nil {
			return lat, fmt.Errorf("segment %d: %w", s, err)
		}
		lat.Segments = append(lat.Segments, t)
		delta := t - mean
		mean += delta / float64(s+1)
		m2 += delta * (t - mean)
	}
	sn := float64(cfg.Segments)
	sd := math.Sqrt(m2 / (sn - 1))
	h := distuv.StudentsT{Mu: 0, Sigma: 1, Nu: sn - 1}.Quantile(0.975) * sd / math.Sqrt(sn)
	lat.Low, lat.High = lat.Ticks-h, lat.Ticks+h
	return lat, nil
}

// MeasureLatency measures the command-to-state lag of d (a driver in joint units) on clock clk
// (see the package documentation): it holds the current pose, excites the chosen joints around
// it for cfg.Duration with seeded random targets shaped by sh (reset to the hold pose), returns
// to the hold pose, and estimates the lag. Each tick it reads the state, then writes the
// command, then sleeps to the next absolute deadline; a tick that wakes a period or more late
// starts a new schedule from then (counted in Latency.Late).
func MeasureLatency(ctx context.Context, d robot.Driver, clk robot.Clock, sh Shaper, cfg LatencyConfig) (Latency, error) {
	if err := cfg.Validate(); err != nil {
		return Latency{}, err
	}
	cfg = cfg.withDefaults()
	m := d.Model()
	n := m.DoF()
	mask := make([]bool, n)
	if cfg.Joints == nil {
		for i := range mask {
			mask[i] = true
		}
	}
	for _, name := range cfg.Joints {
		i := m.Index(name)
		if i < 0 {
			return Latency{}, fmt.Errorf("%w: joints: %q is not an actuated joint of %q", ErrConfig, name, m.Name)
		}
		mask[i] = true
	}
	st := robot.NewState(n)
	if err := d.ReadState(&st); err != nil {
		return Latency{}, fmt.Errorf("calib: latency: reading the hold pose: %w", err)
	}
	hold := append([]float64(nil), st.Position...)
	amp := make([]float64, n)
	for i, j := range m.Joints {
		if !mask[i] {
			continue
		}
		amp[i] = cfg.Amplitude
		if l := j.Limits; l.HasPosition {
			amp[i] = min(amp[i], (l.Upper-l.Lower)/10)
			// Keep the excitation inside the travel around a hold pose near a limit.
			c := min(max(hold[i], l.Lower+amp[i]), l.Upper-amp[i])
			hold[i] = c
		}
	}
	if err := sh.Reset(st.Position); err != nil {
		return Latency{}, fmt.Errorf("calib: latency: %w", err)
	}
	period := time.Duration(math.Round(float64(time.Second) / cfg.Rate))
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x1a7e))
	k := int(math.Round(cfg.Duration.Seconds() * cfg.Rate))
	lead := int(math.Ceil(cfg.Rate)) // 1 s to reach the hold pose, and 1 s to return
	cmdRec, measRec := make([]float64, k*n), make([]float64, k*n)
	target, next := append([]float64(nil), hold...), make([]int, n)
	c := robot.Command{Position: make([]float64, n)}
	dwell := cfg.Dwell.Seconds() * cfg.Rate
	t := clk.Now()
	late := 0
	for tick := -lead; tick < k+lead; tick++ {
		// A late tick rebases the schedule (see nextTick) rather than catching up in a burst, which
		// would put commands shaped for one period apart on the robot all at once.
		due := t.Add(period)
		if err := nextTick(ctx, clk, &t, period); err != nil {
			return Latency{}, err
		}
		if !t.Equal(due) {
			late++
		}
		if err := d.ReadState(&st); err != nil {
			return Latency{}, fmt.Errorf("calib: latency: tick %d: %w", tick, err)
		}
		if tick >= 0 && tick < k {
			copy(measRec[tick*n:(tick+1)*n], st.Position)
			for i := range n {
				if mask[i] && tick >= next[i] {
					target[i] = hold[i] + amp[i]*(2*rng.Float64()-1)
					next[i] = tick + max(1, int(math.Round(dwell*(0.5+rng.Float64()))))
				}
			}
		} else {
			copy(target, hold)
		}
		sh.Step(c.Position, target)
		if err := d.WriteCommand(&c); err != nil {
			return Latency{}, fmt.Errorf("calib: latency: tick %d: %w", tick, err)
		}
		if tick >= 0 && tick < k {
			copy(cmdRec[tick*n:(tick+1)*n], c.Position)
		}
	}
	lat, err := estimate(cmdRec, measRec, n, cfg, mask)
	lat.Late = late
	if err != nil {
		return lat, fmt.Errorf("calib: latency: %w", err)
	}
	return lat, nil
}
