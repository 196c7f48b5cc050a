//go:build !linux

package policy

import (
	"fmt"
	"runtime"
)

// isolation is Config.IsolateTick, which needs Linux's sched_setaffinity.
type isolation struct{ tickCPU int }

func newIsolation() (*isolation, error) {
	return nil, fmt.Errorf("policy: isolate_tick: binding threads to CPUs is supported on Linux only, not %s: %w", runtime.GOOS, ErrConfig)
}

func (*isolation) restCPUs() []int         { return nil }
func (*isolation) pinTick() error          { return nil }
func (*isolation) pinWorker(Inferer) error { return nil }
func (*isolation) release(Inferer)         {}
