package httpbench

import (
	"testing"

	"github.com/google/pprof/profile"
)

// sample is a CPU sample of ns nanoseconds on a stack given root first, as
// one reads it.
func sample(ns int64, rootFirst ...string) *profile.Sample {
	s := &profile.Sample{Value: []int64{1, ns}}
	for i := len(rootFirst) - 1; i >= 0; i-- {
		s.Location = append(s.Location, &profile.Location{Line: []profile.Line{{Function: &profile.Function{Name: rootFirst[i]}}}})
	}
	return s
}

// Each sample lands in the part the collector's code on its stack says,
// GC assists first; the shares are fractions of the whole.
func TestCPUShares(t *testing.T) {
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "samples", Unit: "count"}, {Type: "cpu", Unit: "nanoseconds"}},
		Sample: []*profile.Sample{
			// net/http reading a request: http.
			sample(30, "net/http.(*conn).serve", "net/http.(*conn).readRequest", "internal/runtime/syscall/linux.Syscall6"),
			// The handler decoding, under net/http: handler.
			sample(10, "net/http.(*conn).serve", "edgecollector/collector/server.(*Server).handleEvents", "edgecollector/collector/server.(*decoder).events"),
			// The handler allocating and paying a GC assist: gc.
			sample(5, "net/http.(*conn).serve", "edgecollector/collector/server.(*Server).handleEvents", "runtime.mallocgc", "runtime.gcAssistAlloc"),
			// The committer in SQLite: store.
			sample(25, "edgecollector/collector/store.(*committer).run", "modernc.org/sqlite/lib._sqlite3VdbeExec"),
			// The uploader's mark, run by the committer: uploader.
			sample(10, "edgecollector/collector/store.(*committer).run", "edgecollector/collector/uploader.(*Uploader).Sync.func1", "modernc.org/sqlite/lib._sqlite3VdbeExec"),
			// The background mark worker: gc; the scheduler: runtime.
			sample(5, "runtime.gcBgMarkWorker", "runtime.gcDrain"),
			sample(10, "runtime.mcall", "runtime.schedule", "runtime.findRunnable"),
			// A stack with none of them: other.
			sample(5, "syscall.Syscall6"),
		},
	}
	vs, err := cpuShares(p)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	var sum float64
	for _, v := range vs {
		got[v.Unit] = v.Value
		sum += v.Value
	}
	for part, want := range map[string]float64{"http": .30, "handler": .10, "gc": .10, "store": .25, "uploader": .10, "runtime": .10, "other": .05} {
		if got[shareUnit(part)] != want {
			t.Errorf("%s: %v, want %v", part, got[shareUnit(part)], want)
		}
	}
	if sum < 0.9999 || sum > 1.0001 {
		t.Errorf("shares sum to %v", sum)
	}
	if len(vs) != len(shareUnits()) {
		t.Errorf("%d values, %d units", len(vs), len(shareUnits()))
	}
	if _, err := cpuShares(&profile.Profile{SampleType: []*profile.ValueType{{Type: "alloc_space", Unit: "bytes"}}}); err == nil {
		t.Error("a heap profile read as a CPU profile")
	}
}
