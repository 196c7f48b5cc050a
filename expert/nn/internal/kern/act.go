package kern

import "math"

// The float32 constants of exp32, bit for bit those of the assembly (see asm/main.go).
var (
	expHi = math.Float32frombits(0x42b0999a) // 88.3: e^x stays finite
	expLo = math.Float32frombits(0xc2ae999a) // -87.3: e^x stays normal
	log2e = math.Float32frombits(0x3fb8aa3b)
	ln2hi = math.Float32frombits(0x3f317200) // ln 2 = ln2hi + ln2lo, ln2hi with 16 zero low bits
	ln2lo = math.Float32frombits(0x35bfbe8e)
	magic = math.Float32frombits(0x4b400000) // 1.5·2^23: adding it rounds to an integer
	expC  = [...]float32{                    // 1/6!, 1/5!, 1/4!, 1/3!, 1/2!
		math.Float32frombits(0x3ab60b61), math.Float32frombits(0x3c088889), math.Float32frombits(0x3d2aaaab),
		math.Float32frombits(0x3e2aaaab), math.Float32frombits(0x3f000000)}
)

// exp32 is e^x in float32 by the assembly's algorithm: x clamped to [-87.3, 88.3], reduced to
// x = n·ln2 + r with |r| <= ln2/2, e^r by its Taylor polynomial of degree 6, times 2^n through
// the exponent bits. Relative error within a few float32 ulps.
func exp32(x float32) float32 {
	x = min(max(x, expLo), expHi)
	t := x*log2e + magic
	nf := t - magic
	r := x - nf*ln2hi
	r -= nf * ln2lo
	p := expC[0]
	for _, c := range expC[1:] {
		p = p*r + c
	}
	p = p*r + 1
	p = p*r + 1
	n := math.Float32bits(t) - math.Float32bits(magic)
	return math.Float32frombits(math.Float32bits(p) + n<<23)
}

// Sigmoid applies the logistic function 1/(1+e^-x) in place.
func (a *Arch) Sigmoid(x []float32) {
	i := 0
	if a.sigm != nil && len(x) >= a.lanes {
		i = len(x) / a.lanes * a.lanes
		a.sigm(&x[0], i)
	}
	for ; i < len(x); i++ {
		x[i] = 1 / (1 + exp32(-x[i]))
	}
}

// gelu constants: sqrt(2/pi) and the cubic coefficient of the tanh approximation of GELU
// (Hendrycks & Gimpel 2016); the assembly holds -2·geluC and geluA.
const (
	geluC = 0.7978845608028654
	geluA = 0.044715
)

var geluM2C = math.Float32frombits(0xbfcc422a) // -2·geluC in float32

// SiLU applies x·sigmoid(x) (Elfwing et al. 2018) in place.
func (a *Arch) SiLU(x []float32) {
	i := 0
	if a.silu != nil && len(x) >= a.lanes {
		i = len(x) / a.lanes * a.lanes
		a.silu(&x[0], i)
	}
	for ; i < len(x); i++ {
		v := x[i]
		x[i] = v / (1 + exp32(-v))
	}
}

// GELU applies the tanh approximation of GELU in place: 0.5·v·(1 + tanh(u)) with
// u = sqrt(2/π)(v + 0.044715v³), computed as v/(1 + e^(-2u)), the same function.
func (a *Arch) GELU(x []float32) {
	i := 0
	if a.gelu != nil && len(x) >= a.lanes {
		i = len(x) / a.lanes * a.lanes
		a.gelu(&x[0], i)
	}
	for ; i < len(x); i++ {
		v := x[i]
		z := (1 + geluA*v*v) * v * geluM2C
		x[i] = v / (1 + exp32(z))
	}
}

// ExpSub replaces x by e^(x - m), in place (exponents clamped to [-87.3, 88.3]).
func (a *Arch) ExpSub(x []float32, m float32) {
	i := 0
	if a.expsub != nil && len(x) >= a.lanes {
		i = len(x) / a.lanes * a.lanes
		a.expsub(&x[0], i, m)
	}
	for ; i < len(x); i++ {
		x[i] = exp32(x[i] - m)
	}
}

