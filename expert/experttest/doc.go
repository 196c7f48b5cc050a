// Package experttest holds analytic references for testing flow-matching code: Gaussian and
// diagonal Gaussian-mixture distributions with exact log densities and samplers, and the exact
// marginal velocity field of any affine Gaussian path between them (package path), which
// implements expert.Field.
//
// For a source N(m0, diag(S0)) and a target sum_k w_k N(mu_k, diag(C_k)), the path
// x_t = alpha_t x1 + sigma_t x0 has the marginal p_t = sum_k w_k N(m_k, diag(V_k)) with
// m_k = alpha mu_k + sigma m0, V_k = alpha^2 C_k + sigma^2 S0, and its marginal velocity is the
// posterior-weighted mean of the per-component velocities (Lipman et al. 2024, sec. 4.4):
//
//	u_t(x) = sum_k P(k | x) [alpha' mu_k + sigma' m0 + (alpha alpha' C_k + sigma sigma' S0)/V_k (x - m_k)].
//
// Everything is computed in float64; vectors cross the API as float32 like the rest of the expert.
// The flattened dimension n is any H x D chunk size. Flow time t = 0 is the source (noise), t = 1
// the target (data). A Field caches the marginal's coefficients for the last time it was asked
// about and is not safe for concurrent use. Field.Velocity, Mixture.Sample and Mixture.Posterior
// allocate nothing.
//
// Uses: exact fields for solver tests (expert/ode), closed-form log densities for likelihood
// tests, and ground truth for what a trained network should have learned (expert/train).
package experttest
