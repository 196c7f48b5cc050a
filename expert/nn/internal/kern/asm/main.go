// Command asm generates the kernel package's amd64 assembly with avo (github.com/mmcloughlin/avo):
// run `go generate` in the kernel package. See ../doc.go for the algorithms.
package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// isa describes one vector instruction set: lanes per register, registers, the micro-tile.
type isa struct {
	name   string
	lanes  int // float32 lanes per vector register
	regs   int // vector registers
	mr, nr int // micro-tile rows and columns
	vec    func() VecVirtual
	half   func() VecVirtual // register holding lanes float16 values (for VCVTPH2PS's source)
}

var (
	avx2   = isa{name: "AVX2", lanes: 8, regs: 16, mr: 6, nr: 16, vec: YMM, half: XMM}
	avx512 = isa{name: "AVX512", lanes: 16, regs: 32, mr: 12, nr: 32, vec: ZMM, half: YMM}
)

func main() {
	ConstraintExpr("amd64")
	expConsts()
	for _, s := range []isa{avx2, avx512} {
		for mr := 1; mr <= s.mr; mr++ {
			gemm(s, mr, f32)
			gemm(s, mr, f16)
			gemm(s, mr, bf16)
		}
		peak(s)
		act(s, "silu")
		act(s, "gelu")
		act(s, "expsub")
		act(s, "sigmoid")
	}
	cpuid1()
	Generate()
}

// cpuid1 returns ECX of CPUID leaf 1 (bit 29: F16C, which golang.org/x/sys/cpu does not report).
func cpuid1() {
	TEXT("cpuid1ECX", NOSPLIT, "func() uint32")
	Doc("cpuid1ECX returns ECX of CPUID leaf 1.")
	MOVL(U32(1), EAX)
	XORL(ECX, ECX)
	CPUID()
	Store(ECX, ReturnIndex(0))
	RET()
}

// sets is the number of accumulator sets (k steps in flight) of an mr-row kernel: enough
// independent multiply-add chains (8: two FMA pipes of latency 4) within the register file,
// less the registers reserved (the bfloat16 kernels' mask).
func (s isa) sets(mr, reserved int) int {
	nv := s.nr / s.lanes
	n := 1
	for n < 4 && mr*nv*n < 8 && mr*nv*(n*2)+nv+1+reserved <= s.regs {
		n *= 2
	}
	return n
}

// prec is the storage of a kernel's B panel.
type prec int

const (
	f32  prec = iota // float32
	f16              // IEEE half precision, widened by VCVTPH2PS
	bf16             // bfloat16 in pairs: word l holds column l (low half) and l + nr/2 (high half)
)

