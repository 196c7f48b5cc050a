// Package kern holds the inner loops of the expert's networks: matrix products, layer
// normalization, activations and attention, in float32. Everything the networks compute in bulk
// goes through these few functions, so that they are made fast in one place.
//
// # Layout and conventions
//
// Every matrix is row-major; functions that take a leading dimension (lda, ldc, ...) accept
// blocks of larger matrices, the others take dense ones. A linear layer's weights are [in, out],
// so a layer is y = x·W + b with x of shape [rows, in]. The caller owns all memory: products take
// a scratch slice (Matrix.Scratch gives its length) and nothing here allocates after
// construction (NewMatrix, NewAttention, NewPool).
//
// # Implementations
//
// An Arch is one implementation: AVX-512 (micro-tile 12 x 32), AVX2 with FMA and F16C (6 x 16),
// NEON on arm64 (4 x 16), and portable pure Go (2 x 4; Generic). Best is chosen once, when the package is initialized,
// from the CPU's features (golang.org/x/sys/cpu, and CPUID for F16C, which that package does not
// report): the package variable best is set at initialization and never changed afterwards, like
// the Arch values themselves; the package holds no other state.
// Tests run every Arch the CPU supports, Generic always, so the fallback cannot rot; scripts/test
// runs the arm64 build (NEON and Generic) under qemu-aarch64-static. Elsewhere Generic is the
// only one.
//
// # Matrix products
//
// The products follow Goto & van de Geijn (2008) and BLIS (Van Zee & van de Geijn 2015): B (the
// weights) is packed once, at load, into panels of nr columns holding their k rows contiguously
// (Matrix, float32, IEEE half precision or bfloat16: Precision); per product, A is packed into tiles of mr rows
// interleaved by k (one row: read in place); k is split into blocks of kc = 256 steps so that a
// panel's block stays in L1 while the row tiles stream past it; a micro-kernel keeps an mr x nr
// tile of C in vector registers (24 of the 32 with AVX-512, 12 of 16 with AVX2), loading nr/lanes
// vectors of B and broadcasting one value of A per row per step: mr·nr/lanes multiply-adds per
// nr/lanes + mr loads. Kernels with fewer rows (the last tile; matrix-vector products) keep
// several k steps in flight in separate accumulators, so that at least 8 multiply-add chains hide
// the FMA latency. Edge tiles (n not a multiple of nr) go through an mr x nr scratch tile.
// Half-precision panels are converted by VCVTPH2PS as they are loaded; bfloat16 panels hold
// column c and column c + nr/2 in one 32-bit word, so one load of a step's nr values widens to
// two float32 vectors by VPSLLD $16 and VPAND with 0xFFFF0000 (two integer operations that run
// on any vector ALU, where VCVTPH2PS has one slower unit and capped the half-precision
// matrix-vector product at about 50 GFLOP/s); products accumulate in float32. The bfloat16
// kernels keep the float32 kernels' accumulator sets and order, so their products equal the
// float32 kernels' on the rounded weights bit for bit (TestBF16SameSums); rounding float32 to
// bfloat16 is to nearest, ties to even (F32ToBF16). Every element of C is summed in the same
// order whatever the number of threads.
//
// The micro-kernels, the vectorized exp, and the FMA peak loop are Go assembly generated with
// avo (github.com/mmcloughlin/avo) by the program in asm/, a module of its own so that avo and
// its dependencies stay out of flowact's go.mod (only this package's generator needs them):
//
//	go generate ./expert/nn/internal/kern/
//
// rewrites kern_amd64.s and kern_amd64.go byte for byte. avo writes only amd64: the NEON
// micro-kernels (kern_arm64.s) are written by neongen, a plain Go program (go generate on
// arm64, or `go run ./neongen` here): VFMLA of four 4-lane vectors of B by a broadcast (VLD1R)
// value of A per row, the tile's sum added to C at the end (FADD, encoded as a WORD: Go's
// assembler lacks it). Half-precision panels are converted in Go into a stack buffer, 64 steps
// at a time; bfloat16 panels have NEON kernels of their own (neongen: one 32-byte load per
// step, VSHL $16 and VAND, then the float32 kernels' multiply-adds in their order); the
// element-wise functions are the pure-Go ones. The pure-Go bfloat16 kernels widen each value as they read it (a shift), in
// the float32 kernels' order. The pure-Go kernels are 2 x 4 register
// tiles (the largest that fits the 15 floating-point registers Go allocates on amd64 without
// spilling); on amd64 they beat gonum's pure-Go Sgemm (-tags noasm), see BenchmarkMul and
// BenchmarkGonumSgemm.
//
// # Element-wise functions
//
// exp is computed in float32 as in Cephes' expf: x = n·ln2 + r with |r| <= ln2/2 (Cody & Waite
// 1980, ln2 in two parts), e^r by its Taylor polynomial of degree 6, 2^n added to the exponent
// bits; inputs are clamped to [-87.3, 88.3]. SiLU is v/(1+e^-v) (Elfwing et al. 2018) and GELU's
// tanh form (Hendrycks & Gimpel 2016) is the same shape, v/(1+e^(-2u)), since
// 0.5(1+tanh(u)) = 1/(1+e^(-2u)). The assembly does whole vectors and Go the remainder with the
// same algorithm (exp32). LayerNorm (Ba et al. 2016) has no affine part; LayerNormMod fuses it
// with FiLM / adaLN modulation.
//
// # Attention
//
// Attention (Vaswani et al. 2017) runs per head as two packed products: the head's keys are
// packed transposed, the tq x tk scores of that one head go to scratch (never all heads' at once;
// at the networks' sizes, 51 x 51 or 51 x 16, a score tile is a few KB and tiling it further
// would only add passes), each row takes a softmax, and the values' product writes the head's
// columns of the output.
//
// # Threads
//
// Pool splits a product's column panels between the caller and one spinning worker goroutine
// that the Pool owns (see Pool); Close stops it. That pays for matrix-vector products (the
// weights dominate and each thread streams half of them) but not for the transformer's 50-row
// products: the worker reads the A that the caller has just packed (dirty in the caller's cache)
// and, in a network, the next product's A is the C both threads wrote half of, so every product
// moves tens of KB between the cores' caches. BenchmarkSplit shows it: on 50x256x256 the pool's
// worker takes about 2 of the 8 panels and two threads run at about one's speed, while the same
// product cut into two row blocks, or into two halves of the panels with each thread packing A
// itself, runs 1.5 to 1.8 times faster (figures in docs/benchmarks.md).
//
// Pool.Run runs a parallel region instead: work in parts (one per thread) and phases, one
// barrier between phases (each thread's count of finished phases in an atomic on a cache line
// of its own, polled by the other; no channel, no allocation). A network gives each thread a
// block of rows for the whole region, so its activations stay in its core's cache from product
// to product; Arch.Split cuts the rows at multiples of the micro-tile's rows, so the parts'
// products run the same kernels on the same rows as one product over all rows (bit-identical).
// The caller never waits for a worker that has not joined: it runs both parts, phase by phase,
// and hands part 1 over at the first phase boundary after the worker joins. A worker that has
// joined and is then preempted does hold the other thread at the next barrier; after such a
// stall the caller runs the next regions alone (1, doubling to 64 while stalls go on), so that
// a loaded machine costs a stall per run of regions rather than per barrier. Two threads still
// do not pay with more runnable threads than cores (network B, one round each: beside two other
// engineers' CPU-bound processes and a busy loop, 207 ms per chunk without the rule and 138 with
// its first form, 90 to 140 on one thread; beside one busy loop, 55.5 without and 58.5 with it,
// 52 on one thread; docs/benchmarks.md). Pool.Stalls counts the stalls.
package kern
