package storebench

import (
	"context"
	"database/sql"
	"fmt"
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

// Disjoint configures the disjoint experiment: Writers writers, each owning
// RowsPerWriter rows, each transaction updating TxUpdates of its own rows,
// so no two transactions touch the same row: the textbook best case for
// concurrent transactions. Every transaction goes through store.Write, so
// each mode runs exactly as in the collector: serialized under the mutex,
// concurrent on a pool of Writers connections, group in the next group
// commit (one fsync for all the transactions queued), with the store's
// retries.
type Disjoint struct {
	DBDir         string
	Modes         []store.Mode
	Writers       int
	RowsPerWriter int
	TxUpdates     int
	Warm, Dur     time.Duration
	MinOps        int // as Throughput's
}

// Experiment returns the disjoint experiment: one cell per mode.
func (d Disjoint) Experiment() *bench.Experiment {
	e := &bench.Experiment{
		Name: "disjoint",
		Plan: fmt.Sprintf("Modes %v through store.Write; %d writers each own %d rows and update %d of them per transaction "+
			"(serialized: one connection under a mutex; concurrent: a pool of %d connections, BEGIN IMMEDIATE, busy errors retried; "+
			"group: the transactions queued share one commit). Each cell: fresh database, %s ramp dropped, %s measured.",
			d.Modes, d.Writers, d.RowsPerWriter, d.TxUpdates, d.Writers, d.Warm, d.Dur),
		Units: []record.Unit{unitUpdates, unitConflicts, unitP50Tx, unitP99Tx, unitJain, unitFailedTx},
	}
	for _, m := range d.Modes {
		e.Cells = append(e.Cells, bench.Cell{
			Name: "Disjoint",
			Config: []record.KV{
				{Key: "mode", Value: string(m)},
				{Key: "writers", Value: strconv.Itoa(d.Writers)},
				{Key: "tx-updates", Value: strconv.Itoa(d.TxUpdates)},
			},
			Cost: d.Warm + d.Dur + cellOverhead + 100*time.Millisecond,
			Run:  d.run(m),
		})
	}
	return e
}

func (d *Disjoint) run(mode store.Mode) func(context.Context, bench.Rep) (bench.Sample, error) {
	return func(ctx context.Context, rep bench.Rep) (bench.Sample, error) {
		dir, err := os.MkdirTemp(d.DBDir, "disjoint-*")
		if err != nil {
			return bench.Sample{}, err
		}
		defer os.RemoveAll(dir)
		path := filepath.Join(dir, "events.db")
		ids, err := d.seed(ctx, path, rep.Seed)
		if err != nil {
			return bench.Sample{}, fmt.Errorf("seed: %w", err)
		}
		st, err := store.Open(ctx, store.Options{Path: path, Mode: mode, MaxConns: d.Writers})
		if err != nil {
			return bench.Sample{}, err
		}
		defer st.Close()
		next := make([]int, d.Writers) // each writer's position in its range; -1: not yet drawn
		for i := range next {
			next[i] = -1
		}
		l := drive(ctx, d.Writers, span{d.Warm, d.Dur, d.MinOps}, rep.Seed, nil, func(ctx context.Context, w int, rng *rand.Rand) error {
			own := ids[w*d.RowsPerWriter : (w+1)*d.RowsPerWriter]
			if next[w] < 0 {
				next[w] = rng.IntN(len(own))
			}
			pos := next[w]
			err := st.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
				for i := range d.TxUpdates {
					if _, err := tx.ExecContext(ctx, `UPDATE events SET ts = ts + 1 WHERE id = ?`, own[(pos+i)%len(own)]); err != nil {
						return err
					}
				}
				return nil
			})
			if err == nil {
				next[w] = (pos + d.TxUpdates) % len(own)
			}
			return err
		})
		if l.firstErr != nil {
			return bench.Sample{}, l.firstErr
		}
		var sum int64
		conflicts := st.Stats().Conflicts
		if err := st.DB().QueryRowContext(ctx, `SELECT coalesce(sum(ts), 0) FROM events`).Scan(&sum); err != nil {
			return bench.Sample{}, err
		}
		s := bench.Sample{Iters: l.total()}
		if want := l.ok * int64(d.TxUpdates); sum != want {
			s.Problems = append(s.Problems, fmt.Sprintf("%d transactions of %d updates committed, the rows record %d updates", l.ok, d.TxUpdates, sum))
		}
		perWriter := make([]float64, len(l.perProd))
		for i, c := range l.perProd {
			perWriter[i] = float64(c)
		}
		s.Values = []record.Value{
			{Value: round(float64(l.total()*d.TxUpdates)/l.window.Seconds(), 1), Unit: unitUpdates.Name},
			{Value: float64(conflicts), Unit: unitConflicts.Name},
			{Value: float64(stats.Percentile(l.lat, 0.50)), Unit: unitP50Tx.Name},
			{Value: float64(stats.Percentile(l.lat, 0.99)), Unit: unitP99Tx.Name},
			{Value: round(stats.Jain(perWriter), 4), Unit: unitJain.Name},
			{Value: float64(l.busy), Unit: unitFailedTx.Name},
		}
		return s, nil
	}
}

// seed creates the database with the store's schema and Writers x
// RowsPerWriter rows whose ts is 0, and returns their ids in order.
func (d *Disjoint) seed(ctx context.Context, path string, seed uint64) ([]int64, error) {
	st, err := store.Open(ctx, store.Options{Path: path, Mode: store.Group})
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(seed, 0))
	n := d.Writers * d.RowsPerWriter
	var ids []int64
	for len(ids) < n && err == nil {
		evs := make([]collector.Event, min(1000, n-len(ids)))
		for i := range evs {
			evs[i] = event(rng, len(ids)+i)
			evs[i].TS = 0
		}
		var got []int64
		got, err = st.Insert(ctx, evs)
		ids = append(ids, got...)
	}
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	return ids, err
}
