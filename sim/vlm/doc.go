// Package vlm is a synthetic vision-language model: it stands in for a real VLM (such as the
// PaliGemma backbone of pi0) so that flowact can be trained, run and evaluated without cameras or
// a GPU. It is not a VLM: it reads the task's ground truth, not pixels.
//
// An Encoder turns a Scene (the instruction text, the grounded goal and the other objects) into
// Tokens x Width float32 embedding tokens, row-major (token i, channel j at i*Width+j), 16 x 256
// by default. It first builds a small feature vector: a bag of instruction words, each word
// hashed (FNV-1a) to a fixed pseudo-random vector; the goal position (m) and velocity (m/s) in
// the robot's root frame; the position and size of up to MaxObjects other objects; a constant.
// Positions count in units of 10 cm. Every embedding value is then a random Fourier feature of
// that whole vector, cos(a . f + b), with a ~ N(0, Gain^2) and b ~ U(0, 2 pi) drawn once from
// Config.Seed (Rahimi and Recht 2007, "Random features for large-scale kernel machines"), plus
// optional Gaussian noise; values lie in [-1, 1] before the noise. So the goal is present in the embedding (a network can
// decode it) but entangled: no channel is the goal's x, every channel mixes everything, as in
// a real VLM's embedding.
//
// A Stream runs an Encoder at a VLM's pace on simulation time: it observes the scene every
// 1/Rate seconds and publishes each embedding Latency after its observation.
//
// Time is a time.Duration since the start of an episode. Memory: an Encoder owns its projection
// weights and a feature workspace and is not safe for concurrent use; EncodeTo writes into a
// caller's slice and allocates nothing. Stream.Latest returns a slice the Stream owns, valid until
// the next Observe.
package vlm
