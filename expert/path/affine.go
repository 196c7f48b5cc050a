package path

import (
	"fmt"
	"math"
)

// Param names what a model predicts at (x_t, t). Every one is a linear function of x_t and any
// other, with coefficients from the scheduler (see Convert).
type Param int

const (
	Velocity Param = iota // u_t(x) = alpha' E[x1|x_t] + sigma' E[x0|x_t], the flow-matching target
	Data                  // E[x1 | x_t], the denoiser or "x1 prediction"
	Noise                 // E[x0 | x_t], the epsilon prediction
	Score                 // grad log p_t(x_t) = -E[x0 | x_t] / sigma_t (Tweedie)
)

func (p Param) String() string {
	switch p {
	case Velocity:
		return "velocity"
	case Data:
		return "data"
	case Noise:
		return "noise"
	case Score:
		return "score"
	}
	return fmt.Sprintf("Param(%d)", int(p))
}

// basis writes parameterization p as ca x1 + ce x0 at coefficients c.
func (p Param) basis(c Coeffs) (ca, ce float64) {
	switch p {
	case Velocity:
		return c.DAlpha, c.DSigma
	case Data:
		return 1, 0
	case Noise:
		return 0, 1
	case Score:
		return 0, -1 / c.Sigma
	}
	panic(fmt.Sprintf("path: unknown parameterization %d", int(p)))
}

// Convert returns the coefficients p, q of the map from a prediction of kind from to a prediction
// of kind to at x_t with coefficients c: to = p x_t + q from. It solves
// x_t = alpha x1 + sigma x0 together with the `from` prediction for (x1, x0) and recombines them;
// the determinant is alpha*e - sigma*a where from = a x1 + e x0. It is +-Inf or NaN where that
// determinant vanishes or a coefficient is infinite: Score at sigma = 0, Velocity at the t = 1
// end of VP and LinearVP (sigma' = -Inf), Data from Velocity where alpha sigma' = sigma alpha'.
func Convert(c Coeffs, from, to Param) (p, q float64) {
	if from == to {
		return 0, 1
	}
	fa, fe := from.basis(c)
	ta, te := to.basis(c)
	det := c.Alpha*fe - c.Sigma*fa
	return (ta*fe - te*fa) / det, (te*c.Alpha - ta*c.Sigma) / det
}

// ConvertTo writes to dst the prediction of kind to that corresponds to pred, of kind from, at
// x (= x_t) with coefficients c. dst may alias x or pred. It allocates nothing and panics if the
// lengths differ.
func ConvertTo(dst, x, pred []float32, c Coeffs, from, to Param) {
	if len(x) != len(dst) || len(pred) != len(dst) {
		panic(fmt.Sprintf("path: ConvertTo lengths dst %d x %d pred %d", len(dst), len(x), len(pred)))
	}
	p, q := Convert(c, from, to)
	for i := range dst {
		dst[i] = float32(p*float64(x[i]) + q*float64(pred[i]))
	}
}

// X1HatTo writes the anytime estimate x1_hat = E[x1 | x_t] to dst from the state x = x_t and the
// velocity v at time t under s: for CondOT x1_hat = x + (1 - t) v. At t = 1 it is x itself (every
// scheduler here has alpha_1 = 1, except that VE ends at sigma_1 = SigmaMin). dst may alias x or v.
func X1HatTo(dst, x, v []float32, s Scheduler, t float64) {
	if t >= 1 {
		copy(dst, x)
		return
	}
	ConvertTo(dst, x, v, s.At(t), Velocity, Data)
}

// Affine is the affine Gaussian path x_t = alpha_t x1 + sigma_t x0 of a Scheduler, for sampling
// flow-matching training pairs. The zero value is the CondOT path with a velocity target.
type Affine struct {
	Scheduler Scheduler // nil means CondOT
	Target    Param     // what the model regresses; zero means Velocity
}

func (p Affine) scheduler() Scheduler {
	if p.Scheduler == nil {
		return CondOT{}
	}
	return p.Scheduler
}

// Sample writes x_t = alpha_t x1 + sigma_t x0 to xt and the conditional target at (x0, x1, t) to
// target: for Velocity the CFM target alpha_t' x1 + sigma_t' x0 (x1 - x0 for CondOT), for Data x1,
// for Noise x0, for Score the conditional score -x0/sigma_t. x0 is the noise sample, x1 the data.
// All slices have the same length; xt and target may not alias each other or the inputs. Sample
// allocates nothing and panics on mismatched lengths and on an infinite velocity target (a
// scheduler and time that ValidateTraining refuses).
func (p Affine) Sample(xt, target, x0, x1 []float32, t float64) {
	n := len(x1)
	if len(xt) != n || len(target) != n || len(x0) != n {
		panic(fmt.Sprintf("path: Affine.Sample lengths xt %d target %d x0 %d x1 %d", len(xt), len(target), len(x0), n))
	}
	c := p.scheduler().At(t)
	ta, te := p.Target.basis(c)
	if p.Target == Velocity && math.IsInf(te, 0) {
		// sigma' = -Inf only at an end where x0's weight vanishes; never reached by the time
		// distributions of this package, which stay inside [0, 1) at the data end, with a
		// scheduler that ValidateTraining accepts (it refuses Polynomial{N < 1}, infinite at t = 0).
		panic(fmt.Sprintf("path: velocity target undefined at t = %v (sigma' infinite)", t))
	}
	for i := range n {
		a, e := float64(x1[i]), float64(x0[i])
		xt[i] = float32(c.Alpha*a + c.Sigma*e)
		target[i] = float32(ta*a + te*e)
	}
}
