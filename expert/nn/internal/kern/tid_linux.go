package kern

import "golang.org/x/sys/unix"

// threadID returns the calling OS thread's id (gettid).
func threadID() int { return unix.Gettid() }
