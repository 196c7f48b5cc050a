package nn

import (
	"fmt"
	"math"

	"github.com/flowact/flowact/expert/ckpt"
)

// ReverseTime rewrites net's weights in place so that the rewritten network computes
//
//	v'(x, t) = -v(x, 1 - t)
//
// where v is what net computed before: the same velocity field with flow time running the other
// way. It turns a network trained in the t = 1 noise convention (openpi's pi0, LeRobot: tau = 1
// is noise, tau = 0 data) into one of flowact's (t = 0 noise) and back: applied twice it gives
// the original weights up to float32 rounding.
//
// Both architectures see flow time only through TimeFeatures followed by the linear layer
// time.fc1, and give the velocity from the linear layer out, so the conversion is two exact
// rewrites of weights rather than a wrapper around the network:
//
//   - the time input: the features of 1 - t are a fixed linear map of those of t (for each
//     period p, with θ = 2π/p and a = 2πt/p: sin(θ - a) = sin θ cos a - cos θ sin a and
//     cos(θ - a) = cos θ cos a + sin θ sin a), which is folded into time.fc1's weight matrix,
//     computed in float64 and rounded to float32 once;
//   - the output: out's weights and bias are negated (exact in floating point).
//
// The committed-prefix rows are not the network's (see the package documentation): they need no
// conversion. A network without those two layers is refused (ErrConvention wrapped): no other
// architecture is known to be convertible exactly. net is repacked.
func ReverseTime(net Net) error {
	var fc1, outW, outB *Param
	ps := net.Params()
	for i := range ps {
		switch ps[i].Name {
		case "time.fc1.w":
			fc1 = &ps[i]
		case "out.w":
			outW = &ps[i]
		case "out.b":
			outB = &ps[i]
		}
	}
	if fc1 == nil || outW == nil || outB == nil || len(fc1.Shape) != 2 || fc1.Shape[0]%2 != 0 {
		return fmt.Errorf("nn: %s: no time.fc1 over sinusoidal time features and out layer to rewrite: %w", net.Arch(), ckpt.ErrConvention)
	}
	features, width := fc1.Shape[0], fc1.Shape[1]
	half := features / 2
	w := fc1.Data
	for k := range half {
		// The period of feature k, exactly as TimeFeatures computes it.
		frac := 0.0
		if half > 1 {
			frac = float64(k) / float64(half-1)
		}
		period := minPeriod * math.Pow(maxPeriod/minPeriod, frac)
		sinT, cosT := math.Sincos(2 * math.Pi / period)
		rs, rc := w[k*width:(k+1)*width], w[(half+k)*width:(half+k+1)*width]
		for j := range width {
			s, c := float64(rs[j]), float64(rc[j])
			// feat(1-t)·W = sin_k(t)·(-cosθ W_s + sinθ W_c) + cos_k(t)·(sinθ W_s + cosθ W_c).
			rs[j] = float32(-cosT*s + sinT*c)
			rc[j] = float32(sinT*s + cosT*c)
		}
	}
	for i := range outW.Data {
		outW.Data[i] = -outW.Data[i]
	}
	for i := range outB.Data {
		outB.Data[i] = -outB.Data[i]
	}
	net.Repack()
	return nil
}