// gemm writes the micro-kernel of mr rows: C[mr×nr] (+)= A·B over k, where A is packed with
// stride as floats between k steps (row i at offset i) and B is a packed panel of nr columns
// with k rows, stored as p says. A bfloat16 step is one load of nr 16-bit values (64 bytes
// with AVX-512, 32 with AVX2) widened by two integer operations: VPSLLD $16 gives columns
// 0..nr/2-1 as float32, VPAND with 0xFFFF0000 columns nr/2..nr-1. Every kernel sums in the
// same order (the same accumulator sets), so a bfloat16 product equals the float32 kernel's
// on the widened values bit for bit.
func gemm(s isa, mr int, p prec) {
	name := fmt.Sprintf("gemm%sM%d", s.name, mr)
	bt := "*float32"
	esize := 4
	reserved := 0
	switch p {
	case f16:
		name = fmt.Sprintf("gemm%sF16M%d", s.name, mr)
		bt = "*uint16"
		esize = 2
	case bf16:
		name = fmt.Sprintf("gemm%sBF16M%d", s.name, mr)
		bt = "*uint16"
		esize = 2
		reserved = 1
		if s.nr != 2*s.lanes {
			panic("bf16 kernels need panels of two vectors")
		}
	}
	TEXT(name, NOSPLIT, fmt.Sprintf("func(k int, a *float32, as int, b %s, c *float32, ldc int, acc int)", bt))
	Pragma("noescape")
	Doc(fmt.Sprintf("%s computes a %d x %d tile; see gemm in ../asm/main.go.", name, mr, s.nr))
	k := Load(Param("k"), GP64())
	a := Load(Param("a"), GP64())
	as := Load(Param("as"), GP64())
	SHLQ(Imm(2), as)
	b := Load(Param("b"), GP64())
	nv := s.nr / s.lanes
	S := s.sets(mr, reserved)
	var mask VecVirtual
	if p == bf16 {
		mask = s.vec()
		VPBROADCASTD(cst("bf16hi"), mask)
	}
	accs := make([][][]VecVirtual, S)
	for st := range accs {
		accs[st] = make([][]VecVirtual, mr)
		for i := range accs[st] {
			accs[st][i] = make([]VecVirtual, nv)
			for v := range accs[st][i] {
				r := s.vec()
				VXORPS(r, r, r)
				accs[st][i][v] = r
			}
		}
	}
	bv := make([]VecVirtual, nv)
	for v := range bv {
		bv[v] = s.vec()
	}
	t := s.vec()
	step := func(st int) {
		switch p {
		case bf16:
			m := Mem{Base: b, Disp: st * s.nr * esize}
			if s.lanes == 16 {
				VMOVDQU32(m, bv[1])
				VPSLLD(Imm(16), bv[1], bv[0])
				VPANDD(mask, bv[1], bv[1])
			} else {
				VMOVDQU(m, bv[1])
				VPSLLD(Imm(16), bv[1], bv[0])
				VPAND(mask, bv[1], bv[1])
			}
		default:
			for v := range bv {
				m := Mem{Base: b, Disp: (st*s.nr + v*s.lanes) * esize}
				if p == f16 {
					VCVTPH2PS(m, bv[v])
				} else {
					VMOVUPS(m, bv[v])
				}
			}
		}
		for i := 0; i < mr; i++ {
			VBROADCASTSS(Mem{Base: a, Disp: 4 * i}, t)
			for v := range bv {
				VFMADD231PS(bv[v], t, accs[st][i][v])
			}
		}
		ADDQ(as, a)
	}
	if S > 1 {
		Label(name + "_loop")
		CMPQ(k, Imm(uint64(S)))
		JL(LabelRef(name + "_tail"))
		for st := 0; st < S; st++ {
			step(st)
		}
		ADDQ(U32(S*s.nr*esize), b)
		SUBQ(Imm(uint64(S)), k)
		JMP(LabelRef(name + "_loop"))
	}
	Label(name + "_tail")
	TESTQ(k, k)
	JE(LabelRef(name + "_store"))
	step(0)
	ADDQ(U32(s.nr*esize), b)
	DECQ(k)
	JMP(LabelRef(name + "_tail"))

	Label(name + "_store")
	for st := 1; st < S; st++ {
		for i := range accs[0] {
			for v := range accs[0][i] {
				VADDPS(accs[st][i][v], accs[0][i][v], accs[0][i][v])
			}
		}
	}
	c := Load(Param("c"), GP64())
	ldc := Load(Param("ldc"), GP64())
	SHLQ(Imm(2), ldc)
	accf := Load(Param("acc"), GP64())
	TESTQ(accf, accf)
	JE(LabelRef(name + "_put"))
	row := GP64()
	MOVQ(c, row)
	for i := 0; i < mr; i++ {
		for v := 0; v < nv; v++ {
			VADDPS(Mem{Base: row, Disp: 4 * v * s.lanes}, accs[0][i][v], accs[0][i][v])
		}
		if i < mr-1 {
			ADDQ(ldc, row)
		}
	}
	Label(name + "_put")
	for i := 0; i < mr; i++ {
		for v := 0; v < nv; v++ {
			VMOVUPS(accs[0][i][v], Mem{Base: c, Disp: 4 * v * s.lanes})
		}
		if i < mr-1 {
			ADDQ(ldc, c)
		}
	}
	VZEROUPPER()
	RET()
}

// peak writes a loop of n iterations of 2·regs/… independent multiply-adds, for measuring the
// machine's FMA throughput: each iteration does chains × lanes × 2 floating-point operations.
func peak(s isa) {
	name := "fmaPeak" + s.name
	chains := s.regs - 4
	TEXT(name, NOSPLIT, "func(n int) int")
	Doc(fmt.Sprintf("%s runs n iterations of %d independent vector multiply-adds and returns the FLOPs done.", name, chains))
	n := Load(Param("n"), GP64())
	cnt := GP64()
	MOVQ(n, cnt)
	x, y := s.vec(), s.vec()
	VXORPS(x, x, x)
	VXORPS(y, y, y)
	acc := make([]VecVirtual, chains)
	for i := range acc {
		acc[i] = s.vec()
		VXORPS(acc[i], acc[i], acc[i])
	}
	Label(name + "_loop")
	TESTQ(cnt, cnt)
	JE(LabelRef(name + "_done"))
	for i := range acc {
		VFMADD231PS(x, y, acc[i])
	}
	DECQ(cnt)
	JMP(LabelRef(name + "_loop"))
	Label(name + "_done")
	IMUL3Q(U32(chains*s.lanes*2), n, n)
	Store(n, ReturnIndex(0))
	VZEROUPPER()
	RET()
}

var constsDone bool

// The constants of exp (see ../act.go, exp32): clamps, log2(e), ln 2 split in two, the Taylor
// coefficients of e^r to degree 6, the 1.5·2^23 rounding constant, and the GELU constants.
var expConstants = []struct {
	name string
	v    uint32
}{
	{"expHi", 0x42b0999a},   // 88.3
	{"expLo", 0xc2ae999a},   // -87.3
	{"log2e", 0x3fb8aa3b},   // 1.44269504
	{"ln2hi", 0x3f317200},   // 0.693145751953125
	{"ln2lo", 0x35bfbe8e},   // 1.42860677e-06
	{"magic", 0x4b400000},   // 12582912 = 1.5·2^23
	{"c6", 0x3ab60b61},      // 1/720
	{"c5", 0x3c088889},      // 1/120
	{"c4", 0x3d2aaaab},      // 1/24
	{"c3", 0x3e2aaaab},      // 1/6
	{"c2", 0x3f000000},      // 1/2
	{"one", 0x3f800000},     // 1
	{"gelum2c", 0xbfcc422a}, // -2·sqrt(2/π)
	{"gelua", 0x3d372713},   // 0.044715
	{"bf16hi", 0xffff0000},  // the high half of a word: a bfloat16 pair's second value
}

