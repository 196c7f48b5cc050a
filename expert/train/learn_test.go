package train

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/flowact/flowact/expert"
	"github.com/flowact/flowact/expert/nn"
)

// euler integrates f from t = 0 to 1 in n steps in place (a test-only sampler; expert/ode holds
// the real ones).
func euler(x []float32, f expert.Field, n int) {
	v := make([]float32, len(x))
	for k := 0; k < n; k++ {
		f.Velocity(v, x, float64(k)/float64(n))
		for i := range x {
			x[i] += v[i] / float32(n)
		}
	}
}

// energyDistance is the energy distance 2E|X-Y| - E|X-X'| - E|Y-Y'| between two 2-D samples
// (Székely & Rizzo 2013); it is 0 exactly when the distributions agree.
func energyDistance(a, b [][2]float64) float64 {
	mean := func(p, q [][2]float64) float64 {
		var s float64
		for _, x := range p {
			for _, y := range q {
				s += math.Hypot(x[0]-y[0], x[1]-y[1])
			}
		}
		return s / float64(len(p)*len(q))
	}
	return 2*mean(a, b) - mean(a, a) - mean(b, b)
}

// modeShares assigns each point to its nearest mode and returns the share of each mode and the
// share of points within radius of their mode.
func modeShares(pts [][2]float64, modes [][2]float64, radius float64) ([]float64, float64) {
	share := make([]float64, len(modes))
	var near float64
	for _, p := range pts {
		best, bd := 0, math.Inf(1)
		for k, m := range modes {
			if d := math.Hypot(p[0]-m[0], p[1]-m[1]); d < bd {
				best, bd = k, d
			}
		}
		share[best]++
		if bd < radius {
			near++
		}
	}
	for k := range share {
		share[k] /= float64(len(pts))
	}
	return share, near / float64(len(pts))
}

func mixtureCond(class, classes int) *expert.Condition {
	e := make([]float32, classes)
	e[class] = 1
	return &expert.Condition{Tokens: 1, Width: classes, Embedding: e}
}

// trainToy trains an MLP expert on src and returns it with its EMA weights (if EMA is on).
func trainToy(src Source, cfg nn.MLPConfig, tc Config) (*nn.MLP, []Point, error) {
	net, err := nn.NewMLP(cfg, rand.New(rand.NewPCG(tc.Seed, 1)))
	if err != nil {
		return nil, nil, err
	}
	tr, err := New(net, tc)
	if err != nil {
		return nil, nil, err
	}
	defer tr.Close()
	if err := tr.Run(context.Background(), src, nil); err != nil {
		return nil, nil, err
	}
	if tc.EMA > 0 {
		if err := tr.CopyTo(net, true); err != nil {
			return nil, nil, err
		}
	}
	return net, tr.History, nil
}

func logLoss(t *testing.T, what string, h []Point) {
	t.Logf("%s loss: first %.4f, last %.4f over %d steps", what, h[0].Loss, h[len(h)-1].Loss, h[len(h)-1].Step)
}

