package path

import (
	"fmt"

	"github.com/flowact/flowact/expert"
)

// AsVelocity presents a model that predicts another parameterization (its Velocity method
// returns a prediction of kind from: Data for an x1/denoiser model, Noise for an epsilon model,
// Score for a score model) as the velocity field the samplers integrate, along scheduler s.
// Where the conversion divides by zero (Data and Noise at t = 1 and t = 0 respectively for paths
// that reach them, Score at sigma = 0) the velocity is not finite: end such grids short of the
// end and use the anytime estimate (ode.Fixed.Denoise). Velocity allocates nothing.
func AsVelocity(f expert.Field, s Scheduler, from Param) *Converted {
	if f == nil || s == nil {
		panic("path: AsVelocity with a nil field or scheduler")
	}
	from.basis(s.At(0.5)) // panics on an unknown parameterization, at construction
	return &Converted{field: f, sched: s, from: from, pred: make([]float32, f.Dim())}
}

// Converted is a field predicting one parameterization seen as a velocity field; see AsVelocity.
type Converted struct {
	field expert.Field
	sched Scheduler
	from  Param
	pred  []float32
}

var _ expert.Field = (*Converted)(nil)

// Dim implements expert.Field.
func (c *Converted) Dim() int { return c.field.Dim() }

// Velocity implements expert.Field.
func (c *Converted) Velocity(dst, x []float32, t float64) {
	if len(x) != len(c.pred) {
		panic(fmt.Sprintf("path: Converted.Velocity x of %d values, want %d", len(x), len(c.pred)))
	}
	c.field.Velocity(c.pred, x, t)
	ConvertTo(dst, x, c.pred, c.sched.At(t), c.from, Velocity)
}
