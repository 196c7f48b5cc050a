package kern

import "fmt"

// Matrix is a k×n matrix, the B operand of products C = A·B (a linear layer's [in, out]
// weights), packed once for one Arch: ceil(n/nr) panels of nr columns, each holding its k rows
// of nr values contiguously, zero-padded past column n. The values are float32, IEEE half
// precision or bfloat16 (see Precision; converted to float32 in the kernel, products
// accumulated in float32).
type Matrix struct {
	arch   *Arch
	k, n   int
	panels int
	prec   Precision
	f32    []float32 // F32
	h      []uint16  // F16 and BF16: 16-bit values
}

// NewMatrix returns a zero k×n matrix packed for a (k, n >= 1), stored in precision p.
func (a *Arch) NewMatrix(k, n int, p Precision) *Matrix {
	if k < 1 || n < 1 || p > BF16 {
		panic(fmt.Sprintf("kern: matrix %d x %d of %v", k, n, p))
	}
	m := &Matrix{arch: a, k: k, n: n, panels: (n + a.nr - 1) / a.nr, prec: p}
	if p != F32 {
		m.h = make([]uint16, m.panels*k*a.nr)
	} else {
		m.f32 = make([]float32, m.panels*k*a.nr)
	}
	return m
}

// Pack returns w (k×n, row-major) packed for a in precision p.
func (a *Arch) Pack(w []float32, k, n int, p Precision) *Matrix {
	m := a.NewMatrix(k, n, p)
	m.Set(w, n, 1)
	return m
}

// Dims returns k and n.
func (m *Matrix) Dims() (k, n int) { return m.k, m.n }

// Precision returns how m stores its values.
func (m *Matrix) Precision() Precision { return m.prec }

// Arch returns the implementation m is packed for.
func (m *Matrix) Arch() *Arch { return m.arch }

// Set packs src into m: element (p, j) of the matrix is src[p·rs + j·cs], so rs = n, cs = 1 is a
// row-major k×n matrix and rs = 1, cs = ld the transpose of a row-major n×k one with leading
// dimension ld. It allocates nothing.
func (m *Matrix) Set(src []float32, rs, cs int) { m.SetPanels(src, rs, cs, 0, m.panels) }

// Panels returns the number of column panels m is packed in.
func (m *Matrix) Panels() int { return m.panels }

// SetPanels is Set for panels [j0, j1) only (columns [j0·nr, j1·nr)), so that two threads can
// pack one matrix.
func (m *Matrix) SetPanels(src []float32, rs, cs, j0, j1 int) {
	k, n, nr := m.k, m.n, m.arch.nr
	if last := (k-1)*rs + (n-1)*cs; last >= len(src) || last < 0 || j0 < 0 || j1 > m.panels {
		panic(fmt.Sprintf("kern: pack %d x %d (panels %d to %d of %d) from %d values with strides %d, %d", k, n, j0, j1, m.panels, len(src), rs, cs))
	}
	for j := j0; j < j1; j++ {
		cols := min(nr, n-j*nr)
		base := j * k * nr
		for p := 0; p < k; p++ {
			o := base + p*nr
			s := p*rs + j*nr*cs
			switch {
			case m.prec == F16:
				d := m.h[o : o+nr]
				for c := 0; c < cols; c++ {
					d[c] = F32ToF16(src[s+c*cs])
				}
				clear(d[cols:])
				continue
			case m.prec == BF16:
				// Pairs: the 32-bit word l of a step holds column l in its low half and
				// column l + nr/2 in its high half (see Precision).
				d := m.h[o : o+nr]
				clear(d)
				hn := nr / 2
				for c := 0; c < cols; c++ {
					i := 2 * c
					if c >= hn {
						i = 2*(c-hn) + 1
					}
					d[i] = F32ToBF16(src[s+c*cs])
				}
				continue
			}
			d := m.f32[o : o+nr]
			if cs == 1 {
				copy(d, src[s:s+cols])
			} else {
				for c := 0; c < cols; c++ {
					d[c] = src[s+c*cs]
				}
			}
			clear(d[cols:])
		}
	}
}

// direct reports whether a product can read A in place: one row, which the one-row kernels read
// with stride 1.
func (m *Matrix) direct(rows int) bool { return rows == 1 }

