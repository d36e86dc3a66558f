package torture

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"edgecollector/bench"
	"edgecollector/bench/faultfs"
	"edgecollector/bench/record"
	"edgecollector/collector/store"
	"edgecollector/internal/rig"
)

func TestMain(m *testing.M) {
	if child, err := faultfs.ChildMain(); child { // a powercut test's mount
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	rig.Main(m)
}

func value(t *testing.T, s bench.Sample, unit string) float64 {
	t.Helper()
	p := record.Point{Values: s.Values}
	v, ok := p.Value(unit)
	if !ok {
		t.Fatalf("no %s in %v", unit, s.Values)
	}
	return v
}

// TestTortureCell kills the real collector three times under load, once in
// each way, and holds it to the ledger.
func TestTortureCell(t *testing.T) {
	bin := rig.Binary(t)
	e := Config{
		Binary: bin, DBDir: t.TempDir(), Modes: []store.Mode{store.Group},
		Kills: 3, MinUp: 150 * time.Millisecond, MaxUp: 400 * time.Millisecond,
		Load: LoadConfig{Singles: 2, Batchers: 1, Batch: 100, RetryCap: time.Second},
	}.Experiment()
	defer func() {
		if err := e.Close(); err != nil {
			t.Error(err)
		}
	}()
	s, err := e.Cells[0].Run(context.Background(), bench.Rep{Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range s.Problems {
		t.Error(p)
	}
	if got := value(t, s, "kills"); got != 3 {
		t.Errorf("kills = %v, want 3", got)
	}
	if got := value(t, s, "lost-events"); got != 0 {
		t.Errorf("lost-events = %v", got)
	}
	if got := value(t, s, "acked-events"); got < 100 {
		t.Errorf("acked-events = %v, want at least 100", got)
	}
	if got := value(t, s, "kills-in-upload"); got < 1 {
		t.Errorf("kills-in-upload = %v: no kill landed between ship and mark", got)
	}
	// The in-flight kill leaves a batch delivered and unmarked: re-shipped.
	if got := value(t, s, "duplicate-deliveries"); got < 1 {
		t.Errorf("duplicate-deliveries = %v, want some after a kill with a batch in flight", got)
	}
	t.Logf("%v", s.Values)
}

// TestSoakCell runs a short outage against the real collector: the backlog
// reaches its cap, producers get 503s, /healthz says why, the sink
// recovers, the backlog drains, and the ledger holds.
func TestSoakCell(t *testing.T) {
	bin := rig.Binary(t)
	e := Soak{
		Binary: bin, DBDir: t.TempDir(), Modes: []store.Mode{store.Concurrent},
		MaxBacklog: 2000, Outage: 4 * time.Second, Phase: time.Second, SinkTimeout: 500 * time.Millisecond,
		MaxRSS: 512 << 20,
		Load:   LoadConfig{Singles: 2, Batchers: 1, Batch: 100, RetryCap: time.Second},
	}.Experiment()
	defer func() {
		if err := e.Close(); err != nil {
			t.Error(err)
		}
	}()
	s, err := e.Cells[0].Run(context.Background(), bench.Rep{Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range s.Problems {
		t.Error(p)
	}
	if got := value(t, s, "peak-backlog"); got < 2000 {
		t.Errorf("peak-backlog = %v, want at least the cap", got)
	}
	if got := value(t, s, "rejected-503"); got < 1 {
		t.Errorf("rejected-503 = %v", got)
	}
	if got := value(t, s, "lost-events"); got != 0 {
		t.Errorf("lost-events = %v", got)
	}
	t.Logf("%v", s.Values)
}