func expConsts() {
	if constsDone {
		return
	}
	constsDone = true
	consts = map[string]Mem{}
	for _, c := range expConstants {
		consts[c.name] = GLOBL("kc_"+c.name, RODATA|NOPTR)
		DATA(0, U32(c.v))
	}
}

var consts map[string]Mem

func cst(name string) Mem { return consts[name] }

// bc broadcasts constant name into a new register.
func bc(s isa, name string) VecVirtual {
	r := s.vec()
	VBROADCASTSS(cst(name), r)
	return r
}

// exp returns a register holding e^x for the vector x (clobbered): x is clamped to
// [-87.3, 88.3] (finite, normal results), reduced as x = n·ln2 + r with |r| <= ln2/2
// (Cody-Waite, ln 2 in two parts), e^r is a degree-6 Taylor polynomial (error below 1e-7
// relative on that interval) and 2^n is added to its exponent bits. n comes from adding
// 1.5·2^23, which rounds x·log2(e) to the nearest integer in the low mantissa bits.
func exp(s isa, x VecVirtual) VecVirtual {
	VMINPS(bc(s, "expHi"), x, x)
	VMAXPS(bc(s, "expLo"), x, x)
	mg := bc(s, "magic")
	t := s.vec()
	VMOVUPS(mg, t)
	VFMADD231PS(bc(s, "log2e"), x, t) // t = x·log2e + magic
	nf := s.vec()
	VSUBPS(mg, t, nf) // nf = round(x·log2e)
	VFNMADD231PS(bc(s, "ln2hi"), nf, x)
	VFNMADD231PS(bc(s, "ln2lo"), nf, x) // x = r
	p := bc(s, "c6")
	for _, c := range []string{"c5", "c4", "c3", "c2", "one", "one"} {
		VFMADD213PS(bc(s, c), x, p) // p = p·r + c
	}
	VPSUBD(mg, t, t)
	VPSLLD(Imm(23), t, t)
	VPADDD(t, p, p)
	return p
}

// act writes an element-wise function over n floats at x (n a multiple of the lanes; the Go
// caller does the rest): silu v/(1+e^-v), sigmoid 1/(1+e^-v), gelu v/(1+e^(-2c(v+a·v³))) (the tanh form of GELU,
// since 0.5(1+tanh(u)) = 1/(1+e^-2u)), and expsub e^(x-m).
func act(s isa, kind string) {
	name := kind + s.name
	sig := "func(x *float32, n int)"
	if kind == "expsub" {
		sig = "func(x *float32, n int, m float32)"
	}
	TEXT(name, NOSPLIT, sig)
	Pragma("noescape")
	Doc(fmt.Sprintf("%s applies %s in place to n floats (n a multiple of %d).", name, kind, s.lanes))
	x := Load(Param("x"), GP64())
	n := Load(Param("n"), GP64())
	var m VecVirtual
	if kind == "expsub" {
		m = s.vec()
		VBROADCASTSS(NewParamAddr("m", 16), m)
	}
	Label(name + "_loop")
	CMPQ(n, Imm(uint64(s.lanes)))
	JL(LabelRef(name + "_done"))
	v := s.vec()
	VMOVUPS(Mem{Base: x}, v)
	z := s.vec()
	switch kind {
	case "expsub":
		VSUBPS(m, v, z)
		e := exp(s, z)
		VMOVUPS(e, Mem{Base: x})
	case "silu":
		VXORPS(z, z, z)
		VSUBPS(v, z, z) // -v
		e := exp(s, z)
		VADDPS(bc(s, "one"), e, e)
		VDIVPS(e, v, v)
		VMOVUPS(v, Mem{Base: x})
	case "sigmoid":
		VXORPS(z, z, z)
		VSUBPS(v, z, z) // -v
		e := exp(s, z)
		one := bc(s, "one")
		VADDPS(one, e, e)
		VDIVPS(e, one, v)
		VMOVUPS(v, Mem{Base: x})
	case "gelu":
		VMULPS(v, v, z)
		VMULPS(bc(s, "gelua"), z, z)
		VADDPS(bc(s, "one"), z, z) // 1 + a·v²
		VMULPS(v, z, z)
		VMULPS(bc(s, "gelum2c"), z, z) // -2c(v + a·v³)
		e := exp(s, z)
		VADDPS(bc(s, "one"), e, e)
		VDIVPS(e, v, v)
		VMOVUPS(v, Mem{Base: x})
	}
	ADDQ(Imm(uint64(4*s.lanes)), x)
	SUBQ(Imm(uint64(s.lanes)), n)
	JMP(LabelRef(name + "_loop"))
	Label(name + "_done")
	VZEROUPPER()
	RET()
}
