package path

import "math/rand/v2"

// Coeffs are a scheduler's values at one time: x_t = Alpha x1 + Sigma x0, and their time
// derivatives.
type Coeffs struct {
	Alpha, Sigma   float64
	DAlpha, DSigma float64
}

// Scheduler gives the coefficients of an affine Gaussian path at time t in [0, 1]
// (t = 0 noise, t = 1 data). At allocates nothing. A scheduler must have alpha increasing and
// sigma decreasing on [0, 1], so that the signal-to-noise ratio alpha/sigma increases (every
// scheduler of this package does).
type Scheduler interface {
	At(t float64) Coeffs
}

// CondOT is the conditional optimal-transport scheduler: alpha_t = t, sigma_t = 1 - t.
type CondOT struct{}

func (CondOT) At(t float64) Coeffs { return Coeffs{Alpha: t, Sigma: 1 - t, DAlpha: 1, DSigma: -1} }

// TimeDist is a distribution of training times on [0, 1] (t = 0 noise).
type TimeDist interface {
	Sample(r *rand.Rand) float64
}

// Uniform is the uniform distribution on [0, 1].
type Uniform struct{}

func (Uniform) Sample(r *rand.Rand) float64 { return r.Float64() }
