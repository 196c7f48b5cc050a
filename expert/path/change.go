package path

import (
	"fmt"

	"github.com/flowact/flowact/expert"
)

// Rescheduled is a Field trained along the path of one scheduler (From) presented as the marginal
// velocity field of the same data along another (To): the scheduler change of Lipman et al. (2024,
// sec. 4.8.3; Meta's flow_matching ScheduleTransformedModel). Both paths are reparameterizations
// of each other: x̄_r = rho_r x_{t_r}, where t_r has the same signal-to-noise ratio under From as r
// has under To and rho_r = sigmā_r/sigma_{t_r} = alphā_r/alpha_{t_r}. With x = x̄_r,
//
//	ū_r(x) = alphā_r' x1_hat + sigmā_r' x0_hat,
//
// where x1_hat and x0_hat are the From model's data and noise predictions at (x/rho_r, t_r)
// (Convert). This is the guide's formula written without dt_r/dr, which is singular at the ends.
// If both schedulers start at pure noise (alpha_0 = 0) and end at data (sigma_1 = 0), the two
// ODEs carry the same noise to the same sample.
//
// Where To's SNR lies outside From's range (VP and VE never reach SNR 0), t_r is clamped to [0, 1]
// and the change is approximate there. Velocity allocates nothing.
type Rescheduled struct {
	field    expert.Field
	from, to Scheduler
	y, v     []float32
}

var _ expert.Field = (*Rescheduled)(nil)

// Reschedule returns f, trained under from, as a field along to. It panics on nil arguments.
func Reschedule(f expert.Field, from, to Scheduler) *Rescheduled {
	if f == nil || from == nil || to == nil {
		panic("path: Reschedule with a nil field or scheduler")
	}
	n := f.Dim()
	return &Rescheduled{field: f, from: from, to: to, y: make([]float32, n), v: make([]float32, n)}
}

// Dim implements expert.Field.
func (r *Rescheduled) Dim() int { return r.field.Dim() }

// Time returns the From time t_r and scale rho_r that correspond to time t along To.
func (r *Rescheduled) Time(t float64) (tr, rho float64) {
	cb := r.to.At(t)
	tr = InverseSNR(r.from, SNR(r.to, t))
	c := r.from.At(tr)
	// Divide by the larger of the two coefficients: both ratios agree, and this one stays finite
	// at both ends (sigma = 0 at data, alpha = 0 at noise).
	if c.Sigma >= c.Alpha {
		return tr, cb.Sigma / c.Sigma
	}
	return tr, cb.Alpha / c.Alpha
}

// Velocity implements expert.Field.
func (r *Rescheduled) Velocity(dst, x []float32, t float64) {
	if len(dst) != len(r.y) || len(x) != len(r.y) {
		panic(fmt.Sprintf("path: Rescheduled.Velocity lengths dst %d x %d want %d", len(dst), len(x), len(r.y)))
	}
	tr, rho := r.Time(t)
	inv := 1 / rho
	for i, xi := range x {
		r.y[i] = float32(float64(xi) * inv)
	}
	r.field.Velocity(r.v, r.y, tr)
	c, cb := r.from.At(tr), r.to.At(t)
	p1, q1 := Convert(c, Velocity, Data)
	p0, q0 := Convert(c, Velocity, Noise)
	// ū = alphā' (p1 y + q1 v) + sigmā' (p0 y + q0 v), collected into one pair of coefficients.
	py := cb.DAlpha*p1 + cb.DSigma*p0
	pv := cb.DAlpha*q1 + cb.DSigma*q0
	if cb.DAlpha == 0 { // VE: alphā' = 0; skip the term so an infinite p1 cannot make 0*Inf
		py, pv = cb.DSigma*p0, cb.DSigma*q0
	}
	for i := range dst {
		dst[i] = float32(py*float64(r.y[i]) + pv*float64(r.v[i]))
	}
}
