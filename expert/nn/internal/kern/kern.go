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

// gemmCols computes columns [j0, j1) of C = A·B (+C). Rows of A are taken four at a time so that
// each row of B is loaded once per four output rows; the inner loop streams a row of B.
func gemmCols(c, a, b []float32, m, k, n, j0, j1 int, acc bool) {
	if m == 0 || j1 <= j0 {
		return
	}
	_ = a[m*k-1]
	_ = b[k*n-1]
	w := j1 - j0
	i := 0
	for ; i+4 <= m; i += 4 {
		c0 := c[i*n+j0 : i*n+j1]
		c1 := c[(i+1)*n+j0 : (i+1)*n+j1]
		c2 := c[(i+2)*n+j0 : (i+2)*n+j1]
		c3 := c[(i+3)*n+j0 : (i+3)*n+j1]
		if !acc {
			clear(c0)
			clear(c1)
			clear(c2)
			clear(c3)
		}
		a0, a1, a2, a3 := a[i*k:(i+1)*k], a[(i+1)*k:(i+2)*k], a[(i+2)*k:(i+3)*k], a[(i+3)*k:(i+4)*k]
		for p := 0; p < k; p++ {
			bp := b[p*n+j0 : p*n+j1]
			x0, x1, x2, x3 := a0[p], a1[p], a2[p], a3[p]
			bp = bp[:w]
			c0, c1, c2, c3 := c0[:w], c1[:w], c2[:w], c3[:w]
			for j, bv := range bp {
				c0[j] += x0 * bv
				c1[j] += x1 * bv
				c2[j] += x2 * bv
				c3[j] += x3 * bv
			}
		}
	}
	for ; i < m; i++ {
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
