package path_test

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"

	"gonum.org/v1/gonum/stat/distuv"

	"github.com/flowact/flowact/expert/experttest"
	"github.com/flowact/flowact/expert/path"
)

// schedulers is every scheduler of the package, with a name, for table tests.
func schedulers() []struct {
	name string
	s    path.Scheduler
} {
	return []struct {
		name string
		s    path.Scheduler
	}{
		{"CondOT", path.CondOT{}},
		{"Polynomial2", path.Polynomial{N: 2}},
		{"Polynomial0.5", path.Polynomial{N: 0.5}},
		{"Cosine", path.Cosine{}},
		{"LinearVP", path.LinearVP{}},
		{"VP", path.VP{}},
		{"VPbeta0", path.VP{BetaMin: 0, BetaMax: 8}},
		{"VE", path.VE{}},
	}
}

func TestBoundaries(t *testing.T) {
	vpA0 := math.Exp(-(0.1 + 0.5*(20-0.1)) / 2) // T(1) = bmin + (bmax-bmin)/2 for Song's defaults
	tests := []struct {
		s                              path.Scheduler
		alpha0, sigma0, alpha1, sigma1 float64
	}{
		{path.CondOT{}, 0, 1, 1, 0},
		{path.Polynomial{N: 2}, 0, 1, 1, 0},
		{path.Polynomial{}, 0, 1, 1, 0},
		{path.Cosine{}, 0, 1, 1, 0},
		{path.LinearVP{}, 0, 1, 1, 0},
		{path.VP{}, vpA0, math.Sqrt(1 - vpA0*vpA0), 1, 0},
		{path.VP{BetaMin: 0, BetaMax: 8}, math.Exp(-2), math.Sqrt(1 - math.Exp(-4)), 1, 0},
		{path.VE{}, 1, 50, 1, 0.01},
		{path.VE{SigmaMin: 0.1, SigmaMax: 80}, 1, 80, 1, 0.1},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%T%v", tc.s, tc.s), func(t *testing.T) {
			c0, c1 := tc.s.At(0), tc.s.At(1)
			for _, x := range []struct {
				name      string
				got, want float64
			}{{"alpha_0", c0.Alpha, tc.alpha0}, {"sigma_0", c0.Sigma, tc.sigma0},
				{"alpha_1", c1.Alpha, tc.alpha1}, {"sigma_1", c1.Sigma, tc.sigma1}} {
				if math.Abs(x.got-x.want) > 1e-12*math.Max(1, math.Abs(x.want)) {
					t.Errorf("%s = %.17g, want %.17g", x.name, x.got, x.want)
				}
			}
		})
	}
}

// TestDerivatives checks alpha' and sigma' against finite differences: central inside (0, 1), one
// sided (second order) at the ends where the derivative is finite.
func TestDerivatives(t *testing.T) {
	const h = 1e-6 // central difference error ~ h^2 f''' + 1e-16/h ~ 1e-10 relative
	for _, tc := range schedulers() {
		t.Run(tc.name, func(t *testing.T) {
			check := func(tm float64, got float64, f func(float64) float64, what string) {
				var fd float64
				switch {
				case tm-h < 0:
					fd = (-3*f(tm) + 4*f(tm+h) - f(tm+2*h)) / (2 * h)
				case tm+h > 1:
					fd = (3*f(tm) - 4*f(tm-h) + f(tm-2*h)) / (2 * h)
				default:
					fd = (f(tm+h) - f(tm-h)) / (2 * h)
				}
				if math.Abs(got-fd) > 1e-5*math.Max(1, math.Abs(fd)) {
					t.Errorf("t=%v %s = %.10g, finite difference %.10g", tm, what, got, fd)
				}
			}
			alpha := func(x float64) float64 { return tc.s.At(x).Alpha }
			sigma := func(x float64) float64 { return tc.s.At(x).Sigma }
			for _, tm := range []float64{0, 0.01, 0.2, 0.5, 0.77, 0.99, 1} {
				c := tc.s.At(tm)
				if !math.IsInf(c.DAlpha, 0) {
					check(tm, c.DAlpha, alpha, "alpha'")
				} else if tm != 0 {
					t.Errorf("t=%v alpha' = %v", tm, c.DAlpha)
				}
				if !math.IsInf(c.DSigma, 0) {
					check(tm, c.DSigma, sigma, "sigma'")
				} else if tm != 1 && tm != 0 {
					t.Errorf("t=%v sigma' = %v", tm, c.DSigma)
				}
				// sigma sigma' = (sigma^2)'/2 is finite wherever alpha' is (at t = 1 even for VP) and
				// matches its own finite difference.
				half := func(x float64) float64 { s := sigma(x); return s * s / 2 }
				if ss := path.SigmaDSigma(tc.s, tm); !math.IsInf(ss, 0) {
					check(tm, ss, half, "sigma sigma'")
				} else if !math.IsInf(c.DAlpha, 0) {
					t.Errorf("t=%v sigma sigma' = %v", tm, ss)
				}
				if tm > 0 && tm < 1 {
					if got := path.SigmaDSigma(tc.s, tm); math.Abs(got-c.Sigma*c.DSigma) > 1e-12 {
						t.Errorf("t=%v SigmaDSigma %v, sigma*sigma' %v", tm, got, c.Sigma*c.DSigma)
					}
				}
				if tm > 0 && (c.DAlpha < 0 || c.DSigma > 0) {
					t.Errorf("t=%v: alpha' %v sigma' %v: want alpha increasing, sigma decreasing", tm, c.DAlpha, c.DSigma)
				}
			}
		})
	}
}

