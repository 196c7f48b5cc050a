//go:build !race

package main

// raceEnabled: the tests run without the race detector, and so do the binaries they build.
const raceEnabled = false
