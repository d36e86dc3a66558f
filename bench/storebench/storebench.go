// Package storebench holds the experiments that drive the collector's store
// in-process: throughput (durable inserts by N producers), contention
// (insert latency beside the uploader's wide checkpoint) and disjoint
// (writers that each own a row range).
package storebench

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"edgecollector/bench"
	"edgecollector/bench/record"
	"edgecollector/bench/stats"
	"edgecollector/collector"
	"edgecollector/collector/store"
)

// ControlSuffix marks the A/A control arm: the same mode run again as if it
// were another, so the noise floor of a ratio is visible.
const ControlSuffix = "-aa"

// Arm is one column of a comparison: a write mode, or the A/A control of one.
type Arm struct {
	Label string // "group", "serialized-aa"
	Mode  store.Mode
}

// Arms returns the arms for modes, with the A/A control of control (if not
// empty) last.
func Arms(modes []store.Mode, control store.Mode) []Arm {
	var arms []Arm
	for _, m := range modes {
		arms = append(arms, Arm{string(m), m})
	}
	if control != "" {
		arms = append(arms, Arm{string(control) + ControlSuffix, control})
	}
	return arms
}

// Throughput configures the throughput experiment.
type Throughput struct {
	DBDir     string // each cell gets a fresh directory under it
	Modes     []store.Mode
	Control   store.Mode // A/A arm beside the plain (unindexed) cells; "" for none
	Producers []int
	Indexed   []bool
	Warm, Dur time.Duration // per cell: a dropped ramp, then the measured window
	// MinOps, when set, holds each window open past Dur until every
	// producer has completed MinOps inserts in it: for tests (0: a fixed window).
	MinOps int
}

// Units of the experiments' values.
var (
	unitEvents     = record.Unit{Name: "events/s", Better: 1}
	unitP50Insert  = record.Unit{Name: "p50-ns/insert", Better: -1}
	unitP90Insert  = record.Unit{Name: "p90-ns/insert", Better: -1}
	unitP99Insert  = record.Unit{Name: "p99-ns/insert", Better: -1}
	unitMaxInsert  = record.Unit{Name: "max-ns/insert", Better: -1}
	unitJain       = record.Unit{Name: "jain-fairness", Better: 1}
	unitMinMax     = record.Unit{Name: "minmax-fairness", Better: 1}
	unitBusy       = record.Unit{Name: "busy-failures", Better: -1}
	unitPerCommit  = record.Unit{Name: "events/commit", Better: 0}
	unitCheckpoint = record.Unit{Name: "checkpoints/s", Better: 1}
	unitCkptRows   = record.Unit{Name: "rows/checkpoint", Better: 0}
	unitUpdates    = record.Unit{Name: "updates/s", Better: 1}
	unitConflicts  = record.Unit{Name: "conflicts", Better: -1}
	unitP50Tx      = record.Unit{Name: "p50-ns/tx", Better: -1}
	unitP99Tx      = record.Unit{Name: "p99-ns/tx", Better: -1}
	unitFailedTx   = record.Unit{Name: "failed-tx", Better: -1}
)

// Experiment returns the throughput experiment: for each index choice and
// producer count, every arm in turn.
func (t Throughput) Experiment() *bench.Experiment {
	control := ""
	if t.Control != "" {
		control = fmt.Sprintf(" and an A/A control (%s%s) on unindexed cells", t.Control, ControlSuffix)
	}
	e := &bench.Experiment{
		Name: "throughput",
		Plan: fmt.Sprintf("In-process store; modes %v%s; producers %v; indexed %v. "+
			"Each producer inserts one event per durable transaction in a closed loop. "+
			"Each cell: fresh database, %s ramp dropped, %s measured.",
			t.Modes, control, t.Producers, t.Indexed, t.Warm, t.Dur),
		Units: []record.Unit{unitEvents, unitP50Insert, unitP99Insert, unitJain, unitMinMax, unitBusy, unitPerCommit},
	}
	for _, indexed := range t.Indexed {
		for _, n := range t.Producers {
			control := t.Control
			if indexed {
				control = ""
			}
			for _, arm := range Arms(t.Modes, control) {
				e.Cells = append(e.Cells, bench.Cell{
					Name: "Throughput",
					Config: []record.KV{
						{Key: "mode", Value: arm.Label},
						{Key: "indexed", Value: strconv.FormatBool(indexed)},
						{Key: "producers", Value: strconv.Itoa(n)},
					},
					Cost: t.Warm + t.Dur + cellOverhead,
					Run:  t.run(arm.Mode, indexed, n),
				})
			}
		}
	}
	return e
}

