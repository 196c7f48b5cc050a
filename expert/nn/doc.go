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
// y = x·W + b. Param.Data is the network's float32 master copy; the matrix products read packed
// copies of the weight matrices (internal/kern's panel layout, made once: by the constructors,
// Init, SetWeights and Repack), so a caller that writes Data calls Repack before the next Bind
// (biases, position embeddings and the rest are read from Data directly). SetPrecision packs the weight
// matrices in IEEE half precision (F16) or bfloat16 (BF16) instead (half the bytes; widened in
// the kernel, float32 accumulation; bfloat16 widens with two integer operations where F16 needs
// the conversion unit, see internal/kern). Each network lists its parameters in a fixed order; names are the checkpoint's
// tensor names.
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
// Everything in bulk runs through internal/kern: packed, cache-blocked matrix products with
// AVX-512 or AVX2+FMA micro-kernels (pure Go where the CPU has neither: arm64), vectorized
// float32 exp for SiLU, GELU and softmax, LayerNorm fused with the FiLM/adaLN modulation, and
// attention as two packed products per head. The transformer computes q, k and v in one product
// (the three maps packed side by side) and all 9·Layers + 2 modulation vectors of a time step in
// one matrix-vector product; a bias is copied into the output and the product accumulated onto
// it, and a residual branch's product accumulates straight onto the residual stream (MLP). The
// once-per-chunk work (pooling and the condition's FiLM part; the state token, every block's
// cross-attention keys and values and the t = 1 modulation) is done by Bind.
//
// BenchmarkChunk times the reference configurations of issue 3 (MLP: 3 blocks of 1024, H = 50,
// D = 7, embedding 512, state 7; transformer: width 256, 4 layers, 4 heads, MLP ratio 4, 51
// tokens, 16 condition tokens of 256) for one chunk: Bind plus 10 Euler evaluations at batch 1,
// with 1 and 2 threads, and reports GFLOP/s from the analytic counts of FLOPs (about 9.5 MFLOP
// per MLP evaluation and 394 MFLOP per transformer evaluation):
//
//	go test -run X -bench Chunk -benchtime 10x ./expert/nn/
//
// Package refnet holds the fixed reference networks A and B of issue 19, for comparison with
// other frameworks, and blas32 the kernels as gonum's BLAS for gorgonia (expert/train).
//
// # Memory and threads
//
// Bind allocates only when a larger batch or more condition tokens than before arrive; Velocity
// allocates nothing. With Threads = 2 a network owns one worker goroutine (internal/kern's Pool:
// it spins between hand-overs, parks when idle); Close stops it. The MLP splits its
// matrix-vector products' column panels between the two threads (taken from a shared counter).
// The transformer runs each evaluation's tokens as a parallel region (kern.Pool.Run): each
// thread owns a block of the batch's token rows, cut at the kernels' row tiles, through every
// block (modulated LayerNorm, the q/k/v, output, cross-attention and MLP products, GELU, gated
// residuals) with one barrier per block where self-attention needs every token's keys and
// values, and the queries of each chunk's attention split the same way; only the time
// conditioning (a matrix-vector product, split by panels) runs before the region. Splitting
// each product's panels instead moved the activations between the two cores' caches at every
// product and made two threads slower than one (docs/benchmarks.md). Results are bit-identical
// to one thread for the MLP and, at batch 1, for the transformer; at larger batches a cut inside
// a chunk other than the first changes the order of some of its attention sums (within 1e-5,
// TestTransformerBatchThreads). A network is not safe for concurrent use, and the Field from
// Bind is valid until the next Bind.
package nn
