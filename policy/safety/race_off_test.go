//go:build !race

package safety

// raceEnabled: see race_on_test.go.
const raceEnabled = false
