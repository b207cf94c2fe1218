//go:build race

package quicrelay

const raceEnabled = true
