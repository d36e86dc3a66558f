package main

import (
	"time"

	"edgecollector/bench/fleet"
	"edgecollector/bench/fuzzbench"
	"edgecollector/bench/httpbench"
	"edgecollector/bench/peer"
	"edgecollector/bench/storage"
	"edgecollector/bench/storebench"
	"edgecollector/bench/torture"
	"edgecollector/collector/store"
)

// A profile is a cell plan: which cells, how long each, how many times.
type profile struct {
	name       string
	reps       int
	warmup     int
	throughput storebench.Throughput
	// throughputReps, when set, are the throughput experiment's own
	// counted repetitions (with the run's warm-up).
	throughputReps int
	contention     storebench.Contention
	disjoint       storebench.Disjoint
	http           httpbench.Config
	torture        torture.Config
	soak           torture.Soak
	fuzz           fuzzbench.Config
	fleet          fleet.Config
	peer           peer.Config
	powercut       torture.Powercut
	storage        storage.Config
}

// experimentNames lists the experiments in the order a run runs them.
var experimentNames = []string{"throughput", "http", "contention", "disjoint", "torture", "soak", "fuzz", "fleet", "peer", "powercut", "storage"}

// collectorExperiments are the experiments that run the collector binary:
// a run that includes one builds it (or takes -collector).
var collectorExperiments = []string{"http", "torture", "soak", "fleet", "peer", "powercut", "storage"}

// fuseExperiments need a faultfs mount (root and /dev/fuse): a run of
// every experiment leaves them out, saying so, where FUSE is unusable.
var fuseExperiments = []string{"powercut", "storage"}

// profiles: full is the published run (10 counted repetitions per cell
// unless an experiment plans its own: throughput 6, whose ratios are
// narrow; about 32 minutes on 2 cores); quick is a smoke run of the same
// pipeline in a few minutes. Both keep 6 or more counted repetitions where
// medians are compared, so every median has a 95% confidence interval.
func profiles() map[string]profile {
	full := profile{
		name:   "full",
		reps:   10,
		warmup: 1,
		// Throughput's paired ratios are narrow at 10 repetitions (the A/A
		// control within about ±5-10%): 6, the fewest that give a CI, keep
		// them and make room for powercut and storage in the 30 minutes.
		throughputReps: 6,
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
		// The reliability experiments plan their own repetitions: 5 x 6 = 30
		// kills per mode (~1.5 min on 2 cores), a 60 s outage per mode (~3.5 min).
		torture: torture.Config{
			Modes: store.Modes,
			Reps:  5,
			Kills: 6,
			MinUp: 300 * time.Millisecond,
			MaxUp: 1200 * time.Millisecond,
			Load:  torture.DefaultLoad,
		},
		soak: torture.Soak{
			Modes:       store.Modes,
			Reps:        1,
			MaxBacklog:  20000,
			Outage:      60 * time.Second,
			Phase:       5 * time.Second,
			SinkTimeout: time.Second,
			MaxRSS:      256 << 20,
			Load:        torture.DefaultLoad,
		},
		fuzz: fuzzbench.Default,
		// Its own few, long repetitions: each cell starts a process and
		// waits for its backlog to drain (~6.5 min on 2 cores).
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
	// fleet: a cell starts a server and N processes, so it plans its own
	// repetitions: 3 cells x 7 runs x ~10 s, about 4 minutes.
	full.fleet = fleet.Config{
		Collectors: []int{1, 4, 8},
		Rate:       100, // requests/s per collector
		// 50 events per request: 5,000 events/s offered per collector, so 8
		// collectors offer more than 2 cores carry and the table shows where
		// the fleet tops out (at 10 per request every size kept up).
		Batch:       50,
		MaxInFlight: 32,
		Warm:        time.Second,
		Dur:         5 * time.Second,
		Reps:        6,
		Warmup:      1,
	}
	// powercut: 5 x 10 = 50 cuts per mode, 5 x 4 for the negative control,
	// 5 of each peer system (~4 min on 2 cores).
	full.powercut = torture.Powercut{
		Modes: store.Modes, Reps: 5, Cuts: 10, ControlCuts: 4,
		MinUp: 200 * time.Millisecond, MaxUp: 700 * time.Millisecond,
		Torn: true, Load: torture.DefaultLoad,
		PeerConns: 16, PeerBatch: 100, PeerKillAfter: 1500 * time.Millisecond,
	}
	// storage: 5 classes x (3 modes in-process + 3 over HTTP) + the peer at
	// two, 6 counted repetitions + 1 warm-up (~3 min on 2 cores).
	full.storage = storage.Config{
		Modes: store.Modes, Classes: storage.Classes, PeerClasses: []string{"disk", "emmc"}, Jitter: 0.2,
		Producers: 16, Conns: 16,
		Warm: 100 * time.Millisecond, Dur: 300 * time.Millisecond,
		HTTPWarm: 100 * time.Millisecond, HTTPDur: 400 * time.Millisecond,
		Reps: 6, Warmup: 1,
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
	quick.torture.Reps, quick.torture.Kills = 1, 4
	quick.torture.MinUp, quick.torture.MaxUp = 200*time.Millisecond, 600*time.Millisecond
	quick.soak.MaxBacklog = 5000
	quick.soak.Outage, quick.soak.Phase = 10*time.Second, 1250*time.Millisecond
	quick.fuzz.Time = 10 * time.Second
	quick.fleet.Collectors = []int{1, 4}
	quick.fleet.Warm, quick.fleet.Dur = 500*time.Millisecond, 1500*time.Millisecond
	quick.peer.Warm, quick.peer.Dur = 200*time.Millisecond, time.Second
	quick.peer.KillAfter = time.Second
	quick.peer.DrainTimeout = 30 * time.Second
	quick.peer.Reps, quick.peer.Warmup = 3, 1
	quick.powercut.Reps, quick.powercut.Cuts, quick.powercut.ControlCuts = 1, 3, 3
	quick.powercut.MinUp, quick.powercut.MaxUp = 150*time.Millisecond, 400*time.Millisecond
	quick.powercut.PeerKillAfter = 700 * time.Millisecond
	quick.storage.Classes = []storage.Class{storage.Classes[0], storage.Classes[2], storage.Classes[4]}
	quick.storage.PeerClasses = []string{"disk"}
	quick.storage.Reps, quick.storage.Warmup = 2, 0
	return map[string]profile{"full": full, "quick": quick}
}
