// Package path holds affine Gaussian probability paths x_t = alpha_t x1 + sigma_t x0 and their
// schedulers, with flow time t = 0 at the noise and t = 1 at the data (see package expert).
package path
