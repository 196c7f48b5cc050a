// Package bench measures flowact's hot paths on the machine it runs on, for `flowact bench`: the
// latency of one action chunk from the expert (architecture x ODE solver x threads) and the cost
// of one control tick of policy.Loop.
//
// # Expert chunks
//
// Expert builds an expert/nn network of the given Sizes (Reference: the reference configurations
// of issue 3) with seeded random weights: nn.Init with gain 1, so every weight matrix is random,
// including the modulation and output maps that a training initialization zeroes (an untrained
// transformer would otherwise return exactly 0). The conditions (embedding and state) are drawn
// from the same seed. A chunk is what policy.Expert does per request minus normalization: draw the
// noise (expert.Noise), Bind the condition (the per-chunk work: pooling, FiLM or cross-attention
// keys and values) and integrate the field from t = 0 (noise) to t = 1 (data) with an expert/ode
// solver, at batch 1 or for a batch of chunks in one call (BindBatch: one field over B chunks,
// each with its own condition and noise; the figures are then per call). Untimed warm-up chunks
// size every workspace; then chunks are timed one by one with the monotonic wall clock until both
// the duration and the minimum repetition count are reached (at most MaxReps). Reported: median,
// p99 (nearest rank), minimum and mean milliseconds per chunk; velocity evaluations per chunk
// (ode.Stats.Evals, the mean for the adaptive solver); GFLOP/s from the networks' analytic counts
// (nn's FLOPs methods: multiply-adds count 2, only matrix products and attention are counted),
// total FLOPs over total time; the process's CPU time per chunk (getrusage: all threads, user and
// system), which a loaded machine does not stretch as it stretches wall time, and the GFLOP per
// CPU second it gives; and allocations per chunk.
//
// # Kernels
//
// Kernels measures the kernels themselves (expert/nn/refnet): the FMA peak of one core for each
// vector instruction set, matrix products on the networks' shapes with the weight precisions
// of KernelConfig.Weights (float32, half precision, bfloat16), and the reference networks A and
// B of issue 19 (fixed sizes, so that their chunks compare with other frameworks'), each chunk
// timed like an expert chunk (median, p99, minimum; CPU time). Every GFLOP/s figure is also a
// share of the best measured peak times the threads; the cost of a 16-bit precision is the
// largest velocity difference from float32 weights (PrecisionCost).
//
// # The control tick
//
// Tick steps a real policy.Loop (Loop.Step, the core that Run and Simulate drive) on a fake
// robot: an ideal driver (the state is the last command, stamped now), a closed-form inferer (a
// slow sinusoid per joint within the joint limits, holding a committed prefix or frozen rows
// exactly, as the expert does), a fresh embedding at every tick, and a virtual clock set to each
// tick's time. The inference a tick asks for runs after it (Loop.InferPending, not timed), and
// its chunk is spliced at the next tick, so the plan never runs dry, every tick is a
// steady-state tick and none overruns. A tick's cost is the wall time of Step. The first Warmup
// ticks (the cold start and the first chunks) are not measured. Quantiles are also given per kind
// of tick: plain ones, those that ask for a chunk (with Run, that tick also hands the request to
// the inference worker through a buffered channel, which may wake an OS thread: not included
// here), and those that splice a chunk.
//
// # Allocations
//
// Allocations are differences of runtime.MemStats.Mallocs and TotalAlloc across the timed
// repetitions, divided by their number. They count every goroutine of the process (the network's
// worker thread, the loop's inference worker), so a 0 means the whole steady state allocates
// nothing. They include the runtime's own: a goroutine that blocks on a channel takes a waiter
// record (a 112-byte sudog) from its processor's cache, and allocates one when that cache and the
// central one are empty. When the two-thread network's caller and worker block on one processor
// and wake on the other, records pile up in one cache (up to 128 before half spill to the central
// cache) while the other allocates: a bounded number of allocations (a few hundred per process),
// spread over the first chunks, that a warm-up of 3 chunks does not always absorb. AllocsTotal
// gives the count. A garbage collection is forced before each warm-up, so that the
// construction's garbage is not collected during the measurement (a collection also empties the
// central cache). And a collection during the measurement that holds the caller longer than
// the pool worker's spin lets the worker park: its goroutine is locked to its thread, so the
// runtime starts another OS thread for the processor it leaves, allocating that thread's records
// (TestExpertNoAllocs turns the collector off while it counts).
//
// # Memory and concurrency
//
// Measurements are sequential and own everything they build; a measurement holds one network (or
// loop) at a time and closes it before returning. Nothing here prints: callers format the results.
package bench
