package norm

import (
	"fmt"
	"math"
)

// DefaultBins is the number of histogram bins per dimension when Accumulator.Bins is zero:
// quantiles within 4 (max-min) / 4094, about 0.1% of the range, for 32 KiB per dimension.
const DefaultBins = 4096

// Accumulator computes Stats in one streaming pass. Add rows one at a time; Stats may be called
// at any point. Memory is O(Bins) per dimension, independent of the number of rows.
type Accumulator struct {
	names []string
	dims  []dimAcc
	n     int64
	bins  int
}

// NewAccumulator returns an accumulator for rows of dim values with bins histogram bins per
// dimension (0 means DefaultBins; at least 16). names, if not nil, labels the dimensions.
func NewAccumulator(dim, bins int, names []string) *Accumulator {
	if bins == 0 {
		bins = DefaultBins
	}
	if dim <= 0 || bins < 16 || (names != nil && len(names) != dim) {
		panic(fmt.Sprintf("norm: accumulator with %d dimensions, %d bins, %d names", dim, bins, len(names)))
	}
	a := &Accumulator{names: append([]string(nil), names...), dims: make([]dimAcc, dim), bins: bins}
	if names == nil {
		a.names = nil
	}
	for i := range a.dims {
		a.dims[i].counts = make([]int64, bins)
		a.dims[i].scratch = make([]int64, bins)
	}
	return a
}

// Dim returns the row length.
func (a *Accumulator) Dim() int { return len(a.dims) }

// Count returns the number of rows added.
func (a *Accumulator) Count() int64 { return a.n }

// Add adds one row. A row of the wrong length or with a NaN, an infinity or a value of
// magnitude above 1e300 (whose differences would overflow) is rejected whole.
func (a *Accumulator) Add(row []float64) error {
	if len(row) != len(a.dims) {
		return fmt.Errorf("%w: row of %d values, want %d", ErrDim, len(row), len(a.dims))
	}
	for i, v := range row {
		if math.IsNaN(v) || math.Abs(v) > 1e300 {
			return fmt.Errorf("%w: dimension %d is %v", ErrNotFinite, i, v)
		}
	}
	a.n++
	for i, v := range row {
		a.dims[i].add(v, a.n)
	}
	return nil
}

// Stats returns the statistics so far. It fails when no row was added.
func (a *Accumulator) Stats() (Stats, error) {
	if a.n == 0 {
		return Stats{}, fmt.Errorf("%w: no samples", ErrInvalid)
	}
	d := len(a.dims)
	s := Stats{Count: a.n, Names: append([]string(nil), a.names...),
		Mean: make([]float64, d), Std: make([]float64, d), Q01: make([]float64, d),
		Q99: make([]float64, d), Min: make([]float64, d), Max: make([]float64, d)}
	if len(s.Names) == 0 {
		s.Names = nil
	}
	for i := range a.dims {
		da := &a.dims[i]
		s.Mean[i] = da.mean
		s.Std[i] = math.Sqrt(da.m2 / float64(a.n))
		s.Min[i], s.Max[i] = da.min, da.max
		s.Q01[i] = da.quantile(0.01, a.n)
		s.Q99[i] = da.quantile(0.99, a.n)
	}
	return s, nil
}

// QuantileErrorBound returns, per dimension, the bound on |estimate - exact| of any quantile
// returned by Stats: twice the current bin width (0 while a dimension has been constant).
func (a *Accumulator) QuantileErrorBound() []float64 {
	out := make([]float64, len(a.dims))
	for i := range a.dims {
		out[i] = 2 * a.dims[i].w
	}
	return out
}

// dimAcc is one dimension: Welford moments, extremes, and the histogram. Bin i (an int64, any
// sign) covers [origin + i w, origin + (i+1) w); counts[k] holds bin base+k. Doubling w maps bin
// i to bin i>>1 (floor), so merged counts stay exact.
type dimAcc struct {
	mean, m2   float64
	min, max   float64
	origin     float64 // the first value; bins are relative to it, so indices stay small
	w          float64 // bin width; 0 while every value equals origin
	base       int64
	lo, hi     int64 // used bins
	counts     []int64
	scratch    []int64
	nAtOrigin  int64 // count before the histogram starts (w == 0)
	binsActive bool
}

