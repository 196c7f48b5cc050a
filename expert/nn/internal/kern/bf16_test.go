package kern

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// refBF16 rounds v to bfloat16 by comparing distances in float64: the two candidates are v's
// top half t (toward zero) and the next value away from zero, t + 1 in magnitude (with an
// unbounded exponent: past the largest finite value that is an infinity, as IEEE rounding to
// nearest has it); the nearer wins, a tie goes to the even one. Independent of F32ToBF16's
// integer trick.
func refBF16(v float32) uint16 {
	b := math.Float32bits(v)
	t := uint16(b >> 16)
	e := int(b>>23) & 0xff
	ulp := math.Ldexp(1, max(e, 1)-127-7) // bfloat16 keeps 7 fraction bits
	x := math.Abs(float64(v))
	lo := math.Abs(float64(BF16ToF32(t)))
	dlo, dhi := x-lo, lo+ulp-x
	if dhi < dlo || dhi == dlo && t&1 == 1 {
		return t + 1
	}
	return t
}

// TestBF16Rounding: F32ToBF16 rounds to nearest, ties to even, on every bfloat16 value and on
// the values around each (the tie, one below and above it, the extremes of the dropped half)
// and random ones; infinities stay, NaN stays NaN with its sign, overflow goes to infinity.
func TestBF16Rounding(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for h := 0; h < 1<<16; h++ {
		hi := uint32(h) << 16
		if e := hi >> 23 & 0xff; e == 0xff {
			continue // infinities and NaN: below
		}
		if got := F32ToBF16(math.Float32frombits(hi)); got != uint16(h) {
			t.Fatalf("%#04x widened and rounded back gives %#04x", h, got)
		}
		for _, low := range []uint32{1, 0x7fff, 0x8000, 0x8001, 0xffff, r.Uint32() & 0xffff} {
			v := math.Float32frombits(hi | low)
			if got, want := F32ToBF16(v), refBF16(v); got != want {
				t.Fatalf("F32ToBF16(%#08x = %g) = %#04x, want %#04x", hi|low, v, got, want)
			}
		}
	}
	for _, c := range []struct {
		in   uint32
		want uint16
	}{
		{0x3f808000, 0x3f80}, // 1 + 2^-8: a tie, to the even 1
		{0x3f818000, 0x3f82}, // 1 + 3·2^-8: a tie, to the even 1 + 2^-6
		{0x3f808001, 0x3f81}, // just past the tie: up
		{0x7f7fffff, 0x7f80}, // the largest float32 overflows to +Inf
		{0xff7fffff, 0xff80}, // and its negative to -Inf
		{0x7f7f7fff, 0x7f7f}, // below the tie: the largest finite bfloat16
		{0x7f7f8000, 0x7f80}, // the tie above the largest finite (odd): to infinity
		{0x7f800000, 0x7f80}, // +Inf
		{0xff800000, 0xff80}, // -Inf
		{0x80000000, 0x8000}, // -0
		{0x00008000, 0x0000}, // the smallest subnormal tie: to the even 0
		{0x00018000, 0x0002}, // a subnormal tie to the even 2
	} {
		if got := F32ToBF16(math.Float32frombits(c.in)); got != c.want {
			t.Errorf("F32ToBF16(%#08x) = %#04x, want %#04x", c.in, got, c.want)
		}
	}
	for _, nan := range []uint32{0x7fc00000, 0xffc00000, 0x7f800001, 0xff800001, 0x7fbfffff, 0x7fffffff} {
		got := F32ToBF16(math.Float32frombits(nan))
		if got&0x7f80 != 0x7f80 || got&0x7f == 0 {
			t.Errorf("NaN %#08x gives %#04x, not a NaN", nan, got)
		}
		if got>>15 != uint16(nan>>31) {
			t.Errorf("NaN %#08x gives %#04x: sign lost", nan, got)
		}
	}
}

