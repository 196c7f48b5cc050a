// Package path holds affine Gaussian probability paths x_t = alpha_t x1 + sigma_t x0, their
// schedulers, the training pairs they give, conversions between what a model may predict, the
// change of scheduler after training, and the distributions of training times.
//
// # Conventions
//
// Flow time t runs from 0 (noise) to 1 (data), as in package expert and in Lipman et al., "Flow
// Matching Guide and Code" (arXiv:2412.06264, 2024), whose notation this package follows:
//
//	x_t = alpha_t x1 + sigma_t x0,   x0 ~ N(0, I) the noise,  x1 ~ data,
//	u_t(x1, x0) = alpha_t' x1 + sigma_t' x0   (the conditional, "CFM", velocity target).
//
// A Scheduler returns alpha_t, sigma_t and their derivatives in t (Coeffs). Times and
// coefficients are float64; vectors are float32 in the expert's normalized space, computed in
// float64 per element. Functions write into caller-given slices and allocate nothing.
//
// # Schedulers
//
//	CondOT       alpha = t,               sigma = 1 - t
//	Polynomial   alpha = t^n,             sigma = 1 - t^n
//	Cosine       alpha = sin(pi t/2),     sigma = cos(pi t/2)
//	LinearVP     alpha = t,               sigma = sqrt(1 - t^2)
//	VP           alpha = exp(-T(1-t)/2),  sigma = sqrt(1 - alpha^2),  T(u) = bmin u + (bmax-bmin) u^2/2
//	VE           alpha = 1,               sigma = smin (smax/smin)^(1-t)
//
// VP and VE are the variance-preserving and variance-exploding SDEs of Song et al., "Score-Based
// Generative Modeling through Stochastic Differential Equations" (ICLR 2021), rewritten in flow
// time (their diffusion time is 1 - t), with their defaults beta in [0.1, 20] and sigma in
// [0.01, 50]. Some write-ups (among them the article this project started from) swap the two
// labels, calling the alpha = 1 path "VP". The names here follow Song et al. and Lipman et al.: VE
// keeps alpha = 1 and lets the variance explode toward the noise end; VP keeps
// alpha^2 + sigma^2 = 1.
//
// # The ends of [0, 1]
//
// CondOT, Polynomial, Cosine and LinearVP reach pure noise at t = 0 (alpha_0 = 0, sigma_0 = 1) and
// clean data at t = 1 (alpha_1 = 1, sigma_1 = 0). VP and VE do not:
//   - VP starts at alpha_0 = exp(-(bmin+bmax)/4) (6.6e-3 with the defaults; sigma_0^2 = 1 - 4.4e-5),
//     so x_0 is noise plus a trace of data. Samplers start from pure N(0, I) noise anyway, as Song
//     et al. do: the sample is then off by about alpha_0 times the data's scale, and a likelihood
//     that assumes N(0, I) at t = 0 is off by about alpha_0 |x1| |x0| nats (ode.Likelihood takes
//     the exact p_0 as its Prior when it is known). VP ends exactly at data, but sigma_t' = -Inf at
//     t = 1 (sigma is the square root of a quantity with a simple zero there): VP and LinearVP
//     implement VarianceRater so that sigma sigma', which stays finite, is available in closed
//     form, and a solver that must not evaluate a field at t = 1 can end its grid at 1 - eps and
//     return the anytime estimate x1_hat (Song et al.'s final denoising step).
//   - VE starts at x_0 = x1 + smax x0: start it from smax times standard noise (the data term is
//     small next to smax = 50). It ends at sigma_1 = smin, not 0: the end distribution is the data
//     blurred by N(0, smin^2), or its x1_hat. SNR is therefore never 0 or Inf for VP and VE, and a
//     scheduler change from them clamps times to [0, 1] (see Rescheduled).
//
// # Why conditional targets train the marginal field
//
// The network is trained on the conditional target u_t(x_t | x1, x0) of one data point, yet it is
// meant to learn the marginal field u_t(x) = E[u_t(x_t | x1, x0) | x_t = x] that carries the
// noise to the whole data distribution. Lipman et al. 2023 ("Flow Matching for Generative
// Modeling", ICLR 2023, Theorem 2; the 2024 guide's Theorem 4) show that the conditional loss
// L_CFM(theta) = E|v_theta(x_t, t) - u_t(x_t | x1, x0)|^2 and the marginal loss
// L_FM(theta) = E|v_theta(x_t, t) - u_t(x_t)|^2 differ by a constant in theta, so their gradients
// and minimizers are the same, for every affine path of this package. TestCFMGradientIsFMGradient
// checks it with the package's own pieces: a Gaussian-mixture data distribution, conditional
// targets from Affine.Sample, the exact marginal field in closed form (expert/experttest.Field),
// CondOT and Cosine, and a model linear in features of (x, t): on 40000 samples the two
// gradients agree within 3.1 standard errors at zero, random and L_FM-minimizing parameters and
// the loss gap does not change with them, while a marginal field with permuted mixture weights or
// of the other path is off by 28 standard errors or more.
//
// # Predictions
//
// A model may predict the velocity u_t(x), the data E[x1|x_t] (a denoiser), the noise E[x0|x_t]
// (epsilon) or the score grad log p_t(x_t) = -E[x0|x_t]/sigma_t. All four are linear in x_t and in
// each other (Convert, ConvertTo); the anytime estimate of the sample at time t from the current
// state and velocity is x1_hat = E[x1|x_t] (X1HatTo), x + (1 - t) v for CondOT. AsVelocity wraps a
// model that predicts another parameterization as the velocity field the samplers integrate, and
// Reschedule a field trained along one scheduler as a field along another.
//
// Checkpoints name a scheduler or time distribution by its Go type name with its exported fields
// as JSON; NewScheduler and NewTimeDist decode that form strictly.
//
// # Training times
//
// Uniform, LogitNormal (Esser et al. 2024) and Beta, all drawing from an injected *rand.Rand and
// staying in [0, 1). Pi0Beta is openpi's pi0 distribution converted to our axis: pi0 draws
// tau = 0.999 u + 0.001 with u ~ Beta(1.5, 1) on its reversed axis (tau = 1 is noise), which puts
// the weight toward its tau = 1, the noise. With t = 1 - tau this is t = 0.999 b, b ~ Beta(1, 1.5):
// the weight is toward our t = 0, still the noise end, and no time above t = 0.999 (the cutoff keeps
// the clean-data end, where the target is degenerate for a network, out of training).
//
// ValidateTraining checks a scheduler and a time distribution as a pair: every distribution here
// can draw t = 0 exactly in floating point (Beta{A: 0.01} about 5.8e-4 of the time, by
// underflow), where Polynomial{N < 1} has alpha' = +Inf, so that pair is refused rather than
// clamped (its expected squared target is infinite for A <= 2(1 - N) anyway); expert/train's
// Config.Validate calls it.
package path
