// Package kern holds the inner loops of the expert's networks: matrix products, layer
// normalization, activations and attention, in portable pure Go float32. Everything the networks
// compute in bulk goes through these few functions, so that they can be made fast in one place.
//
// Layout: every matrix is row-major and dense (the leading dimension is the number of columns).
// Weights of a linear layer are stored [in, out], so a layer is y = x·W + b with x of shape
// [rows, in]. No function allocates; scratch space is passed in by the caller.
package kern

import "math"

// Gemm computes C = A·B, or C += A·B when acc is set; A is m×k, B is k×n, C is m×n.
func Gemm(c, a, b []float32, m, k, n int, acc bool) {
	gemmCols(c, a, b, m, k, n, 0, n, acc)
}

// panelK is the depth of a packed panel of B: 4 columns by panelK rows, 4 KB on the stack.
const panelK = 256

// gemmCols computes columns [j0, j1) of C = A·B (+C). For each block of 4 columns it packs up to
// panelK rows of those columns of B contiguously (rows of B are n floats apart, which for
// power-of-two n would map to the same cache set), then runs a micro-kernel that keeps a 2 x 4
// block of C in registers over the panel: 8 multiply-adds per 6 loads. Single rows
// (matrix-vector products) stream rows of B instead.
func gemmCols(c, a, b []float32, m, k, n, j0, j1 int, acc bool) {
	if m == 0 || j1 <= j0 {
		return
	}
	_ = a[m*k-1]
	_ = b[k*n-1]
	m2 := m &^ 1
	if m2 > 0 {
		var panel [panelK * 4]float32
		j := j0
		for ; j+4 <= j1; j += 4 {
			for p0 := 0; p0 < k; p0 += panelK {
				p1 := min(p0+panelK, k)
				pk := p1 - p0
				pan := panel[:pk*4]
				for p := 0; p < pk; p++ {
					copy(pan[4*p:4*p+4], b[(p0+p)*n+j:(p0+p)*n+j+4])
				}
				add := acc || p0 > 0
				for i := 0; i < m2; i += 2 {
					a0 := a[i*k+p0 : i*k+p1]
					a1 := a[(i+1)*k+p0 : (i+1)*k+p1]
					a1 = a1[:len(a0)]
					c0 := c[i*n+j : i*n+j+4 : i*n+j+4]
					c1 := c[(i+1)*n+j : (i+1)*n+j+4 : (i+1)*n+j+4]
					var s00, s01, s02, s03, s10, s11, s12, s13 float32
					if add {
						s00, s01, s02, s03 = c0[0], c0[1], c0[2], c0[3]
						s10, s11, s12, s13 = c1[0], c1[1], c1[2], c1[3]
					}
					s00, s01, s02, s03, s10, s11, s12, s13 = micro2x4(a0, a1, pan, s00, s01, s02, s03, s10, s11, s12, s13)
					c0[0], c0[1], c0[2], c0[3] = s00, s01, s02, s03
					c1[0], c1[1], c1[2], c1[3] = s10, s11, s12, s13
				}
			}
		}
		// Leftover columns, one at a time.
		for ; j < j1; j++ {
			for i := 0; i < m2; i += 2 {
				var s0, s1 float32
				if acc {
					s0, s1 = c[i*n+j], c[(i+1)*n+j]
				}
				a0, a1 := a[i*k:(i+1)*k], a[(i+1)*k:(i+2)*k]
				a1 = a1[:len(a0)]
				bp := j
				for p, x0 := range a0 {
					bv := b[bp]
					s0 += x0 * bv
					s1 += a1[p] * bv
					bp += n
				}
				c[i*n+j], c[(i+1)*n+j] = s0, s1
			}
		}
	}
	for i := m2; i < m; i++ {
		ci := c[i*n+j0 : i*n+j1]
		if !acc {
			clear(ci)
		}
		ai := a[i*k : (i+1)*k]
		for p, x := range ai {
			if x == 0 {
				continue
			}
			axpy(ci, b[p*n+j0:p*n+j1], x)
		}
	}
}

// axpy computes y += a·x over len(y) elements, eight at a time.
func axpy(y, x []float32, a float32) {
	x = x[:len(y)]
	j := 0
	for ; j+8 <= len(y); j += 8 {
		yy := y[j : j+8 : j+8]
		xx := x[j : j+8 : j+8]
		yy[0] += a * xx[0]
		yy[1] += a * xx[1]
		yy[2] += a * xx[2]
		yy[3] += a * xx[3]
		yy[4] += a * xx[4]
		yy[5] += a * xx[5]
		yy[6] += a * xx[6]
		yy[7] += a * xx[7]
	}
	for ; j < len(y); j++ {
		y[j] += a * x[j]
	}
}

// AddRow adds the row vector v (length n) to every row of the m×n matrix x.
func AddRow(x, v []float32, m, n int) {
	v = v[:n]
	for i := 0; i < m; i++ {
		r := x[i*n : (i+1)*n]
		for j, b := range v {
			r[j] += b
		}
	}
}

