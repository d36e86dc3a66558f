package storebench

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"edgecollector/bench"
	"edgecollector/bench/record"
	"edgecollector/collector/store"
)

// runAll runs every cell of e once, as a counted repetition, and checks the
// cell's own correctness check passed and that it measured something.
func runAll(t *testing.T, e *bench.Experiment, must ...string) {
	t.Helper()
	defer func() {
		if e.Close != nil {
			if err := e.Close(); err != nil {
				t.Error(err)
			}
		}
	}()
	for i, c := range e.Cells {
		s, err := c.Run(context.Background(), bench.Rep{Index: 1, Seed: uint64(i)})
		if err != nil {
			t.Fatalf("%s %s: %v", c.Name, c.Label(), err)
		}
		if len(s.Problems) > 0 {
			t.Errorf("%s %s: correctness: %v", c.Name, c.Label(), s.Problems)
		}
		if s.Iters == 0 {
			t.Errorf("%s %s: measured nothing", c.Name, c.Label())
		}
		for _, u := range must {
			if v, ok := (&record.Point{Values: s.Values}).Value(u); !ok || v <= 0 {
				t.Errorf("%s %s: %s = %v (present %v), want > 0", c.Name, c.Label(), u, v, ok)
			}
		}
	}
}

// The windows are short, and each is held open until every producer has
// completed minOps operations in it: a condition, not a clock, so a loaded
// machine (a parallel go test on 2 cores, fsyncs of hundreds of ms) only
// makes them longer.
const (
	warm   = 20 * time.Millisecond
	dur    = 20 * time.Millisecond
	minOps = 3
)

func TestThroughput(t *testing.T) {
	e := Throughput{
		DBDir: t.TempDir(), Modes: store.Modes, Control: store.Serialized,
		Producers: []int{4}, Indexed: []bool{false, true}, Warm: warm, Dur: dur, MinOps: minOps,
	}.Experiment()
	// 3 modes x 2 index choices, plus the A/A arm on the unindexed cell.
	if got, want := len(e.Cells), 7; got != want {
		t.Fatalf("%d cells, want %d", got, want)
	}
	if got := e.Cells[3].Label(); got != "mode=serialized-aa indexed=false producers=4" {
		t.Errorf("A/A cell = %q", got)
	}
	runAll(t, e, "events/s", "p50-ns/insert", "jain-fairness")
}

func TestContention(t *testing.T) {
	e := Contention{
		DBDir: t.TempDir(), Modes: store.Modes, Producers: 4,
		// SQLite's busy handler sleeps up to 100 ms at a time, so in
		// concurrent mode a looping checkpoint can starve every insert for a
		// while (a real effect, measured by the full run): minOps holds the
		// window open until the inserts got through.
		CheckpointRows: 50, SeedRows: 2000, Warm: warm, Dur: dur, MinOps: minOps,
	}.Experiment()
	// Not checkpoints/s: in a window this short, under the race detector,
	// concurrent mode's busy handler can starve the checkpoint entirely.
	runAll(t, e, "p99-ns/insert", "events/s")
}

func TestDisjoint(t *testing.T) {
	e := Disjoint{
		DBDir: t.TempDir(), Modes: store.Modes,
		Writers: 4, RowsPerWriter: 50, TxUpdates: 20, Warm: warm, Dur: dur, MinOps: minOps,
	}.Experiment()
	runAll(t, e, "updates/s", "p50-ns/tx")
}

// A window shorter than an operation measures nothing; held open by
// minOps, it measures every producer. That is what made TestThroughput's
// fixed 80 ms window fail under a parallel go test (an fsync slower than the
// window), deterministic here with a slow op.
func TestDriveHoldsWindowForMinOps(t *testing.T) {
	slow := func(ctx context.Context, p int, rng *rand.Rand) error {
		time.Sleep(30 * time.Millisecond)
		return nil
	}
	fixed := drive(context.Background(), 3, span{dur: 5 * time.Millisecond}, 1, nil, slow)
	if n := fixed.total(); n > 3 {
		t.Errorf("a 5 ms window measured %d 30 ms operations", n)
	}
	held := drive(context.Background(), 3, span{dur: 5 * time.Millisecond, minOps: 2}, 1, nil, slow)
	for p, n := range held.perProd {
		if n < 2 {
			t.Errorf("producer %d: %d operations in the held window, want 2 or more", p, n)
		}
	}
	if held.window < 60*time.Millisecond {
		t.Errorf("held window %s, shorter than two operations", held.window)
	}
}
