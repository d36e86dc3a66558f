package torture

import (
	"time"

	"edgecollector/bench"
	"edgecollector/bench/faultfs"
	"edgecollector/bench/peer"
	"edgecollector/collector/store"
)

// TortureSpec is the crash torture. It plans its own repetitions: 5 x 6 =
// 30 kills per mode (~1.5 min on 2 cores).
var TortureSpec = &bench.Spec{
	Name:      "torture",
	Collector: true,
	New: func(p bench.Profile, env bench.Env) *bench.Experiment {
		c := Config{
			Binary: env.Collector,
			DBDir:  env.Scratch,
			Modes:  store.Modes,
			Reps:   5,
			Kills:  6,
			MinUp:  300 * time.Millisecond,
			MaxUp:  1200 * time.Millisecond,
			Load:   DefaultLoad,
		}
		if p.IsQuick() {
			c.Reps, c.Kills = 1, 4
			c.MinUp, c.MaxUp = 200*time.Millisecond, 600*time.Millisecond
		}
		return c.Experiment()
	},
	Report: tortureReport,
}

// SoakSpec is the sink outage soak: a 60 s outage per mode (~3.5 min).
var SoakSpec = &bench.Spec{
	Name:      "soak",
	Collector: true,
	New: func(p bench.Profile, env bench.Env) *bench.Experiment {
		s := Soak{
			Binary:      env.Collector,
			DBDir:       env.Scratch,
			Modes:       store.Modes,
			Reps:        1,
			MaxBacklog:  20000,
			Outage:      60 * time.Second,
			Phase:       5 * time.Second,
			SinkTimeout: time.Second,
			MaxRSS:      256 << 20,
			Load:        DefaultLoad,
		}
		if p.IsQuick() {
			s.MaxBacklog = 5000
			s.Outage, s.Phase = 10*time.Second, 1250*time.Millisecond
		}
		return s.Experiment()
	},
	Report: soakReport,
}

// PowercutSpec is the power-cut experiment: 5 x 10 = 50 cuts per mode,
// 5 x 4 for the negative control, 5 of each peer system when -peer is
// there (~4 min on 2 cores). It needs FUSE (root and /dev/fuse).
var PowercutSpec = &bench.Spec{
	Name:      "powercut",
	Collector: true,
	Needs:     faultfs.Usable,
	New: func(p bench.Profile, env bench.Env) *bench.Experiment {
		c := Powercut{
			Binary: env.Collector, Peer: peer.Binary(), DBDir: env.Scratch,
			Modes: store.Modes, Reps: 5, Cuts: 10, ControlCuts: 4,
			MinUp: 200 * time.Millisecond, MaxUp: 700 * time.Millisecond,
			Torn: true, Load: DefaultLoad,
			PeerConns: 16, PeerBatch: 100, PeerKillAfter: 1500 * time.Millisecond,
		}
		if p.IsQuick() {
			c.Reps, c.Cuts, c.ControlCuts = 1, 3, 3
			c.MinUp, c.MaxUp = 150*time.Millisecond, 400*time.Millisecond
			c.PeerKillAfter = 700 * time.Millisecond
		}
		return c.Experiment()
	},
	Report: powercutReport,
}
