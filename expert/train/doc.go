// Package train trains the action expert's networks (package nn) by conditional flow matching,
// with gorgonia's automatic differentiation. It is the only flowact package that imports
// gorgonia; nothing the control loop imports reaches it.
//
// # Graphs
//
// For each architecture a gorgonia graph mirrors the nn network operation by operation over the
// same named weights (the graph's parameter values share the network's storage, so training
// updates the network in place, and the parity tests hold nn and the graph to the same
// velocities within 1e-5 relative). Parameter-free inputs (sinusoidal time features, pooled
// embeddings) are computed in Go with nn's own functions. Two gorgonia v0.9.18 defects are
// avoided: InverseSqrt has a wrong gradient (1/sqrt is Inverse(Sqrt)), and gradients accumulate
// across runs unless zeroed (the trainer zeroes them after every run). A finite-difference test
// checks every parameter's gradient.
//
// # Loss
//
// Conditional flow matching (Lipman et al. 2023; "Flow Matching Guide and Code" 2024) for any
// affine path of expert/path: for data x1, noise x0 ~ N(0, I) and t from the training-time
// distribution, x_t = alpha_t x1 + sigma_t x0 and the target velocity is
// alpha'_t x1 + sigma'_t x0; flow time t = 0 is noise and 1 is data. The loss is the mean squared
// error over the entries that count: padded action dimensions (Batch.DimMask), padded chunk
// tails (Batch.Len) and committed prefix steps are excluded. Each example commits
// d ~ U{0..MaxPrefix} leading steps (training-time real-time chunking, Black et al. 2025): they
// are fed clean, with the MLP's mask channel set or the transformer's token time 1. With
// ColdPrefix c > 0 a share c of the examples has no prefix (the cold start) and the others
// d ~ U{1..MaxPrefix}.
//
// # Optimization
//
// AdamW (Loshchilov & Hutter 2019) with decoupled weight decay on weight matrices, global
// gradient-norm clipping, linear warmup then cosine decay of the learning rate, and an
// exponential moving average of the weights, which checkpoints hold for inference; its decay is
// warmed up as min(EMA, (1+s)/(10+s)) (EMADecay), so that a short run's average is not its
// initialization and a long one's is the configured average. Every random
// draw of step s comes from a PCG seeded with (Seed, s), so a run resumed from a checkpoint
// (Trainer.Save, Resume) repeats the uninterrupted run bit for bit.
//
// # Speed
//
// The graphs' matrix products run on expert/nn's packed SIMD kernels: the first Trainer gives
// gorgonia (whose BLAS choice is process-wide) expert/nn/blas32 as its BLAS, gonum's pure-Go
// BLAS with Sgemm replaced; no cgo. SiLU's sigmoid is a gorgonia operation of this package on
// the same vectorized float32 exp as inference (nn.Sigmoid; gradient s(1 - s)). AdamW and the
// moving average are one float32 pass over each parameter. BenchmarkTrainStep compares steps per second with gonum's Sgemm; the progress lines
// print steps/s.
//
// # Output
//
// Nothing is printed unless Config.Progress or Config.Log is set: a progress bar on a terminal,
// plain periodic lines otherwise, JSON lines to the log, and PlotLoss draws a PNG with gonum/plot:
// the training and validation loss, the learning rate and the gradient norm, on one step axis
// with labelled ticks and the legend outside the data.
package train
