package kern

import (
	"fmt"
	"math"
)

// Attention computes multi-head scaled dot-product attention (Vaswani et al. 2017),
// out = softmax(Q Kᵀ / sqrt(dh)) V per head, as two matrix products per head through the packed
// kernels: the head's keys are packed transposed (dh × tk) and its values (tk × dh), S = Q_h Kᵀ
// goes to a tq × tk scratch of that head only (never all heads' scores at once), each row of S
// takes a softmax, and O_h = S V_h is written into the head's columns of out. It holds its
// scratch, sized at construction for at most maxQ queries and maxK keys.
type Attention struct {
	arch       *Arch
	maxQ, maxK int
	dh         int
	kt, v      *Matrix
	s, ws      []float32
}

// NewAttention returns attention for heads of width dh, up to maxQ queries and maxK keys.
func (a *Arch) NewAttention(maxQ, maxK, dh int) *Attention {
	at := &Attention{arch: a, maxQ: maxQ, maxK: maxK, dh: dh}
	at.kt = a.NewMatrix(dh, maxK, F32)
	at.v = a.NewMatrix(maxK, dh, F32)
	at.s = make([]float32, maxQ*maxK)
	at.ws = make([]float32, max(at.kt.Scratch(maxQ), at.v.Scratch(maxQ)))
	return at
}

// resize sets m to k×n within its storage.
func (m *Matrix) resize(k, n int) {
	panels := (n + m.arch.nr - 1) / m.arch.nr
	if panels*k*m.arch.nr > max(len(m.f32), len(m.h)) {
		panic(fmt.Sprintf("kern: resize to %d x %d exceeds the matrix's storage", k, n))
	}
	m.k, m.n, m.panels = k, n, panels
}

// Run computes attention for tq queries q over tk keys k and values v into out, all
// row-major with their own leading dimensions (at least heads·dh). Head h uses columns
// [h·dh, (h+1)·dh) of each. No mask: every query sees every key. It allocates nothing.
func (at *Attention) Run(out []float32, ldo int, q []float32, ldq int, k []float32, ldk int, v []float32, ldv int, tq, tk, heads int) {
	dh := at.dh
	if tq > at.maxQ || tk > at.maxK || tq < 1 || tk < 1 {
		panic(fmt.Sprintf("kern: attention %d queries, %d keys; built for %d, %d", tq, tk, at.maxQ, at.maxK))
	}
	scale := float32(1 / math.Sqrt(float64(dh)))
	at.kt.resize(dh, tk)
	at.v.resize(tk, dh)
	s := at.s[:tq*tk]
	for h := 0; h < heads; h++ {
		off := h * dh
		at.kt.Set(k[off:], 1, ldk)
		at.v.Set(v[off:], ldv, 1)
		at.kt.Mul(s, tk, q[off:], ldq, tq, false, at.ws)
		for i := 0; i < tq; i++ {
			r := s[i*tk : (i+1)*tk]
			Scale(r, scale)
			at.arch.Softmax(r)
		}
		at.v.Mul(out[off:], ldo, s, tk, tq, false, at.ws)
	}
}

// MaxKeys returns the most keys Run accepts.
func (at *Attention) MaxKeys() int { return at.maxK }
