package fuzzbench

import (
	"context"
	"errors"
	"flag"
	"time"

	"edgecollector/bench"
	"edgecollector/internal/rig"
)

// fuzzTime is -fuzztime: each target's time, when set.
var fuzzTime time.Duration

// Spec is the fuzz experiment: each target once, for the profile's time
// (20 s full, 10 s quick) or -fuzztime.
var Spec = &bench.Spec{
	Name: "fuzz",
	Flags: func(fs *flag.FlagSet) {
		fuzzTime = 0
		fs.Func("fuzztime", "fuzz experiment: how long to fuzz each target (default: the profile's, 20s full, 10s quick)", func(s string) error {
			d, err := time.ParseDuration(s)
			if err == nil && d < 0 {
				err = errors.New("must not be negative")
			}
			fuzzTime = d
			return err
		})
	},
	New: func(p bench.Profile, _ bench.Env) *bench.Experiment {
		c := Default
		if p.IsQuick() {
			c.Time = 10 * time.Second
		}
		if fuzzTime > 0 {
			c.Time = fuzzTime
		}
		c.ModuleDir, _ = rig.ModuleRoot(context.Background()) // "" outside the module: the cells say so
		return c.Experiment()
	},
	Report: report,
}
