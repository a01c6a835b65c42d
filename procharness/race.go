//go:build race

package procharness

// raceEnabled reports whether this binary runs with the race detector; the worker is built to
// match.
const raceEnabled = true
