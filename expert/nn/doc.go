// Package nn holds the action expert's inference networks in plain Go float32: an MLP with FiLM
// conditioning and a DiT-style transformer. Both implement expert.Model; the expert/train package
// builds the same networks as gorgonia graphs over the same named weights, and a parity test holds
// the two to the same velocities.
//
// # Conventions
//
// Flow time t runs from 0 (noise) to 1 (data); a network predicts the velocity dx_t/dt of the path
// x_t = alpha_t x1 + sigma_t x0 it was trained on (see package expert and expert/path). Chunks are
// H x D row-major; a batch of B chunks is B consecutive chunks (B x H x D). Everything is in
// normalized space.
//
// Weights are named tensors (Param) stored [in, out] for linear layers, so a layer computes
// y = x·W + b. Param.Data aliases the network's storage: writing it changes the network. Each
// network lists its parameters in a fixed order; names are the checkpoint's tensor names.
//
// # Time embedding
//
// Flow time enters through sinusoidal features (Vaswani et al. 2017) with geometric periods from
// 4e-3 to 4 as in openpi's pi0 (posemb_sincos): sin(2πt/p_k) then cos(2πt/p_k). TimeFeatures
// computes them; expert/train uses the same function.
//
// # MLP
//
// The noisy chunk, flattened, and one mask value per step (1 for a committed prefix step, whose
// row is replaced by the clean committed action) go through an input layer; residual blocks
// h += W·SiLU(FiLM(LN(h))) follow (Perez et al. 2018), with FiLM scale and shift a linear
// function of the time features and the condition features; a final LayerNorm and linear layer
// give the velocity. The condition features are SiLU of a linear map of the mean-pooled embedding
// tokens concatenated with the state; Bind computes them and their FiLM contribution once.
//
// # Transformer
//
// DiT (Peebles & Xie 2023) adapted to action chunks: one token per action step (a linear map of
// the action) and a state token, plus learned position embeddings; each block is adaLN-zero
// modulated self-attention over all tokens, cross-attention to the embedding tokens (whose keys
// and values Bind computes once per chunk), and a GELU MLP. Time is per token: committed prefix
// tokens carry their clean action and t = 1, the other tokens the current t.
//
// # Committed prefix at inference
//
// A Condition's Prefix (d x D) marks the first d steps of the chunk as committed (Black et al.
// 2025, real-time chunking, training-time variant). The network sees them clean; for those rows
// the Field returns, instead of the network's output, the conditional optimal-transport velocity
// toward the committed value, v = (p - x) / (1 - t), and 0 at t >= 1. The field stays a pure
// function of (x, t), and:
//
//   - from any noise, samplers that never evaluate at t = 1 (Euler, pi0's default, and midpoint)
//     follow the straight line from the noise to p and land on p exactly;
//   - when the noise's committed rows already hold the prefix (copy(x0, c.Prefix)), the velocity
//     of those rows is exactly 0 and every sampler (Heun, RK4, adaptive Dormand-Prince) keeps them
//     in place. Callers using such samplers copy the prefix into the noise first.
//
// # Speed
//
// BenchmarkChunk times the reference configurations of issue 3 (MLP: 3 blocks of 1024, H = 50,
// D = 7, embedding 512, state 7; transformer: width 256, 4 layers, 4 heads, MLP ratio 4, 51
// tokens, 16 condition tokens of 256) for one chunk: Bind plus 10 Euler evaluations at batch 1,
// with 1 and 2 threads, and reports GFLOP/s from the analytic counts of FLOPs (about 9.5 MFLOP
// per MLP evaluation and 394 MFLOP per transformer evaluation):
//
//	go test -run X -bench Chunk -benchtime 10x ./expert/nn/
//
// The kernels are portable scalar Go (internal/kern); SIMD versions belong there.
//
// # Memory and threads
//
// Bind allocates only when a larger batch or more condition tokens than before arrive; Velocity
// allocates nothing. With Threads = 2 a network owns one worker goroutine for its matrix products;
// Close stops it. A network is not safe for concurrent use, and the Field from Bind is valid until
// the next Bind.
package nn
