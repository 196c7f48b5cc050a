package bench

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/flowact/flowact/policy/chunk"
)

// tiny are network sizes that make a chunk take microseconds, for tests.
func tiny() Sizes {
	return Sizes{H: 8, D: 3, Tokens: 4, State: 3, MLPHidden: 32, MLPLayers: 2, MLPEmbed: 16,
		TFWidth: 32, TFLayers: 1, TFHeads: 2, TFMLPRatio: 2, TFEmbed: 16}
}

func TestExpert(t *testing.T) {
	// Evaluations per chunk of the fixed-step solvers: stages per step times steps.
	stages := map[string]int{"euler": 1, "midpoint": 2, "heun": 2, "rk4": 4}
	const steps = 4
	for _, arch := range []string{"mlp", "transformer"} {
		for _, solver := range Solvers() {
			for _, threads := range []int{1, 2} {
				// A random network is stiff for the adaptive solver (hundreds of evaluations per
				// chunk): one network, one thread count and few repetitions keep it fast under -race.
				minReps, maxReps := 5, 20
				if solver == "dopri5" {
					if threads == 2 || arch != "mlp" {
						continue
					}
					minReps, maxReps = 2, 2
				}
				name := fmt.Sprintf("%s/%s/threads=%d", arch, solver, threads)
				t.Run(name, func(t *testing.T) {
					c := ExpertConfig{Arch: arch, Solver: solver, Steps: steps, Threads: threads, Sizes: tiny(),
						Duration: time.Millisecond, MinReps: minReps, MaxReps: maxReps, Seed: 7}
					r, err := Expert(context.Background(), c)
					if err != nil {
						t.Fatal(err)
					}
					if r.Reps < minReps || r.Reps > maxReps {
						t.Errorf("reps %d outside [MinReps, MaxReps] = [%d, %d]", r.Reps, minReps, maxReps)
					}
					if !(r.MsMin > 0 && r.MsMin <= r.MsMedian && r.MsMedian <= r.MsP99 && r.MsMean >= r.MsMin) {
						t.Errorf("timings min %g median %g p99 %g mean %g", r.MsMin, r.MsMedian, r.MsP99, r.MsMean)
					}
					if n, ok := stages[solver]; ok {
						if r.Evals != float64(n*steps) || r.Steps != steps {
							t.Errorf("%g evaluations, %d steps; want %d, %d", r.Evals, r.Steps, n*steps, steps)
						}
					} else if r.Evals < 8 || r.Steps != 0 { // Dormand-Prince: 2 to pick h0, then 6 per step
						t.Errorf("adaptive: %g evaluations, steps %d", r.Evals, r.Steps)
					}
					// The analytic count, recomputed from the network's own FLOPs.
					net, err := tiny().NewNet(arch, 1, 7)
					if err != nil {
						t.Fatal(err)
					}
					defer net.Close()
					bind, vel := net.(flopper).FLOPs(tiny().Tokens)
					if want := (float64(bind) + r.Evals*float64(vel)) / 1e6; abs(r.MFLOP-want) > 1e-9*want {
						t.Errorf("MFLOP %g, want %g", r.MFLOP, want)
					}
					if r.CPUMs < 0 || (r.CPUMs > 0) != (r.GFLOPPerCPUs > 0) {
						t.Errorf("CPU ms %g, GFLOP per CPU s %g", r.CPUMs, r.GFLOPPerCPUs)
					}
					if r.GFLOPS <= 0 || r.Params <= 0 || r.Batch != 1 {
						t.Errorf("GFLOP/s %g, params %d, batch %d", r.GFLOPS, r.Params, r.Batch)
					}
				})
			}
		}
	}
}

// TestExpertNoAllocs checks that the allocation count sees a chunk's steady state: 0. The count
// is the whole process's, and other goroutines (the testing package finishing the previous test,
// the race detector) may allocate during a measurement, so each case gets three attempts: an
// allocation in the chunk's path would show in every attempt, at least once per chunk (20).
// At these sizes the two-thread pool keeps every product on one thread; the transformer's
// layers still run as two-thread regions. The collector is off while it measures: a collection
// that holds the caller (a stop, a mark assist) longer than the pool worker's spin lets the
// worker park, and the runtime then starts an OS thread to take the worker's processor (its
// goroutine is locked to its own thread), allocating the M: 7-8 allocations an attempt with
// GOGC=2 under -race, none of them the chunk's.
func TestExpertNoAllocs(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	for _, arch := range []string{"mlp", "transformer"} {
		for _, threads := range []int{1, 2} {
			var counts []uint64
			for range 3 {
				r, err := Expert(context.Background(), ExpertConfig{Arch: arch, Solver: "heun", Steps: 3, Threads: threads,
					Sizes: tiny(), Duration: time.Millisecond, MinReps: 20, MaxReps: 20})
				if err != nil {
					t.Fatal(err)
				}
				counts = append(counts, r.AllocsTotal)
				if r.AllocsTotal == 0 {
					break
				}
			}
			if counts[len(counts)-1] != 0 {
				t.Errorf("%s, %d threads: %v allocations over 20 chunks in 3 attempts, want 0 in one", arch, threads, counts)
			}
		}
	}
}

