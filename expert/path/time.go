package path

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// belowOne is the largest float64 below 1: training times stay in [0, 1) so that the velocity
// target is finite for every scheduler (sigma' is -Inf at t = 1 for VP and LinearVP).
const belowOne = 1 - 0x1p-53

// LogitNormal is the logit-normal time distribution of Esser et al. (2024, Stable Diffusion 3):
// t = 1/(1 + exp(-(M + S z))) with z standard normal. M > 0 puts more weight near the data
// (t = 1), M < 0 near the noise.
type LogitNormal struct {
	M float64 // location of logit(t)
	S float64 // scale of logit(t), > 0; zero means 1
}

// Validate reports a non-finite location or a negative or non-finite scale.
func (d LogitNormal) Validate() error {
	if math.IsNaN(d.M) || math.IsInf(d.M, 0) || !(d.S >= 0) || math.IsInf(d.S, 0) {
		return fmt.Errorf("path: logit-normal m %v s %v: want finite m and s > 0: %w", d.M, d.S, ErrConfig)
	}
	return nil
}

// Sample implements TimeDist.
func (d LogitNormal) Sample(r *rand.Rand) float64 {
	s := d.S
	if s == 0 {
		s = 1
	}
	return math.Min(1/(1+math.Exp(-(d.M+s*r.NormFloat64()))), belowOne)
}

// Beta is a scaled Beta distribution on our axis: t = S b with b ~ Beta(A, B), so t lies in
// [0, S]. Pi0Beta gives openpi's pi0 training times converted to t = 0 noise.
type Beta struct {
	A, B float64 // shape parameters, > 0; zero means 1
	S    float64 // upper cutoff in (0, 1]; zero means 1
}

// Pi0Beta returns the training-time distribution of openpi's pi0: on pi0's own axis (tau = 1 is
// noise) tau = 0.999 u + 0.001 with u ~ Beta(1.5, 1). On our axis t = 1 - tau = 0.999 (1 - u), and
// 1 - u ~ Beta(1, 1.5), so it is Beta{A: 1, B: 1.5, S: 0.999}: density proportional to
// (1 - t/0.999)^0.5, largest at t = 0, the noise end, and zero above t = 0.999 (never the clean
// data itself).
func Pi0Beta() Beta { return Beta{A: 1, B: 1.5, S: 0.999} }

func (d Beta) params() (a, b, s float64) {
	a, b, s = d.A, d.B, d.S
	if a == 0 {
		a = 1
	}
	if b == 0 {
		b = 1
	}
	if s == 0 {
		s = 1
	}
	return a, b, s
}

// Validate reports non-positive shapes or a cutoff outside (0, 1].
func (d Beta) Validate() error {
	a, b, s := d.params()
	if !(a > 0) || !(b > 0) || math.IsInf(a, 0) || math.IsInf(b, 0) || !(s > 0 && s <= 1) {
		return fmt.Errorf("path: beta a %v b %v s %v: want a, b > 0 and 0 < s <= 1: %w", d.A, d.B, d.S, ErrConfig)
	}
	return nil
}

// Sample implements TimeDist: b = X/(X+Y) with X ~ Gamma(A), Y ~ Gamma(B).
func (d Beta) Sample(r *rand.Rand) float64 {
	a, b, s := d.params()
	x := gamma(r, a)
	y := gamma(r, b)
	return math.Min(s*(x/(x+y)), belowOne)
}

// gamma draws from Gamma(k, 1) by Marsaglia and Tsang, "A simple method for generating gamma
// variables" (ACM TOMS 26(3), 2000), with their boost U^(1/k) for k < 1.
func gamma(r *rand.Rand, k float64) float64 {
	boost := 1.0
	if k < 1 {
		boost = math.Pow(1-r.Float64(), 1/k) // 1 - U is in (0, 1]
		k++
	}
	d := k - 1.0/3
	c := 1 / math.Sqrt(9*d)
	for {
		z := r.NormFloat64()
		v := 1 + c*z
		if v <= 0 {
			continue
		}
		v = v * v * v
		u := 1 - r.Float64()
		if u < 1-0.0331*z*z*z*z || math.Log(u) < 0.5*z*z+d*(1-v+math.Log(v)) {
			return boost * d * v
		}
	}
}

// ValidateTraining reports a scheduler and a time distribution that cannot be trained together
// on the velocity target alpha_t' x1 + sigma_t' x0: either one's own Validate error, or a
// scheduler whose coefficients are not finite at an end of the times the distributions draw,
// [0, belowOne]. It refuses rather than clamps t, because the trouble is not the single point:
//
//   - Every distribution of this package can draw t = 0 exactly in floating point: Uniform with
//     probability 2^-53 a draw, Beta by underflow of its Gamma(A) variate, its boost U^(1/A) is 0
//     when U < 2^(-1074 A): about 5.8e-4 of the draws for A = 0.01, and LogitNormal where
//     M + S z < -709.8 (exp overflows).
//   - Polynomial{N < 1} has alpha' = N t^(N-1), infinite at t = 0 and, for small N, larger than
//     float32 can hold (3.4e38) already at the subnormal times those same underflows give
//     (N = 0.5: below t = 2e-78).
//   - With a density p(t) ~ t^(A-1) near 0 (Uniform: A = 1), the expected squared target
//     integral p(t) N^2 t^(2N-2) dt is infinite for A <= 2(1 - N): the loss itself is infinite,
//     and clamping t to some t_min > 0 would only replace the infinity by targets of size
//     N t_min^(N-1) that dominate every batch they appear in.
//
// So Polynomial{N < 1} is a scheduler for sampling and Reschedule, not for training here. The
// check reads the scheduler at the two ends only (every scheduler of this package has monotone
// |alpha'| and |sigma'| on [0, 1]).
func ValidateTraining(s Scheduler, d TimeDist) error {
	for _, v := range []any{s, d} {
		if v, ok := v.(interface{ Validate() error }); ok {
			if err := v.Validate(); err != nil {
				return err
			}
		}
	}
	for _, t := range []float64{0, belowOne} {
		c := s.At(t)
		for _, x := range []float64{c.Alpha, c.Sigma, c.DAlpha, c.DSigma} {
			if math.IsNaN(x) || math.IsInf(x, 0) {
				hint := ""
				if _, ok := s.(Polynomial); ok {
					hint = " (train with a power N >= 1)"
				}
				return fmt.Errorf("path: %T%+v with %T%+v: alpha_t = %v, sigma_t = %v, alpha_t' = %v, sigma_t' = %v at t = %v, which the time distribution can draw: the velocity target is not finite there%s: %w",
					s, s, d, d, c.Alpha, c.Sigma, c.DAlpha, c.DSigma, t, hint, ErrConfig)
			}
		}
	}
	return nil
}
