package policy

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// isolation binds the control tick's OS thread to one CPU and the inference threads to the
// others (Config.IsolateTick).
type isolation struct {
	all, tick, rest unix.CPUSet // the process's CPUs; the tick's; the others
	tickCPU         int
}

// newIsolation takes the last CPU of the calling thread's affinity mask for the tick.
func newIsolation() (*isolation, error) {
	var iso isolation
	if err := unix.SchedGetaffinity(0, &iso.all); err != nil {
		return nil, fmt.Errorf("policy: isolate_tick: reading the CPU affinity: %w", err)
	}
	if n := iso.all.Count(); n < 2 {
		return nil, fmt.Errorf("policy: isolate_tick: the process may run on %d CPU, want at least 2: %w", n, ErrConfig)
	}
	if n := runtime.GOMAXPROCS(0); n < 2 {
		return nil, fmt.Errorf("policy: isolate_tick: GOMAXPROCS is %d, want at least 2 (the tick and inference must run at once): %w", n, ErrConfig)
	}
	iso.tickCPU = -1
	for c := range cpuSetBits {
		if iso.all.IsSet(c) {
			iso.tickCPU = c
		}
	}
	iso.tick.Set(iso.tickCPU)
	iso.rest = iso.all
	iso.rest.Clear(iso.tickCPU)
	return &iso, nil
}

// cpuSetBits is how many CPUs a unix.CPUSet names (glibc's CPU_SETSIZE).
const cpuSetBits = 1024

// restCPUs lists the inference CPUs (for the log).
func (iso *isolation) restCPUs() []int {
	var cpus []int
	for c := range cpuSetBits {
		if iso.rest.IsSet(c) {
			cpus = append(cpus, c)
		}
	}
	return cpus
}

// pinTick locks the calling goroutine to its OS thread for good (the thread ends with the
// goroutine) and binds that thread to the tick's CPU.
func (iso *isolation) pinTick() error {
	runtime.LockOSThread()
	if err := unix.SchedSetaffinity(0, &iso.tick); err != nil {
		return fmt.Errorf("policy: isolate_tick: binding the tick to CPU %d: %w", iso.tickCPU, err)
	}
	return nil
}

// pinWorker locks the calling goroutine (the inference worker) to its OS thread for good and
// binds it, and the inferer's own worker threads, to the other CPUs.
func (iso *isolation) pinWorker(inf Inferer) error {
	runtime.LockOSThread()
	if err := unix.SchedSetaffinity(0, &iso.rest); err != nil {
		return fmt.Errorf("policy: isolate_tick: binding inference to CPUs %v: %w", iso.restCPUs(), err)
	}
	for _, tid := range workerThreads(inf) {
		if err := unix.SchedSetaffinity(tid, &iso.rest); err != nil {
			return fmt.Errorf("policy: isolate_tick: binding the network's thread %d to CPUs %v: %w", tid, iso.restCPUs(), err)
		}
	}
	return nil
}

// release gives the inferer's worker threads, which outlive the run, every CPU again.
func (iso *isolation) release(inf Inferer) {
	for _, tid := range workerThreads(inf) {
		_ = unix.SchedSetaffinity(tid, &iso.all) // best effort: a thread that ended needs nothing
	}
}

func workerThreads(inf Inferer) []int {
	if w, ok := inf.(interface{ WorkerThreads() []int }); ok {
		return w.WorkerThreads()
	}
	return nil
}
