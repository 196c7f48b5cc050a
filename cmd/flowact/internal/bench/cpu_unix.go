//go:build unix

package bench

import "syscall"

// cpuSeconds returns the process's user plus system CPU time (every thread), or 0 if the system
// does not say.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}