// hidden hides a scheduler's closed-form InverseSNR so that InverseSNR bisects.
type hidden struct{ s path.Scheduler }

func (h hidden) At(t float64) path.Coeffs { return h.s.At(t) }

func TestInverseSNR(t *testing.T) {
	for _, tc := range schedulers() {
		t.Run(tc.name, func(t *testing.T) {
			for _, tm := range []float64{0, 0.001, 0.1, 0.5, 0.9, 0.999, 1} {
				snr := path.SNR(tc.s, tm)
				closed, bisect := path.InverseSNR(tc.s, snr), path.InverseSNR(hidden{tc.s}, snr)
				if math.Abs(closed-tm) > 1e-9 || math.Abs(bisect-tm) > 1e-9 {
					t.Errorf("t=%v snr %v: closed form %v, bisection %v", tm, snr, closed, bisect)
				}
			}
			// Out of range clamps to the ends.
			if got := path.InverseSNR(tc.s, 0); got != 0 {
				t.Errorf("InverseSNR(0) = %v", got)
			}
			if got := path.InverseSNR(tc.s, math.Inf(1)); got != 1 {
				t.Errorf("InverseSNR(Inf) = %v", got)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		v  interface{ Validate() error }
		ok bool
	}{
		{path.Polynomial{}, true}, {path.Polynomial{N: 3}, true}, {path.Polynomial{N: -1}, false},
		{path.Polynomial{N: math.NaN()}, false},
		{path.VP{}, true}, {path.VP{BetaMin: 1, BetaMax: 0.5}, false}, {path.VP{BetaMin: -1, BetaMax: 2}, false},
		{path.VE{}, true}, {path.VE{SigmaMin: 2, SigmaMax: 1}, false}, {path.VE{SigmaMin: -1}, false},
		{path.LogitNormal{}, true}, {path.LogitNormal{S: -1}, false}, {path.LogitNormal{M: math.Inf(1)}, false},
		{path.Beta{}, true}, {path.Pi0Beta(), true}, {path.Beta{A: -1}, false}, {path.Beta{S: 1.5}, false},
	}
	for _, tc := range tests {
		if err := tc.v.Validate(); (err == nil) != tc.ok {
			t.Errorf("%#v.Validate() = %v, want ok=%v", tc.v, err, tc.ok)
		}
	}
}

// TestValidateTraining: Polynomial{N < 1} with a small-A Beta passes both Validates, yet the
// Beta draws t = 0 exactly (underflow) about 5.8e-4 of the time, where the velocity target is
// infinite and Affine.Sample panics; ValidateTraining refuses the pair (and Polynomial{N < 1} with
// any distribution here), and accepts every other scheduler with every distribution.
func TestValidateTraining(t *testing.T) {
	poly, beta := path.Polynomial{N: 0.5}, path.Beta{A: 0.01}
	if poly.Validate() != nil || beta.Validate() != nil {
		t.Fatal("the parts are valid on their own")
	}
	r := rand.New(rand.NewPCG(3, 4))
	const n = 20000
	zeros := 0
	for range n {
		if beta.Sample(r) == 0 {
			zeros++
		}
	}
	if zeros == 0 || zeros > n/100 {
		t.Fatalf("Beta{A: 0.01} drew t = 0 %d times in %d, want about 5.8e-4 of them", zeros, n)
	}
	x := []float32{0.3}
	if !panics(func() { path.Affine{Scheduler: poly}.Sample(make([]float32, 1), make([]float32, 1), x, x, 0) }) {
		t.Fatal("Affine.Sample at t = 0 with Polynomial{0.5} should panic (the case being refused)")
	}
	t.Logf("Beta{A: 0.01}: %d of %d draws at t = 0", zeros, n)

	dists := []path.TimeDist{path.Uniform{}, path.LogitNormal{}, path.Beta{A: 0.01}, path.Pi0Beta()}
	for _, sc := range schedulers() {
		for _, d := range dists {
			err := path.ValidateTraining(sc.s, d)
			p, isPoly := sc.s.(path.Polynomial)
			if refuse := isPoly && p.N < 1; (err != nil) != refuse || (err != nil && !errors.Is(err, path.ErrConfig)) {
				t.Errorf("%s with %#v: %v, want refused %v", sc.name, d, err, refuse)
			}
		}
	}
	for _, bad := range []struct {
		s path.Scheduler
		d path.TimeDist
	}{{path.Polynomial{N: -1}, path.Uniform{}}, {path.CondOT{}, path.Beta{A: -1}}, {path.VP{BetaMin: 2, BetaMax: 1}, path.Uniform{}}} {
		if err := path.ValidateTraining(bad.s, bad.d); !errors.Is(err, path.ErrConfig) {
			t.Errorf("%#v with %#v: %v, want ErrConfig", bad.s, bad.d, err)
		}
	}
}

func panics(f func()) (p bool) {
	defer func() { p = recover() != nil }()
	f()
	return false
}

func TestCondOTTarget(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const n = 64
	x0, x1, xt, u := make([]float32, n), make([]float32, n), make([]float32, n), make([]float32, n)
	for _, tm := range []float64{0, 0.25, 0.5, 0.999} {
		for i := range n {
			x0[i], x1[i] = float32(r.NormFloat64()), float32(3*r.NormFloat64())
		}
		path.Affine{}.Sample(xt, u, x0, x1, tm)
		for i := range n {
			if u[i] != x1[i]-x0[i] {
				t.Fatalf("t=%v: target[%d] = %v, want x1 - x0 = %v", tm, i, u[i], x1[i]-x0[i])
			}
			if want := float32(tm*float64(x1[i]) + (1-tm)*float64(x0[i])); xt[i] != want {
				t.Fatalf("t=%v: x_t[%d] = %v, want %v", tm, i, xt[i], want)
			}
		}
	}
}

// TestPathMoments draws x_t for data x1 ~ N(mu, c^2) and checks mean alpha mu and variance
// alpha^2 c^2 + sigma^2 within 5 standard errors (a false alarm has probability ~1e-6 per check).
func TestPathMoments(t *testing.T) {
	const n = 20000
	mu, c := 1.5, 0.5
	for _, tc := range schedulers() {
		for _, tm := range []float64{0.1, 0.6} {
			r := rand.New(rand.NewPCG(3, 4))
			x0, x1, xt, u := make([]float32, n), make([]float32, n), make([]float32, n), make([]float32, n)
			for i := range n {
				x0[i], x1[i] = float32(r.NormFloat64()), float32(mu+c*r.NormFloat64())
			}
			path.Affine{Scheduler: tc.s}.Sample(xt, u, x0, x1, tm)
			co := tc.s.At(tm)
			wantM, wantV := co.Alpha*mu, co.Alpha*co.Alpha*c*c+co.Sigma*co.Sigma
			m, v := meanVar(xt)
			if se := math.Sqrt(wantV / n); math.Abs(m-wantM) > 5*se {
				t.Errorf("%s t=%v: mean %v, want %v +- %v", tc.name, tm, m, wantM, 5*se)
			}
			if se := wantV * math.Sqrt(2.0/n); math.Abs(v-wantV) > 5*se {
				t.Errorf("%s t=%v: variance %v, want %v +- %v", tc.name, tm, v, wantV, 5*se)
			}
			// The target's mean is alpha' mu (E[x0] = 0).
			um, uv := meanVar(u)
			wantUV := co.DAlpha*co.DAlpha*c*c + co.DSigma*co.DSigma
			if se := math.Sqrt(wantUV / n); math.Abs(um-co.DAlpha*mu) > 5*se {
				t.Errorf("%s t=%v: target mean %v, want %v", tc.name, tm, um, co.DAlpha*mu)
			}
			if se := wantUV * math.Sqrt(2.0/n); math.Abs(uv-wantUV) > 5*se {
				t.Errorf("%s t=%v: target variance %v, want %v", tc.name, tm, uv, wantUV)
			}
		}
	}
}

func meanVar(x []float32) (m, v float64) {
	for _, xi := range x {
		m += float64(xi)
	}
	m /= float64(len(x))
	for _, xi := range x {
		d := float64(xi) - m
		v += d * d
	}
	return m, v / float64(len(x)-1)
}

// mixture2 is the 2-D, three-mode target used across the tests.
func mixture2() experttest.Mixture {
	return experttest.Mixture{N: 2, Weights: []float64{0.5, 0.3, 0.2}, Components: []experttest.Gaussian{
		{Mean: []float64{-2, 0}, Std: []float64{0.3, 0.5}},
		{Mean: []float64{2, 1}, Std: []float64{0.4, 0.2}},
		{Mean: []float64{0, -2.5}, Std: []float64{0.25, 0.25}},
	}}
}

// TestConvert checks the conversions against the exact field of a Gaussian mixture: the velocity
// converted to a score equals the closed-form score, converted to noise and back to velocity is the
// identity, and every pair of conversions composes.
func TestConvert(t *testing.T) {
	params := []path.Param{path.Velocity, path.Data, path.Noise, path.Score}
	for _, tc := range schedulers() {
		f, err := experttest.NewField(tc.s, experttest.Gaussian{}, mixture2())
		if err != nil {
			t.Fatal(err)
		}
		x, v, score, got := []float32{0.7, -0.4}, make([]float32, 2), make([]float32, 2), make([]float32, 2)
		for _, tm := range []float64{0.05, 0.4, 0.9} {
			c := tc.s.At(tm)
			f.Velocity(v, x, tm)
			f.ScoreTo(score, x, tm)
			path.ConvertTo(got, x, v, c, path.Velocity, path.Score)
			for i := range got {
				if math.Abs(float64(got[i]-score[i])) > 1e-4*math.Max(1, math.Abs(float64(score[i]))) {
					t.Errorf("%s t=%v: score from velocity %v, exact %v", tc.name, tm, got, score)
				}
			}
			for _, a := range params {
				for _, b := range params {
					p1, q1 := path.Convert(c, a, b)
					p2, q2 := path.Convert(c, b, a)
					// a -> b -> a: p2 + q2 p1 = 0 and q2 q1 = 1.
					if math.Abs(p2+q2*p1) > 1e-9*math.Max(1, math.Abs(p2)) || math.Abs(q2*q1-1) > 1e-9 {
						t.Errorf("%s t=%v: %v->%v->%v is (%v, %v)", tc.name, tm, a, b, a, p2+q2*p1, q2*q1)
					}
				}
			}
		}
	}
}

func TestX1HatCondOT(t *testing.T) {
	x, v, dst := []float32{1, 2}, []float32{0.5, -1}, make([]float32, 2)
	path.X1HatTo(dst, x, v, path.CondOT{}, 0.25)
	if want := []float32{1 + 0.75*0.5, 2 - 0.75}; !slices.Equal(dst, want) {
		t.Errorf("x1_hat %v, want x + (1-t) v = %v", dst, want)
	}
	path.X1HatTo(dst, x, v, path.VP{}, 1)
	if !slices.Equal(dst, x) {
		t.Errorf("x1_hat at t = 1 is %v, want x", dst)
	}
}

// TestReschedule checks the scheduler change pointwise: the exact field of one scheduler,
// rescheduled to another, equals the exact field of the other.
func TestReschedule(t *testing.T) {
	pairs := []struct{ from, to path.Scheduler }{
		{path.CondOT{}, path.Cosine{}},
		{path.Cosine{}, path.CondOT{}},
		{path.CondOT{}, path.Polynomial{N: 2}},
		{path.LinearVP{}, path.CondOT{}},
		{path.CondOT{}, path.LinearVP{}},
	}
	x, got, want := []float32{0.3, -1.1}, make([]float32, 2), make([]float32, 2)
	for _, p := range pairs {
		src, _ := experttest.NewField(p.from, experttest.Gaussian{}, mixture2())
		ref, _ := experttest.NewField(p.to, experttest.Gaussian{}, mixture2())
		rf := path.Reschedule(src, p.from, p.to)
		for _, tm := range []float64{0, 0.1, 0.5, 0.8, 0.97} {
			rf.Velocity(got, x, tm)
			ref.Velocity(want, x, tm)
			for i := range got {
				if math.Abs(float64(got[i]-want[i])) > 2e-4*math.Max(1, math.Abs(float64(want[i]))) {
					t.Errorf("%T -> %T t=%v: rescheduled %v, exact %v", p.from, p.to, tm, got, want)
					break
				}
			}
		}
	}
}

// ksStat is the Kolmogorov-Smirnov distance between the empirical CDF of xs and cdf.
func ksStat(xs []float64, cdf func(float64) float64) float64 {
	sort.Float64s(xs)
	d, n := 0.0, float64(len(xs))
	for i, x := range xs {
		c := cdf(x)
		d = math.Max(d, math.Max(math.Abs(float64(i+1)/n-c), math.Abs(c-float64(i)/n)))
	}
	return d
}

// TestTimeDists draws 20000 times from each distribution and compares the empirical CDF with the
// exact one (gonum's distuv where it has it). The KS critical value at p = 0.001 is 1.95/sqrt(n).
func TestTimeDists(t *testing.T) {
	const n = 20000
	crit := 1.95 / math.Sqrt(n)
	logit := func(x float64) float64 { return math.Log(x / (1 - x)) }
	tests := []struct {
		name string
		d    path.TimeDist
		cdf  func(float64) float64
	}{
		{"uniform", path.Uniform{}, func(x float64) float64 { return x }},
		{"logitnormal", path.LogitNormal{}, func(x float64) float64 { return distuv.UnitNormal.CDF(logit(x)) }},
		{"logitnormal(-0.5,1.5)", path.LogitNormal{M: -0.5, S: 1.5},
			func(x float64) float64 { return distuv.Normal{Mu: -0.5, Sigma: 1.5}.CDF(logit(x)) }},
		{"beta(2,5)", path.Beta{A: 2, B: 5}, distuv.Beta{Alpha: 2, Beta: 5}.CDF},
		{"beta(0.5,0.7)", path.Beta{A: 0.5, B: 0.7}, distuv.Beta{Alpha: 0.5, Beta: 0.7}.CDF},
		{"pi0", path.Pi0Beta(), func(x float64) float64 { return distuv.Beta{Alpha: 1, Beta: 1.5}.CDF(math.Min(x/0.999, 1)) }},
	}
	for _, tc := range tests {
		r := rand.New(rand.NewPCG(5, 6))
		xs := make([]float64, n)
		for i := range xs {
			xs[i] = tc.d.Sample(r)
			if !(xs[i] >= 0 && xs[i] < 1) {
				t.Fatalf("%s: sample %v outside [0, 1)", tc.name, xs[i])
			}
		}
		if d := ksStat(xs, tc.cdf); d > crit {
			t.Errorf("%s: KS distance %.4f > %.4f", tc.name, d, crit)
		}
	}
}

// TestPi0Axis checks the pi0 conversion against pi0's own recipe, drawn with gonum: on pi0's axis
// tau = 0.999 Beta(1.5, 1) + 0.001 with tau = 1 noise, so our t = 1 - tau must have the same law as
// Pi0Beta. A two-sample KS test at p = 0.001 (critical value 1.95 sqrt(2/n)).
func TestPi0Axis(t *testing.T) {
	const n = 20000
	r := rand.New(rand.NewPCG(7, 8))
	peer := distuv.Beta{Alpha: 1.5, Beta: 1, Src: rand.NewPCG(9, 10)}
	ours, theirs := make([]float64, n), make([]float64, n)
	for i := range n {
		ours[i] = path.Pi0Beta().Sample(r)
		theirs[i] = 1 - (peer.Rand()*0.999 + 0.001)
	}
	sort.Float64s(ours)
	sort.Float64s(theirs)
	d, i, j := 0.0, 0, 0
	for i < n && j < n {
		if ours[i] <= theirs[j] {
			i++
		} else {
			j++
		}
		d = math.Max(d, math.Abs(float64(i-j))/n)
	}
	if crit := 1.95 * math.Sqrt(2.0/n); d > crit {
		t.Errorf("two-sample KS distance %.4f > %.4f", d, crit)
	}
	if ours[n-1] > 0.999 {
		t.Errorf("max t %v above the 0.999 cutoff", ours[n-1])
	}
	// The weight is at the noise end: more than half the mass below the midpoint of [0, 0.999].
	if med := ours[n/2]; med >= 0.5 {
		t.Errorf("median t %v: want the weight toward t = 0 (noise)", med)
	}
}

func TestZeroAllocs(t *testing.T) {
	const n = 700 // a 50 x 14 chunk
	x0, x1, xt, u := make([]float32, n), make([]float32, n), make([]float32, n), make([]float32, n)
	for _, tc := range schedulers() {
		p := path.Affine{Scheduler: tc.s}
		if a := testing.AllocsPerRun(10, func() { p.Sample(xt, u, x0, x1, 0.3) }); a != 0 {
			t.Errorf("%s: Affine.Sample allocates %v", tc.name, a)
		}
		if a := testing.AllocsPerRun(10, func() { path.ConvertTo(u, xt, u, tc.s.At(0.3), path.Velocity, path.Data) }); a != 0 {
			t.Errorf("%s: ConvertTo allocates %v", tc.name, a)
		}
	}
	f, _ := experttest.NewField(path.CondOT{}, experttest.Gaussian{}, mixture2())
	rf := path.Reschedule(f, path.CondOT{}, path.Cosine{})
	x, v := []float32{1, 2}, make([]float32, 2)
	if a := testing.AllocsPerRun(10, func() { rf.Velocity(v, x, 0.4) }); a != 0 {
		t.Errorf("Rescheduled.Velocity allocates %v", a)
	}
	r := rand.New(rand.NewPCG(1, 1))
	for _, d := range []path.TimeDist{path.Uniform{}, path.LogitNormal{}, path.Pi0Beta()} {
		if a := testing.AllocsPerRun(10, func() { d.Sample(r) }); a != 0 {
			t.Errorf("%T.Sample allocates %v", d, a)
		}
	}
}

func BenchmarkAffineSample(b *testing.B) {
	const n = 700
	x0, x1, xt, u := make([]float32, n), make([]float32, n), make([]float32, n), make([]float32, n)
	for _, tc := range []struct {
		name string
		s    path.Scheduler
	}{{"CondOT", path.CondOT{}}, {"VP", path.VP{}}} {
		b.Run(tc.name, func(b *testing.B) {
			p := path.Affine{Scheduler: tc.s}
			b.ReportAllocs()
			for b.Loop() {
				p.Sample(xt, u, x0, x1, 0.3)
			}
		})
	}
}

func BenchmarkPi0Beta(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	d := path.Pi0Beta()
	b.ReportAllocs()
	for b.Loop() {
		d.Sample(r)
	}
}

// predictor turns an exact velocity field into a model that predicts kind p, for AsVelocity.
type predictor struct {
	f *experttest.Field
	s path.Scheduler
	p path.Param
}

func (q predictor) Dim() int { return q.f.Dim() }
func (q predictor) Velocity(dst, x []float32, t float64) {
	q.f.Velocity(dst, x, t)
	path.ConvertTo(dst, x, dst, q.s.At(t), path.Velocity, q.p)
}

// TestAsVelocity: a data, noise or score predictor wrapped by AsVelocity gives back the exact
// velocity inside (0, 1).
func TestAsVelocity(t *testing.T) {
	for _, s := range []path.Scheduler{path.CondOT{}, path.VP{}, path.Cosine{}} {
		f, _ := experttest.NewField(s, experttest.Gaussian{}, mixture2())
		for _, p := range []path.Param{path.Data, path.Noise, path.Score} {
			cv := path.AsVelocity(predictor{f, s, p}, s, p)
			x, got, want := []float32{0.4, -0.9}, make([]float32, 2), make([]float32, 2)
			for _, tm := range []float64{0.1, 0.5, 0.9} {
				cv.Velocity(got, x, tm)
				f.Velocity(want, x, tm)
				for i := range got {
					if math.Abs(float64(got[i]-want[i])) > 1e-4*math.Max(1, math.Abs(float64(want[i]))) {
						t.Errorf("%T %v t=%v: %v, want %v", s, p, tm, got, want)
						break
					}
				}
			}
			if a := testing.AllocsPerRun(10, func() { cv.Velocity(got, x, 0.3) }); a != 0 {
				t.Errorf("%T %v: %v allocations", s, p, a)
			}
		}
	}
}
