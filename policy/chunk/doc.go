// Package chunk splices action chunks into one stream of joint targets, one action per control
// tick, and measures the seams where one chunk hands over to the next.
//
// # Time and layout
//
// Time is the control tick: an int64 count of control periods since the loop started. A Chunk
// holds H x D absolute joint targets (rad or m, float64, robot model order), row-major, and
// Start, the tick its row 0 belongs to: the tick at which the observation it was computed from
// was taken. Row i is the action for tick Start+i. A chunk that arrives at tick n, d = n-Start
// ticks after its observation, has its first d rows in the past: splicers never execute them
// (for prefix conditioning they are exactly the committed actions the expert was given).
//
// # Strategies
//
//   - replace: the new chunk takes over at its arrival (row d at tick n).
//   - ensemble: ACT's temporal ensembling (Zhao et al., "Learning Fine-Grained Bimanual
//     Manipulation with Low-Cost Hardware", RSS 2023): the action for tick k is the average of
//     every stored chunk's row for k with weights w_i = exp(-m i), i = 0 the oldest chunk.
//   - blend: a raised-cosine cross-fade over K ticks from the previous plan to the new chunk,
//     w_i = (1 - cos(pi (i+1)/(K+1)))/2 at the i-th tick after arrival; a plan that ends during
//     the fade holds its last action.
//   - prefix: real-time chunking with training-time action conditioning (Black et al., "Real-Time
//     Execution of Action Chunking Flow Policies", 2025, and its training-time variant): the
//     expert is given the plan's actions for the ticks [Start, Start+p) as a committed prefix
//     (Committed, padded by holding the last action, never zeros) and continues them; the chunk
//     then takes over through blend's cross-fade. Over the committed rows the two plans are the
//     same, so the fade changes nothing there (when the delay estimate p is at least the actual
//     delay the handover is exact); after them it smooths what is left of the model's error in
//     continuing the prefix. Conditioning keeps the new chunk on the plan's side of a
//     multimodal choice, so the fade mixes two plans that agree, never two modes (blending two
//     unconditioned chunks that chose different sides of an obstacle steers through it).
//   - guided: real-time chunking by inference-time guidance (Black et al. 2025, the
//     pseudo-inverse guidance of Pokle et al. 2023), for experts without prefix conditioning:
//     the sampler is steered toward the previous plan with the soft mask GuideWeights (1 on the
//     frozen rows, decaying over the overlap, 0 past the plan), the frozen rows are written
//     back exactly, and the chunk takes over at arrival like replace.
//
// # Seams
//
// Seam measures the stream of targets around each splice over a window of ticks from the first
// tick of the new chunk on, by finite differences at the control period dt:
// Jump = max |x_k - x_{k-1}| (rad), Velocity = max |v_k - v_{k-1}| (rad/s), Acceleration =
// max |a_k - a_{k-1}| (rad/s^2) and Jerk = max |j_k| (rad/s^3), maxima over joints and window
// (so Acceleration = Jerk dt; both are reported because both are asked for by users).
//
// # Memory
//
// A Splicer copies the chunks it is given (the caller may reuse them at once) into storage
// allocated by New; Splice, Action and the Meter allocate nothing. Nothing here is safe for
// concurrent use: the control tick owns it.
package chunk
