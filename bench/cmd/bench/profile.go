package main

import (
	"time"

	"edgecollector/bench/httpbench"
	"edgecollector/bench/peer"
	"edgecollector/bench/storebench"
	"edgecollector/collector/store"
)

// A profile is a cell plan: which cells, how long each, how many times.
type profile struct {
	name       string
	reps       int
	warmup     int
	throughput storebench.Throughput
	contention storebench.Contention
	disjoint   storebench.Disjoint
	http       httpbench.Config
	peer       peer.Config
}

// experimentNames lists the experiments in the order a run runs them.
var experimentNames = []string{"throughput", "http", "contention", "disjoint", "peer"}

// collectorExperiments are the experiments that run the collector binary:
// a run that includes one builds it (or takes -collector).
var collectorExperiments = []string{"http", "peer"}

// profiles: full is the published run (at least 10 counted repetitions per
// cell, under 25 minutes on 2 cores); quick is a smoke run of the same
// pipeline in a few minutes. Both keep 6 or more counted repetitions so
// every median has a 95% confidence interval.
func profiles() map[string]profile {
	full := profile{
		name:   "full",
		reps:   10,
		warmup: 1,
		throughput: storebench.Throughput{
			Modes:     store.Modes,
			Control:   store.Serialized,
			Producers: []int{1, 4, 16, 64},
			Indexed:   []bool{false, true},
			Warm:      150 * time.Millisecond,
			Dur:       800 * time.Millisecond,
		},
		contention: storebench.Contention{
			Modes:          store.Modes,
			Producers:      16,
			CheckpointRows: 500,
			SeedRows:       300_000,
			Warm:           150 * time.Millisecond,
			Dur:            time.Second,
		},
		disjoint: storebench.Disjoint{
			Modes:         store.Modes,
			Writers:       8,
			RowsPerWriter: 1000,
			TxUpdates:     20,
			Warm:          150 * time.Millisecond,
			Dur:           800 * time.Millisecond,
		},
		http: httpbench.Config{
			Modes:      store.Modes,
			Conns:      16,
			Batches:    []int{1, 100},
			Rates:      []int{500, 1000, 2000, 4000, 8000, 16000},
			MaxWorkers: 512,
			Warm:       200 * time.Millisecond,
			Dur:        time.Second,
			Timeout:    5 * time.Second,
			MaxBacklog: 50000,
		},
		// Its own few, long repetitions: each cell starts a process and
		// waits for its backlog to drain (~7 min on 2 cores).
		peer: peer.Config{
			Systems:      peer.Systems,
			Conns:        16,
			Batches:      []int{1, 100},
			Warm:         500 * time.Millisecond,
			Dur:          3 * time.Second,
			Timeout:      5 * time.Second,
			DrainTimeout: 60 * time.Second,
			KillBatch:    100,
			KillAfter:    2 * time.Second,
			Reps:         6,
			Warmup:       1,
		},
	}
	quick := full
	quick.name = "quick"
	quick.reps, quick.warmup = 6, 1
	quick.throughput.Producers = []int{1, 16, 64}
	quick.throughput.Indexed = []bool{false}
	quick.throughput.Warm, quick.throughput.Dur = 100*time.Millisecond, 300*time.Millisecond
	quick.contention.SeedRows = 150_000
	quick.contention.Warm, quick.contention.Dur = 100*time.Millisecond, 400*time.Millisecond
	quick.disjoint.Warm, quick.disjoint.Dur = 100*time.Millisecond, 300*time.Millisecond
	quick.http.Batches = []int{1, 100}
	quick.http.Rates = []int{1000, 4000, 16000}
	quick.http.Warm, quick.http.Dur = 100*time.Millisecond, 400*time.Millisecond
	quick.peer.Warm, quick.peer.Dur = 200*time.Millisecond, time.Second
	quick.peer.KillAfter = time.Second
	quick.peer.DrainTimeout = 30 * time.Second
	quick.peer.Reps, quick.peer.Warmup = 3, 1
	return map[string]profile{"full": full, "quick": quick}
}
