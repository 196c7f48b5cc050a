package path

import (
	"errors"
	"fmt"
	"math"
)

// ErrConfig is wrapped by every Validate error of this package.
var ErrConfig = errors.New("bad scheduler or time distribution")

// SNRInverter is implemented by schedulers that invert their signal-to-noise ratio
// alpha_t/sigma_t in closed form. InverseSNR returns t in [0, 1] with alpha_t/sigma_t = snr,
// clamped to 0 or 1 when snr lies outside the scheduler's range.
type SNRInverter interface {
	InverseSNR(snr float64) float64
}

// VarianceRater is implemented by schedulers whose sigma' is unbounded at an end of [0, 1] while
// sigma sigma' = (sigma^2)'/2 stays finite (VP and LinearVP at t = 1).
type VarianceRater interface {
	SigmaDSigma(t float64) float64
}

// SNR returns alpha_t/sigma_t (+Inf where sigma_t = 0).
func SNR(s Scheduler, t float64) float64 {
	c := s.At(t)
	if c.Sigma == 0 {
		return math.Inf(1)
	}
	return c.Alpha / c.Sigma
}

// InverseSNR returns the time t in [0, 1] at which s has signal-to-noise ratio snr, clamped to
// the ends of [0, 1] when snr is outside s's range. It uses s's closed form when s implements
// SNRInverter and bisection (60 halvings, far below float64 resolution of t) otherwise.
func InverseSNR(s Scheduler, snr float64) float64 {
	if inv, ok := s.(SNRInverter); ok {
		return inv.InverseSNR(snr)
	}
	lo, hi := 0.0, 1.0
	if snr <= SNR(s, lo) {
		return lo
	}
	if snr >= SNR(s, hi) {
		return hi
	}
	for range 60 {
		mid := 0.5 * (lo + hi)
		if SNR(s, mid) < snr {
			lo = mid
		} else {
			hi = mid
		}
	}
	return 0.5 * (lo + hi)
}

// SigmaDSigma returns sigma_t sigma_t', finite even where sigma_t' is not (see VarianceRater).
func SigmaDSigma(s Scheduler, t float64) float64 {
	if vr, ok := s.(VarianceRater); ok {
		return vr.SigmaDSigma(t)
	}
	c := s.At(t)
	return c.Sigma * c.DSigma
}

func clamp01(t float64) float64 { return math.Max(0, math.Min(1, t)) }

// InverseSNR implements SNRInverter: alpha/sigma = t/(1-t).
func (CondOT) InverseSNR(snr float64) float64 {
	if math.IsInf(snr, 1) {
		return 1
	}
	return clamp01(snr / (1 + snr))
}

// Polynomial is the polynomial convex scheduler of Lipman et al. (2024, sec. 4.8):
// alpha_t = t^N, sigma_t = 1 - t^N. N = 1 is CondOT; N > 1 spends more time near the noise.
type Polynomial struct {
	N float64 // power, > 0; zero means 1
}

func (p Polynomial) n() float64 {
	if p.N == 0 {
		return 1
	}
	return p.N
}

// Validate reports a power that is not positive and finite.
func (p Polynomial) Validate() error {
	if !(p.N >= 0) || math.IsInf(p.N, 0) {
		return fmt.Errorf("path: polynomial power %v: want > 0: %w", p.N, ErrConfig)
	}
	return nil
}

func (p Polynomial) At(t float64) Coeffs {
	n := p.n()
	a := math.Pow(t, n)
	da := n * math.Pow(t, n-1) // +Inf at t = 0 when N < 1
	return Coeffs{Alpha: a, Sigma: 1 - a, DAlpha: da, DSigma: -da}
}

// InverseSNR implements SNRInverter: t^N = snr/(1+snr).
func (p Polynomial) InverseSNR(snr float64) float64 {
	if math.IsInf(snr, 1) {
		return 1
	}
	return clamp01(math.Pow(snr/(1+snr), 1/p.n()))
}

// Cosine is the cosine scheduler (Nichol and Dhariwal 2021 in this form, Lipman et al. 2024):
// alpha_t = sin(pi t / 2), sigma_t = cos(pi t / 2). It is variance preserving.
type Cosine struct{}

func (Cosine) At(t float64) Coeffs {
	// sigma is written as sin(pi (1 - t) / 2) so that sigma_1 is exactly 0 (cos(pi/2) is 6e-17).
	a, s := math.Sin(math.Pi/2*t), math.Sin(math.Pi/2*(1-t))
	return Coeffs{Alpha: a, Sigma: s, DAlpha: math.Pi / 2 * s, DSigma: -math.Pi / 2 * a}
}

// InverseSNR implements SNRInverter: tan(pi t / 2) = snr.
func (Cosine) InverseSNR(snr float64) float64 { return clamp01(2 / math.Pi * math.Atan(snr)) }

// LinearVP is the linear variance-preserving scheduler of Lipman et al. (2024):
// alpha_t = t, sigma_t = sqrt(1 - t^2). sigma_t' = -t/sqrt(1 - t^2) is -Inf at t = 1.
type LinearVP struct{}

func (LinearVP) At(t float64) Coeffs {
	s := math.Sqrt(1 - t*t)
	return Coeffs{Alpha: t, Sigma: s, DAlpha: 1, DSigma: -t / s}
}

// SigmaDSigma implements VarianceRater: sigma sigma' = -t.
func (LinearVP) SigmaDSigma(t float64) float64 { return -t }

