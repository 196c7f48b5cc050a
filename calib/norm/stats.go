package norm

import (
	"errors"
	"fmt"
	"math"
)

// Eps guards the scale of a constant dimension: MeanStd divides by std + Eps, Quantile by
// q99 - q01 + Eps. 1e-6 is openpi's value (transforms.py), kept for interchangeable statistics.
const Eps = 1e-6

// Stats are per-dimension statistics of one vector quantity (joint states or actions). Every
// slice has length Dim(); Names, when present, labels the dimensions (joint names, in order).
type Stats struct {
	Count int64     `json:"count"`
	Names []string  `json:"names,omitempty"`
	Mean  []float64 `json:"mean"`
	Std   []float64 `json:"std"` // population standard deviation
	Q01   []float64 `json:"q01"`
	Q99   []float64 `json:"q99"`
	Min   []float64 `json:"min"`
	Max   []float64 `json:"max"`
}

// Dim returns the number of dimensions.
func (s *Stats) Dim() int { return len(s.Mean) }

// Mode selects the normalization. The zero value is MeanStd.
type Mode uint8

const (
	// MeanStd maps x to (x - mean) / (std + Eps).
	MeanStd Mode = iota
	// Quantile maps q01 to -1 and q99 to +1 linearly; values outside are not clipped.
	Quantile
)

func (m Mode) String() string {
	switch m {
	case MeanStd:
		return "mean_std"
	case Quantile:
		return "quantile"
	}
	return fmt.Sprintf("Mode(%d)", uint8(m))
}

// MarshalText encodes m as "mean_std" or "quantile".
func (m Mode) MarshalText() ([]byte, error) {
	if m > Quantile {
		return nil, fmt.Errorf("norm: unknown mode %d", uint8(m))
	}
	return []byte(m.String()), nil
}

// UnmarshalText decodes "mean_std" or "quantile".
func (m *Mode) UnmarshalText(b []byte) error {
	switch string(b) {
	case "mean_std":
		*m = MeanStd
	case "quantile":
		*m = Quantile
	default:
		return fmt.Errorf("norm: unknown mode %q (want mean_std or quantile)", b)
	}
	return nil
}

// Errors.
var (
	ErrVersion   = errors.New("norm: unsupported version")
	ErrDim       = errors.New("norm: dimension mismatch")
	ErrNotFinite = errors.New("norm: value is NaN or Inf")
	ErrInvalid   = errors.New("norm: inconsistent statistics")
)

// Validate checks that every slice has the same length (and Names, if given), that there is at
// least one sample and one dimension, that every value is finite, std >= 0 and
// min <= q01 <= q99 <= max.
func (s *Stats) Validate() error {
	d := len(s.Mean)
	if d == 0 {
		return fmt.Errorf("%w: no dimensions", ErrDim)
	}
	if s.Count <= 0 {
		return fmt.Errorf("%w: count %d", ErrInvalid, s.Count)
	}
	if s.Names != nil && len(s.Names) != d {
		return fmt.Errorf("%w: %d names for %d dimensions", ErrDim, len(s.Names), d)
	}
	fields := [...]struct {
		name string
		v    []float64
	}{{"mean", s.Mean}, {"std", s.Std}, {"q01", s.Q01}, {"q99", s.Q99}, {"min", s.Min}, {"max", s.Max}}
	for _, f := range fields {
		if len(f.v) != d {
			return fmt.Errorf("%w: %s has %d values, mean has %d", ErrDim, f.name, len(f.v), d)
		}
		for i, v := range f.v {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Errorf("%w: %s[%d] = %v", ErrNotFinite, f.name, i, v)
			}
		}
	}
	for i := range d {
		switch {
		case s.Std[i] < 0:
			return fmt.Errorf("%w: std[%d] = %g < 0", ErrInvalid, i, s.Std[i])
		case !(s.Min[i] <= s.Q01[i] && s.Q01[i] <= s.Q99[i] && s.Q99[i] <= s.Max[i]):
			return fmt.Errorf("%w: dimension %d: want min <= q01 <= q99 <= max, have %g, %g, %g, %g",
				ErrInvalid, i, s.Min[i], s.Q01[i], s.Q99[i], s.Max[i])
		}
	}
	return nil
}

