//go:build race

package passthrough

// raceEnabled is true under the race detector.
const raceEnabled = true