// TestBF16Widening: a k = 1 product by 1 of every finite or infinite bfloat16 value gives
// BF16ToF32's value on every implementation, so the panels' pair layout and the kernels'
// widening agree column by column.
func TestBF16Widening(t *testing.T) {
	all := make([]float32, 0, 1<<16)
	for h := 0; h < 1<<16; h++ {
		f := BF16ToF32(uint16(h))
		if f != f {
			f = 0
		}
		all = append(all, f)
	}
	for _, ar := range Archs() {
		// n not a multiple of the panel width, so the last panel has padding.
		n := len(all) - 3
		w := ar.Pack(all, 1, n, BF16)
		c := make([]float32, n)
		w.MulTo(c, []float32{1}, 1, false, make([]float32, w.Scratch(1)))
		for i := range n {
			if c[i] != all[i] { // by value: 0 + 1·(-0) is +0
				t.Fatalf("%s: bfloat16 %#04x widens to %v, want %v", ar.Name(), i, c[i], all[i])
			}
		}
	}
}

// TestBF16SameSums: on every implementation and shape class, a product with bfloat16 weights
// equals, bit for bit, the float32 product with the same (rounded) weights: the bfloat16
// kernels run the float32 kernels' sums in the same order, and the products are within the
// bound that bfloat16's 8-bit significand gives against the unrounded float32 weights.
func TestBF16SameSums(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	for _, ar := range Archs() {
		for _, s := range shapes {
			name := fmt.Sprintf("%s %dx%dx%d", ar.Name(), s.m, s.k, s.n)
			a, b := randSlice(r, s.m*s.k), randSlice(r, s.k*s.n)
			wb := ar.Pack(b, s.k, s.n, BF16)
			wf := ar.Pack(rounded(b, BF16), s.k, s.n, F32)
			cb, cf := make([]float32, s.m*s.n), make([]float32, s.m*s.n)
			ws := make([]float32, wb.Scratch(s.m))
			for _, acc := range []bool{false, true} {
				wb.MulTo(cb, a, s.m, acc, ws)
				wf.MulTo(cf, a, s.m, acc, ws)
				for i := range cb {
					if math.Float32bits(cb[i]) != math.Float32bits(cf[i]) {
						t.Fatalf("%s acc=%v: c[%d] = %v with bfloat16 weights, %v with the same weights in float32", name, acc, i, cb[i], cf[i])
					}
				}
			}
			// Against the exact product of the unrounded weights: each weight moved by at
			// most half a unit in the last place of an 8-bit significand (7 bits stored), at
			// most 2^-8 of itself, so |c - exact| <= 2^-8 Σ|a||b| plus float32's
			// accumulation error (the tolerance of TestMulEveryArchAndShape on Σ|a||b|).
			wb.MulTo(cb, a, s.m, false, ws)
			for i := 0; i < s.m; i++ {
				for j := 0; j < s.n; j++ {
					var exact, abs float64
					for p := 0; p < s.k; p++ {
						exact += float64(a[i*s.k+p]) * float64(b[p*s.n+j])
						abs += math.Abs(float64(a[i*s.k+p]) * float64(b[p*s.n+j]))
					}
					bound := (0x1p-8 + 2e-6*math.Sqrt(float64(s.k))) * abs
					if d := math.Abs(float64(cb[i*s.n+j]) - exact); !(d <= bound) {
						t.Fatalf("%s: c[%d,%d] = %v, exact %v: off by %.3g > %.3g", name, i, j, cb[i*s.n+j], exact, d, bound)
					}
				}
			}
		}
	}
}

func TestParsePrecision(t *testing.T) {
	for _, p := range []Precision{F32, F16, BF16} {
		if q, err := ParsePrecision(p.String()); err != nil || q != p {
			t.Fatalf("%v: %v, %v", p, q, err)
		}
	}
	for _, s := range []string{"", "F16", "fp16", "bfloat16", "f64"} {
		if _, err := ParsePrecision(s); !errors.Is(err, ErrPrecision) {
			t.Fatalf("%q: %v", s, err)
		}
	}
}
