package storebench

import (
	"time"

	"edgecollector/bench"
	"edgecollector/collector/store"
)

// ThroughputSpec is the throughput experiment. In the full run it counts 6
// repetitions, not 10: its paired ratios are narrow at 10 (the A/A control
// within about ±5-10%), and 6, the fewest that give a CI, make room for
// powercut and storage in the 30 minutes.
var ThroughputSpec = &bench.Spec{
	Name: "throughput",
	New: func(p bench.Profile, env bench.Env) *bench.Experiment {
		t := ThroughputFor(p)
		t.DBDir = env.Scratch
		e := t.Experiment()
		if p.Reps > throughputReps {
			e.Reps, e.Warmup = throughputReps, p.Warmup
		}
		return e
	},
	Report: throughputReport,
}

// throughputReps caps the throughput experiment's counted repetitions.
const throughputReps = 6

// ThroughputFor is the throughput experiment's plan in profile p (bench
// gate runs some of the quick one's cells).
func ThroughputFor(p bench.Profile) Throughput {
	t := Throughput{
		Modes:     store.Modes,
		Control:   store.Serialized,
		Producers: []int{1, 16, 64}, // 4 dropped to make room for the power-cut, storage and sustained experiments
		Indexed:   []bool{false, true},
		Warm:      150 * time.Millisecond,
		Dur:       800 * time.Millisecond,
	}
	if p.IsQuick() {
		t.Producers = []int{1, 16, 64}
		t.Indexed = []bool{false}
		t.Warm, t.Dur = 100*time.Millisecond, 300*time.Millisecond
	}
	return t
}

// ContentionSpec is the contention experiment.
var ContentionSpec = &bench.Spec{
	Name: "contention",
	New: func(p bench.Profile, env bench.Env) *bench.Experiment {
		c := Contention{
			DBDir:          env.Scratch,
			Modes:          store.Modes,
			Producers:      16,
			CheckpointRows: 500,
			SeedRows:       300_000,
			Warm:           150 * time.Millisecond,
			Dur:            time.Second,
		}
		if p.IsQuick() {
			c.SeedRows = 150_000
			c.Warm, c.Dur = 100*time.Millisecond, 400*time.Millisecond
		}
		return c.Experiment()
	},
	Report: contentionReport,
}

// DisjointSpec is the disjoint experiment.
var DisjointSpec = &bench.Spec{
	Name: "disjoint",
	New: func(p bench.Profile, env bench.Env) *bench.Experiment {
		d := Disjoint{
			DBDir:         env.Scratch,
			Modes:         store.Modes,
			Writers:       8,
			RowsPerWriter: 1000,
			TxUpdates:     20,
			Warm:          150 * time.Millisecond,
			Dur:           800 * time.Millisecond,
		}
		if p.IsQuick() {
			d.Warm, d.Dur = 100*time.Millisecond, 300*time.Millisecond
		}
		return d.Experiment()
	},
	Report: disjointReport,
}
