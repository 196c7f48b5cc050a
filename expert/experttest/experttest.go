package experttest

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/flowact/flowact/expert"
	"github.com/flowact/flowact/expert/path"
)

// ErrDist is wrapped by Validate errors.
var ErrDist = errors.New("experttest: bad distribution")

// Gaussian is N(Mean, diag(Std^2)). A nil Mean means zero; a nil Std means ones.
type Gaussian struct {
	Mean, Std []float64
}

func (g Gaussian) mean(i int) float64 {
	if g.Mean == nil {
		return 0
	}
	return g.Mean[i]
}

func (g Gaussian) std(i int) float64 {
	if g.Std == nil {
		return 1
	}
	return g.Std[i]
}

func (g Gaussian) validate(n int) error {
	if g.Mean != nil && len(g.Mean) != n || g.Std != nil && len(g.Std) != n {
		return fmt.Errorf("%w: gaussian mean %d / std %d values, want %d", ErrDist, len(g.Mean), len(g.Std), n)
	}
	for i := range n {
		if m, s := g.mean(i), g.std(i); math.IsNaN(m) || math.IsInf(m, 0) || !(s > 0) || math.IsInf(s, 0) {
			return fmt.Errorf("%w: gaussian dim %d mean %v std %v", ErrDist, i, m, s)
		}
	}
	return nil
}

// Mixture is sum_k Weights[k] N(Components[k]) with diagonal covariances. Weights need not sum to
// one (they are normalized); a nil Weights means equal weights. All components have dimension N.
type Mixture struct {
	N          int
	Weights    []float64
	Components []Gaussian
}

// Validate reports mismatched sizes, non-positive weights or standard deviations.
func (m *Mixture) Validate() error {
	if m.N <= 0 || len(m.Components) == 0 {
		return fmt.Errorf("%w: mixture of %d components in %d dimensions", ErrDist, len(m.Components), m.N)
	}
	if m.Weights != nil && len(m.Weights) != len(m.Components) {
		return fmt.Errorf("%w: %d weights for %d components", ErrDist, len(m.Weights), len(m.Components))
	}
	for k, c := range m.Components {
		if err := c.validate(m.N); err != nil {
			return fmt.Errorf("component %d: %w", k, err)
		}
		if w := m.weight(k); !(w > 0) || math.IsInf(w, 0) {
			return fmt.Errorf("%w: component %d weight %v", ErrDist, k, w)
		}
	}
	return nil
}

func (m *Mixture) weight(k int) float64 {
	if m.Weights == nil {
		return 1
	}
	return m.Weights[k]
}

// Weight returns component k's normalized weight.
func (m *Mixture) Weight(k int) float64 {
	tot := 0.0
	for j := range m.Components {
		tot += m.weight(j)
	}
	return m.weight(k) / tot
}

// logNormal is log N(x; mean, diag(var)) for one component given its mean and variance functions.
func logNormal(x []float32, mean, variance func(i int) float64) float64 {
	lp := 0.0
	for i, xi := range x {
		v := variance(i)
		d := float64(xi) - mean(i)
		lp -= 0.5 * (d*d/v + math.Log(2*math.Pi*v))
	}
	return lp
}

// logSumExp returns log sum exp(l) and overwrites l with the normalized probabilities.
func logSumExp(l []float64) float64 {
	mx := math.Inf(-1)
	for _, v := range l {
		mx = math.Max(mx, v)
	}
	s := 0.0
	for i, v := range l {
		l[i] = math.Exp(v - mx)
		s += l[i]
	}
	for i := range l {
		l[i] /= s
	}
	return mx + math.Log(s)
}

// LogProb returns the exact log density of m at x. It allocates a slice of len(Components).
func (m *Mixture) LogProb(x []float32) float64 {
	l := make([]float64, len(m.Components))
	return m.logProbTo(l, x)
}

