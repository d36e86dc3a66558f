// Package bench is the research harness's core: an Experiment is cells run
// with the modes interleaved (A B C A B C ...), a dropped warm-up, counted
// repetitions, a recorded seed, a fresh database per cell and a correctness
// check inside every cell; the Runner writes their results in the Go
// benchmark format. A Spec is one experiment as the command and the report
// know it (its name, its plan per Profile, what it adds to the report).
//
// The experiments live in their own packages (storebench, httpbench,
// torture, fuzzbench, fleet, peer), each exporting its Spec;
// bench/experiments lists them. record, stats, gate and reportgen turn
// their output into the published tables, plots and CI gates.
package bench

import (
	"context"
	"hash/fnv"
	"strings"
	"time"

	"edgecollector/bench/record"
)

// A Cell is one configuration of an experiment: a write mode and its
// parameters. Each repetition runs it once, on a fresh database.
type Cell struct {
	Name   string      // benchmark name, e.g. "Throughput"
	Config []record.KV // "mode" first, then the parameters
	// Cost is the expected wall time of one Run, for progress and ETA.
	Cost time.Duration
	Run  func(ctx context.Context, rep Rep) (Sample, error)
}

// Label is the cell's configuration as "mode=group producers=16".
func (c *Cell) Label() string {
	var b strings.Builder
	for i, kv := range c.Config {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(kv.Key + "=" + kv.Value)
	}
	return b.String()
}

// Rep identifies one repetition of a cell.
type Rep struct {
	Index  int  // 0-based, warm-up included
	Warmup bool // measured but not counted
	// Seed is derived from the run's seed, the cell and the repetition, so
	// a rerun with the same seed generates the same events.
	Seed uint64
}

// A Sample is what one repetition of a cell measured.
type Sample struct {
	Iters  int // operations measured
	Values []record.Value
	// Problems are failed correctness checks (an acknowledged event missing
	// from the database, ...). They fail the run.
	Problems []string
}

// An Experiment is a set of cells whose results go to one file.
type Experiment struct {
	Name  string // file name without .txt: "throughput"
	Plan  string // what the cells do, in a sentence or two, for machine.json and the report
	Units []record.Unit
	Cells []Cell
	// Reps and Warmup, when Reps > 0, replace the run's counted and warm-up
	// repetitions for this experiment: long experiments (a crash torture, a
	// soak) plan their own few, long repetitions.
	Reps, Warmup int
	// Close releases what the cells share; it may be nil.
	Close func() error
}

// cellSeed derives a repetition's seed from the run's seed.
func cellSeed(seed uint64, exp string, cell, rep int) uint64 {
	h := fnv.New64a()
	h.Write([]byte(exp))
	x := seed ^ h.Sum64() ^ uint64(cell)<<32 ^ uint64(rep)
	// splitmix64 finaliser: nearby inputs give unrelated seeds.
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