// Softmax replaces x by exp(x - max) / sum, in place.
func (a *Arch) Softmax(x []float32) {
	mx := x[0]
	for _, v := range x[1:] {
		mx = max(mx, v)
	}
	a.ExpSub(x, mx)
	s := Sum(x)
	Scale(x, 1/s)
}

// Sum returns the sum of x, in four interleaved partial sums.
func Sum(x []float32) float32 {
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(x); i += 4 {
		v := x[i : i+4 : i+4]
		s0 += v[0]
		s1 += v[1]
		s2 += v[2]
		s3 += v[3]
	}
	for ; i < len(x); i++ {
		s0 += x[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// Scale multiplies x by s in place.
func Scale(x []float32, s float32) {
	for i := range x {
		x[i] *= s
	}
}

// AddRow adds the row vector v (length n) to every row of the m×n matrix x.
func AddRow(x, v []float32, m, n int) {
	v = v[:n]
	for i := 0; i < m; i++ {
		r := x[i*n : (i+1)*n]
		r = r[:len(v)]
		for j, b := range v {
			r[j] += b
		}
	}
}

// FillRows sets every row of the m×n matrix x to v (length n): a bias to accumulate a product
// onto.
func FillRows(x, v []float32, m, n int) {
	for i := 0; i < m; i++ {
		copy(x[i*n:(i+1)*n], v[:n])
	}
}

// LayerNorm writes to dst the rows of the m×n matrix x normalized to zero mean and unit
// variance (biased, as in Ba et al. 2016): dst = (x - mean) / sqrt(var + eps). It has no
// learned affine part: the networks modulate the result (FiLM, adaLN). dst may alias x.
func LayerNorm(dst, x []float32, m, n int, eps float32) {
	for i := 0; i < m; i++ {
		mean, rs := meanRstd(x[i*n:(i+1)*n], eps)
		d := dst[i*n : (i+1)*n]
		for j, v := range x[i*n : (i+1)*n] {
			d[j] = (v - mean) * rs
		}
	}
}

// LayerNormMod is LayerNorm fused with FiLM / adaLN modulation (Perez et al. 2018; Peebles & Xie
// 2023): dst = LN(x) ∘ (1 + scale) + shift, per row, with scale and shift given per row with row
// stride ss (0: one vector for every row). dst may alias x.
func LayerNormMod(dst, x, shift, scale []float32, m, n, ss int, eps float32) {
	for i := 0; i < m; i++ {
		r := x[i*n : (i+1)*n]
		mean, rs := meanRstd(r, eps)
		d := dst[i*n : (i+1)*n]
		sh := shift[i*ss : i*ss+n]
		sc := scale[i*ss : i*ss+n]
		d, sh, sc = d[:len(r)], sh[:len(r)], sc[:len(r)]
		for j, v := range r {
			d[j] = (v-mean)*rs*(1+sc[j]) + sh[j]
		}
	}
}

// meanRstd returns the mean of r and 1/sqrt(var + eps).
func meanRstd(r []float32, eps float32) (mean, rstd float32) {
	inv := 1 / float32(len(r))
	mean = Sum(r) * inv
	var q0, q1, q2, q3 float32
	j := 0
	for ; j+4 <= len(r); j += 4 {
		v := r[j : j+4 : j+4]
		c0, c1, c2, c3 := v[0]-mean, v[1]-mean, v[2]-mean, v[3]-mean
		q0 += c0 * c0
		q1 += c1 * c1
		q2 += c2 * c2
		q3 += c3 * c3
	}
	for ; j < len(r); j++ {
		c := r[j] - mean
		q0 += c * c
	}
	q := (q0 + q1) + (q2 + q3)
	return mean, float32(1 / math.Sqrt(float64(q*inv+eps)))
}

// MulAdd computes y += g ∘ x element-wise (a gated residual).
func MulAdd(y, g, x []float32) {
	g, x = g[:len(y)], x[:len(y)]
	for j := range y {
		y[j] += g[j] * x[j]
	}
}

// Add computes y += x element-wise.
func Add(y, x []float32) {
	x = x[:len(y)]
	for j := range y {
		y[j] += x[j]
	}
}
