package storebench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"edgecollector/bench"
	"edgecollector/bench/record"
	"edgecollector/bench/stats"
	"edgecollector/collector"
	"edgecollector/collector/store"
)

// Contention configures the contention experiment: producers insert single
// events while a background writer loops the uploader's checkpoint
// transaction (fetch the oldest CheckpointRows of the backlog, mark them
// uploaded, upsert their devices, write the audit row) as fast as it can.
//
// The original seeded 1,000 rows and checkpointed 500 at a time. Our
// checkpoint marks only rows still in the backlog (at-least-once, never
// twice), so a 1,000-row seed would leave the loop with nothing to mark
// after two turns; each cell starts instead from a copy of a template
// database seeded with SeedRows backlog rows, enough for every turn to
// mark CheckpointRows rows.
type Contention struct {
	DBDir          string
	Modes          []store.Mode
	Producers      int
	CheckpointRows int
	SeedRows       int
	Warm, Dur      time.Duration
	MinOps         int // as Throughput's
}

// contention is the state the cells of one experiment share: the template.
type contention struct {
	Contention
	once     sync.Once
	template string // seeded database file, copied into each cell
	tmplErr  error
	tmplDir  string
}

// Experiment returns the contention experiment: one cell per mode.
func (cfg Contention) Experiment() *bench.Experiment {
	c := &contention{Contention: cfg}
	e := &bench.Experiment{
		Name: "contention",
		Plan: fmt.Sprintf("In-process store; modes %v; %d producers insert single events while a background writer loops "+
			"the uploader's checkpoint (fetch the oldest %d backlog rows, mark them uploaded, upsert devices, audit row: one transaction). "+
			"Each cell: a copy of a template seeded with %d backlog rows, %s ramp dropped, %s measured.",
			c.Modes, c.Producers, c.CheckpointRows, c.SeedRows, c.Warm, c.Dur),
		Units: []record.Unit{unitP50Insert, unitP90Insert, unitP99Insert, unitMaxInsert,
			unitEvents, unitCheckpoint, unitCkptRows, unitBusy},
		Close: func() error {
			if c.tmplDir != "" {
				return os.RemoveAll(c.tmplDir)
			}
			return nil
		},
	}
	for _, m := range c.Modes {
		e.Cells = append(e.Cells, bench.Cell{
			Name: "Contention",
			Config: []record.KV{
				{Key: "mode", Value: string(m)},
				{Key: "producers", Value: strconv.Itoa(c.Producers)},
				{Key: "checkpoint-rows", Value: strconv.Itoa(c.CheckpointRows)},
			},
			Cost: c.Warm + c.Dur + cellOverhead + 50*time.Millisecond,
			Run:  c.run(m),
		})
	}
	return e
}

// seed builds the template once: SeedRows events in the backlog.
func (c *contention) seed(ctx context.Context) (string, error) {
	c.once.Do(func() {
		c.tmplDir, c.tmplErr = os.MkdirTemp(c.DBDir, "contention-template-*")
		if c.tmplErr != nil {
			return
		}
		path := filepath.Join(c.tmplDir, "events.db")
		st, err := store.Open(ctx, store.Options{Path: path, Mode: store.Group})
		if err != nil {
			c.tmplErr = err
			return
		}
		rng := rand.New(rand.NewPCG(1, 1)) // the template is the same for every seed
		const batch = 1000
		for n := 0; n < c.SeedRows && err == nil; n += batch {
			evs := make([]collector.Event, min(batch, c.SeedRows-n))
			for i := range evs {
				evs[i] = event(rng, n+i)
			}
			_, err = st.Insert(ctx, evs)
		}
		if cerr := st.Close(); err == nil {
			err = cerr
		}
		c.template, c.tmplErr = path, err
	})
	return c.template, c.tmplErr
}

