// Package ode integrates the expert's velocity field from noise to an action chunk: fixed-step
// Euler, midpoint, Heun and RK4 on any time grid (Fixed), adaptive Dormand-Prince 5(4)
// (DormandPrince), a stochastic sampler with the same marginals (SDE), and the log likelihood of
// a chunk by the instantaneous change of variables (Likelihood). Every sampler implements
// expert.Sampler.
//
// # Conventions
//
// Flow time runs from t = 0 (noise) to t = 1 (data), as in package expert. Samplers start from the
// caller's noise x0 at the first time of their grid and write the sample at the last; Likelihood
// runs the other way, from the sample to the noise. A grid is a strictly monotone []float64 of
// times; the default is uniform on [0, 1] and ends exactly at 1. The vectors are the flattened
// H x D chunk (row-major), float32 like the field; the solver keeps its own state in float64
// between steps, so rounding does not accumulate over steps, but every stage still goes through
// the float32 field (a floor of about 1e-7 relative on the error).
//
// # Memory and determinism
//
// A solver owns a workspace sized on its first call for a field dimension and reused after:
// steady-state calls allocate nothing (proven by testing.AllocsPerRun in the tests). A solver is
// therefore not safe for concurrent use; use one per goroutine. There is no concurrency and no
// hidden randomness inside: the same noise (expert.Noise from the same seed) and, for SDE and
// Hutchinson probes, the same injected *rand.Rand give the same chunk bit for bit.
//
// # Intermediates and the anytime estimate
//
// Fixed and SDE can fill caller-provided rows (Trace) with the state at every grid time, and all
// samplers call an optional Observer, which must not retain its slice. Solve takes a context: when
// it is done (a deadline, a cancel) before the last time, the solver writes the anytime estimate
// x1_hat = E[x1 | x_t] (path.X1HatTo: x + (1 - t) v for CondOT) from the current state and the
// velocity it has just evaluated, and returns an error wrapping ErrStopped and the context's error.
// The estimate needs the scheduler the field was trained along (the Path field; CondOT if nil).
//
// # Sources
//
//   - Runge-Kutta methods and the Dormand-Prince pair with its step-size control: Hairer, Nørsett
//     and Wanner, "Solving Ordinary Differential Equations I" (2nd ed., 1993), sec. II.1-II.5;
//     Dormand and Prince, J. Comp. Appl. Math. 6 (1980).
//   - Flow matching and its samplers: Lipman et al., "Flow Matching Guide and Code" (2024).
//   - The reverse SDE and the probability-flow ODE: Song et al., "Score-Based Generative Modeling
//     through Stochastic Differential Equations" (ICLR 2021).
//   - Likelihood by the instantaneous change of variables and Hutchinson's trace estimator: Chen et
//     al., "Neural Ordinary Differential Equations" (2018); Grathwohl et al., "FFJORD" (ICLR 2019);
//     Hutchinson, Commun. Stat. Simul. Comput. 19 (1990).
package ode
