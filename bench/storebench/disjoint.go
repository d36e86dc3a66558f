package storebench

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"edgecollector/bench"
	"edgecollector/bench/results"
	"edgecollector/bench/stats"
	"edgecollector/collector"
	"edgecollector/collector/store"
)

// Disjoint configures the disjoint experiment: Writers writers, each owning
// RowsPerWriter rows, each transaction updating TxUpdates of its own rows,
// so no two transactions touch the same row: the textbook best case for
// concurrent transactions.
//
// The store exports no general write transaction (only inserts and the
// uploader's writes go through its write modes), so this experiment runs
// the two strategies itself, on the store's engine seam (store.SQLite: the
// same DSN, pragmas, BEGIN IMMEDIATE and busy classification) with the
// store's retry policy: serialized is one connection under a mutex,
// concurrent a transaction per writer on a pool of Writers connections.
// Group commit has no counterpart for independent update transactions in
// the store's API, so it is not compared here.
type Disjoint struct {
	DBDir         string
	Modes         []store.Mode // serialized and/or concurrent
	Writers       int
	RowsPerWriter int
	TxUpdates     int
	Warm, Dur     time.Duration
}

// Experiment returns the disjoint experiment: one cell per mode.
func (d Disjoint) Experiment() *bench.Experiment {
	e := &bench.Experiment{
		Name: "disjoint",
		Plan: fmt.Sprintf("Modes %v on the store's engine seam; %d writers each own %d rows and update %d of them per transaction "+
			"(serialized: one connection under a mutex; concurrent: a pool of %d connections, BEGIN IMMEDIATE, busy errors retried like the store). "+
			"Each cell: fresh database, %s ramp dropped, %s measured.",
			d.Modes, d.Writers, d.RowsPerWriter, d.TxUpdates, d.Writers, d.Warm, d.Dur),
		Units: []results.Unit{unitUpdates, unitConflicts, unitP50Tx, unitP99Tx, unitJain, unitFailedTx},
	}
	for _, m := range d.Modes {
		e.Cells = append(e.Cells, bench.Cell{
			Name: "Disjoint",
			Config: []results.KV{
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

// txRunner runs one transaction in the experiment's write mode.
type txRunner interface {
	begin(ctx context.Context) (*sql.Tx, func(), error)
}

type mutexRunner struct {
	mu   sync.Mutex
	conn *sql.Conn
}

func (m *mutexRunner) begin(ctx context.Context) (*sql.Tx, func(), error) {
	m.mu.Lock()
	tx, err := m.conn.BeginTx(ctx, nil)
	if err != nil {
		m.mu.Unlock()
		return nil, nil, err
	}
	return tx, m.mu.Unlock, nil
}

type poolRunner struct{ db *sql.DB }

func (p *poolRunner) begin(ctx context.Context) (*sql.Tx, func(), error) {
	tx, err := p.db.BeginTx(ctx, nil)
	return tx, func() {}, err
}

// maxRetries and the backoff below mirror the store's retry policy.
const maxRetries = store.DefaultMaxRetries

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
		db, err := sql.Open(store.SQLite.Driver, store.SQLite.DSN(path, store.ConnConfig{
			BusyTimeout: store.DefaultBusyTimeout, Synchronous: "FULL",
		}))
		if err != nil {
			return bench.Sample{}, err
		}
		defer db.Close()
		db.SetMaxOpenConns(d.Writers + 1)
		db.SetMaxIdleConns(d.Writers + 1)
		var runner txRunner
		switch mode {
		case store.Serialized:
			conn, err := db.Conn(ctx)
			if err != nil {
				return bench.Sample{}, err
			}
			defer conn.Close()
			runner = &mutexRunner{conn: conn}
		case store.Concurrent:
			runner = &poolRunner{db: db}
		default:
			return bench.Sample{}, fmt.Errorf("disjoint: mode %s not supported (serialized or concurrent)", mode)
		}

		var mu sync.Mutex
		var conflicts int64
		next := make([]int, d.Writers) // each writer's position in its range; -1: not yet drawn
		for i := range next {
			next[i] = -1
		}
		l := drive(ctx, d.Writers, d.Warm, d.Dur, rep.Seed, nil, func(ctx context.Context, w int, rng *rand.Rand) error {
			own := ids[w*d.RowsPerWriter : (w+1)*d.RowsPerWriter]
			if next[w] < 0 {
				next[w] = rng.IntN(len(own))
			}
			var c int64
			err := d.tx(ctx, runner, own, &next[w], &c)
			mu.Lock()
			conflicts += c
			mu.Unlock()
			return err
		})
		if l.firstErr != nil {
			return bench.Sample{}, l.firstErr
		}
		var sum int64
		if err := db.QueryRowContext(ctx, `SELECT coalesce(sum(ts), 0) FROM events`).Scan(&sum); err != nil {
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
		s.Values = []results.Value{
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

// tx updates TxUpdates rows of own, from *pos on, in one transaction,
// retrying busy errors like the store does. It counts conflicts in *c.
func (d *Disjoint) tx(ctx context.Context, r txRunner, own []int64, pos *int, c *int64) error {
	for attempt := 0; ; attempt++ {
		err := d.try(ctx, r, own, *pos)
		if err == nil {
			*pos = (*pos + d.TxUpdates) % len(own)
			return nil
		}
		if store.SQLite.Classify(err) != store.ClassBusy {
			return err
		}
		*c++
		if attempt >= maxRetries {
			return fmt.Errorf("%w: gave up after %d retries: %w", collector.ErrBusy, attempt, err)
		}
		backoff := min(time.Millisecond<<attempt, 100*time.Millisecond)
		sleep(ctx, rand.N(backoff)+backoff/2)
	}
}

func (d *Disjoint) try(ctx context.Context, r txRunner, own []int64, pos int) error {
	tx, done, err := r.begin(ctx)
	if err != nil {
		return err
	}
	defer done()
	for i := range d.TxUpdates {
		if _, err := tx.ExecContext(ctx, `UPDATE events SET ts = ts + 1 WHERE id = ?`, own[(pos+i)%len(own)]); err != nil {
			tx.Rollback()
			return err
		}
	}
	return tx.Commit()
}
