//go:build unix

package train

import "syscall"

// cpuSeconds returns the process's user plus system CPU time, so benchmarks can report the
// compute a chunk costs apart from the wall time that a loaded machine stretches.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}
