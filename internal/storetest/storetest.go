// Package storetest is the store's test kit: a real store on a fresh file
// in the test's temp dir, in any write mode, events to put in it, and the
// write lock held from outside, the deterministic conflict. Every package's
// tests use it instead of opening stores by hand; the collector never
// imports it.
package storetest

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"edgecollector/collector"
	"edgecollector/collector/store"
)

// Path returns the path of a database file that does not exist yet, in a
// temp dir removed when the test ends.
func Path(tb testing.TB) string {
	tb.Helper()
	return filepath.Join(tb.TempDir(), "events.db")
}

// MustOpen opens a store with o (on a fresh file from Path unless o.Path is
// set) and closes it when the test ends. A test may close it earlier.
func MustOpen(tb testing.TB, o store.Options) *store.Store {
	tb.Helper()
	if o.Path == "" {
		o.Path = Path(tb)
	}
	s, err := store.Open(context.Background(), o)
	if err != nil {
		tb.Fatalf("open store: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// ForModes runs f as a parallel subtest per write mode, named after it.
func ForModes(t *testing.T, f func(t *testing.T, mode store.Mode)) {
	t.Helper()
	for _, m := range store.Modes {
		t.Run(string(m), func(t *testing.T) { t.Parallel(); f(t, m) })
	}
}

// Events returns n valid events from device dev: kind "telemetry", ts
// 1_700_000_000_000+i, payload {"seq":i}.
func Events(dev string, n int) []collector.Event {
	evs := make([]collector.Event, n)
	for i := range evs {
		evs[i] = collector.Event{DeviceID: dev, Kind: "telemetry", TS: int64(1_700_000_000_000 + i),
			Payload: json.RawMessage(fmt.Sprintf(`{"seq":%d}`, i))}
	}
	return evs
}

// Fleet returns n valid events as Events does, event i from device
// "dev-<i mod devices>", so they spread over devices (and NATS subjects).
func Fleet(devices, n int) []collector.Event {
	evs := Events("", n)
	for i := range evs {
		evs[i].DeviceID = fmt.Sprintf("dev-%d", i%devices)
	}
	return evs
}

// Repeat returns n copies of e.
func Repeat(e collector.Event, n int) []collector.Event {
	evs := make([]collector.Event, n)
	for i := range evs {
		evs[i] = e
	}
	return evs
}

// MustInsert commits events as one request and returns their ids. It also
// sets each event's ID, so the events can go on to Checkpoint as the
// uploader would have fetched them.
func MustInsert(tb testing.TB, s *store.Store, events []collector.Event) []int64 {
	tb.Helper()
	ids, err := s.Insert(context.Background(), events)
	if err != nil {
		tb.Fatalf("insert %d events: %v", len(events), err)
	}
	for i := range events {
		events[i].ID = ids[i]
	}
	return ids
}

// MustInsertEach commits each event as a request of its own, in order, and
// returns their ids (setting each event's ID, as MustInsert does).
func MustInsertEach(tb testing.TB, s *store.Store, events []collector.Event) []int64 {
	tb.Helper()
	ids := make([]int64, 0, len(events))
	for i := range events {
		ids = append(ids, MustInsert(tb, s, events[i:i+1])...)
	}
	return ids
}

// Count runs a query that returns one number (a count(*), say).
func Count(tb testing.TB, db *sql.DB, query string, args ...any) int64 {
	tb.Helper()
	var n int64
	if err := db.QueryRow(query, args...).Scan(&n); err != nil {
		tb.Fatalf("%s: %v", query, err)
	}
	return n
}

// Int64s returns the first column of what query selects, in its order (a
// list of ids, say).
func Int64s(tb testing.TB, db *sql.DB, query string, args ...any) []int64 {
	tb.Helper()
	rows, err := db.Query(query, args...)
	if err != nil {
		tb.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var n int64
		if err := rows.Scan(&n); err != nil {
			tb.Fatalf("%s: %v", query, err)
		}
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		tb.Fatalf("%s: %v", query, err)
	}
	return out
}

// HoldWriteLock takes the write lock of the database at path from a
// connection of its own, as another process or a long writer would, and
// keeps it until release is called (at the latest when the test ends):
// every write of the store meanwhile meets a busy database.
func HoldWriteLock(tb testing.TB, path string) (release func()) {
	tb.Helper()
	db, err := sql.Open(store.SQLite.Driver, store.SQLite.DSN(path, store.ConnConfig{BusyTimeout: time.Second, Synchronous: "FULL"}))
	if err != nil {
		tb.Fatal(err)
	}
	tx, err := db.Begin() // BEGIN IMMEDIATE: the write lock, now
	if err != nil {
		db.Close()
		tb.Fatalf("hold write lock: %v", err)
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			tx.Rollback()
			db.Close()
		})
	}
	tb.Cleanup(release)
	return release
}