// Scratch returns the length of the scratch space Mul needs for a product with rows rows: A
// packed in tiles of mr rows, and two mr×nr tiles for the edges (one per thread).
func (m *Matrix) Scratch(rows int) int {
	s := 2 * m.arch.mr * m.arch.nr
	if m.direct(rows) {
		s += m.k // a strided row is gathered
	} else {
		s += (rows + m.arch.mr - 1) / m.arch.mr * m.arch.mr * m.k
	}
	return s
}

// Mul computes C = A·M, or C += A·M when acc is set, for A of rows×k with leading dimension lda
// and C of rows×n with leading dimension ldc; ws is scratch of at least Scratch(rows) floats.
// It allocates nothing. C must not overlap A or ws.
func (m *Matrix) Mul(c []float32, ldc int, a []float32, lda, rows int, acc bool, ws []float32) {
	m.MulStrided(c, ldc, a, lda, 1, rows, acc, ws)
}

// MulStrided is Mul for an A whose element (i, p) is a[i·ars + p·acs]: ars = lda, acs = 1 is
// Mul's row-major A, ars = 1, acs = lda the transpose of a row-major k×rows matrix.
func (m *Matrix) MulStrided(c []float32, ldc int, a []float32, ars, acs, rows int, acc bool, ws []float32) {
	if rows == 0 {
		return
	}
	ap, as, tmp := m.prepare(c, ldc, a, ars, acs, rows, ws)
	m.run(c, ldc, ap, as, rows, acc, 0, m.panels, tmp[:m.arch.mr*m.arch.nr])
}

// MulTo is Mul for dense A (rows×k) and C (rows×n).
func (m *Matrix) MulTo(c, a []float32, rows int, acc bool, ws []float32) {
	m.Mul(c, m.n, a, m.k, rows, acc, ws)
}

// prepare checks the operands and packs A; it returns packed A, its step stride, and the two
// edge tiles.
func (m *Matrix) prepare(c []float32, ldc int, a []float32, ars, acs, rows int, ws []float32) (ap []float32, as int, tmp []float32) {
	k, n, mr := m.k, m.n, m.arch.mr
	if ars < 1 || acs < 1 || ldc < n || len(a) < (rows-1)*ars+(k-1)*acs+1 || len(c) < (rows-1)*ldc+n || len(ws) < m.Scratch(rows) {
		panic(fmt.Sprintf("kern: mul %d x %d by %d x %d: A strides %d, %d, ldc %d, len a %d, c %d, ws %d (want %d)",
			rows, k, k, n, ars, acs, ldc, len(a), len(c), len(ws), m.Scratch(rows)))
	}
	t := 2 * mr * m.arch.nr
	tmp, ws = ws[:t], ws[t:]
	if m.direct(rows) && acs == 1 {
		return a, 1, tmp
	}
	if m.direct(rows) { // a strided row: gather it
		ap = ws[:k]
		for p := range ap {
			ap[p] = a[p*acs]
		}
		return ap, 1, tmp
	}
	if acs != 1 {
		return m.packStrided(a, ars, acs, rows, ws), mr, tmp
	}
	tiles := (rows + mr - 1) / mr
	ap = ws[:tiles*mr*k]
	for t := 0; t < tiles; t++ {
		dst := ap[t*mr*k : (t+1)*mr*k]
		i := 0
		// Four rows at a time: each step writes four adjacent values.
		for ; i+4 <= mr && t*mr+i+4 <= rows; i += 4 {
			r := t*mr + i
			r0, r1 := a[r*ars:r*ars+k], a[(r+1)*ars:(r+1)*ars+k]
			r2, r3 := a[(r+2)*ars:(r+2)*ars+k], a[(r+3)*ars:(r+3)*ars+k]
			r1, r2, r3 = r1[:len(r0)], r2[:len(r0)], r3[:len(r0)]
			for p := range r0 {
				d := dst[p*mr+i : p*mr+i+4 : p*mr+i+4]
				d[0], d[1], d[2], d[3] = r0[p], r1[p], r2[p], r3[p]
			}
		}
		for ; i < mr; i++ {
			r := t*mr + i
			if r >= rows {
				for p := i; p < len(dst); p += mr {
					dst[p] = 0
				}
				continue
			}
			row := a[r*ars : r*ars+k]
			d := dst[i : i+(k-1)*mr+1]
			for p, v := range row {
				d[p*mr] = v
			}
		}
	}
	return ap, mr, tmp
}