func (m *Mixture) logProbTo(l []float64, x []float32) float64 {
	if len(x) != m.N {
		panic(fmt.Sprintf("experttest: point of %d values for a %d-dimensional mixture", len(x), m.N))
	}
	for k, c := range m.Components {
		l[k] = math.Log(m.Weight(k)) + logNormal(x, c.mean, func(i int) float64 { s := c.std(i); return s * s })
	}
	return logSumExp(l)
}

// Posterior writes P(k | x) to dst (length len(Components)) and returns the most probable k.
func (m *Mixture) Posterior(dst []float64, x []float32) int {
	m.logProbTo(dst, x)
	best := 0
	for k, p := range dst {
		if p > dst[best] {
			best = k
		}
	}
	return best
}

// Sample draws x from m into dst and returns the component it came from.
func (m *Mixture) Sample(dst []float32, r *rand.Rand) int {
	u := r.Float64()
	k := len(m.Components) - 1
	for j := range m.Components {
		u -= m.Weight(j)
		if u < 0 {
			k = j
			break
		}
	}
	c := m.Components[k]
	for i := range dst {
		dst[i] = float32(c.mean(i) + c.std(i)*r.NormFloat64())
	}
	return k
}

// Moments returns the mixture's mean (length N) and covariance (N x N, row-major).
func (m *Mixture) Moments() (mean, cov []float64) {
	n := m.N
	mean = make([]float64, n)
	cov = make([]float64, n*n)
	for k, c := range m.Components {
		w := m.Weight(k)
		for i := range n {
			mean[i] += w * c.mean(i)
		}
	}
	for k, c := range m.Components {
		w := m.Weight(k)
		for i := range n {
			s := c.std(i)
			cov[i*n+i] += w * s * s
			for j := range n {
				cov[i*n+j] += w * (c.mean(i) - mean[i]) * (c.mean(j) - mean[j])
			}
		}
	}
	return mean, cov
}

// Field is the exact marginal velocity field of an affine Gaussian path from a Gaussian source
// to a Gaussian-mixture target. Its Velocity allocates nothing; a Field is not safe for
// concurrent use (it keeps a workspace of posterior weights and per-component variances).
type Field struct {
	sched      path.Scheduler
	source     Gaussian
	target     Mixture
	n          int
	logw       []float64 // log of the normalized component weights
	mu, c      []float64 // K x n component means and variances
	m0, s0     []float64 // n source mean and variance
	post       []float64 // workspace: K posterior weights
	vr, center []float64 // workspace: K x n marginal variances and means at time tc
	logdet     []float64 // workspace: K sums of log variances at time tc
	tc         float64   // the time vr, center and logdet are for; NaN for none
}

var _ expert.Field = (*Field)(nil)

// NewField returns the exact field of scheduler s from source (zero value: standard normal) to
// target. target is copied shallowly: do not change it afterwards.
func NewField(s path.Scheduler, source Gaussian, target Mixture) (*Field, error) {
	if s == nil {
		return nil, fmt.Errorf("%w: nil scheduler", ErrDist)
	}
	if err := target.Validate(); err != nil {
		return nil, err
	}
	if err := source.validate(target.N); err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	n, k := target.N, len(target.Components)
	f := &Field{sched: s, source: source, target: target, n: n,
		logw: make([]float64, k), mu: make([]float64, k*n), c: make([]float64, k*n),
		m0: make([]float64, n), s0: make([]float64, n),
		post: make([]float64, k), vr: make([]float64, k*n), center: make([]float64, k*n),
		logdet: make([]float64, k), tc: math.NaN()}
	for j, g := range target.Components {
		f.logw[j] = math.Log(target.Weight(j))
		for i := range n {
			f.mu[j*n+i] = g.mean(i)
			f.c[j*n+i] = g.std(i) * g.std(i)
		}
	}
	for i := range n {
		f.m0[i] = source.mean(i)
		f.s0[i] = source.std(i) * source.std(i)
	}
	return f, nil
}

// Dim implements expert.Field.
func (f *Field) Dim() int { return f.n }

