package bench

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"time"

	"github.com/flowact/flowact/expert/nn"
	"github.com/flowact/flowact/expert/nn/refnet"
)

// KernelConfig is a measurement of the kernels themselves: the FMA peak, matrix products on the
// networks' shapes and the reference networks of issue 19 (package refnet). Zero values take
// the defaults in the comments.
type KernelConfig struct {
	// Duration is the least time per product or network case; 0 means 1 s.
	Duration time.Duration
	// Threads are the thread counts (1, 2); nil means {1, 2}.
	Threads []int
	// MinReps is the least number of timed chunks per network case; 0 means 5.
	MinReps int
	// Seed seeds the networks' weights and inputs.
	Seed uint64
	// Weights are the precisions of the weight matrices measured, in order, and (those other
	// than f32) costed against f32; nil means {F32, F16}.
	Weights []nn.Precision
}

// ProductShapes are the measured products: the transformer's (51 tokens: 50 actions and a state
// token) and the MLP's matrix-vector ones.
var ProductShapes = [][3]int{{51, 256, 256}, {51, 256, 1024}, {51, 1024, 256}, {1, 1024, 1024}, {1, 933, 1024}}

// ProductResult is one product's figure.
type ProductResult struct {
	Shape   string  `json:"shape"`   // MxKxN
	Weights string  `json:"weights"` // precision of B: f32, f16, bf16
	Threads int     `json:"threads"`
	Reps    int     `json:"reps"`
	GFLOPS  float64 `json:"gflops"` // median over rounds
	// PeakShare is GFLOPS over Threads times the best measured single-core FMA peak.
	PeakShare float64 `json:"peak_share"`
}

// NetworkResult is one reference network's chunk (Bind and 10 Euler steps at batch 1).
type NetworkResult struct {
	Net       string  `json:"net"`     // "A (mlp)" or "B (transformer)"
	Weights   string  `json:"weights"` // precision of the weight matrices: f32, f16, bf16
	Threads   int     `json:"threads"`
	Params    int     `json:"params"`
	MFLOP     float64 `json:"mflop_per_chunk"`
	Reps      int     `json:"reps"`
	MsMedian  float64 `json:"ms_median"`
	MsP99     float64 `json:"ms_p99"`
	MsMin     float64 `json:"ms_min"`
	GFLOPS    float64 `json:"gflops"` // FLOPs of a chunk over the median time
	PeakShare float64 `json:"peak_share"`
	// CPUMs is the process's CPU time (all threads) per chunk, which a loaded machine does not
	// stretch as it stretches wall time; GFLOPPerCPUs the FLOPs over it; CPUPeakShare that over
	// the single-core peak. 0 where the CPU time is not known.
	CPUMs        float64 `json:"cpu_ms_per_chunk"`
	GFLOPPerCPUs float64 `json:"gflop_per_cpu_s"`
	CPUPeakShare float64 `json:"cpu_peak_share"`
	// GBps is the weight bytes streamed per second at the median (MLP: every evaluation reads
	// every weight once).
	GBps   float64 `json:"weight_gb_per_s"`
	Allocs float64 `json:"allocs_per_chunk"`
}

// PrecisionCost is the accuracy cost of 16-bit weights (f16 or bf16) for a reference network.
type PrecisionCost struct {
	Net     string  `json:"net"`
	Weights string  `json:"weights"`           // f16 or bf16
	MaxDiff float64 `json:"max_velocity_diff"` // max |v_weights - v_f32| over 3 evaluations
	MaxAbs  float64 `json:"max_velocity"`      // max |v_f32|
}

// KernelReport is what Kernels measures.
type KernelReport struct {
	Kernels string        `json:"kernels"` // implementation in use: avx512, avx2, go
	Peaks   []refnet.Peak `json:"fma_peak_per_core"`
	// Peak is the best of Peaks (GFLOP/s, one core); 0 without SIMD kernels.
	Peak     float64         `json:"peak_gflops"`
	Products []ProductResult `json:"products"`
	Networks []NetworkResult `json:"reference_networks"`
	Accuracy []PrecisionCost `json:"weights_accuracy"`
}