// TestLearnsMultimodal trains a small flow-matching MLP and a same-size MSE regressor on the
// conditional mixture toy (4 modes for class 0, 2 for class 1) and compares their samples with
// the target.
func TestLearnsMultimodal(t *testing.T) {
	t.Parallel() // the two learning tests share the two cores
	toy := FourAndTwo()
	cfg := nn.MLPConfig{H: 1, D: 2, Embed: 2, State: 0, Hidden: 64, Layers: 2, TimeFeatures: 8, TimeWidth: 16, CondWidth: 16}
	tc := Config{Steps: learnSteps, BatchSize: 64, LR: 1e-2, MinLR: 1e-4, Warmup: 50, Clip: 1, EMA: 0.99, Seed: 1, LogEvery: 50}
	// The regressor's optimum (the conditional mean) is easy to reach: fewer steps suffice.
	rc := tc
	rc.Objective, rc.Steps, rc.Warmup = Regression, learnSteps/4, 10
	// Both train at once, one goroutine each, waited for here.
	var flow, reg *nn.MLP
	var fh, rh []Point
	var ferr, rerr error
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); flow, fh, ferr = trainToy(toy, cfg, tc) }()
	go func() { defer wg.Done(); reg, rh, rerr = trainToy(toy, cfg, rc) }()
	wg.Wait()
	if ferr != nil || rerr != nil {
		t.Fatalf("training: %v, %v", ferr, rerr)
	}
	defer flow.Close()
	defer reg.Close()
	logLoss(t, "flow matching", fh)
	logLoss(t, "regression", rh)

	const n = 400 // samples per class
	r := rand.New(rand.NewPCG(99, 0))
	for c := range toy.Modes {
		target := make([][2]float64, n)
		for i := range target {
			target[i] = toy.Sample(c, r)
		}
		// The noise floor: a second target sample of the same size.
		floor := make([][2]float64, n)
		for i := range floor {
			floor[i] = toy.Sample(c, r)
		}
		// The bound's reference: the target with one mode missing (its mass spread over the
		// others). A sampler that loses a mode is at least this far from the target.
		missing := make([][2]float64, 0, n)
		for len(missing) < n {
			p := toy.Sample(c, r)
			if _, near := modeShares([][2]float64{p}, toy.Modes[c][:1], 3*toy.Std); near == 0 {
				missing = append(missing, p)
			}
		}

		// The other reference: the modes smeared into a ring of the same radius and radial noise.
		radius := math.Hypot(toy.Modes[c][0][0], toy.Modes[c][0][1])
		ring := make([][2]float64, n)
		for i := range ring {
			a := 2 * math.Pi * r.Float64()
			rr := radius + toy.Std*r.NormFloat64()
			ring[i] = [2]float64{rr * math.Cos(a), rr * math.Sin(a)}
		}

		f, err := flow.Bind(mixtureCond(c, len(toy.Modes)))
		if err != nil {
			t.Fatal(err)
		}
		samples := make([][2]float64, n)
		x := make([]float32, 2)
		for i := range samples {
			x[0], x[1] = float32(r.NormFloat64()), float32(r.NormFloat64())
			euler(x, f, 100)
			samples[i] = [2]float64{float64(x[0]), float64(x[1])}
		}
		g, err := reg.Bind(mixtureCond(c, len(toy.Modes)))
		if err != nil {
			t.Fatal(err)
		}
		out := make([]float32, 2)
		g.Velocity(out, []float32{0, 0}, 0)
		regressed := slices.Repeat([][2]float64{{float64(out[0]), float64(out[1])}}, n)

		edFlow := energyDistance(samples, target)
		edReg := energyDistance(regressed, target)
		edFloor := energyDistance(floor, target)
		edMissing := energyDistance(missing, target)
		edRing := energyDistance(ring, target)
		shares, near := modeShares(samples, toy.Modes[c], 3*toy.Std)
		regShares, regNear := modeShares(regressed, toy.Modes[c], 3*toy.Std)
		t.Logf("class %d: energy distance flow %.4f, regressor %.4f (regressor output %.3f, %.3f); noise floor %.4f, one mode missing %.4f, ring %.4f",
			c, edFlow, edReg, out[0], out[1], edFloor, edMissing, edRing)
		t.Logf("class %d: flow mode shares %.3f (%.0f%% within 3 std), regressor %.3f (%.0f%% within 3 std)", c, shares, 100*near, regShares, 100*regNear)

		// The flow must be closer to the target than a sampler missing a whole mode and than
		// one smearing the modes into a ring: half of either distance leaves room for sampling
		// noise (the noise floor is about 10x smaller) and none for a lost or smeared mode.
		if bound := math.Min(edMissing, edRing) / 2; edFlow > bound {
			t.Errorf("class %d: flow energy distance %.4f exceeds the bound %.4f", c, edFlow, bound)
		}
		// Every mode gets a fair share: within a factor 1.5 of 1/M (a binomial share of 400
		// points has a std of at most 0.025, so 0.5/M is 5 std away).
		for k, s := range shares {
			if m := float64(len(shares)); s < 0.5/m || s > 1.5/m {
				t.Errorf("class %d mode %d: share %.3f, want within [%.3f, %.3f]", c, k, s, 0.5/m, 1.5/m)
			}
		}
		// The modes are sharp: a 2-D Gaussian puts 98.9% of its mass within 3 std, a ring through
		// the modes 29% (class 0) or 19% (class 1).
		if near < 0.8 {
			t.Errorf("class %d: only %.0f%% of flow samples within 3 std of a mode", c, 100*near)
		}
		// The regressor reached its optimum, the conditional mean (the origin for both
		// classes), which lies between the modes: it collapses them, further from the target
		// than even the ring.
		if math.Hypot(float64(out[0]), float64(out[1])) > 0.2 || regNear > 0 || edReg < edRing {
			t.Errorf("class %d: regressor at (%.3f, %.3f), %.0f%% near a mode, energy distance %.4f: not the collapsed mean",
				c, out[0], out[1], 100*regNear, edReg)
		}
	}
}

// learnSteps is the number of optimizer steps of the flow model in the learning tests: about
// 30 s under -race on two cores, and enough for the margins the assertions log.
const learnSteps = 600