// packStrided packs A with element (i, p) at a[i·ars + p·acs] into tiles, reading along p.
func (m *Matrix) packStrided(a []float32, ars, acs, rows int, ws []float32) []float32 {
	k, mr := m.k, m.arch.mr
	tiles := (rows + mr - 1) / mr
	ap := ws[:tiles*mr*k]
	for t := 0; t < tiles; t++ {
		dst := ap[t*mr*k : (t+1)*mr*k]
		r := min(mr, rows-t*mr)
		for p := 0; p < k; p++ {
			d := dst[p*mr : (p+1)*mr]
			src := a[t*mr*ars+p*acs:]
			for i := 0; i < r; i++ {
				d[i] = src[i*ars]
			}
			clear(d[r:])
		}
	}
	return ap
}

// Scale multiplies every value of m by s (float32 matrices only).
func (m *Matrix) Scale(s float32) { m.ScalePanels(s, 0, m.panels) }

// ScalePanels is Scale for panels [j0, j1) only.
func (m *Matrix) ScalePanels(s float32, j0, j1 int) {
	if m.prec != F32 {
		panic("kern: scale of a " + m.prec.String() + " matrix")
	}
	w := m.k * m.arch.nr
	Scale(m.f32[j0*w:j1*w], s)
}

// Resize sets m to k×n within the storage it was made with (no allocation); it panics if that
// is too small. The values are left as they are: Set them.
func (m *Matrix) Resize(k, n int) { m.resize(k, n) }

// Cap returns the number of values m's storage holds.
func (m *Matrix) Cap() int { return max(len(m.f32), len(m.h)) }

// run computes panels [j0, j1) of C from packed A.
func (m *Matrix) run(c []float32, ldc int, ap []float32, as, rows int, acc bool, j0, j1 int, tmp []float32) {
	for j := j0; j < j1; j++ {
		m.panel(c, ldc, ap, as, rows, acc, j, tmp)
	}
}

// panel computes panel j (nr columns) of C from packed A: k blocks of kc steps, each over the
// tiles of mr rows, so that the panel's block stays in L1 while the row tiles stream past it.
func (m *Matrix) panel(c []float32, ldc int, ap []float32, as, rows int, acc bool, j int, tmp []float32) {
	ar := m.arch
	k, n, mr, nr, kc := m.k, m.n, ar.mr, ar.nr, ar.kc
	cols := min(nr, n-j*nr)
	for kb := 0; kb < k; kb += kc {
		kk := min(kc, k-kb)
		accf := 0
		if acc || kb > 0 {
			accf = 1
		}
		bo := j*k*nr + kb*nr
		for t := 0; t*mr < rows; t++ {
			r := min(mr, rows-t*mr)
			ao := kb
			if as != 1 {
				ao = t*mr*k + kb*mr
			}
			co := t*mr*ldc + j*nr
			if cols == nr {
				m.kernel(r, kk, &ap[ao], as, bo, &c[co], ldc, accf)
				continue
			}
			// Edge tile: through scratch with leading dimension nr.
			if accf != 0 {
				for i := 0; i < r; i++ {
					copy(tmp[i*nr:i*nr+cols], c[co+i*ldc:co+i*ldc+cols])
				}
			}
			m.kernel(r, kk, &ap[ao], as, bo, &tmp[0], nr, accf)
			for i := 0; i < r; i++ {
				copy(c[co+i*ldc:co+i*ldc+cols], tmp[i*nr:i*nr+cols])
			}
		}
	}
}

func (m *Matrix) kernel(r, k int, a *float32, as, bo int, c *float32, ldc, acc int) {
	if m.h != nil {
		if m.prec == F16 {
			m.arch.f16[r-1](k, a, as, &m.h[bo], c, ldc, acc)
		} else {
			m.arch.bf16[r-1](k, a, as, &m.h[bo], c, ldc, acc)
		}
		return
	}
	m.arch.f32[r-1](k, a, as, &m.f32[bo], c, ldc, acc)
}