// LayerNorm writes to dst the rows of the m×n matrix x normalized to zero mean and unit
// variance (biased, as in Ba et al. 2016): dst = (x - mean) / sqrt(var + eps). It has no
// learned affine part: the networks modulate the result (FiLM, adaLN). dst may alias x.
func LayerNorm(dst, x []float32, m, n int, eps float32) {
	inv := 1 / float32(n)
	for i := 0; i < m; i++ {
		r := x[i*n : (i+1)*n]
		d := dst[i*n : (i+1)*n]
		var s float32
		for _, v := range r {
			s += v
		}
		mean := s * inv
		var q float32
		for _, v := range r {
			c := v - mean
			q += c * c
		}
		rs := float32(1 / math.Sqrt(float64(q*inv+eps)))
		for j, v := range r {
			d[j] = (v - mean) * rs
		}
	}
}

// Modulate applies FiLM / adaLN modulation in place to the rows of the m×n matrix x:
// x = x ∘ (1 + scale) + shift. scale and shift are given per row with row strides ss (0 means one
// vector shared by all rows).
func Modulate(x, shift, scale []float32, m, n, ss int) {
	for i := 0; i < m; i++ {
		r := x[i*n : (i+1)*n]
		sh := shift[i*ss : i*ss+n]
		sc := scale[i*ss : i*ss+n]
		for j := range r {
			r[j] = r[j]*(1+sc[j]) + sh[j]
		}
	}
}

// SiLU applies x·sigmoid(x) (Elfwing et al. 2018) in place.
func SiLU(x []float32) {
	for i, v := range x {
		x[i] = v / (1 + float32(math.Exp(float64(-v))))
	}
}

// gelu constants: sqrt(2/pi) and the cubic coefficient of the tanh approximation of GELU
// (Hendrycks & Gimpel 2016).
const (
	geluC = 0.7978845608028654
	geluA = 0.044715
)

// GELU applies the tanh approximation of GELU in place.
func GELU(x []float32) {
	for i, v := range x {
		u := geluC * (v + geluA*v*v*v)
		x[i] = 0.5 * v * (1 + float32(math.Tanh(float64(u))))
	}
}

// Softmax replaces x by exp(x - max) / sum, in place.
func Softmax(x []float32) {
	mx := x[0]
	for _, v := range x[1:] {
		if v > mx {
			mx = v
		}
	}
	var s float32
	for i, v := range x {
		e := float32(math.Exp(float64(v - mx)))
		x[i] = e
		s += e
	}
	inv := 1 / s
	for i := range x {
		x[i] *= inv
	}
}

// Attention computes multi-head scaled dot-product attention (Vaswani et al. 2017):
// out = softmax(Q Kᵀ / sqrt(dh)) V for each of heads heads of width dh. q is tq×(heads·dh), k and
// v are tk×(heads·dh) and out is tq×(heads·dh), all row-major; scores is scratch of length ≥ tk.
// Head h uses columns [h·dh, (h+1)·dh). No mask: every query sees every key.
func Attention(out, q, k, v []float32, tq, tk, heads, dh int, scores []float32) {
	w := heads * dh
	scale := float32(1 / math.Sqrt(float64(dh)))
	s := scores[:tk]
	for h := 0; h < heads; h++ {
		off := h * dh
		for i := 0; i < tq; i++ {
			qi := q[i*w+off : i*w+off+dh]
			for j := 0; j < tk; j++ {
				kj := k[j*w+off : j*w+off+dh]
				kj = kj[:len(qi)]
				var d float32
				for c, x := range qi {
					d += x * kj[c]
				}
				s[j] = d * scale
			}
			Softmax(s)
			oi := out[i*w+off : i*w+off+dh]
			clear(oi)
			for j, p := range s {
				axpy(oi, v[j*w+off:j*w+off+dh], p)
			}
		}
	}
}

// micro2x4 adds the products of rows a0 and a1 with the packed 4-column panel pan (len 4·len(a0))
// to the 2 x 4 accumulators. It is a function of its own so that the accumulators stay in
// registers: inlined into gemmCols's loop nest they spill.
//
//go:noinline
func micro2x4(a0, a1, pan []float32, s00, s01, s02, s03, s10, s11, s12, s13 float32) (float32, float32, float32, float32, float32, float32, float32, float32) {
	a1 = a1[:len(a0)]
	pan = pan[:4*len(a0)]
	for p, x0 := range a0 {
		x1 := a1[p]
		bb := pan[4*p : 4*p+4 : 4*p+4]
		b0, b1, b2, b3 := bb[0], bb[1], bb[2], bb[3]
		s00 += x0 * b0
		s01 += x0 * b1
		s02 += x0 * b2
		s03 += x0 * b3
		s10 += x1 * b0
		s11 += x1 * b1
		s12 += x1 * b2
		s13 += x1 * b3
	}
	return s00, s01, s02, s03, s10, s11, s12, s13
}
