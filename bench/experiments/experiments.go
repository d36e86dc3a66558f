// Package experiments is the registry of the harness's experiments: each
// exports a bench.Spec from its own package, and All lists them in the
// order a run runs them and the report shows them. `bench run`, its dry
// run and `bench report` iterate over All; adding an experiment is adding
// its package and one line here.
package experiments

import (
	"slices"

	"edgecollector/bench"
	"edgecollector/bench/fleet"
	"edgecollector/bench/fuzzbench"
	"edgecollector/bench/httpbench"
	"edgecollector/bench/peer"
	"edgecollector/bench/reportgen"
	"edgecollector/bench/storage"
	"edgecollector/bench/storebench"
	"edgecollector/bench/torture"
)

// All are the experiments, in order.
var All = []*bench.Spec{
	storebench.ThroughputSpec,
	httpbench.Spec,
	storebench.ContentionSpec,
	storebench.DisjointSpec,
	torture.TortureSpec,
	torture.SoakSpec,
	fuzzbench.Spec,
	fleet.Spec,
	peer.Spec,
	peer.SustainedSpec,
	torture.PowercutSpec,
	storage.Spec,
}

// Names are the experiments' names, in order.
func Names() []string {
	names := make([]string, len(All))
	for i, s := range All {
		names[i] = s.Name
	}
	return names
}

// Lookup returns the experiment called name, or nil.
func Lookup(name string) *bench.Spec {
	if i := slices.IndexFunc(All, func(s *bench.Spec) bool { return s.Name == name }); i >= 0 {
		return All[i]
	}
	return nil
}

// Parts are what the experiments add to the report, in order.
func Parts() []reportgen.Part {
	parts := make([]reportgen.Part, len(All))
	for i, s := range All {
		parts[i] = s.Part()
	}
	return parts
}
