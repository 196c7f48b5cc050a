package kern

import (
	"unsafe"

	"golang.org/x/sys/cpu"
)

//go:generate go run ./neongen -out kern_arm64.s -stubs kern_arm64.go

// neonArch is the arm64 implementation: NEON (ASIMD) micro-kernels of 4 x 16 float32 tiles
// (kern_arm64.s, written by neongen). Half-precision panels are converted block by block into
// a stack buffer and run through the float32 kernels, as the pure-Go path does; bfloat16
// panels stay 16-bit in memory and their kernels widen them with a shift and an AND (neongen),
// summing in the float32 kernels' order; the element-wise functions are the pure-Go ones
// (lanes 0).
var neonArch = &Arch{name: "neon", mr: neonMR, nr: neonNR, kc: 256,
	f32:  []kernelF32{gemmNEONM1, gemmNEONM2, gemmNEONM3, gemmNEONM4},
	f16:  []kernelF16{neonF16M1, neonF16M2, neonF16M3, neonF16M4},
	bf16: []kernelF16{gemmNEONBF16M1, gemmNEONBF16M2, gemmNEONBF16M3, gemmNEONBF16M4}}

const (
	neonMR = 4
	neonNR = 16
)

// simdArchs returns the NEON implementation: ASIMD is part of every ARMv8-A CPU, so it is
// offered unless the CPU says otherwise.
func simdArchs() []*Arch {
	if !cpu.ARM64.HasASIMD && cpu.Initialized {
		return nil
	}
	return []*Arch{neonArch}
}

func neonF16M1(k int, a *float32, as int, b *uint16, c *float32, ldc int, acc int) {
	neonF16(1, k, a, as, b, c, ldc, acc)
}

func neonF16M2(k int, a *float32, as int, b *uint16, c *float32, ldc int, acc int) {
	neonF16(2, k, a, as, b, c, ldc, acc)
}

func neonF16M3(k int, a *float32, as int, b *uint16, c *float32, ldc int, acc int) {
	neonF16(3, k, a, as, b, c, ldc, acc)
}

func neonF16M4(k int, a *float32, as int, b *uint16, c *float32, ldc int, acc int) {
	neonF16(4, k, a, as, b, c, ldc, acc)
}

// neonF16 converts the half-precision panel 64 steps at a time into a stack buffer and runs
// the float32 kernel of rows rows on each block, accumulating after the first. The kernels are
// called statically (go:noescape), so the buffer stays on the stack.
func neonF16(rows, k int, a *float32, as int, b *uint16, c *float32, ldc int, acc int) {
	const blk = 64
	var tmp [neonNR * blk]float32
	hv := unsafe.Slice(b, k*neonNR)
	av := unsafe.Slice(a, (k-1)*as+rows)
	for p0 := 0; p0 < k; p0 += blk {
		kk := min(blk, k-p0)
		for i := range kk * neonNR {
			tmp[i] = F16ToF32(hv[p0*neonNR+i])
		}
		switch rows {
		case 1:
			gemmNEONM1(kk, &av[p0*as], as, &tmp[0], c, ldc, acc)
		case 2:
			gemmNEONM2(kk, &av[p0*as], as, &tmp[0], c, ldc, acc)
		case 3:
			gemmNEONM3(kk, &av[p0*as], as, &tmp[0], c, ldc, acc)
		default:
			gemmNEONM4(kk, &av[p0*as], as, &tmp[0], c, ldc, acc)
		}
		acc = 1
	}
}
