package demo

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// TestPerturbation: the disturbance starts at 0, has the stationary standard deviation and the
// correlation it is configured with, moves smoothly (its per-tick steps are a small fraction of
// its size), stays in the limits, is reproducible from its source and allocates nothing.
func TestPerturbation(t *testing.T) {
	const (
		std = 0.04
		tau = 500 * time.Millisecond
		dt  = 20 * time.Millisecond
		n   = 200_000
	)
	lower, upper := []float64{-1, -1}, []float64{1, 0.05}
	p := NewPerturbation(2, std, tau, dt, rand.New(rand.NewPCG(1, 2)))
	cmd := make([]float64, 2)
	p.Apply(cmd, lower, upper)
	if math.Abs(cmd[0]) > 0.01*std {
		t.Errorf("first sample %g: the disturbance should start at 0", cmd[0])
	}
	var sum, sq, lag, step, prev float64
	lagTicks := int(tau / dt)
	hist := make([]float64, 0, n)
	for i := range n {
		cmd[0], cmd[1] = 0, 0
		p.Apply(cmd, lower, upper)
		if cmd[1] > upper[1] || cmd[1] < lower[1] {
			t.Fatalf("sample %d: %g outside [%g, %g]", i, cmd[1], lower[1], upper[1])
		}
		x := cmd[0]
		if i > 1000 { // past the start-up
			sum += x
			sq += x * x
			step = max(step, math.Abs(x-prev))
		}
		hist = append(hist, x)
		prev = x
	}
	m := float64(n - 1001)
	sd := math.Sqrt(sq/m - (sum/m)*(sum/m))
	// The estimate's relative error is about sqrt(2 * correlation ticks / n) ~ 1.5%: 10% is
	// far outside it, and far inside the factor sqrt(2) a missing (1 + a) / sqrt(1 + a^2)
	// scale would give.
	if math.Abs(sd-std)/std > 0.1 {
		t.Errorf("stationary std %.4f, want %.4f", sd, std)
	}
	for i := 1001 + lagTicks; i < n; i++ {
		lag += hist[i] * hist[i-lagTicks]
	}
	// An OU process low-passed at its own rate 1/tau has the autocorrelation (1 + s/tau) e^(-s/tau)
	// (in continuous time; dt << tau here): 2/e = 0.74 at s = tau, where white noise gives 0 and
	// plain OU 1/e = 0.37.
	rho := lag / float64(n-1001-lagTicks) / (sd * sd)
	if rho < 0.6 || rho > 0.85 {
		t.Errorf("autocorrelation at lag tau %.3f, want about 2/e = 0.74", rho)
	}
	t.Logf("std %.4f rad, autocorrelation at tau %.3f, largest step %.4f rad", sd, rho, step)
	if step > 0.2*std {
		t.Errorf("largest per-tick step %.4f rad: not smooth next to a std of %.4f", step, std)
	}
	q := NewPerturbation(2, std, tau, dt, rand.New(rand.NewPCG(1, 2)))
	a, b := []float64{0.3, 0}, []float64{0.3, 0}
	r := NewPerturbation(2, std, tau, dt, rand.New(rand.NewPCG(1, 2)))
	for range 100 {
		q.Apply(a, lower, upper)
		r.Apply(b, lower, upper)
	}
	if a[0] != b[0] || a[1] != b[1] {
		t.Errorf("the same source gives %v and %v", a, b)
	}
	if allocs := testing.AllocsPerRun(100, func() { p.Apply(cmd, lower, upper) }); allocs != 0 {
		t.Errorf("Apply allocates %v times", allocs)
	}
	zero := NewPerturbation(2, 0, tau, dt, rand.New(rand.NewPCG(1, 2)))
	cmd[0], cmd[1] = 0.5, 2 // out of the limits: a disabled disturbance touches nothing
	zero.Apply(cmd, lower, upper)
	if cmd[0] != 0.5 || cmd[1] != 2 {
		t.Errorf("std 0 changed the command to %v", cmd)
	}
}
