//go:build race

package route

// The race detector makes sync.Pool drop items at random, so regexp matching allocates.
const raceEnabled = true
