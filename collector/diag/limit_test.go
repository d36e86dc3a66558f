package diag

import (
	"context"
	"errors"
	"testing"
	"time"
)

// endless reads the events table without end: a read transaction that
// would pin the collector's WAL for as long as it runs.
const endless = `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c, events`

// A diagnostic call that runs past the time limit is interrupted, and the
// collector's WAL can then be emptied: the reader is gone.
func TestTimeLimitInterruptsALongRead(t *testing.T) {
	st, d := liveBuffer(t)
	insert(t, st, "a", 1, 3)
	if d.limit != DefaultTimeLimit || DefaultTimeLimit <= 0 {
		t.Errorf("default time limit = %v, want %v", d.limit, DefaultTimeLimit)
	}
	d.SetTimeLimit(200 * time.Millisecond)
	done := make(chan error, 1)
	go func() { // owned: ends with the query, which the limit ends
		_, err := d.Query(context.Background(), endless, 10)
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, ErrTimeLimit) {
			t.Fatalf("endless query: err = %v, want ErrTimeLimit", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the endless query ran 20s past a 200ms limit")
	}
	insert(t, st, "a", 2, 3) // frames the reader would have pinned
	var busy, log, done2 int
	if err := st.DB().QueryRow(`PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &log, &done2); err != nil || busy != 0 {
		t.Errorf("checkpoint after the interrupted reader: busy %d, %v; want it to complete", busy, err)
	}
	// The stats and the check are bounded too; a quick call is not cut.
	if _, err := d.Stats(context.Background(), time.Now()); err != nil {
		t.Errorf("stats under the limit: %v", err)
	}
	d.SetTimeLimit(0) // none
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := d.Query(ctx, endless, 10); err == nil || errors.Is(err, ErrTimeLimit) {
		t.Errorf("no limit, the caller's deadline: err = %v, want the caller's own cancellation", err)
	}
}