func (d *dimAcc) add(x float64, n int64) {
	if n == 1 {
		d.mean, d.m2, d.min, d.max, d.origin = x, 0, x, x, x
		d.nAtOrigin = 1
		return
	}
	delta := x - d.mean
	d.mean += delta / float64(n)
	d.m2 += delta * (x - d.mean)
	d.min = math.Min(d.min, x)
	d.max = math.Max(d.max, x)
	if !d.binsActive {
		if x == d.origin {
			d.nAtOrigin++
			return
		}
		// The first distinct value: the two values land B/2 bins apart, centred.
		b := len(d.counts)
		d.w = 2 * math.Abs(x-d.origin) / float64(b)
		if d.w == 0 { // the two values are subnormally close
			d.w = math.SmallestNonzeroFloat64
		}
		d.binsActive = true
		d.lo, d.hi = 0, 0
		d.base = -int64(b) / 4
		clear(d.counts)
		d.counts[-d.base] = d.nAtOrigin
	}
	fi := math.Floor((x - d.origin) / d.w)
	if fi >= float64(d.base) && fi < float64(d.base)+float64(len(d.counts)) {
		i := int64(fi)
		d.counts[i-d.base]++
		d.lo, d.hi = min(d.lo, i), max(d.hi, i)
		return
	}
	d.rebin(x)
}

// rebin widens the bins by the least power of two that makes the used bins and x's bin fit, and
// re-centres them in the array.
func (d *dimAcc) rebin(x float64) {
	b := int64(len(d.counts))
	var k uint
	var w float64
	var lo, hi, xi int64
	for k = 0; ; k++ {
		w = math.Ldexp(d.w, int(k))
		fi := math.Floor((x - d.origin) / w)
		if math.Abs(fi) > float64(1<<60) {
			continue // far too narrow still; keep doubling before converting to int64
		}
		xi = int64(fi)
		lo, hi = min(d.lo>>k, xi), max(d.hi>>k, xi)
		if hi-lo+1 <= b {
			break
		}
	}
	base := lo - (b-(hi-lo+1))/2
	clear(d.scratch)
	for j, c := range d.counts {
		if c != 0 {
			d.scratch[((d.base+int64(j))>>k)-base] += c
		}
	}
	d.counts, d.scratch = d.scratch, d.counts
	d.w, d.base, d.lo, d.hi = w, base, lo, hi
	d.counts[xi-base]++
}

// quantile estimates numpy's default quantile: linear interpolation between the order
// statistics at ranks floor(p) and ceil(p), p = q (n-1).
func (d *dimAcc) quantile(q float64, n int64) float64 {
	p := q * float64(n-1)
	r0 := int64(math.Floor(p))
	r1 := min(r0+1, n-1)
	v0, v1 := d.orderStat(r0, n), d.orderStat(r1, n)
	return v0 + (p-float64(r0))*(v1-v0)
}

// orderStat estimates the value of rank r (0-based) as the centre of its share of its bin,
// clamped to [min, max]; ranks 0 and n-1 are exact.
func (d *dimAcc) orderStat(r, n int64) float64 {
	if !d.binsActive {
		return d.origin
	}
	if r <= 0 {
		return d.min
	}
	if r >= n-1 {
		return d.max
	}
	var cum int64
	for j, c := range d.counts {
		if c == 0 {
			continue
		}
		if r < cum+c {
			frac := (float64(r-cum) + 0.5) / float64(c)
			v := d.origin + (float64(d.base+int64(j))+frac)*d.w
			return math.Min(math.Max(v, d.min), d.max)
		}
		cum += c
	}
	return d.max
}
