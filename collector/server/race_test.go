//go:build race

package server

// Under the race detector sync.Pool drops what it is given at random, so
// allocation counts say nothing; the budget test runs without it (make test).
func init() { raceDetector = true }
