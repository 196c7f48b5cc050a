//go:build !linux

package kern

// threadID returns 0: thread ids (for binding threads to CPUs) are used on Linux only.
func threadID() int { return 0 }
