package store_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"edgecollector/collector"
	"edgecollector/collector/store"
	"edgecollector/internal/storetest"
)

// walSize is the WAL file's size on disk.
func walSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path + "-wal")
	if err != nil {
		return 0
	}
	return fi.Size()
}

// load inserts 20-event requests of ~500-byte payloads until stop, and
// records the largest WAL it saw. Bounded: at most 2,000 requests.
type load struct {
	stop, done chan struct{}
	peak       atomic.Int64
	written    atomic.Int64
	err        error
}

func startLoad(t *testing.T, s *store.Store, path string) *load {
	l := &load{stop: make(chan struct{}), done: make(chan struct{})}
	evs := make([]collector.Event, 20)
	for i := range evs {
		evs[i] = collector.Event{DeviceID: "load", Kind: "t", TS: 1,
			Payload: json.RawMessage(`{"pad":"` + strings.Repeat("x", 500) + `"}`)}
	}
	go func() { // owned: stopped by l.halt
		defer close(l.done)
		for i := 0; i < 2000; i++ {
			select {
			case <-l.stop:
				return
			default:
			}
			if _, err := s.Insert(context.Background(), evs); err != nil {
				l.err = err
				return
			}
			l.written.Add(int64(len(evs)))
			if n := walSize(t, path); n > l.peak.Load() {
				l.peak.Store(n)
			}
		}
	}()
	return l
}

func (l *load) halt(t *testing.T) {
	t.Helper()
	close(l.stop)
	<-l.done
	if l.err != nil {
		t.Fatalf("load: %v", l.err)
	}
}

// waitWritten waits until the load has written n more events than now.
func (l *load) waitWritten(t *testing.T, n int64) {
	t.Helper()
	want := l.written.Load() + n
	deadline := time.Now().Add(60 * time.Second)
	for l.written.Load() < want {
		select {
		case <-l.done:
			t.Fatalf("load ended after %d events (want %d): %v", l.written.Load(), want, l.err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("load wrote %d events in 60s, want %d", l.written.Load(), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// The WAL under load, with and without a reader that holds a transaction
// open on another connection (a long diagnostic query, sqlite3 -readonly):
// without it the WAL stays near its bound; with it the WAL grows (nothing
// can be checkpointed past the reader) and Health says why, naming the
// likely cause; once the reader ends, the WAL is emptied and truncated
// back under its bound, without a restart.
func TestWALBoundedAndLongReaderNamed(t *testing.T) {
	storetest.ForModes(t, func(t *testing.T, mode store.Mode) {
		const limit = 256 << 10
		path := t.TempDir() + "/events.db"
		s := storetest.MustOpen(t, store.Options{Path: path, Mode: mode, MaxWALBytes: limit, WatchEvery: 20 * time.Millisecond})

		// Normal operation: the WAL stays bounded.
		l := startLoad(t, s, path)
		l.waitWritten(t, 4000) // ~2 MB of rows
		l.halt(t)
		// The engine's own checkpoints run at the bound (wal_autocheckpoint),
		// so the WAL exceeds it by what is written while one runs, never so
		// far that Health would fail; idle, the keeper empties it.
		if peak := l.peak.Load(); peak >= store.WALFarOver*limit {
			t.Errorf("WAL peaked at %d bytes under plain load, bound %d", peak, limit)
		} else {
			t.Logf("WAL peaked at %d bytes under plain load, bound %d", peak, limit)
		}
		waitFor(t, func() bool { return walSize(t, path) <= limit })
		if h := s.Health(); !h.OK {
			t.Errorf("health under plain load = %+v; %+v %+v", h, s.WALStats(), s.WALStats().Last)
		}

		// A reader holds a read transaction open on its own connection.
		rdb, err := sql.Open(store.SQLite.Driver, store.SQLite.DSN(path, store.ConnConfig{BusyTimeout: time.Second, ReadOnly: true}))
		if err != nil {
			t.Fatal(err)
		}
		defer rdb.Close()
		reader, err := rdb.Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer reader.Close()
		if _, err := reader.ExecContext(context.Background(), `BEGIN`); err != nil { // deferred: a read transaction
			t.Fatal(err)
		}
		var n int
		if err := reader.QueryRowContext(context.Background(), `SELECT count(*) FROM events`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		var once sync.Once
		endReader := func() {
			once.Do(func() {
				if _, err := reader.ExecContext(context.Background(), `ROLLBACK`); err != nil {
					t.Error(err)
				}
			})
		}
		defer endReader()

		l = startLoad(t, s, path)
		l.waitWritten(t, 200)
		waitFor(t, func() bool { return !s.Health().OK }) // the WAL went far over its bound
		l.halt(t)
		h := s.Health()
		if len(h.Problems) != 1 || !strings.Contains(h.Problems[0], "read transaction") {
			t.Errorf("health with a long reader = %+v, want the reader named as the likely cause", h)
		}
		ws := s.WALStats()
		if ws.Bytes < store.WALFarOver*limit || ws.Blocked == 0 || ws.Last == nil || ws.Last.Outcome != "blocked" {
			t.Errorf("WAL stats with a long reader = %+v", ws)
		}
		if got := s.Stats().WAL.Bytes; got != ws.Bytes {
			t.Errorf("/stats wal bytes = %d, want %d", got, ws.Bytes)
		}

		// The reader ends: the WAL is emptied without a restart, and stays bounded.
		endReader()
		waitFor(t, func() bool {
			last := s.WALStats().Last
			return walSize(t, path) <= limit && s.Health().OK && last != nil && last.Outcome == "truncated"
		})
		l = startLoad(t, s, path)
		l.waitWritten(t, 2000)
		l.halt(t)
		waitFor(t, func() bool { return walSize(t, path) <= limit })
	})
}
