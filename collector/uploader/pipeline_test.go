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

// waitFor polls cond until it holds, failing the test after 10s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after 10s: %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// runFirstIDs returns the first id of each audit row, in the order the rows
// were written.
func runFirstIDs(t *testing.T, s *store.Store) []int64 {
	t.Helper()
	return storetest.Int64s(t, s.DB(), `SELECT first_id FROM upload_runs ORDER BY id`)
}

// drainAsync runs Drain in the background; the channel receives its error.
func drainAsync(ctx context.Context, u *Uploader) <-chan error {
	done := make(chan error, 1)
	go func() { done <- u.Drain(ctx) }()
	return done
}

// With K batches in flight the sink may answer them in any order; the
// marks still commit in id order (a batch answered early waits for the
// ones before it), each event is shipped once, and the pipeline holds no
// more than K batches in flight.
func TestPipelineOutOfOrderAnswersMarkInIDOrder(t *testing.T) {
	s := storetest.MustOpen(t, store.Options{})
	ids := insert(t, s, 12)
	sink := &sinktest.Sink{}
	sink.Hold()
	u := New(s, sink, Options{Batch: 4, InFlight: 3})
	done := drainAsync(context.Background(), u)
	waitFor(t, "three batches in flight", func() bool { return len(sink.Holding()) == 3 })
	firsts := []int64{ids[0], ids[4], ids[8]}
	if got := sink.Holding(); !slices.Equal(slices.Sorted(slices.Values(got)), firsts) {
		t.Fatalf("in flight: batches beginning %v, want %v", got, firsts)
	}
	// The last first, then the middle: neither may be marked before the first.
	for _, id := range []int64{ids[8], ids[4]} {
		if !sink.ReleaseBatch(id) {
			t.Fatalf("batch %d not held", id)
		}
	}
	waitFor(t, "the two later batches answered", func() bool { return len(sink.Holding()) == 1 })
	if got := s.Backlog(); got != 12 {
		t.Errorf("backlog = %d before the first batch was answered, want 12: marks must wait for it", got)
	}
	sink.ReleaseBatch(ids[0])
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if s.Backlog() != 0 {
		t.Errorf("backlog = %d after the drain", s.Backlog())
	}
	if got := runFirstIDs(t, s); !slices.Equal(got, firsts) {
		t.Errorf("audit rows (marks) in the order %v, want id order %v", got, firsts)
	}
	got := sink.IDs()
	slices.Sort(got)
	if !slices.Equal(got, ids) {
		t.Errorf("shipped %v, want each event once: %v", got, ids)
	}
	if m := sink.MostInFlight(); m != 3 {
		t.Errorf("at most %d batches in flight, want 3", m)
	}
}

// K=1 keeps strict order: a batch goes out only once the one before it
// was answered.
func TestPipelineOfOneIsStrictlyOrdered(t *testing.T) {
	s := storetest.MustOpen(t, store.Options{})
	ids := insert(t, s, 12)
	sink := &sinktest.Sink{}
	u := New(s, sink, Options{Batch: 4, InFlight: 1})
	if err := u.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := sink.IDs(); !slices.Equal(got, ids) {
		t.Errorf("shipped %v, want %v in order", got, ids)
	}
	if m := sink.MostInFlight(); m != 1 {
		t.Errorf("at most %d batches in flight, want 1", m)
	}
}

// One batch in flight fails while the ones beside it are taken: those are
// marked (the one after the failure too, once the failure has settled), the
// failed one stays in the backlog with a failed audit row, the round fails,
// and the next round ships exactly what stayed.
func TestPipelineOneBatchFailsOthersAreMarked(t *testing.T) {
	s := storetest.MustOpen(t, store.Options{})
	ids := insert(t, s, 12)
	sink := &sinktest.Sink{}
	down := errors.New("upstream hiccup")
	sink.FailOn(down, ids[4]) // the middle batch
	sink.Hold()
	u := New(s, sink, Options{Batch: 4, InFlight: 3})
	done := drainAsync(context.Background(), u)
	waitFor(t, "three batches in flight", func() bool { return len(sink.Holding()) == 3 })
	sink.Release()
	if err := <-done; !errors.Is(err, down) {
		t.Fatalf("drain = %v, want the middle batch's failure", err)
	}
	if got, want := backlogIDs(t, s), ids[4:8]; !slices.Equal(got, want) {
		t.Errorf("backlog = %v, want the failed batch only: %v", got, want)
	}
	if got := runs(t, s); got["ok"] != 2 || got["failed"] != 1 {
		t.Errorf("audit rows = %v, want 2 ok, 1 failed", got)
	}
	if h := u.Health(); h.Healthy || h.ConsecutiveFailures != 1 || h.LastError == "" {
		t.Errorf("health = %+v, want failing once, with the reason", h)
	}
	if st := u.Stats(); st.EventsShipped != 8 {
		t.Errorf("shipped = %d, want 8", st.EventsShipped)
	}

	sink.FailOn(nil)
	if err := u.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := sink.IDs()
	slices.Sort(got)
	if !slices.Equal(got, ids) {
		t.Errorf("shipped %v, want each event once: %v", got, ids)
	}
	if !u.Health().Healthy || s.Backlog() != 0 {
		t.Errorf("after the retry: health %+v, backlog %d", u.Health(), s.Backlog())
	}
}

