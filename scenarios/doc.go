// Package scenarios proves the collector's promises (docs/ARCHITECTURE.md, The promises)
// black-box: each *.txtar script in this directory runs the real collector
// binary against a real SQLite file, a real recording webhook receiver and
// real HTTP on loopback, kills it with real signals, and checks the outcome
// from outside. `go test ./scenarios/...` runs them; scenarios_test.go is the
// runner and documents the commands the scripts use.
//
// A script's name starts with its category (crash-, conflict-, ...), and its
// opening comment says what it promises.
package scenarios