func copyFile(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// openCell opens a fresh copy of the template in mode; done removes it.
func (c *contention) openCell(ctx context.Context, mode store.Mode) (st *store.Store, done func(), err error) {
	tmpl, err := c.seed(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("seed template: %w", err)
	}
	dir, err := os.MkdirTemp(c.DBDir, "contention-*")
	if err != nil {
		return nil, nil, err
	}
	path := filepath.Join(dir, "events.db")
	if err := copyFile(path, tmpl); err == nil {
		st, err = store.Open(ctx, store.Options{Path: path, Mode: mode})
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	return st, func() { os.RemoveAll(dir) }, nil
}

func (c *contention) run(mode store.Mode) func(context.Context, bench.Rep) (bench.Sample, error) {
	return func(ctx context.Context, rep bench.Rep) (bench.Sample, error) {
		st, done, err := c.openCell(ctx, mode)
		if err != nil {
			return bench.Sample{}, err
		}
		defer done()
		var measuring atomic.Bool
		ck := startCheckpointer(ctx, st, c.CheckpointRows, &measuring)
		seq := make([]int, c.Producers)
		l := drive(ctx, c.Producers, span{c.Warm, c.Dur, c.MinOps}, rep.Seed, &measuring, func(ctx context.Context, p int, rng *rand.Rand) error {
			seq[p]++
			_, err := st.Insert(ctx, []collector.Event{event(rng, p<<24|seq[p])})
			return err
		})
		if err := cmp.Or(l.firstErr, ck.stop()); err != nil {
			st.Close()
			return bench.Sample{}, err
		}
		stored, err := countRows(ctx, st, `SELECT count(*) FROM events`)
		marked, err2 := countRows(ctx, st, `SELECT (SELECT count(*) FROM events) - (SELECT count(*) FROM backlog)`)
		if err := errors.Join(err, err2, st.Close()); err != nil {
			return bench.Sample{}, err
		}
		s := bench.Sample{Iters: l.total()}
		if want := int64(c.SeedRows) + l.ok; stored != want {
			s.Problems = append(s.Problems, fmt.Sprintf("%d seeded + %d acknowledged rows, %d in the database", c.SeedRows, l.ok, stored))
		}
		if marked != ck.total {
			s.Problems = append(s.Problems, fmt.Sprintf("%d rows checkpointed, %d marked uploaded in the database", ck.total, marked))
		}
		width := 0.0
		if ck.ckpts > 0 {
			width = float64(ck.rows) / float64(ck.ckpts)
		}
		s.Values = []record.Value{
			{Value: float64(stats.Percentile(l.lat, 0.50)), Unit: unitP50Insert.Name},
			{Value: float64(stats.Percentile(l.lat, 0.90)), Unit: unitP90Insert.Name},
			{Value: float64(stats.Percentile(l.lat, 0.99)), Unit: unitP99Insert.Name},
			{Value: float64(stats.Percentile(l.lat, 1)), Unit: unitMaxInsert.Name},
			{Value: round(float64(l.total())/l.window.Seconds(), 1), Unit: unitEvents.Name},
			{Value: round(float64(ck.ckpts)/l.window.Seconds(), 1), Unit: unitCheckpoint.Name},
			{Value: round(width, 1), Unit: unitCkptRows.Name},
			{Value: float64(l.busy), Unit: unitBusy.Name},
		}
		return s, nil
	}
}

// checkpointer is the background writer: the uploader's checkpoint in a
// loop, as fast as it goes. Its counts are read after stop.
type checkpointer struct {
	halt  atomic.Bool
	done  chan struct{}
	err   error
	total int64 // rows marked in all
	ckpts int64 // checkpoints while measuring
	rows  int64 // rows marked while measuring
}

func startCheckpointer(ctx context.Context, st *store.Store, width int, measuring *atomic.Bool) *checkpointer {
	ck := &checkpointer{done: make(chan struct{})}
	go func() { // owned: stop ends it and waits
		defer close(ck.done)
		for range maxOpsPerProducer {
			if ck.halt.Load() {
				return
			}
			evs, err := st.FetchBacklog(ctx, 0, width)
			if err == nil && len(evs) > 0 {
				// The uploader's shape: mark, upsert devices, and the
				// cycle's audit row, in one transaction.
				now := time.Now()
				err = st.Checkpoint(ctx, evs, now, []collector.UploadRun{{
					StartedAt: now, FinishedAt: now, EventCount: len(evs),
					FirstID: evs[0].ID, LastID: evs[len(evs)-1].ID, Status: collector.RunOK,
				}})
			}
			if err != nil {
				if !ck.halt.Load() {
					ck.err = err
				}
				return
			}
			ck.total += int64(len(evs))
			if measuring.Load() {
				ck.ckpts++
				ck.rows += int64(len(evs))
			}
		}
	}()
	return ck
}

// stop ends the loop, waits for it, and returns what stopped it early.
func (ck *checkpointer) stop() error {
	ck.halt.Store(true)
	<-ck.done
	return ck.err
}
