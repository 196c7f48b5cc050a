package demo

import (
	"math"

	"github.com/flowact/flowact/sim/task"
)

// IK is a damped-least-squares position solver for a robot's end effector.
type IK struct {
	rb      *task.Robot
	Lambda  float64 // damping, m
	Posture float64 // null-space gain toward home per step, 1/step
	MaxStep float64 // largest joint step per iteration, rad
	jac     []float64
	dq, z   []float64
}

// NewIK returns a solver with damping lambda (m), posture gain k and step limit maxStep (rad).
func NewIK(rb *task.Robot, lambda, k, maxStep float64) *IK {
	n := len(rb.Home)
	return &IK{rb: rb, Lambda: lambda, Posture: k, MaxStep: maxStep, jac: make([]float64, 6*n), dq: make([]float64, n), z: make([]float64, n)}
}

// Solve runs iters DLS steps moving q (model order, in place) toward placing the end effector at
// target, and returns the remaining position error, m. It allocates nothing.
func (ik *IK) Solve(q []float64, target [3]float64, iters int) float64 {
	n := len(q)
	m := ik.rb.Model
	var err float64
	for it := 0; ; it++ {
		p := ik.rb.EEPos(q)
		e := [3]float64{target[0] - p[0], target[1] - p[1], target[2] - p[2]}
		err = math.Sqrt(e[0]*e[0] + e[1]*e[1] + e[2]*e[2])
		if it == iters {
			return err
		}
		ik.rb.EE.Jacobian(ik.jac, q)
		J := ik.jac[:3*n] // position rows
		// A = J J^T + lambda^2 I, symmetric 3x3.
		var a [9]float64
		for r := range 3 {
			for c := r; c < 3; c++ {
				s := 0.0
				for k := range n {
					s += J[r*n+k] * J[c*n+k]
				}
				a[r*3+c], a[c*3+r] = s, s
			}
			a[r*3+r] += ik.Lambda * ik.Lambda
		}
		ai, ok := inv3(a)
		if !ok {
			return err
		}
		// Null-space motion: z = k (home - q); its task-space part J z is removed below.
		for k := range n {
			ik.z[k] = ik.Posture * (ik.rb.Home[k] - q[k])
		}
		var jz [3]float64
		for r := range 3 {
			for k := range n {
				jz[r] += J[r*n+k] * ik.z[k]
			}
		}
		// y = A^-1 (e - J z); dq = z + J^T y.
		var y [3]float64
		for r := range 3 {
			for c := range 3 {
				y[r] += ai[r*3+c] * (e[c] - jz[c])
			}
		}
		norm := 0.0
		for k := range n {
			ik.dq[k] = ik.z[k] + J[k]*y[0] + J[n+k]*y[1] + J[2*n+k]*y[2]
			norm = max(norm, math.Abs(ik.dq[k]))
		}
		scale := 1.0
		if norm > ik.MaxStep {
			scale = ik.MaxStep / norm
		}
		for k := range n {
			q[k] += scale * ik.dq[k]
			if l := m.Joints[k].Limits; l.HasPosition {
				q[k] = min(max(q[k], l.Lower), l.Upper)
			}
		}
	}
}

// inv3 inverts a 3x3 matrix by cofactors.
func inv3(a [9]float64) ([9]float64, bool) {
	c00 := a[4]*a[8] - a[5]*a[7]
	c01 := a[5]*a[6] - a[3]*a[8]
	c02 := a[3]*a[7] - a[4]*a[6]
	det := a[0]*c00 + a[1]*c01 + a[2]*c02
	if det == 0 || math.IsNaN(det) {
		return [9]float64{}, false
	}
	d := 1 / det
	return [9]float64{
		c00 * d, (a[2]*a[7] - a[1]*a[8]) * d, (a[1]*a[5] - a[2]*a[4]) * d,
		c01 * d, (a[0]*a[8] - a[2]*a[6]) * d, (a[2]*a[3] - a[0]*a[5]) * d,
		c02 * d, (a[1]*a[6] - a[0]*a[7]) * d, (a[0]*a[4] - a[1]*a[3]) * d,
	}, true
}