func abs(x float64) float64 { return max(x, -x) }

// TestExpertBatch: a call over B chunks does B chunks' FLOPs with the same evaluations.
func TestExpertBatch(t *testing.T) {
	for _, arch := range []string{"mlp", "transformer"} {
		var mflop [2]float64
		for i, b := range []int{1, 3} {
			r, err := Expert(context.Background(), ExpertConfig{Arch: arch, Solver: "midpoint", Steps: 2, Batch: b,
				Sizes: tiny(), Duration: time.Millisecond, MinReps: 2, MaxReps: 4})
			if err != nil {
				t.Fatal(err)
			}
			if r.Batch != b || r.Evals != 4 || r.MsMedian <= 0 {
				t.Errorf("%s batch %d: %+v", arch, b, r)
			}
			mflop[i] = r.MFLOP
		}
		if abs(mflop[1]-3*mflop[0]) > 1e-9*mflop[1] {
			t.Errorf("%s: %g MFLOP at batch 3, want 3 x %g", arch, mflop[1], mflop[0])
		}
	}
}

func TestExpertErrors(t *testing.T) {
	for _, c := range []ExpertConfig{
		{Arch: "cnn", Solver: "euler"},
		{Arch: "mlp", Solver: "rk45"},
		{Arch: "mlp", Solver: "euler", Threads: 3},
		{Arch: "mlp", Solver: "euler", Batch: -1},
		{Arch: "mlp", Solver: "euler", Batch: MaxBatch + 1},
		{Arch: "mlp", Solver: "euler", Steps: -1},
		{Arch: "mlp", Solver: "euler", Duration: -time.Second},
		{Arch: "mlp", Solver: "euler", MinReps: 10, MaxReps: 5},
		{Arch: "transformer", Solver: "euler", Sizes: func() Sizes { s := tiny(); s.TFHeads = 3; return s }()},
		{Arch: "mlp", Solver: "euler", Sizes: func() Sizes { s := tiny(); s.H = 0; return s }()},
	} {
		_, err := Expert(context.Background(), c)
		if !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: error %v, want ErrConfig", c, err)
		}
	}
}

func TestExpertCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Expert(ctx, ExpertConfig{Arch: "mlp", Solver: "euler", Sizes: tiny()})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
}

func TestTick(t *testing.T) {
	for _, st := range []chunk.Strategy{chunk.Replace, chunk.Ensemble, chunk.Blend, chunk.Prefix, chunk.Guided} {
		t.Run(string(st), func(t *testing.T) {
			r, err := Tick(context.Background(), TickConfig{Strategy: st, Rate: 250, Joints: 3, H: 10,
				Duration: time.Millisecond, MinTicks: 1000, MaxTicks: 2000})
			if err != nil {
				t.Fatal(err)
			}
			if r.Ticks < 1000 || r.Ticks > 2000 {
				t.Errorf("%d ticks, want 1000 to 2000", r.Ticks)
			}
			if !(r.NsMedian > 0 && r.NsMedian <= r.NsP99 && r.NsP99 <= r.NsMax && r.NsMean > 0) {
				t.Errorf("timings median %g p99 %g max %g mean %g", r.NsMedian, r.NsP99, r.NsMax, r.NsMean)
			}
			// Chunks flow (at least one per H ticks after the warm-up of 5 H), the virtual clock
			// never overruns, and the robot is held only at the first tick, before the first chunk
			// (each inference runs between two ticks: nothing depends on the scheduler).
			if min := uint64(r.Ticks/10 + 5); r.Chunks < min || r.Overruns != 0 || r.HoldTicks > 1 {
				t.Errorf("chunks %d (want >= %d), overruns %d, hold ticks %d", r.Chunks, min, r.Overruns, r.HoldTicks)
			}
			// Every measured tick is of some kind; one in about H/2 asks for a chunk, one splices.
			if p, q, s := r.Plain, r.Request, r.Splice; p.Ticks+q.Ticks+s.Ticks < r.Ticks || q.Ticks < r.Ticks/10 || s.Ticks < r.Ticks/10 ||
				p.NsMedian <= 0 || q.NsMedian <= 0 || s.NsMedian <= 0 {
				t.Errorf("by kind: plain %+v, request %+v, splice %+v of %d ticks", p, q, s, r.Ticks)
			}
			// The tick and the inference between ticks allocate nothing (policy proves the tick
			// with testing.AllocsPerRun); the whole-process count may see a few of the runtime's
			// own (seen under -race: 7 in a run), but a per-tick or per-chunk allocation would give
			// at least 1/H = 0.1 per tick.
			if r.Allocs > 0.01 {
				t.Errorf("%g allocations per tick (%d in all)", r.Allocs, r.AllocsTotal)
			}
		})
	}
}

