package demo

import (
	"math"
	"math/rand/v2"
	"time"
)

// Perturbation disturbs the commands a scripted expert's robot executes, so that its
// demonstrations visit the states a learned policy drifts into and show the way back (DART,
// Laskey et al. 2017): the recorded action stays the expert's, which is a function of time, not
// of the state, so from a disturbed state it points back to the expert's path. Each joint's
// disturbance is an Ornstein-Uhlenbeck process passed through a first-order low-pass filter of
// the same time constant Tau, sampled every dt, both starting at 0:
//
//	u_{k+1} = a u_k + sqrt(1 - a^2) s w_k,  n_{k+1} = a n_k + (1 - a) u_{k+1},
//	a = exp(-dt / Tau),  w_k ~ N(0, 1),  s = Std (1 + a) / sqrt(1 + a^2),
//
// so that n's stationary standard deviation is Std. A slow, smooth disturbance (Tau of a few
// hundred milliseconds) moves the arm off the path the way a policy's error does; white or
// plain OU noise would jerk the joints and be filtered out by the robot's own lag.
type Perturbation struct {
	a, k float64
	u, n []float64
	r    *rand.Rand
}

// Perturbation returns the disturbance c configures (Perturb, PerturbTime with its default) for
// the commands of dof joints sampled every dt, drawn from r, or nil when Perturb is 0.
func (c Config) Perturbation(dof int, dt time.Duration, r *rand.Rand) *Perturbation {
	if c.Perturb == 0 {
		return nil
	}
	c = c.withDefaults()
	return NewPerturbation(dof, c.Perturb, c.PerturbTime, dt, r)
}

// NewPerturbation returns the disturbance of dof joints sampled every dt, drawn from r; std 0
// disturbs nothing.
func NewPerturbation(dof int, std float64, tau, dt time.Duration, r *rand.Rand) *Perturbation {
	a := math.Exp(-dt.Seconds() / tau.Seconds())
	k := math.Sqrt(1-a*a) * std * (1 + a) / math.Sqrt(1+a*a)
	return &Perturbation{a: a, k: k, u: make([]float64, dof), n: make([]float64, dof), r: r}
}

// Apply advances the disturbance one sample and adds it to cmd in place, then clamps each joint
// into [lower[j], upper[j]] (the robot's position limits). It allocates nothing.
func (p *Perturbation) Apply(cmd, lower, upper []float64) {
	if p.k == 0 {
		return
	}
	for j := range cmd {
		p.u[j] = p.a*p.u[j] + p.k*p.r.NormFloat64()
		p.n[j] = p.a*p.n[j] + (1-p.a)*p.u[j]
		cmd[j] = min(max(cmd[j]+p.n[j], lower[j]), upper[j])
	}
}
