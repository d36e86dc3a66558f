package storage

import (
	"time"

	"edgecollector/bench"
	"edgecollector/bench/faultfs"
	"edgecollector/bench/peer"
	"edgecollector/collector/store"
)

// Spec is the storage-class experiment: 5 classes x (3 modes in-process + 3
// over HTTP) + the peer at two, 6 counted repetitions + 1 warm-up (~3 min on
// 2 cores); quick: 3 classes, 2 repetitions, no CI. It needs FUSE.
var Spec = &bench.Spec{
	Name:      "storage",
	Collector: true,
	Needs:     faultfs.Usable,
	New: func(p bench.Profile, env bench.Env) *bench.Experiment {
		c := Config{
			Binary: env.Collector, Peer: peer.Binary(), DBDir: env.Scratch,
			Modes: store.Modes, Classes: Classes, PeerClasses: []string{"disk", "emmc"}, Jitter: 0.2,
			Producers: 16, Conns: 16,
			Warm: 100 * time.Millisecond, Dur: 300 * time.Millisecond,
			HTTPWarm: 100 * time.Millisecond, HTTPDur: 400 * time.Millisecond,
			Reps: 6, Warmup: 1,
		}
		if p.IsQuick() {
			c.Classes = []Class{Classes[0], Classes[2], Classes[4]}
			c.PeerClasses = []string{"disk"}
			c.Reps, c.Warmup = 2, 0
		}
		return c.Experiment()
	},
	Report: report,
}