// Marginal returns p_t, the distribution of x_t, as a mixture.
func (f *Field) Marginal(t float64) Mixture {
	f.prepare(t)
	m := Mixture{N: f.n, Weights: f.target.Weights, Components: make([]Gaussian, len(f.target.Components))}
	for k := range m.Components {
		mean, std := make([]float64, m.N), make([]float64, m.N)
		for i := range m.N {
			mean[i], std[i] = f.center[k*f.n+i], math.Sqrt(f.vr[k*f.n+i])
		}
		m.Components[k] = Gaussian{Mean: mean, Std: std}
	}
	return m
}

// prepare fills the per-component marginal means and variances at time t, unless they are
// already there (solvers and finite differences evaluate many points at one time).
func (f *Field) prepare(t float64) {
	if t == f.tc {
		return
	}
	c := f.sched.At(t)
	a2, s2 := c.Alpha*c.Alpha, c.Sigma*c.Sigma
	for k := range f.post {
		ld := 0.0
		for i := range f.n {
			j := k*f.n + i
			f.center[j] = c.Alpha*f.mu[j] + c.Sigma*f.m0[i]
			f.vr[j] = a2*f.c[j] + s2*f.s0[i]
			ld += math.Log(f.vr[j])
		}
		f.logdet[k] = ld
	}
	f.tc = t
}

// posterior fills f.post with P(k | x_t = x), after prepare, and returns log p_t(x).
func (f *Field) posterior(x []float32) float64 {
	if len(x) != f.n {
		panic(fmt.Sprintf("experttest: x of %d values for a field of dimension %d", len(x), f.n))
	}
	for k := range f.post {
		q := 0.0
		vr, ctr := f.vr[k*f.n:(k+1)*f.n], f.center[k*f.n:(k+1)*f.n]
		for i, xi := range x {
			d := float64(xi) - ctr[i]
			q += d * d / vr[i]
		}
		f.post[k] = f.logw[k] - 0.5*(q+f.logdet[k]+float64(f.n)*math.Log(2*math.Pi))
	}
	return logSumExp(f.post)
}

// Velocity implements expert.Field: the exact marginal velocity at (x, t).
func (f *Field) Velocity(dst, x []float32, t float64) {
	if len(dst) != len(x) {
		panic(fmt.Sprintf("experttest: Velocity dst %d x %d", len(dst), len(x)))
	}
	c := f.sched.At(t)
	ss := path.SigmaDSigma(f.sched, t) // finite even where sigma' is not
	aa := c.Alpha * c.DAlpha
	f.prepare(t)
	f.posterior(x)
	for i, xi := range x {
		v := 0.0 // accumulated in float64 over the components
		for k, w := range f.post {
			if w == 0 {
				continue
			}
			j := k*f.n + i
			vk := c.DAlpha * f.mu[j]
			if f.m0[i] != 0 { // sigma' m0; skipped when m0 = 0 so that sigma' = -Inf cannot give NaN
				vk += c.DSigma * f.m0[i]
			}
			vk += (aa*f.c[j] + ss*f.s0[i]) / f.vr[j] * (float64(xi) - f.center[j])
			v += w * vk
		}
		dst[i] = float32(v)
	}
}

// ScoreTo writes the exact score grad log p_t(x) to dst.
func (f *Field) ScoreTo(dst, x []float32, t float64) {
	f.prepare(t)
	f.posterior(x)
	for i, xi := range x {
		s := 0.0
		for k, w := range f.post {
			j := k*f.n + i
			s -= w * (float64(xi) - f.center[j]) / f.vr[j]
		}
		dst[i] = float32(s)
	}
}

// LogProb returns the exact log p_t(x) of the marginal at time t (p_1 is the target when the
// scheduler ends at sigma_1 = 0). It allocates nothing.
func (f *Field) LogProb(x []float32, t float64) float64 {
	f.prepare(t)
	return f.posterior(x)
}
