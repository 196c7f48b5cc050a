//go:build !amd64

package kern

// simdArchs returns no SIMD implementation: off amd64 the kernels are pure Go.
func simdArchs() []*Arch { return nil }