// A crash with several batches in flight loses nothing: the first batch
// answered and marked, the third answered but waiting for the second's
// marks, the second and fourth unanswered, and then the store goes away
// (the process dies). After a restart the backlog is exactly what was not
// marked, every marked event had reached the sink, and a new uploader
// ships the rest.
func TestPipelineCrashWithBatchesInFlightLosesNothing(t *testing.T) {
	path := storetest.Path(t)
	s, err := store.Open(context.Background(), store.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	ids := insert(t, s, 16)
	first := &sinktest.Sink{}
	first.Hold()
	ctx, crash := context.WithCancel(context.Background())
	defer crash()
	u := New(s, first, Options{Batch: 4, InFlight: 4})
	done := drainAsync(ctx, u)
	waitFor(t, "four batches in flight", func() bool { return len(first.Holding()) == 4 })
	first.ReleaseBatch(ids[0])
	waitFor(t, "the first batch marked", func() bool { return s.Backlog() == 12 })
	first.ReleaseBatch(ids[8])
	waitFor(t, "the third batch answered", func() bool { return len(first.Holding()) == 2 })

	// The crash: nothing more reaches the file.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	crash()
	if err := <-done; err == nil {
		t.Fatal("drain succeeded across the crash")
	}

	s2 := storetest.MustOpen(t, store.Options{Path: path})
	left := backlogIDs(t, s2)
	if want := ids[4:]; !slices.Equal(left, want) {
		t.Errorf("backlog after the restart = %v, want %v (marks in id order: the third batch waits for the second)", left, want)
	}
	shipped := first.IDs()
	for _, id := range ids {
		if !slices.Contains(left, id) && !slices.Contains(shipped, id) {
			t.Errorf("event %d marked uploaded but never shipped", id)
		}
	}
	second := &sinktest.Sink{}
	if err := New(s2, second, Options{Batch: 4, InFlight: 4}).Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	all := append(first.IDs(), second.IDs()...)
	for _, id := range ids {
		if !slices.Contains(all, id) {
			t.Errorf("event %d lost", id)
		}
	}
	if got := second.IDs(); !slices.Equal(slices.Sorted(slices.Values(got)), left) {
		t.Errorf("shipped after the restart %v, want the backlog %v", got, left)
	}
	if s2.Backlog() != 0 {
		t.Errorf("backlog = %d after the second drain", s2.Backlog())
	}
}

// Stop with several batches in flight finishes them (answered, marked)
// within its budget, then drains the rest.
func TestPipelineStopFinishesTheBatchesInFlight(t *testing.T) {
	s := storetest.MustOpen(t, store.Options{})
	ids := insert(t, s, 20)
	sink := &sinktest.Sink{}
	sink.Hold()
	u := New(s, sink, Options{Batch: 4, InFlight: 3, Interval: time.Hour})
	u.Start(context.Background())
	waitFor(t, "three batches in flight", func() bool { return len(sink.Holding()) == 3 })
	time.AfterFunc(50*time.Millisecond, sink.Release)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := u.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	got := sink.IDs()
	slices.Sort(got)
	if !slices.Equal(got, ids) {
		t.Errorf("shipped %v, want each event once: %v", got, ids)
	}
	if s.Backlog() != 0 {
		t.Errorf("backlog = %d after Stop, want 0", s.Backlog())
	}
}

// A batch whose marks fail holds the batches after it: they are not
// shipped again, and their marks are retried, in order, before anything
// else ships.
func TestPipelineFailedMarksHoldTheLaterBatches(t *testing.T) {
	path := storetest.Path(t)
	s := storetest.MustOpen(t, store.Options{Path: path, BusyTimeout: 5 * time.Millisecond, MaxRetries: 1})
	ids := insert(t, s, 12)
	sink := &sinktest.Sink{}
	sink.Hold()
	u := New(s, sink, Options{Batch: 4, InFlight: 3})
	done := drainAsync(context.Background(), u)
	waitFor(t, "three batches in flight", func() bool { return len(sink.Holding()) == 3 })
	release := storetest.HoldWriteLock(t, path)
	sink.Release()
	if err := <-done; err == nil {
		t.Fatal("drain succeeded under the lock")
	}
	if got := len(sink.IDs()); got != 12 {
		t.Fatalf("shipped %d events, want 12", got)
	}
	if _, err := u.Sync(context.Background()); err == nil {
		t.Fatal("marks retried under the lock succeeded")
	}
	release()
	if err := u.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := sink.IDs(); len(got) != 12 || s.Backlog() != 0 {
		t.Errorf("shipped %v (want each event once), backlog %d", got, s.Backlog())
	}
	if got := runFirstIDs(t, s); !slices.Equal(got, []int64{ids[0], ids[4], ids[8]}) {
		t.Errorf("audit rows in the order %v, want id order", got)
	}
}

// answered ships the backlog as batches of 4 and judges each answer, as a
// round does when the answers come in.
func answered(t *testing.T, u *Uploader, s *store.Store) []*batch {
	t.Helper()
	var bs []*batch
	var after int64
	for {
		evs, err := s.FetchBacklog(context.Background(), after, 4)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 0 {
			return bs
		}
		after = evs[len(evs)-1].ID
		b := u.ship(context.Background(), evs)
		b.answered, b.v = true, judge(b.events, b.receipt, b.err)
		bs = append(bs, b)
	}
}

// Answered batches at the head of the window settle together: one
// checkpoint, one commit (one fsync) for all of them, an audit row each in
// id order, a rejected event counted once. When that commit fails, every
// one of them waits unmarked, and their marks are retried before anything
// ships again: nothing is shipped twice.
func TestAnsweredBatchesSettleTogether(t *testing.T) {
	path := storetest.Path(t)
	s := storetest.MustOpen(t, store.Options{Path: path, BusyTimeout: 5 * time.Millisecond, MaxRetries: 1})
	ids := insert(t, s, 12)
	sink := &sinktest.Sink{}
	sink.Reject(ids[5])
	u := New(s, sink, Options{Batch: 4, InFlight: 3})
	bs := answered(t, u, s)
	if len(bs) != 3 {
		t.Fatalf("%d batches, want 3", len(bs))
	}
	if n, err := u.settleTogether(context.Background(), bs); err != nil || n != 12 {
		t.Fatalf("settled %d, %v; want 12, nil", n, err)
	}
	var marks, finishes int
	s.DB().QueryRow(`SELECT count(*) FROM shipped WHERE first_at = last_at`).Scan(&marks)
	s.DB().QueryRow(`SELECT count(DISTINCT finished_at) FROM upload_runs`).Scan(&finishes)
	if marks != 1 || finishes != 1 {
		t.Errorf("%d mark times, %d audit times: want one checkpoint for the three batches", marks, finishes)
	}
	if got, want := runFirstIDs(t, s), []int64{ids[0], ids[4], ids[8]}; !slices.Equal(got, want) {
		t.Errorf("audit rows %v, want one a batch in id order %v", got, want)
	}
	if got := runs(t, s); got["ok"] != 2 || got["rejected"] != 1 {
		t.Errorf("audit rows by status %v, want 2 ok and 1 rejected", got)
	}
	if st := u.Stats(); st.EventsShipped != 11 || st.EventsRejected != 1 || s.Backlog() != 0 {
		t.Errorf("shipped %d, rejected %d, backlog %d; want 11, 1, 0", st.EventsShipped, st.EventsRejected, s.Backlog())
	}

	// The failed joint mark.
	more := insert(t, s, 8)
	bs = answered(t, u, s)
	release := storetest.HoldWriteLock(t, path)
	if _, err := u.settleTogether(context.Background(), bs); err == nil {
		t.Fatal("a joint mark under the lock succeeded")
	}
	if len(u.unmarked) != 2 {
		t.Fatalf("%d batches wait unmarked, want both", len(u.unmarked))
	}
	release()
	calls := sink.Calls()
	if err := u.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if sink.Calls() != calls || s.Backlog() != 0 {
		t.Errorf("after the retried marks: %d more ships (want 0), backlog %d", sink.Calls()-calls, s.Backlog())
	}
	// (The failure's own audit rows could not be written under the lock.)
	if got := runs(t, s); got["ok"] != 4 || got["rejected"] != 1 || len(got) != 2 {
		t.Errorf("audit rows by status %v, want 4 ok and 1 rejected", got)
	}
	if got := runFirstIDs(t, s)[3:]; !slices.Equal(got, []int64{more[0], more[4]}) {
		t.Errorf("retried marks' audit rows %v, want %v", got, []int64{more[0], more[4]})
	}
}