// cellOverhead is the expected cost of a cell beyond its measured time:
// creating, checking and removing its database.
const cellOverhead = 150 * time.Millisecond

func (t Throughput) run(mode store.Mode, indexed bool, producers int) func(context.Context, bench.Rep) (bench.Sample, error) {
	return func(ctx context.Context, rep bench.Rep) (bench.Sample, error) {
		dir, err := os.MkdirTemp(t.DBDir, "throughput-*")
		if err != nil {
			return bench.Sample{}, err
		}
		defer os.RemoveAll(dir)
		st, err := store.Open(ctx, store.Options{Path: filepath.Join(dir, "events.db"), Mode: mode, Indexed: indexed})
		if err != nil {
			return bench.Sample{}, err
		}
		var seq [64]int // per producer; producers <= len(seq) is checked below
		if producers > len(seq) {
			st.Close()
			return bench.Sample{}, fmt.Errorf("at most %d producers", len(seq))
		}
		l := drive(ctx, producers, span{t.Warm, t.Dur, t.MinOps}, rep.Seed, nil, func(ctx context.Context, p int, rng *rand.Rand) error {
			seq[p]++
			_, err := st.Insert(ctx, []collector.Event{event(rng, p<<24|seq[p])})
			return err
		})
		if l.firstErr != nil {
			st.Close()
			return bench.Sample{}, l.firstErr
		}
		stored, err := countRows(ctx, st, `SELECT count(*) FROM events`)
		sst := st.Stats()
		if cerr := st.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return bench.Sample{}, err
		}
		s := bench.Sample{Iters: l.total()}
		if stored != l.ok {
			s.Problems = append(s.Problems, fmt.Sprintf("%d inserts acknowledged, %d rows in the database", l.ok, stored))
		}
		perProd := make([]float64, len(l.perProd))
		lo, hi := math.Inf(1), 0.0
		for i, c := range l.perProd {
			perProd[i] = float64(c)
			lo, hi = min(lo, float64(c)), max(hi, float64(c))
		}
		minmax := 0.0
		if hi > 0 {
			minmax = lo / hi
		}
		s.Values = []record.Value{
			{Value: round(float64(l.total())/l.window.Seconds(), 1), Unit: unitEvents.Name},
			{Value: float64(stats.Percentile(l.lat, 0.50)), Unit: unitP50Insert.Name},
			{Value: float64(stats.Percentile(l.lat, 0.99)), Unit: unitP99Insert.Name},
			{Value: round(stats.Jain(perProd), 4), Unit: unitJain.Name},
			{Value: round(minmax, 4), Unit: unitMinMax.Name},
			{Value: float64(l.busy), Unit: unitBusy.Name},
			{Value: round(sst.EventsPerCommit, 2), Unit: unitPerCommit.Name},
		}
		return s, nil
	}
}

func countRows(ctx context.Context, st *store.Store, query string) (int64, error) {
	var n int64
	if err := st.DB().QueryRowContext(ctx, query).Scan(&n); err != nil {
		return 0, fmt.Errorf("count rows: %w", err)
	}
	return n, nil
}

func round(x float64, places int) float64 {
	p := math.Pow(10, float64(places))
	return math.Round(x*p) / p
}
