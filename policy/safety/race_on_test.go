//go:build race

package safety

// raceEnabled: the tests run under the race detector (about 10x slower): the long property
// tests run fewer ticks so the package stays under a minute beside two CPU-bound processes.
const raceEnabled = true
