package policy

import (
	"errors"
	"math/rand/v2"
	"runtime"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/flowact/flowact/expert/nn"
	"github.com/flowact/flowact/expert/ode"
	"github.com/flowact/flowact/policy/chunk"
	"github.com/flowact/flowact/robot"
	"golang.org/x/sys/unix"
)

// cpuCheck counts calls made on a thread whose CPU affinity is not want.
type cpuCheck struct {
	want        unix.CPUSet
	calls, miss atomic.Int64
}

func (c *cpuCheck) check() {
	var got unix.CPUSet
	c.calls.Add(1)
	if unix.SchedGetaffinity(0, &got) != nil || got != c.want {
		c.miss.Add(1)
	}
}

type cpuDriver struct {
	*driver
	c *cpuCheck
}

func (d *cpuDriver) WriteCommand(cmd *robot.Command) error {
	d.c.check()
	return d.driver.WriteCommand(cmd)
}

type cpuInferer struct {
	*Expert
	c *cpuCheck
}

func (e *cpuInferer) Infer(dst *chunk.Chunk, req *Request) error {
	e.c.check()
	return e.Expert.Infer(dst, req)
}

// TestIsolateTick runs the loop with IsolateTick on the real MLP with two matrix-product
// threads: every command is written from a thread bound to the last CPU alone, every inference
// runs on a thread bound to all the others, and so is the network's own worker thread while
// the loop runs; after Run that thread may use every CPU again. On fewer than two CPUs Run
// refuses the setting with ErrConfig.
func TestIsolateTick(t *testing.T) {
	var all unix.CPUSet
	if err := unix.SchedGetaffinity(0, &all); err != nil {
		t.Fatal(err)
	}
	const h, d, tokens, width = 30, 3, 4, 32
	per := 10 * time.Millisecond
	if all.Count() < 2 || runtime.GOMAXPROCS(0) < 2 {
		l, err := New(Config{Rate: 100, IsolateTick: true}, Deps{Driver: newDriver(t, armModel(), per, make([]float64, d)), Inferer: NewExpert(newTickModel(h, d), nil, nil, 1)})
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Run(t.Context()); !errors.Is(err, ErrConfig) {
			t.Fatalf("Run with IsolateTick on %d CPUs, GOMAXPROCS %d: %v, want ErrConfig", all.Count(), runtime.GOMAXPROCS(0), err)
		}
		return
	}
	last := -1
	for c := range cpuSetBits {
		if all.IsSet(c) {
			last = c
		}
	}
	tickC, infC := &cpuCheck{}, &cpuCheck{want: all}
	tickC.want.Set(last)
	infC.want.Clear(last)
	synctest.Test(t, func(t *testing.T) {
		mlp, err := nn.NewMLP(nn.MLPConfig{H: h, D: d, Embed: width, State: d, Hidden: 64, Threads: 2}, rand.New(rand.NewPCG(1, 2)))
		if err != nil {
			t.Fatal(err)
		}
		defer mlp.Close()
		tids := mlp.WorkerThreads()
		if len(tids) != 1 {
			t.Fatalf("a 2-thread network has worker threads %v, want one", tids)
		}
		drv := &cpuDriver{driver: newDriver(t, armModel(), per, make([]float64, d)), c: tickC}
		inf := &cpuInferer{Expert: NewExpert(mlp, &ode.Fixed{Method: ode.Euler, Steps: 3}, nil, 3), c: infC}
		l, err := New(Config{Rate: 100, Threshold: 10, IsolateTick: true}, Deps{Driver: drv, Inferer: inf})
		if err != nil {
			t.Fatal(err)
		}
		emb := make([]float32, tokens*width)
		l.PutEmbedding(&Embedding{Stamp: time.Now().Add(time.Hour), Tokens: tokens, Width: width, Data: emb})
		l.Start()
		var poolMiss atomic.Int64
		runFor(t, l, time.Second, func(time.Duration) {
			var got unix.CPUSet
			if unix.SchedGetaffinity(tids[0], &got) != nil || got != infC.want {
				poolMiss.Add(1)
			}
		})
		if l.Telemetry().Chunks.Load() < 5 {
			t.Errorf("%d chunks in 1 s", l.Telemetry().Chunks.Load())
		}
		var got unix.CPUSet
		if err := unix.SchedGetaffinity(tids[0], &got); err != nil || got != all {
			t.Errorf("after Run the network's thread may run on %d CPUs (%v), want all %d", got.Count(), err, all.Count())
		}
		if poolMiss.Load() != 0 {
			t.Errorf("the network's worker thread was off the inference CPUs at %d ticks", poolMiss.Load())
		}
	})
	if tickC.calls.Load() == 0 || tickC.miss.Load() != 0 {
		t.Errorf("%d of %d commands written off CPU %d alone", tickC.miss.Load(), tickC.calls.Load(), last)
	}
	if infC.calls.Load() == 0 || infC.miss.Load() != 0 {
		t.Errorf("%d of %d inferences off the %d inference CPUs", infC.miss.Load(), infC.calls.Load(), infC.want.Count())
	}
}
