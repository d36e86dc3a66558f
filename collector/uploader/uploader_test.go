package uploader

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"edgecollector/collector/store"
	"edgecollector/internal/sinktest"
	"edgecollector/internal/storetest"
)

// insert commits n single-event requests from three devices.
func insert(t *testing.T, s *store.Store, n int) []int64 {
	t.Helper()
	return storetest.MustInsertEach(t, s, storetest.Fleet(3, n))
}

func runs(t *testing.T, s *store.Store) map[string]int {
	t.Helper()
	rows, err := s.DB().Query(`SELECT status, count(*) FROM upload_runs GROUP BY status`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	m := map[string]int{}
	for rows.Next() {
		var st string
		var n int
		rows.Scan(&st, &n)
		m[st] = n
	}
	return m
}

func TestDrainShipsEverythingInOrderAndAudits(t *testing.T) {
	s := storetest.MustOpen(t, store.Options{})
	ids := insert(t, s, 45)
	sink := &sinktest.Sink{}
	u := New(s, sink, Options{Batch: 20})
	if err := u.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := sink.IDs(); !slices.Equal(got, ids) {
		t.Errorf("shipped %v, want %v", got, ids)
	}
	if got := s.Backlog(); got != 0 {
		t.Errorf("backlog = %d, want 0", got)
	}
	if got, want := runs(t, s), map[string]int{"ok": 3}; got["ok"] != want["ok"] || len(got) != 1 {
		t.Errorf("audit rows = %v, want %v", got, want)
	}
	if st := u.Stats(); st.EventsShipped != 45 || st.Cycles != 3 || !st.Healthy {
		t.Errorf("stats = %+v", st)
	}
}

func TestFailureKeepsBacklogThenRecovers(t *testing.T) {
	s := storetest.MustOpen(t, store.Options{})
	insert(t, s, 5)
	sink := &sinktest.Sink{}
	sink.Fail(errors.New("upstream down"))
	u := New(s, sink, Options{})

	for i := 0; i < 2; i++ {
		if _, err := u.Sync(context.Background()); err == nil {
			t.Fatal("sync with a failing sink succeeded")
		}
	}
	h := u.Health()
	if h.Healthy || h.ConsecutiveFailures != 2 || h.FailingSince == nil || h.LastError == "" {
		t.Errorf("health while failing = %+v", h)
	}
	if got := s.Backlog(); got != 5 {
		t.Errorf("backlog after failures = %d, want 5 (nothing marked)", got)
	}
	if got := runs(t, s)["failed"]; got != 2 {
		t.Errorf("failed audit rows = %d, want 2", got)
	}

	sink.Fail(nil)
	if n, err := u.Sync(context.Background()); err != nil || n != 5 {
		t.Fatalf("sync after recovery = %d, %v", n, err)
	}
	if h := u.Health(); !h.Healthy || h.ConsecutiveFailures != 0 {
		t.Errorf("health after recovery = %+v", h)
	}
	if got := s.Backlog(); got != 0 {
		t.Errorf("backlog = %d, want 0", got)
	}
}

func TestPermanentRejectionDoesNotBlockTheBuffer(t *testing.T) {
	s := storetest.MustOpen(t, store.Options{})
	ids := insert(t, s, 16)
	poison := ids[5]
	sink := &sinktest.Sink{}
	sink.Reject(poison)
	u := New(s, sink, Options{})

	if _, err := u.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := slices.DeleteFunc(slices.Clone(ids), func(id int64) bool { return id == poison })
	got := sink.IDs()
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("delivered %v, want every event but the poison one %d", got, poison)
	}
	if got := s.Backlog(); got != 0 {
		t.Errorf("backlog = %d, want 0: a rejected batch must not block the buffer", got)
	}
	if got := u.Stats().EventsRejected; got != 1 {
		t.Errorf("rejected counter = %d, want 1", got)
	}
	var msg string
	if err := s.DB().QueryRow(`SELECT error FROM upload_runs WHERE status = 'rejected'`).Scan(&msg); err != nil {
		t.Fatalf("no rejected audit row: %v", err)
	}
	if !u.Health().Healthy {
		t.Error("uploader unhealthy after a handled rejection")
	}
}

