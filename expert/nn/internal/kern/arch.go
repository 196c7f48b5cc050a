package kern

import (
	"math"
	"unsafe"
)

// kernelF32 computes an mr×nr tile C (+)= A·B over k steps: A is packed with stride as floats
// between steps (row i of the tile at offset i), B is a packed panel (nr floats per step), C has
// a leading dimension of ldc floats; acc != 0 adds to C instead of overwriting it.
type kernelF32 func(k int, a *float32, as int, b *float32, c *float32, ldc int, acc int)

// kernelF16 is kernelF32 with a panel of 16-bit values: IEEE half precision, or bfloat16 in
// the pair layout of BF16.
type kernelF16 func(k int, a *float32, as int, b *uint16, c *float32, ldc int, acc int)

// Arch is one implementation of the kernels: a micro-tile shape, its micro-kernels (one per row
// count 1..MR) and its element-wise functions. Matrices are packed for one Arch.
type Arch struct {
	name   string
	mr, nr int // micro-tile rows and columns
	kc     int // depth of a k block: an nr-column panel of kc rows stays in L1
	f32    []kernelF32
	f16    []kernelF16
	bf16   []kernelF16
	lanes  int // vector lanes of the element-wise functions (0: none, all in Go)
	silu   func(x *float32, n int)
	gelu   func(x *float32, n int)
	sigm   func(x *float32, n int)
	expsub func(x *float32, n int, m float32)
	peak   func(n int) int // FMA peak loop (nil: none)
}

// Name names the implementation: "avx512", "avx2", "neon" or "go".
func (a *Arch) Name() string { return a.name }

// Tile returns the micro-tile rows and columns.
func (a *Arch) Tile() (mr, nr int) { return a.mr, a.nr }

// goMR and goNR are the pure-Go micro-tile: 2 x 4 accumulators, which with the four values
// of B and the two of A fill the 15 floating-point registers Go uses on amd64 without spilling
// (a 4 x 4 tile spills and runs 3x slower).
const (
	goMR = 2
	goNR = 4
)

// Generic is the portable pure-Go implementation, used where no SIMD one is available and
// forced in tests so that it keeps working.
var Generic = &Arch{name: "go", mr: goMR, nr: goNR, kc: 256,
	f32:  []kernelF32{goKernel1, goKernel2},
	f16:  []kernelF16{goKernelF16x1, goKernelF16x2},
	bf16: []kernelF16{goKernelBF16x1, goKernelBF16x2}}

// best is the fastest implementation this CPU supports, chosen once when the package is
// initialized from the CPU's feature flags (golang.org/x/sys/cpu); it is never changed
// afterwards. It, Generic and the SIMD Arch values are set at initialization and only read
// after: the package holds no other state.
var best = detect()

// Best returns the fastest implementation this CPU supports.
func Best() *Arch { return best }

// Archs returns every implementation this CPU can run, fastest first (Generic last).
func Archs() []*Arch {
	out := simdArchs()
	return append(out, Generic)
}

func detect() *Arch {
	if s := simdArchs(); len(s) > 0 {
		return s[0]
	}
	return Generic
}

// goKernel2 is the pure-Go two-row micro-kernel (see kernelF32; k >= 1).
func goKernel2(k int, a *float32, as int, b *float32, c *float32, ldc int, acc int) {
	av := unsafe.Slice(a, (k-1)*as+2)
	bv := unsafe.Slice(b, k*goNR)
	var s [2 * goNR]float32
	micro2x4(&s, av, as, bv)
	cv := unsafe.Slice(c, ldc+goNR)
	goStore(cv[:goNR], s[:goNR], acc != 0)
	goStore(cv[ldc:ldc+goNR], s[goNR:], acc != 0)
}

// goKernel1 is the one-row micro-kernel (see micro1x4).
func goKernel1(k int, a *float32, as int, b *float32, c *float32, ldc int, acc int) {
	av := unsafe.Slice(a, (k-1)*as+1)
	bv := unsafe.Slice(b, k*goNR)
	var s [goNR]float32
	micro1x4(&s, av, as, bv)
	goStore(unsafe.Slice(c, goNR), s[:], acc != 0)
}

