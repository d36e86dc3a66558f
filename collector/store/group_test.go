package store_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"testing"

	"edgecollector/collector/store"
	"edgecollector/internal/storetest"
)

// A group's first try inserts everything with statements that roll the
// whole transaction back on a failure. A bad request in the group, beside a
// Write, must still fail alone: the try is undone, the group goes again
// request by request, the Write takes effect exactly once, and the writer
// takes the next request.
func TestGroupBadRequestBesideWriteFailsAlone(t *testing.T) {
	path := storetest.Path(t)
	s := storetest.MustOpen(t, store.Options{Path: path, Mode: store.Group})
	ctx := context.Background()
	seed, err := s.Insert(ctx, storetest.Events("seed", 1))
	if err != nil {
		t.Fatal(err)
	}
	tsBefore := storetest.Count(t, s.DB(), `SELECT ts FROM events WHERE id = ?`, seed[0])

	release := storetest.HoldWriteLock(t, path)
	results := make(chan error, 5)
	go func() { _, err := s.Insert(ctx, storetest.Events("first", 1)); results <- err }()
	waitFor(t, func() bool { return s.Stats().Conflicts > 0 })
	bad := storetest.Events("bad", 3)
	bad[2].Payload = json.RawMessage(`{not json`) // the schema's CHECK refuses it
	go func() { _, err := s.Insert(ctx, storetest.Events("good-a", 2)); results <- err }()
	waitFor(t, func() bool { return store.Queued(s) == 1 })
	go func() { _, err := s.Insert(ctx, bad); results <- err }()
	waitFor(t, func() bool { return store.Queued(s) == 2 })
	go func() {
		results <- s.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `UPDATE events SET ts = ts + 1 WHERE id = ?`, seed[0])
			return err
		})
	}()
	waitFor(t, func() bool { return store.Queued(s) == 3 })
	go func() { _, err := s.Insert(ctx, storetest.Events("good-b", 1)); results <- err }()
	waitFor(t, func() bool { return store.Queued(s) == 4 })
	release()

	var failed int
	for range 5 {
		if err := <-results; err != nil {
			failed++
		}
	}
	if failed != 1 {
		t.Errorf("failed = %d, want 1 (the bad request)", failed)
	}
	if got := storetest.Count(t, s.DB(), `SELECT count(*) FROM events WHERE device_id = 'bad'`); got != 0 {
		t.Errorf("events of the bad request stored = %d, want 0", got)
	}
	if got := storetest.Count(t, s.DB(), `SELECT count(*) FROM events`); got != 1+1+2+1 {
		t.Errorf("events stored = %d, want 5", got)
	}
	if got := storetest.Count(t, s.DB(), `SELECT ts FROM events WHERE id = ?`, seed[0]); got != tsBefore+1 {
		t.Errorf("ts after the write = %d, want %d (the write once)", got, tsBefore+1)
	}
	if got := s.Stats().Commits; got != 3 {
		t.Errorf("ingest commits = %d, want 3: the seed, the first insert, then the group", got)
	}
	if _, err := s.Insert(ctx, storetest.Events("after", 1)); err != nil {
		t.Errorf("insert after the group: %v", err)
	}
}

// In the modes where a request is its own transaction, a failed statement
// ends the transaction; the writer must take the next request all the same.
func TestBadRequestLeavesWriterUsable(t *testing.T) {
	storetest.ForModes(t, func(t *testing.T, mode store.Mode) {
		s := storetest.MustOpen(t, store.Options{Mode: mode})
		ctx := context.Background()
		for i := range 3 {
			bad := storetest.Events("bad", 1+i*40) // one statement, then several
			bad[len(bad)-1].Payload = json.RawMessage(`[1,`)
			if _, err := s.Insert(ctx, bad); err == nil {
				t.Fatal("insert of a request with an invalid payload succeeded")
			}
			if _, err := s.Insert(ctx, storetest.Events("good", 3)); err != nil {
				t.Fatalf("insert after a bad request: %v", err)
			}
		}
		if got := storetest.Count(t, s.DB(), `SELECT count(*) FROM events WHERE device_id = 'bad'`); got != 0 {
			t.Errorf("bad events stored = %d, want 0", got)
		}
		if got := storetest.Count(t, s.DB(), `SELECT count(*) FROM events`); got != 9 {
			t.Errorf("events stored = %d, want 9", got)
		}
	})
}
