// Package refnet holds the two reference networks of issue 19, defined so that their timings
// compare one to one with other frameworks' (PyTorch, ...) on the same machine, and the
// measurements `flowact bench` makes of the kernels themselves (the machine's FMA peak per
// core, matrix products on the networks' shapes).
//
// Both networks are velocity fields of 50 x 7 action chunks conditioned on a 519-vector (a
// 512-wide pooled embedding and a 7-joint state), with random weights (normal, std 1/sqrt(fan
// in); biases and LayerNorm affine parameters random too, so no term is trivially zero):
//
//   - MLP (A): concat(x 50x7 flattened, sinusoidal time features 64, condition 519) = 933 ->
//     1024 -> 1024 -> 1024 -> 350, SiLU after each hidden layer.
//   - Transformer (B): width 256, 4 layers, 4 heads, MLP ratio 4 (GELU, tanh form), pre-LN
//     (LayerNorm with affine parameters before each sublayer). 50 action tokens, each a linear
//     map of its 7 values plus a learned position embedding plus the time embedding (time
//     features 64 -> Linear(64, 256) -> SiLU -> Linear(256, 256)) added to every token;
//     self-attention over the 50 action tokens; cross-attention to 16 condition tokens, a
//     Linear(519, 16·256) of the condition reshaped; MLP 256 -> 1024 -> 256; final LayerNorm and
//     Linear(256, 7).
//
// A chunk is what a sampler does at batch 1: Bind (the once-per-chunk work: the MLP has none
// beyond copying the condition; the transformer projects the condition tokens and every
// layer's cross-attention keys and values) and 10 Euler steps from t = 0 to 1. FLOPs counts
// matrix products and attention (a multiply-add is 2), as nn's FLOPs methods do.
//
// Nothing here allocates per chunk; networks own their scratch and, with two threads, a
// worker goroutine that Close stops. On two threads the MLP splits its products' column panels;
// the transformer evaluates in a parallel region (kern.Pool.Run), each thread owning a block of
// token rows (rows 0-23 and 24-49 with the AVX-512 tile of 12 rows) from the tokens to the
// output, one barrier per layer before self-attention: the same bits as one thread.
package refnet