// micro2x4 accumulates a 2 x 4 tile over len(b)/4 steps; a function of its own so that the
// accumulators stay in registers.
//
//go:noinline
func micro2x4(s *[2 * goNR]float32, a []float32, as int, b []float32) {
	var s00, s01, s02, s03, s10, s11, s12, s13 float32
	ai := 0
	for p := 0; p+goNR <= len(b); p += goNR {
		bb := b[p : p+4 : p+4]
		aa := a[ai : ai+2 : ai+2]
		ai += as
		b0, b1, b2, b3 := bb[0], bb[1], bb[2], bb[3]
		x0, x1 := aa[0], aa[1]
		s00 += x0 * b0
		s01 += x0 * b1
		s02 += x0 * b2
		s03 += x0 * b3
		s10 += x1 * b0
		s11 += x1 * b1
		s12 += x1 * b2
		s13 += x1 * b3
	}
	*s = [2 * goNR]float32{s00, s01, s02, s03, s10, s11, s12, s13}
}

//go:noinline
func micro1x4(s *[goNR]float32, a []float32, as int, b []float32) {
	var s0, s1, s2, s3 float32
	ai := 0
	p := 0
	// Four steps at a time: the four products of a column are summed in a tree and added to
	// its accumulator once, so each accumulator's chain has one addition per four steps.
	for ; p+4*goNR <= len(b); p += 4 * goNR {
		bb := b[p : p+16 : p+16]
		x0, x1, x2, x3 := a[ai], a[ai+as], a[ai+2*as], a[ai+3*as]
		ai += 4 * as
		s0 += (x0*bb[0] + x1*bb[4]) + (x2*bb[8] + x3*bb[12])
		s1 += (x0*bb[1] + x1*bb[5]) + (x2*bb[9] + x3*bb[13])
		s2 += (x0*bb[2] + x1*bb[6]) + (x2*bb[10] + x3*bb[14])
		s3 += (x0*bb[3] + x1*bb[7]) + (x2*bb[11] + x3*bb[15])
	}
	for ; p < len(b); p += goNR {
		bb := b[p : p+4 : p+4]
		x := a[ai]
		ai += as
		s0 += x * bb[0]
		s1 += x * bb[1]
		s2 += x * bb[2]
		s3 += x * bb[3]
	}
	*s = [goNR]float32{s0, s1, s2, s3}
}

// goStore writes (or adds) the tile row s to C's row r.
func goStore(r, s []float32, acc bool) {
	r, s = r[:goNR], s[:goNR]
	if acc {
		r[0] += s[0]
		r[1] += s[1]
		r[2] += s[2]
		r[3] += s[3]
	} else {
		copy(r, s)
	}
}

// goKernelF16x1 and goKernelF16x2 are the one- and two-row kernels over a half-precision
// panel, converted 64 steps at a time.
func goKernelF16x1(k int, a *float32, as int, b *uint16, c *float32, ldc int, acc int) {
	goKernelF16(1, k, a, as, b, c, ldc, acc)
}

func goKernelF16x2(k int, a *float32, as int, b *uint16, c *float32, ldc int, acc int) {
	goKernelF16(2, k, a, as, b, c, ldc, acc)
}

// goKernelF16 converts the panel block by block into a stack buffer and runs the float32
// kernel of rows rows on it; the calls are static, so the buffer stays on the stack.
func goKernelF16(rows, k int, a *float32, as int, b *uint16, c *float32, ldc int, acc int) {
	const blk = 64
	var tmp [goNR * blk]float32
	hv := unsafe.Slice(b, k*goNR)
	av := unsafe.Slice(a, (k-1)*as+rows)
	for p0 := 0; p0 < k; p0 += blk {
		kk := min(blk, k-p0)
		for i := range kk * goNR {
			tmp[i] = F16ToF32(hv[p0*goNR+i])
		}
		if rows == 1 {
			goKernel1(kk, &av[p0*as], as, &tmp[0], c, ldc, acc)
		} else {
			goKernel2(kk, &av[p0*as], as, &tmp[0], c, ldc, acc)
		}
		acc = 1
	}
}