// Kernels measures the FMA peak, the products and the reference networks (see the package
// documentation). It returns early with ctx's error.
func Kernels(ctx context.Context, c KernelConfig) (KernelReport, error) {
	if c.Duration == 0 {
		c.Duration = time.Second
	}
	if c.Threads == nil {
		c.Threads = []int{1, 2}
	}
	if c.MinReps == 0 {
		c.MinReps = 5
	}
	if c.Weights == nil {
		c.Weights = []nn.Precision{nn.F32, nn.F16}
	}
	for _, th := range c.Threads {
		if th != 1 && th != 2 {
			return KernelReport{}, fmt.Errorf("%w: threads %d, want 1 or 2", ErrConfig, th)
		}
	}
	if c.Duration < 0 || c.MinReps < 0 {
		return KernelReport{}, fmt.Errorf("%w: duration %v, min reps %d", ErrConfig, c.Duration, c.MinReps)
	}
	rep := KernelReport{Kernels: refnet.Kernels(), Peaks: refnet.Peaks(c.Duration / 2)}
	for _, p := range rep.Peaks {
		rep.Peak = max(rep.Peak, p.GFLOPS)
	}
	share := func(g float64, th int) float64 {
		if rep.Peak == 0 {
			return 0
		}
		return g / (rep.Peak * float64(th))
	}
	for _, prec := range c.Weights {
		for _, th := range c.Threads {
			for _, s := range ProductShapes {
				if err := ctx.Err(); err != nil {
					return rep, err
				}
				p := refnet.MeasureProduct(s[0], s[1], s[2], th, prec, c.Duration)
				rep.Products = append(rep.Products, ProductResult{Shape: p.Name(), Weights: prec.String(), Threads: th,
					Reps: p.Reps, GFLOPS: p.Median, PeakShare: share(p.Median, th)})
			}
		}
	}
	for _, kind := range []string{"mlp", "transformer"} {
		for _, prec := range c.Weights {
			for _, th := range c.Threads {
				r, err := measureNet(ctx, kind, prec, th, c)
				if err != nil {
					return rep, err
				}
				r.PeakShare = share(r.GFLOPS, th)
				r.CPUPeakShare = share(r.GFLOPPerCPUs, 1)
				rep.Networks = append(rep.Networks, r)
			}
		}
		for _, prec := range c.Weights {
			if prec != nn.F32 {
				d, a := refnet.PrecisionError(kind, c.Seed, prec)
				rep.Accuracy = append(rep.Accuracy, PrecisionCost{Net: netName(kind), Weights: prec.String(), MaxDiff: d, MaxAbs: a})
			}
		}
	}
	return rep, nil
}

func netName(kind string) string {
	if kind == "mlp" {
		return "A (mlp)"
	}
	return "B (transformer)"
}

// measureNet times chunks of one reference network: one untimed warm-up chunk, then chunks one
// by one until both c.Duration and c.MinReps are reached.
func measureNet(ctx context.Context, kind string, prec nn.Precision, threads int, c KernelConfig) (NetworkResult, error) {
	var n refnet.Net
	if kind == "mlp" {
		n = refnet.NewMLP(c.Seed, prec, threads)
	} else {
		n = refnet.NewTransformer(c.Seed, prec, threads)
	}
	defer n.Close()
	res := NetworkResult{Net: netName(kind), Weights: prec.String(), Threads: threads, Params: n.Params()}
	cond, x0 := refnet.Normal(c.Seed+1, refnet.Cond), refnet.Normal(c.Seed+2, refnet.H*refnet.D)
	x, v := make([]float32, len(x0)), make([]float32, len(x0))
	chunk := func() {
		copy(x, x0)
		refnet.Chunk(n, cond, x, v)
	}
	runtime.GC()
	chunk()
	var ms []float64
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	cpu0 := cpuSeconds()
	start := time.Now()
	for len(ms) < c.MinReps || time.Since(start) < c.Duration {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		t0 := time.Now()
		chunk()
		ms = append(ms, float64(time.Since(t0))/float64(time.Millisecond))
	}
	cpu := cpuSeconds() - cpu0
	runtime.ReadMemStats(&m1)
	res.Reps = len(ms)
	res.Allocs = float64(m1.Mallocs-m0.Mallocs) / float64(len(ms))
	slices.Sort(ms)
	res.MsMin, res.MsMedian, res.MsP99 = ms[0], Quantile(ms, 0.5), Quantile(ms, 0.99)
	flops := float64(refnet.ChunkFLOPs(n))
	res.MFLOP = flops / 1e6
	res.GFLOPS = flops / (res.MsMedian / 1e3) / 1e9
	if cpu > 0 {
		res.CPUMs = cpu * 1e3 / float64(len(ms))
		res.GFLOPPerCPUs = flops * float64(len(ms)) / cpu / 1e9
	}
	bytes := 4.0
	if prec != nn.F32 {
		bytes = 2
	}
	if kind == "mlp" {
		res.GBps = float64(refnet.Steps) * float64(n.Params()) * bytes / (res.MsMedian / 1e3) / 1e9
	}
	return res, nil
}
