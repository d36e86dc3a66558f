package fleet

import (
	"time"

	"edgecollector/bench"
)

// Spec is the fleet experiment. A cell starts a server and N processes, so
// it plans its own repetitions: 3 cells x 7 runs x ~9 s, about 3 minutes.
var Spec = &bench.Spec{
	Name:      "fleet",
	Collector: true,
	New: func(p bench.Profile, env bench.Env) *bench.Experiment {
		c := Config{
			Binary:     env.Collector,
			DBDir:      env.Scratch,
			Collectors: []int{1, 4, 8},
			Rate:       100, // requests/s per collector
			// 50 events per request: 5,000 events/s offered per collector, so 8
			// collectors offer more than 2 cores carry and the table shows where
			// the fleet tops out (at 10 per request every size kept up).
			Batch:       50,
			MaxInFlight: 32,
			Warm:        time.Second,
			Dur:         4 * time.Second,
			Reps:        6,
			Warmup:      1,
		}
		if p.IsQuick() {
			c.Collectors = []int{1, 4}
			c.Warm, c.Dur = 500*time.Millisecond, 1500*time.Millisecond
		}
		return c.Experiment()
	},
	Report: report,
}
