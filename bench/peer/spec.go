package peer

import (
	"flag"
	"fmt"
	"time"

	"edgecollector/bench"
)

// peerBin is -peer: the peer binary.
var peerBin string

// Binary is the peer binary -peer names, for the experiments that run the
// peer beside their own cells (powercut, storage): "" when it is not there.
func Binary() string {
	if CheckPeer(peerBin) != nil {
		return ""
	}
	return peerBin
}

// Spec is the peer experiment. Each cell starts a process and waits for its
// backlog to drain, so it plans its own few, long repetitions (~6.5 min on
// 2 cores).
var Spec = &bench.Spec{
	Name:      "peer",
	Collector: true,
	Flags: func(fs *flag.FlagSet) {
		fs.StringVar(&peerBin, "peer", "bin/otelcol-peer", "OpenTelemetry Collector `binary` for the peer experiment (make peer builds it)")
	},
	Check: func() error {
		if err := CheckPeer(peerBin); err != nil {
			return fmt.Errorf("-peer %s: %w (or skip it: -skip peer, make reproduce SKIP=peer)", peerBin, err)
		}
		return nil
	},
	New: func(p bench.Profile, env bench.Env) *bench.Experiment {
		c := Config{
			Collector:    env.Collector,
			Peer:         peerBin,
			Dir:          env.Scratch,
			Systems:      Systems,
			Conns:        16,
			Batches:      []int{1, 100},
			Warm:         500 * time.Millisecond,
			Dur:          2 * time.Second, // 3 s before sustained took the long windows
			Timeout:      5 * time.Second,
			DrainTimeout: 60 * time.Second,
			KillBatch:    100,
			KillAfter:    2 * time.Second,
			Reps:         6,
			Warmup:       1,
		}
		if p.IsQuick() {
			c.Warm, c.Dur = 200*time.Millisecond, time.Second
			c.KillAfter = time.Second
			c.DrainTimeout = 30 * time.Second
			c.Reps, c.Warmup = 3, 1
		}
		return c.Experiment()
	},
	Report: report,
}
