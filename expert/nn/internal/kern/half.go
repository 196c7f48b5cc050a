package kern

import (
	"errors"
	"fmt"
	"math"
)

// F16ToF32 converts an IEEE 754 half-precision value to float32 (exactly).
func F16ToF32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	e := uint32(h>>10) & 0x1f
	f := uint32(h) & 0x3ff
	switch {
	case e == 0x1f: // infinity or NaN
		return math.Float32frombits(sign | 0x7f800000 | f<<13)
	case e == 0:
		if f == 0 {
			return math.Float32frombits(sign)
		}
		// Subnormal: f·2^-24.
		v := float32(f) * (1.0 / (1 << 24))
		if sign != 0 {
			v = -v
		}
		return v
	}
	return math.Float32frombits(sign | (e+112)<<23 | f<<13)
}

// F32ToF16 converts a float32 to the nearest IEEE 754 half-precision value (ties to even),
// saturating to infinity past 65504; NaN stays NaN.
func F32ToF16(v float32) uint16 {
	b := math.Float32bits(v)
	sign := uint16(b>>16) & 0x8000
	e := int32(b>>23) & 0xff
	f := b & 0x7fffff
	if e == 0xff {
		if f != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	}
	e -= 127 - 15
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 {
		if e < -10 {
			return sign
		}
		// Subnormal: shift the mantissa with its implicit bit, rounding to nearest even.
		f |= 0x800000
		shift := uint32(14 - e)
		h := f >> shift
		rem := f & (1<<shift - 1)
		half := uint32(1) << (shift - 1)
		if rem > half || (rem == half && h&1 != 0) {
			h++
		}
		return sign | uint16(h)
	}
	h := uint32(e)<<10 | f>>13
	rem := f & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && h&1 != 0) {
		h++ // may carry into the exponent, up to infinity: correct
	}
	return sign | uint16(h)
}

// Precision is how a Matrix stores its values. Products always accumulate in float32.
type Precision uint8

const (
	// F32 stores float32 values (4 bytes each).
	F32 Precision = iota
	// F16 stores IEEE 754 half-precision values (F32ToF16; 2 bytes, 11-bit significand,
	// largest finite 65504), widened in the kernel (VCVTPH2PS on amd64).
	F16
	// BF16 stores bfloat16 values: the top 16 bits of a float32 (F32ToBF16; 2 bytes, 8-bit
	// significand, float32's exponent range). In a panel of nr columns, 32-bit word l of a k
	// step holds column l in its low half and column l + nr/2 in its high half, so that a
	// vector of words widens to two vectors of float32 with a shift left by 16 (columns
	// 0..nr/2-1) and an AND with 0xFFFF0000 (columns nr/2..nr-1): two plain integer
	// operations, no shuffle and no conversion unit (NEON: the same on 4-lane halves). Every
	// implementation's bfloat16 kernels sum in its float32 kernels' order, so a product equals
	// the float32 product of the rounded weights.
	BF16
)

// String returns "f32", "f16" or "bf16", the names ParsePrecision reads.
func (p Precision) String() string {
	switch p {
	case F32:
		return "f32"
	case F16:
		return "f16"
	case BF16:
		return "bf16"
	}
	return fmt.Sprintf("Precision(%d)", uint8(p))
}

// ErrPrecision: a precision name other than f32, f16 and bf16.
var ErrPrecision = errors.New("kern: unknown weight precision")

// ParsePrecision reads "f32", "f16" or "bf16".
func ParsePrecision(s string) (Precision, error) {
	for _, p := range []Precision{F32, F16, BF16} {
		if s == p.String() {
			return p, nil
		}
	}
	return 0, fmt.Errorf("%w %q: want f32, f16 or bf16", ErrPrecision, s)
}

// BF16ToF32 widens a bfloat16 value to float32 (exactly: it is the float32's top half).
func BF16ToF32(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// F32ToBF16 rounds a float32 to the nearest bfloat16 value, ties to even (the low 16 bits are
// dropped after adding 0x7FFF plus the lowest kept bit). Values that round past the largest
// finite bfloat16 (about 3.39e38) become infinities of their sign, as in IEEE rounding;
// infinities stay infinities; NaN stays NaN (quieted, sign and top payload bits kept; without
// that a NaN whose payload is all in the low half would turn into an infinity).
// Subnormals round like any other value (bfloat16 has float32's exponent range).
func F32ToBF16(v float32) uint16 {
	b := math.Float32bits(v)
	if b&0x7fffffff > 0x7f800000 {
		return uint16(b>>16) | 0x0040
	}
	b += 0x7fff + (b>>16)&1
	return uint16(b >> 16)
}
