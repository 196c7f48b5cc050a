//go:build !amd64 && !arm64

package kern

// simdArchs returns no SIMD implementation: off amd64 and arm64 the kernels are pure Go.
func simdArchs() []*Arch { return nil }