func TestBackgroundLoopKeepsUpAndStopDrains(t *testing.T) {
	s := storetest.MustOpen(t, store.Options{})
	insert(t, s, 35)
	sink := &sinktest.Sink{}
	// An interval of an hour: only "a full batch means go again" can drain
	// 35 events in batches of 10.
	u := New(s, sink, Options{Batch: 10, Interval: time.Hour, MaxBackoff: time.Hour})
	u.Start(context.Background())
	deadline := time.Now().Add(5 * time.Second)
	for s.Backlog() > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := s.Backlog(); got != 0 {
		t.Fatalf("backlog = %d, want 0: the drain did not keep up", got)
	}
	// Events arriving while the loop sleeps are shipped by Stop's final drain.
	insert(t, s, 7)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := u.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if got := len(sink.IDs()); got != 42 {
		t.Errorf("shipped = %d, want 42", got)
	}
}

// TestChunkedCheckpointUnderCap: a checkpoint whose device rows do not fit
// one commit under the cap goes in chunks, and marks every event once.
func TestChunkedCheckpointUnderCap(t *testing.T) {
	s := storetest.MustOpen(t, store.Options{MaxCommitBytes: 4096})
	storetest.MustInsertEach(t, s, storetest.Fleet(150, 300))
	sink := &sinktest.Sink{}
	u := New(s, sink, Options{Batch: 200})
	if err := u.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := s.Stats().ChunkSplits; got == 0 {
		t.Error("chunk splits = 0, want > 0")
	}
	var marked, unmarked int
	s.DB().QueryRow(`SELECT (SELECT count(*) FROM events) - (SELECT count(*) FROM backlog)`).Scan(&marked)
	s.DB().QueryRow(`SELECT count(*) FROM backlog`).Scan(&unmarked)
	if marked != 300 || unmarked != 0 {
		t.Errorf("marked = %d, unmarked = %d; want 300, 0", marked, unmarked)
	}
	if got := runs(t, s)["ok"]; got != 2 {
		t.Errorf("ok audit rows = %d, want 2", got)
	}
}

func TestBackoffDoublesWithJitterUpToCap(t *testing.T) {
	u := New(nil, nil, Options{Interval: 100 * time.Millisecond, MaxBackoff: time.Second})
	for _, tc := range []struct {
		failures int
		lo, hi   time.Duration
	}{
		{1, 50 * time.Millisecond, 100 * time.Millisecond},
		{2, 100 * time.Millisecond, 200 * time.Millisecond},
		{4, 400 * time.Millisecond, 800 * time.Millisecond},
		{20, 500 * time.Millisecond, time.Second}, // capped
	} {
		u.health.ConsecutiveFailures = tc.failures
		for i := 0; i < 50; i++ {
			if d := u.backoff(); d < tc.lo || d > tc.hi {
				t.Errorf("failures=%d: backoff %v outside [%v, %v]", tc.failures, d, tc.lo, tc.hi)
			}
		}
	}
}

// Retention zero keeps uploaded events forever; a positive retention purges
// those uploaded longer ago than it.
func TestRetentionZeroKeepsForever(t *testing.T) {
	for _, tc := range []struct {
		retention time.Duration
		kept      int64
	}{
		{0, 5},         // keep forever
		{time.Hour, 0}, // uploaded 48h ago: purged
	} {
		t.Run(tc.retention.String(), func(t *testing.T) {
			s := storetest.MustOpen(t, store.Options{})
			old := storetest.Events("old", 5)
			storetest.MustInsert(t, s, old)
			if err := s.Checkpoint(context.Background(), old, time.Now().Add(-48*time.Hour), nil); err != nil {
				t.Fatal(err)
			}
			insert(t, s, 2)
			// Batch 1: the loop's second cycle starts only after the first
			// one's purge has run.
			u := New(s, &sinktest.Sink{}, Options{Batch: 1, Interval: time.Millisecond, Retention: tc.retention})
			u.Start(context.Background())
			deadline := time.Now().Add(10 * time.Second)
			for u.Stats().Cycles < 2 && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			if err := u.Stop(context.Background()); err != nil {
				t.Fatal(err)
			}
			if u.Stats().Cycles < 2 {
				t.Fatalf("cycles = %d after 10s, want 2", u.Stats().Cycles)
			}
			if got := storetest.Count(t, s.DB(), `SELECT count(*) FROM events WHERE device_id = 'old'`); got != tc.kept {
				t.Errorf("old uploaded events left = %d, want %d", got, tc.kept)
			}
		})
	}
}
