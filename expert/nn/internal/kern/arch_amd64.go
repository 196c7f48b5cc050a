package kern

import "golang.org/x/sys/cpu"

//go:generate sh -c "cd asm && go run . -out ../kern_amd64.s -stubs ../kern_amd64.go -pkg kern"

var (
	avx2Arch = &Arch{name: "avx2", mr: 6, nr: 16, kc: 256, lanes: 8,
		f32:  []kernelF32{gemmAVX2M1, gemmAVX2M2, gemmAVX2M3, gemmAVX2M4, gemmAVX2M5, gemmAVX2M6},
		f16:  []kernelF16{gemmAVX2F16M1, gemmAVX2F16M2, gemmAVX2F16M3, gemmAVX2F16M4, gemmAVX2F16M5, gemmAVX2F16M6},
		bf16: []kernelF16{gemmAVX2BF16M1, gemmAVX2BF16M2, gemmAVX2BF16M3, gemmAVX2BF16M4, gemmAVX2BF16M5, gemmAVX2BF16M6},
		silu: siluAVX2, gelu: geluAVX2, sigm: sigmoidAVX2, expsub: expsubAVX2, peak: fmaPeakAVX2}
	avx512Arch = &Arch{name: "avx512", mr: 12, nr: 32, kc: 256, lanes: 16,
		f32: []kernelF32{gemmAVX512M1, gemmAVX512M2, gemmAVX512M3, gemmAVX512M4, gemmAVX512M5, gemmAVX512M6,
			gemmAVX512M7, gemmAVX512M8, gemmAVX512M9, gemmAVX512M10, gemmAVX512M11, gemmAVX512M12},
		f16: []kernelF16{gemmAVX512F16M1, gemmAVX512F16M2, gemmAVX512F16M3, gemmAVX512F16M4, gemmAVX512F16M5, gemmAVX512F16M6,
			gemmAVX512F16M7, gemmAVX512F16M8, gemmAVX512F16M9, gemmAVX512F16M10, gemmAVX512F16M11, gemmAVX512F16M12},
		bf16: []kernelF16{gemmAVX512BF16M1, gemmAVX512BF16M2, gemmAVX512BF16M3, gemmAVX512BF16M4, gemmAVX512BF16M5, gemmAVX512BF16M6,
			gemmAVX512BF16M7, gemmAVX512BF16M8, gemmAVX512BF16M9, gemmAVX512BF16M10, gemmAVX512BF16M11, gemmAVX512BF16M12},
		silu: siluAVX512, gelu: geluAVX512, sigm: sigmoidAVX512, expsub: expsubAVX512, peak: fmaPeakAVX512}
)

// simdArchs returns the SIMD implementations this CPU runs, fastest first. AVX2 kernels need
// FMA and F16C too (F16C from CPUID leaf 1 ECX bit 29: golang.org/x/sys/cpu does not
// report it); the AVX-512 ones AVX512F (their F16 conversion is AVX512F's VCVTPH2PS, their
// bfloat16 widening AVX512F's VPSLLD and VPANDD on zmm).
func simdArchs() []*Arch {
	var out []*Arch
	if cpu.X86.HasAVX512F && cpu.X86.HasAVX512VL {
		out = append(out, avx512Arch)
	}
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA && cpuid1ECX()&(1<<29) != 0 {
		out = append(out, avx2Arch)
	}
	return out
}
