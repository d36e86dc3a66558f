package bench

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"edgecollector/bench/record"
)

// fakeExperiment records the order its cells run in.
func fakeExperiment(order *[]string, problemAt int) *Experiment {
	e := &Experiment{Name: "fake", Units: []record.Unit{{Name: "ops/s", Better: 1}}}
	for _, m := range []string{"A", "B", "C"} {
		e.Cells = append(e.Cells, Cell{
			Name:   "Fake",
			Config: []record.KV{{Key: "mode", Value: m}},
			Cost:   time.Millisecond,
			Run: func(ctx context.Context, rep Rep) (Sample, error) {
				*order = append(*order, m)
				s := Sample{Iters: 1, Values: []record.Value{{Value: float64(rep.Index), Unit: "ops/s"}}}
				if m == "B" && rep.Index == problemAt {
					s.Problems = []string{"1 acknowledged, 0 stored"}
				}
				return s, nil
			},
		})
	}
	return e
}

func newRunner(t *testing.T) *Runner {
	return &Runner{
		Dir:      t.TempDir(),
		Meta:     &record.Meta{MachineID: "test"},
		Reps:     3,
		Warmup:   1,
		Seed:     7,
		Progress: NewProgress(&bytes.Buffer{}, 12, 12*time.Millisecond),
	}
}

func TestRunnerInterleavesAndDropsWarmup(t *testing.T) {
	var order []string
	r := newRunner(t)
	if err := r.Run(context.Background(), []*Experiment{fakeExperiment(&order, -1)}); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(order, ""), "ABCABCABCABC"; got != want {
		t.Errorf("run order %s, want %s", got, want)
	}
	run, err := record.ReadRun(r.Dir)
	if err != nil {
		t.Fatal(err)
	}
	f := run.Files["fake"]
	// Repetition 0 was the warm-up: only 1, 2, 3 are counted.
	if got, want := f.Sample("Fake", "ops/s", record.KV{Key: "mode", Value: "B"}), []float64{1, 2, 3}; len(got) != 3 || got[0] != want[0] || got[2] != want[2] {
		t.Errorf("B's counted values = %v, want %v", got, want)
	}
	if !run.Meta.Run.Complete || run.Meta.Run.Reps != 3 || run.Meta.Run.Warmup != 1 || run.Meta.Run.Seed != 7 {
		t.Errorf("meta run = %+v", run.Meta.Run)
	}
}

func TestRunnerReportsProblems(t *testing.T) {
	var order []string
	r := newRunner(t)
	err := r.Run(context.Background(), []*Experiment{fakeExperiment(&order, 2)})
	if err == nil || !strings.Contains(err.Error(), "correctness") {
		t.Fatalf("Run = %v, want a correctness error", err)
	}
	// The run went on to the end, and the failure is in machine.json.
	if len(order) != 12 {
		t.Errorf("ran %d cells, want all 12", len(order))
	}
	run, rerr := record.ReadRun(r.Dir)
	if rerr != nil {
		t.Fatal(rerr)
	}
	if len(run.Meta.Failures) != 1 || !strings.Contains(run.Meta.Failures[0], "mode=B") {
		t.Errorf("failures = %v", run.Meta.Failures)
	}
}

func TestRunnerStopsOnError(t *testing.T) {
	r := newRunner(t)
	boom := errors.New("boom")
	e := &Experiment{Name: "bad", Cells: []Cell{{Name: "Bad", Run: func(context.Context, Rep) (Sample, error) { return Sample{}, boom }}}}
	if err := r.Run(context.Background(), []*Experiment{e}); !errors.Is(err, boom) {
		t.Errorf("Run = %v, want boom", err)
	}
	if r.Meta.Run.Complete {
		t.Error("a failed run is marked complete")
	}
}

func TestCellSeed(t *testing.T) {
	a, b := cellSeed(1, "throughput", 0, 0), cellSeed(1, "throughput", 0, 1)
	if a == b {
		t.Error("repetitions share a seed")
	}
	if a != cellSeed(1, "throughput", 0, 0) {
		t.Error("seed is not deterministic")
	}
	if a == cellSeed(2, "throughput", 0, 0) {
		t.Error("the run's seed does not matter")
	}
}

func TestRunnerExperimentOwnReps(t *testing.T) {
	var order []string
	r := newRunner(t)
	e := fakeExperiment(&order, -1)
	e.Reps, e.Warmup = 2, 0
	if runs, _ := Budget([]*Experiment{e}, r.Reps, r.Warmup); runs != 6 {
		t.Errorf("Plan: %d cell runs, want 6 (2 repetitions, no warm-up, 3 cells)", runs)
	}
	if err := r.Run(context.Background(), []*Experiment{e}); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(order, ""), "ABCABC"; got != want {
		t.Errorf("run order %s, want %s", got, want)
	}
	run, err := record.ReadRun(r.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(run.Files["fake"].Points); n != 6 {
		t.Errorf("%d points counted, want 6", n)
	}
	if got := run.Meta.Run.ExperimentReps["fake"]; got != [2]int{2, 0} {
		t.Errorf("machine.json experiment_reps = %v, want [2 0]", got)
	}
}