// goKernelBF16x2 and goKernelBF16x1 are goKernel2 and goKernel1 over a bfloat16 panel (the
// pair layout of BF16: a step's values are columns 0, 2, 1, 3), widened as they are read; the
// sums run in the float32 kernels' order, so the result equals theirs on the widened values.
func goKernelBF16x2(k int, a *float32, as int, b *uint16, c *float32, ldc int, acc int) {
	av := unsafe.Slice(a, (k-1)*as+2)
	bv := unsafe.Slice(b, k*goNR)
	var s [2 * goNR]float32
	micro2x4BF16(&s, av, as, bv)
	cv := unsafe.Slice(c, ldc+goNR)
	goStore(cv[:goNR], s[:goNR], acc != 0)
	goStore(cv[ldc:ldc+goNR], s[goNR:], acc != 0)
}

func goKernelBF16x1(k int, a *float32, as int, b *uint16, c *float32, ldc int, acc int) {
	av := unsafe.Slice(a, (k-1)*as+1)
	bv := unsafe.Slice(b, k*goNR)
	var s [goNR]float32
	micro1x4BF16(&s, av, as, bv)
	goStore(unsafe.Slice(c, goNR), s[:], acc != 0)
}

// bf widens a bfloat16 value (BF16ToF32, inlined).
func bf(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// micro2x4BF16 is micro2x4 over a bfloat16 panel.
//
//go:noinline
func micro2x4BF16(s *[2 * goNR]float32, a []float32, as int, b []uint16) {
	var s00, s01, s02, s03, s10, s11, s12, s13 float32
	ai := 0
	for p := 0; p+goNR <= len(b); p += goNR {
		bb := b[p : p+4 : p+4]
		aa := a[ai : ai+2 : ai+2]
		ai += as
		b0, b2, b1, b3 := bf(bb[0]), bf(bb[1]), bf(bb[2]), bf(bb[3])
		x0, x1 := aa[0], aa[1]
		s00 += x0 * b0
		s01 += x0 * b1
		s02 += x0 * b2
		s03 += x0 * b3
		s10 += x1 * b0
		s11 += x1 * b1
		s12 += x1 * b2
		s13 += x1 * b3
	}
	*s = [2 * goNR]float32{s00, s01, s02, s03, s10, s11, s12, s13}
}

// micro1x4BF16 is micro1x4 over a bfloat16 panel.
//
//go:noinline
func micro1x4BF16(s *[goNR]float32, a []float32, as int, b []uint16) {
	var s0, s1, s2, s3 float32
	ai := 0
	p := 0
	for ; p+4*goNR <= len(b); p += 4 * goNR {
		bb := b[p : p+16 : p+16]
		x0, x1, x2, x3 := a[ai], a[ai+as], a[ai+2*as], a[ai+3*as]
		ai += 4 * as
		s0 += (x0*bf(bb[0]) + x1*bf(bb[4])) + (x2*bf(bb[8]) + x3*bf(bb[12]))
		s1 += (x0*bf(bb[2]) + x1*bf(bb[6])) + (x2*bf(bb[10]) + x3*bf(bb[14]))
		s2 += (x0*bf(bb[1]) + x1*bf(bb[5])) + (x2*bf(bb[9]) + x3*bf(bb[13]))
		s3 += (x0*bf(bb[3]) + x1*bf(bb[7])) + (x2*bf(bb[11]) + x3*bf(bb[15]))
	}
	for ; p < len(b); p += goNR {
		bb := b[p : p+4 : p+4]
		x := a[ai]
		ai += as
		s0 += x * bf(bb[0])
		s1 += x * bf(bb[2])
		s2 += x * bf(bb[1])
		s3 += x * bf(bb[3])
	}
	*s = [goNR]float32{s0, s1, s2, s3}
}