func (s *Stats) mustRows(n int) {
	d := len(s.Mean)
	if d == 0 || n%d != 0 {
		panic(fmt.Sprintf("norm: %d values are not rows of dimension %d", n, d))
	}
}

// Outside returns how far one row x lies beyond the range the statistics were taken over: the
// largest distance of a value below Min or above Max, in units of that dimension's Std (+ Eps),
// and its dimension; 0 and -1 when every value lies within. It is a check of an input against
// the data a model saw (an out-of-distribution signal), not a normalization. len(x) must be
// Dim(); it allocates nothing. A NaN value is infinitely far outside.
func (s *Stats) Outside(x []float64) (sd float64, dim int) {
	if len(x) != s.Dim() {
		panic(fmt.Sprintf("norm: %d values for a row of dimension %d", len(x), s.Dim()))
	}
	dim = -1
	for i, v := range x {
		d := max(s.Min[i]-v, v-s.Max[i]) / (s.Std[i] + Eps)
		if math.IsNaN(v) {
			d = math.Inf(1)
		}
		if d > sd {
			sd, dim = d, i
		}
	}
	return sd, dim
}

// Normalize maps x in place from data space to normalized space. len(x) must be a multiple of
// Dim(): one row, or a row-major block such as an H x D action chunk. It allocates nothing.
func (s *Stats) Normalize(x []float64, m Mode) { normalize(s, x, m) }

// Unnormalize is the inverse of Normalize.
func (s *Stats) Unnormalize(x []float64, m Mode) { unnormalize(s, x, m) }

// Normalize32 is Normalize for float32 values; the arithmetic is done in float64.
func (s *Stats) Normalize32(x []float32, m Mode) { normalize(s, x, m) }

// Unnormalize32 is the inverse of Normalize32.
func (s *Stats) Unnormalize32(x []float32, m Mode) { unnormalize(s, x, m) }

// normalize is Normalize and Normalize32: each value is converted to float64, mapped and
// rounded back (both conversions are no-ops for float64).
func normalize[T float32 | float64](s *Stats, x []T, m Mode) {
	s.mustRows(len(x))
	d := len(s.Mean)
	switch m {
	case MeanStd:
		for o := 0; o < len(x); o += d {
			r := x[o : o+d]
			for j := range r {
				r[j] = T((float64(r[j]) - s.Mean[j]) / (s.Std[j] + Eps))
			}
		}
	case Quantile:
		for o := 0; o < len(x); o += d {
			r := x[o : o+d]
			for j := range r {
				r[j] = T(2*(float64(r[j])-s.Q01[j])/(s.Q99[j]-s.Q01[j]+Eps) - 1)
			}
		}
	default:
		panic(fmt.Sprintf("norm: unknown mode %d", uint8(m)))
	}
}

// unnormalize is Unnormalize and Unnormalize32, in float64 as normalize is.
func unnormalize[T float32 | float64](s *Stats, x []T, m Mode) {
	s.mustRows(len(x))
	d := len(s.Mean)
	switch m {
	case MeanStd:
		for o := 0; o < len(x); o += d {
			r := x[o : o+d]
			for j := range r {
				r[j] = T(float64(r[j])*(s.Std[j]+Eps) + s.Mean[j])
			}
		}
	case Quantile:
		for o := 0; o < len(x); o += d {
			r := x[o : o+d]
			for j := range r {
				r[j] = T((float64(r[j])+1)/2*(s.Q99[j]-s.Q01[j]+Eps) + s.Q01[j])
			}
		}
	default:
		panic(fmt.Sprintf("norm: unknown mode %d", uint8(m)))
	}
}
