// Package expert holds the types and interfaces of flowact's action expert: a conditional
// flow-matching model that turns a condition (a VLM embedding plus the robot's proprioceptive
// state) into an action chunk by integrating a learned velocity field from Gaussian noise to data.
//
// # Conventions
//
// Flow time runs from t = 0 (noise) to t = 1 (data), as in Lipman et al., "Flow Matching for
// Generative Modeling" (2023) and "Flow Matching Guide and Code" (2024):
//
//	x_t = alpha_t x1 + sigma_t x0,   x0 ~ N(0, I),  x1 ~ data,
//
// and a Field returns the velocity dx_t/dt. openpi's pi0 and LeRobot's checkpoints use the opposite
// direction (their tau = 1 is noise). Convert such a model when it is loaded, never inside the math:
//
//	t' = 1 - tau,   v'(x, t') = -v_theirs(x, 1 - t').
//
// Units and precision: everything inside the expert is float32 in normalized space (see calib/norm);
// flow time is float64 so that time grids are exact. Physical units (rad, rad/s) never reach this
// package; the policy package converts.
//
// Layout: an action chunk is H x D (H future steps of D action dimensions), stored row-major in one
// []float32 of length H*D: step i, dimension j is Data[i*D+j]. An embedding is Tokens x Width,
// row-major in the same way.
//
// Memory: callers own memory. Every method that produces numbers writes into a caller-given dst
// and allocates nothing in steady state; a Field or Sampler keeps its workspace from its
// constructor or from Bind. dst may not alias an input unless a method says so.
//
// Randomness is injected: samplers take the initial noise x0 from the caller (see Noise), so the
// same seed gives the same chunk bit for bit.
package expert
