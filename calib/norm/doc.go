// Package norm holds normalization statistics for the expert's inputs and outputs (joint states
// and actions) and the transforms that use them.
//
// Stats are per dimension: mean, standard deviation, the 1st and 99th percentiles (q01, q99),
// minimum, maximum and the sample count. An Accumulator computes them in ONE streaming pass over a
// dataset, in constant memory per dimension:
//
//   - mean and variance by Welford's update (Welford 1962; Knuth TAOCP vol. 2, 4.2.2). Std is the
//     population standard deviation (divide by n), as numpy's np.std and openpi's RunningStats.
//   - quantiles from an adaptive fixed-bin histogram: Bins equal-width bins on a dyadic grid
//     anchored at the first value. When a value falls outside the bins, the width doubles (pairs
//     of bins merge exactly, because the grids nest) until the running [min, max] fits. Counts are
//     exact, only positions inside one bin are approximate, so the final bin width w satisfies
//     w <= 2 (max-min) / (Bins-2) and a quantile is off by at most 2w (the estimate and the true
//     value lie in the same or adjacent bins): QuantileErrorBound. With the default 4096 bins
//     that is 0.1% of the range. Quantiles follow numpy's default definition (linear
//     interpolation between order statistics at position q (n-1)).
//
// The package computes nothing from files: the training side feeds the accumulators (flowact
// train: dataset.Examples.AccumulateTo, with the states and actions exactly as the expert sees
// them) and SetOf assembles the Set. It imports nothing of flowact's, so the control loop that
// applies a Set links no bag reader.
//
// Normalize and Unnormalize work in place on one row of length Dim or on a row-major block of
// rows (an action chunk H x D), allocate nothing, and are exact inverses up to rounding (tested
// to 1e-6 relative). Two modes, as in openpi (src/openpi/transforms.py):
//
//	MeanStd:  y = (x - mean) / (std + Eps)
//	Quantile: y = 2 (x - q01) / (q99 - q01 + Eps) - 1     (q01 -> -1, q99 -> +1; not clipped)
//
// Eps = 1e-6 is openpi's epsilon: it guards a constant dimension (std = 0 or q01 = q99) from a
// division by zero and keeps statistics interchangeable with openpi's norm_stats.json. A
// deviation from a constant dimension is amplified by 1/Eps; that is the price of compatibility.
//
// Values are float64 (the robot side); the *32 variants serve the expert, whose inputs are
// float32. A Set (state and action Stats) is a versioned JSON artifact that travels beside the
// weights in the checkpoint manifest; decoding is strict: unknown fields, an unknown version,
// lengths that disagree, NaN or Inf, and inconsistent order statistics are errors.
package norm