func TestTickErrors(t *testing.T) {
	for _, c := range []TickConfig{
		{Strategy: "bogus"},
		{Rate: 5000},
		{H: 1},
		{Joints: -1},
		{Duration: -time.Second},
		{MinTicks: 10, MaxTicks: 5},
	} {
		if _, err := Tick(context.Background(), c); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: error %v, want ErrConfig", c, err)
		}
	}
}

func TestQuantile(t *testing.T) {
	hundred := make([]float64, 100)
	for i := range hundred {
		hundred[i] = float64(i + 1)
	}
	for _, tc := range []struct {
		s    []float64
		q    float64
		want float64
	}{
		{[]float64{5}, 0.5, 5},
		{[]float64{5}, 0.99, 5},
		{[]float64{1, 2}, 0.5, 1},
		{[]float64{1, 2, 3}, 0.5, 2},
		{[]float64{1, 2, 3, 4}, 0.5, 2},
		{hundred, 0.5, 50},
		{hundred, 0.99, 99},
		{hundred, 1, 100},
		{hundred, 0.001, 1},
	} {
		if got := Quantile(tc.s, tc.q); got != tc.want {
			t.Errorf("Quantile(%d values, %g) = %g, want %g", len(tc.s), tc.q, got, tc.want)
		}
	}
}

func TestCPUModel(t *testing.T) {
	for _, tc := range []struct{ name, text, want string }{
		{"x86", "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC  7B13 64-Core Processor\nflags\t: fpu\n\nprocessor\t: 1\nmodel name\t: AMD EPYC 7B13 64-Core Processor\n",
			"AMD EPYC 7B13 64-Core Processor"},
		{"arm64", "processor\t: 0\nBogoMIPS\t: 48.00\nCPU implementer\t: 0x41\nCPU part\t: 0xd08\n\nHardware\t: BCM2835\nModel\t: Raspberry Pi 4 Model B Rev 1.4\n", "BCM2835"},
		{"armv7", "Processor\t: ARMv7 Processor rev 4 (v7l)\nBogoMIPS\t: 38.40\n", "ARMv7 Processor rev 4 (v7l)"},
		{"none", "processor\t: 0\nBogoMIPS\t: 48.00\n", ""},
		{"empty value", "model name\t:\nHardware\t: X\n", "X"},
		{"empty", "", ""},
	} {
		if got := CPUModel(strings.NewReader(tc.text)); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestLoadAvg(t *testing.T) {
	for _, tc := range []struct {
		text string
		want []float64
	}{
		{"0.52 0.58 0.59 1/467 1234\n", []float64{0.52, 0.58, 0.59}},
		{"11.27 11.27 11.05 3/900 42", []float64{11.27, 11.27, 11.05}},
		{"0.5 0.5", nil},
		{"a b c d", nil},
		{"-1 0 0 1/1 1", nil},
		{"NaN 0 0 1/1 1", nil},
		{"", nil},
	} {
		got := LoadAvg(tc.text)
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("LoadAvg(%q) = %v, want %v", tc.text, got, tc.want)
		}
	}
}

func TestReadEnv(t *testing.T) {
	e := ReadEnv()
	if e.GoVersion == "" || e.GOOS == "" || e.GOARCH == "" || e.GOMAXPROCS < 1 || e.NumCPU < 1 || e.Time.IsZero() {
		t.Fatalf("%+v", e)
	}
}

func FuzzCPUModel(f *testing.F) {
	f.Add("model name\t: AMD EPYC\n")
	f.Add("Hardware\t: BCM2835\nProcessor : x\n")
	f.Add(":\n::\nmodel name")
	f.Fuzz(func(t *testing.T, s string) {
		m := CPUModel(strings.NewReader(s))
		if m != strings.TrimSpace(m) || strings.Contains(m, "\n") {
			t.Fatalf("model %q not trimmed to one line", m)
		}
	})
}

func FuzzLoadAvg(f *testing.F) {
	f.Add("0.52 0.58 0.59 1/467 1234")
	f.Add("1e400 0 0")
	f.Add("Inf 1 2")
	f.Fuzz(func(t *testing.T, s string) {
		v := LoadAvg(s)
		if v != nil && len(v) != 3 {
			t.Fatalf("%d values", len(v))
		}
		for _, x := range v {
			if !(x >= 0 && x <= 1e9) {
				t.Fatalf("load %g", x)
			}
		}
	})
}
