package kern

import "math"

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
