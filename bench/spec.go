package bench

import (
	"flag"

	"edgecollector/bench/reportgen"
)

// Spec is one experiment as the harness and the report know it: its name,
// how it plans and runs its cells per profile, and what it adds to the
// report. An experiment's package exports its spec; bench/experiments
// lists them in order, and `bench run`, the dry run and the report iterate
// over that list.
type Spec struct {
	// Name is the experiment's name on the command line and its results
	// file's (<name>.txt).
	Name string
	// Collector is set when the experiment runs the collector binary: a run
	// that includes it builds the binary, or takes -collector.
	Collector bool
	// Flags registers the experiment's own flags of `bench run`; may be nil.
	Flags func(*flag.FlagSet)
	// Check runs before the machine checks and the builds, so that a
	// missing prerequisite stops a run at once, not minutes into it; may be nil.
	Check func() error
	// Needs, when set, says whether this machine can run the experiment at
	// all (FUSE, say): where it cannot, a run of every experiment leaves
	// it out, saying why, and a run that names it fails.
	Needs func() error
	// New returns the experiment for a profile: its cells, their planned
	// cost, how each runs.
	New func(Profile, Env) *Experiment
	// Report is what the experiment adds to the report (Exp is set from Name).
	Report reportgen.Part
}

// Part is the spec's part of the report.
func (s *Spec) Part() reportgen.Part {
	p := s.Report
	p.Exp = s.Name
	return p
}

// Profile is a run's plan: the published full run, or a quick smoke run of
// the same pipeline. Experiments size their cells by it; Reps and Warmup are
// the repetitions of those that do not plan their own.
type Profile struct {
	Name         string
	Reps, Warmup int
}

var (
	// Full is the published run: at least 10 counted repetitions per cell,
	// about 27 minutes on 2 cores.
	Full = Profile{Name: "full", Reps: 10, Warmup: 1}
	// Quick is a smoke run of the same pipeline in a few minutes. It keeps 6
	// counted repetitions, so every median still has a 95% interval.
	Quick = Profile{Name: "quick", Reps: 6, Warmup: 1}
)

// IsQuick reports whether p is the quick profile, whatever its repetitions
// (-reps and -warmup change those, not the cells).
func (p Profile) IsQuick() bool { return p.Name == Quick.Name }

// Env is what a run gives its experiments.
type Env struct {
	// Scratch is a directory on the filesystem being measured, for the
	// cells' databases and files; the run removes it.
	Scratch string
	// Collector is the collector binary, for the specs that set Collector.
	Collector string
}