// InverseSNR implements SNRInverter: t/sqrt(1-t^2) = snr.
func (LinearVP) InverseSNR(snr float64) float64 {
	if math.IsInf(snr, 1) {
		return 1
	}
	return clamp01(snr / math.Hypot(1, snr))
}

// VP is the variance-preserving scheduler of Song et al. (ICLR 2021), the continuous DDPM, in
// flow time t (their diffusion time is u = 1 - t): with the linear noise rate
// beta(u) = BetaMin + (BetaMax - BetaMin) u and T(u) = integral_0^u beta,
//
//	alpha_t = exp(-T(1-t)/2),   sigma_t = sqrt(1 - alpha_t^2).
//
// alpha_0 = exp(-(BetaMin+BetaMax)/4) is small but not zero (6.6e-3 with the defaults): the path
// starts near, not at, pure noise. sigma_t' is -Inf at t = 1 when BetaMin > 0.
type VP struct {
	BetaMin float64 // >= 0; zero value with BetaMax zero means Song et al.'s 0.1
	BetaMax float64 // > BetaMin; zero means Song et al.'s 20
}

func (p VP) betas() (lo, hi float64) {
	lo, hi = p.BetaMin, p.BetaMax
	if hi == 0 {
		hi = 20
		if lo == 0 {
			lo = 0.1
		}
	}
	return lo, hi
}

// Validate reports rates that are negative, not finite, or not increasing.
func (p VP) Validate() error {
	lo, hi := p.betas()
	if !(lo >= 0) || !(hi >= lo) || math.IsInf(hi, 0) || hi == 0 {
		return fmt.Errorf("path: VP beta_min %v beta_max %v: want 0 <= beta_min <= beta_max, beta_max > 0: %w",
			p.BetaMin, p.BetaMax, ErrConfig)
	}
	return nil
}

// tb returns T(u) and beta(u) at diffusion time u = 1 - t.
func (p VP) tb(t float64) (T, beta float64) {
	lo, hi := p.betas()
	u := 1 - t
	return lo*u + 0.5*(hi-lo)*u*u, lo + (hi-lo)*u
}

func (p VP) At(t float64) Coeffs {
	T, beta := p.tb(t)
	a := math.Exp(-T / 2)
	s2 := -math.Expm1(-T) // 1 - exp(-T) without cancellation near t = 1
	s := math.Sqrt(s2)
	c := Coeffs{Alpha: a, Sigma: s, DAlpha: a * beta / 2}
	if s > 0 {
		c.DSigma = -a * a * beta / (2 * s)
	} else if lo, hi := p.betas(); lo > 0 {
		c.DSigma = math.Inf(-1)
	} else {
		c.DSigma = -math.Sqrt(hi / 2) // limit of the above as t -> 1 when beta_min = 0
	}
	return c
}

// SigmaDSigma implements VarianceRater: sigma sigma' = -alpha^2 beta / 2.
func (p VP) SigmaDSigma(t float64) float64 {
	T, beta := p.tb(t)
	return -math.Exp(-T) * beta / 2
}

// InverseSNR implements SNRInverter: T = log(1 + 1/snr^2), solved for u = 1 - t.
func (p VP) InverseSNR(snr float64) float64 {
	if math.IsInf(snr, 1) {
		return 1
	}
	if snr <= 0 {
		return 0
	}
	lo, hi := p.betas()
	T := math.Log1p(1 / (snr * snr))
	u := 2 * T / (lo + math.Sqrt(lo*lo+2*(hi-lo)*T)) // root of (hi-lo)/2 u^2 + lo u - T, stable form
	return clamp01(1 - u)
}

// VE is the variance-exploding scheduler of Song et al. (ICLR 2021), the continuous SMLD, in flow
// time t: alpha_t = 1, sigma_t = SigmaMin (SigmaMax/SigmaMin)^(1-t), geometric from SigmaMax at
// t = 0 to SigmaMin at t = 1. It never reaches pure noise (x_0 = x1 + SigmaMax x0) nor clean data
// (sigma_1 = SigmaMin).
type VE struct {
	SigmaMin float64 // > 0; zero means Song et al.'s 0.01
	SigmaMax float64 // > SigmaMin; zero means Song et al.'s 50 (CIFAR-10)
}

func (p VE) sigmas() (lo, hi float64) {
	lo, hi = p.SigmaMin, p.SigmaMax
	if lo == 0 {
		lo = 0.01
	}
	if hi == 0 {
		hi = 50
	}
	return lo, hi
}

// Validate reports bounds that are not positive, finite and increasing.
func (p VE) Validate() error {
	lo, hi := p.sigmas()
	if !(lo > 0) || !(hi > lo) || math.IsInf(hi/lo, 0) {
		return fmt.Errorf("path: VE sigma_min %v sigma_max %v: want 0 < sigma_min < sigma_max: %w",
			p.SigmaMin, p.SigmaMax, ErrConfig)
	}
	return nil
}

func (p VE) At(t float64) Coeffs {
	lo, hi := p.sigmas()
	l := math.Log(hi / lo)
	s := lo * math.Exp(l*(1-t))
	return Coeffs{Alpha: 1, Sigma: s, DAlpha: 0, DSigma: -l * s}
}

// InverseSNR implements SNRInverter: sigma_t = 1/snr.
func (p VE) InverseSNR(snr float64) float64 {
	lo, hi := p.sigmas()
	if snr <= 0 {
		return 0
	}
	return clamp01(1 - math.Log(1/(snr*lo))/math.Log(hi/lo))
}
