package httpbench

import (
	"time"

	"edgecollector/bench"
	"edgecollector/collector/store"
)

// httpReps caps the http experiment's counted repetitions in the full run:
// 6, the fewest that give a CI, as throughput does, to keep the whole run
// near its 30 minutes with powercut, storage and sustained in. Its cells'
// CIs were narrow at 10 (run 20261126T071514Z).
const httpReps = 6

// Spec is the http experiment.
var Spec = &bench.Spec{
	Name:      "http",
	Collector: true,
	New: func(p bench.Profile, env bench.Env) *bench.Experiment {
		c := Config{
			Binary: env.Collector,
			DBDir:  env.Scratch,
			Modes:  store.Modes,
			// 16 connections wait on their group's fsync; at 64 and 256 the
			// collector's CPU per request is the ceiling (issue 16).
			Loads:      []Load{{Conns: 16, Batch: 1}, {Conns: 16, Batch: 100}, {Conns: 64, Batch: 1}, {Conns: 256, Batch: 1}},
			Profile:    Load{Conns: 64, Batch: 1},
			ProfileDur: 3 * time.Second,
			Rates:      []int{1000, 4000, 16000}, // under, near and far past the knee; sustained finds the knee itself
			MaxWorkers: 512,
			Warm:       200 * time.Millisecond,
			Dur:        time.Second,
			Timeout:    5 * time.Second,
			MaxBacklog: 50000,
		}
		if p.IsQuick() {
			c.Rates = []int{1000, 4000, 16000}
			c.Warm, c.Dur = 100*time.Millisecond, 400*time.Millisecond
			c.ProfileDur = time.Second
		}
		e := c.Experiment()
		if p.Reps > httpReps {
			e.Reps, e.Warmup = httpReps, p.Warmup
		}
		return e
	},
	Report: report,
}
