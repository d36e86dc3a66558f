package uploader

import (
	"context"
	"database/sql"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"edgecollector/collector"
	"edgecollector/collector/store"
)

// lockingSink takes a batch, then has another connection take the
// database's write lock, as a full disk or a long reader would stop the
// marks: the batch is delivered but cannot be marked.
type lockingSink struct {
	recorder
	path    string
	lockNow bool
	tx      *sql.Tx
	db      *sql.DB
}

func (l *lockingSink) Ship(ctx context.Context, id string, events []collector.Event) error {
	if err := l.recorder.Ship(ctx, id, events); err != nil {
		return err
	}
	if l.lockNow {
		l.lockNow = false
		db, err := sql.Open("sqlite", store.SQLite.DSN(l.path, store.ConnConfig{BusyTimeout: time.Second, Synchronous: "FULL"}))
		if err != nil {
			return err
		}
		tx, err := db.Begin() // BEGIN IMMEDIATE
		if err != nil {
			db.Close()
			return err
		}
		l.db, l.tx = db, tx
	}
	return nil
}

func (l *lockingSink) release() {
	if l.tx != nil {
		l.tx.Rollback()
		l.db.Close()
		l.tx, l.db = nil, nil
	}
}

// A batch the sink took but whose marks failed is not shipped again while
// the marks keep failing: the next cycles retry the marks alone.
func TestUnmarkedBatchIsMarkedNotReshipped(t *testing.T) {
	for _, m := range store.Modes {
		t.Run(string(m), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "events.db")
			s, err := store.Open(context.Background(), store.Options{Path: path, Mode: m, BusyTimeout: 5 * time.Millisecond, MaxRetries: 1})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			ids := insert(t, s, 6)
			sink := &lockingSink{path: path, lockNow: true}
			var once sync.Once
			t.Cleanup(func() { once.Do(sink.release) })
			u := New(s, sink, Options{CollectorID: "edge-1", Batch: 4})

			for i := range 3 { // the lock holds: every cycle fails to mark
				if n, err := u.Sync(context.Background()); err == nil || n != 0 {
					t.Fatalf("sync %d under the lock = %d, %v; want 0 and an error", i, n, err)
				}
			}
			if got, want := sink.ids(), ids[:4]; !slices.Equal(got, want) {
				t.Fatalf("shipped %v while the marks failed, want the first batch once: %v", got, want)
			}
			if h := u.Health(); h.Healthy || h.ConsecutiveFailures != 3 {
				t.Errorf("health = %+v, want failing 3 times", h)
			}

			once.Do(sink.release)
			if n, err := u.Sync(context.Background()); err != nil || n != 4 {
				t.Fatalf("sync after the lock = %d, %v; want the 4 kept marked", n, err)
			}
			if err := u.Drain(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := sink.ids(); !slices.Equal(got, ids) {
				t.Errorf("shipped %v, want each event once: %v", got, ids)
			}
			if s.Backlog() != 0 || !u.Health().Healthy || u.Stats().EventsShipped != 6 {
				t.Errorf("backlog %d, health %+v, stats %+v", s.Backlog(), u.Health(), u.Stats())
			}
			if got := runs(t, s); got["ok"] != 2 || got["failed"] != 0 {
				// The failed cycles' audit rows could not commit either: the lock
				// stopped every write. They are logged instead.
				t.Errorf("audit rows = %v, want 2 ok", got)
			}
		})
	}
}

// gateSink is a sink whose upstream takes each batch at once but answers
// only when released (or gives up when the caller's context ends), as a
// slow webhook does.
type gateSink struct {
	recorder
	called  chan struct{}
	release chan struct{}
}

func (g *gateSink) Ship(ctx context.Context, id string, events []collector.Event) error {
	g.recorder.Ship(ctx, id, events) // the upstream has the batch now
	select {
	case g.called <- struct{}{}:
	default:
	}
	select {
	case <-g.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Stop lets the cycle under way finish within its budget instead of cutting
// it between ship and answer, which would ship the batch again.
func TestStopFinishesTheCycleUnderWay(t *testing.T) {
	s := newStore(t, store.Options{})
	ids := insert(t, s, 5)
	sink := &gateSink{called: make(chan struct{}, 1), release: make(chan struct{})}
	u := New(s, sink, Options{CollectorID: "edge-1", Interval: time.Hour})
	u.Start(context.Background())
	select {
	case <-sink.called:
	case <-time.After(10 * time.Second):
		t.Fatal("the first cycle did not ship within 10s")
	}
	time.AfterFunc(100*time.Millisecond, func() { close(sink.release) })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := u.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if got := sink.ids(); !slices.Equal(got, ids) {
		t.Errorf("upstream received %v, want each event once: %v", got, ids)
	}
	if s.Backlog() != 0 {
		t.Errorf("backlog = %d after Stop, want 0", s.Backlog())
	}
}
