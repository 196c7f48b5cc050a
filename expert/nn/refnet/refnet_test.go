package refnet

import (
	"math"
	"testing"

	"github.com/flowact/flowact/expert/nn"
)

// skipSlow skips the full-size networks with the pure-Go kernels and with -short (scripts/test's
// arm64 run under qemu): there a chunk of network B takes from 20 s to minutes; kern's and nn's
// tests cover those kernels.
func skipSlow(t *testing.T) {
	if Kernels() == "go" {
		t.Skip("pure-Go kernels: full-size reference networks too slow for a test")
	}
	if testing.Short() {
		// scripts/test runs the arm64 build under qemu with -short: emulated NEON computes a
		// 3.8 GFLOP transformer chunk in about 20 s.
		t.Skip("-short: full-size reference networks skipped")
	}
}

// TestChunksAllocateNothingAndThreadsAgree: a chunk allocates nothing, its values are finite,
// and two threads give the same bits as one.
func TestChunksAllocateNothingAndThreadsAgree(t *testing.T) {
	skipSlow(t)
	c, x0 := Normal(1, Cond), Normal(2, H*D)
	for _, mk := range []func(th int) Net{
		func(th int) Net { return NewMLP(3, nn.F32, th) },
		func(th int) Net { return NewTransformer(3, nn.F32, th) },
	} {
		var outs [2][]float32
		for th := 1; th <= 2; th++ {
			n := mk(th)
			x, v := append([]float32(nil), x0...), make([]float32, H*D)
			Chunk(n, c, x, v)
			// The mean over several chunks (AllocsPerRun truncates it): an allocation in every
			// chunk fails, but not the runtime's own now and then. With two threads the pool's
			// worker is locked to its OS thread, and when it parks or yields on a loaded machine
			// the scheduler hands its P off and may start a new OS thread (runtime.allocm and
			// malg: 3-4 allocations per thread, a bounded number per process; up to 14 in 60
			// chunks beside two busy loops, 1 in 5 chunks often enough to fail a mean over 5).
			runs := 5
			if th > 1 {
				runs = 20
			}
			if a := testing.AllocsPerRun(runs, func() { copy(x, x0); Chunk(n, c, x, v) }); a != 0 {
				t.Errorf("%T, %d threads: %v allocations per chunk", n, th, a)
			}
			for _, y := range x {
				if math.IsNaN(float64(y)) || math.IsInf(float64(y), 0) {
					t.Fatalf("%T: non-finite chunk", n)
				}
			}
			outs[th-1] = x
			n.Close()
		}
		for i := range outs[0] {
			if outs[0][i] != outs[1][i] {
				t.Fatalf("1 and 2 threads differ at %d: %v vs %v", i, outs[0][i], outs[1][i])
			}
		}
	}
}

// TestHalfWeights bounds the velocity difference of half-precision and bfloat16 weights
// (rounded to 11 and 8 significant bits: unit roundoff u = 2^-11 and 2^-8 relative) by 20u of
// the largest velocity, and checks that it is not zero (the 16-bit path runs).
func TestHalfWeights(t *testing.T) {
	skipSlow(t)
	for _, kind := range []string{"mlp", "transformer"} {
		for _, pc := range []struct {
			p nn.Precision
			u float64
		}{{nn.F16, 0x1p-11}, {nn.BF16, 0x1p-8}} {
			d, scale := PrecisionError(kind, 4, pc.p)
			t.Logf("%s: max |v_%v - v_f32| = %.3g, max |v_f32| = %.3g", kind, pc.p, d, scale)
			if !(d > 0 && d < 20*pc.u*scale) {
				t.Fatalf("%s: %v velocity differs by %v (scale %v)", kind, pc.p, d, scale)
			}
		}
	}
}

func TestMeasureProduct(t *testing.T) {
	p := MeasureProduct(3, 40, 50, 1, nn.F32, 0)
	if p.Median <= 0 || p.Reps < 5 || p.Name() != "3x40x50" {
		t.Fatalf("%+v", p)
	}
}
