package uploader

import (
	"context"
	"errors"
	"slices"
	"testing"

	"edgecollector/collector/store"
	"edgecollector/internal/sinktest"
	"edgecollector/internal/storetest"
)

func backlogIDs(t *testing.T, s *store.Store) []int64 {
	t.Helper()
	return storetest.Int64s(t, s.DB(), `SELECT id FROM backlog ORDER BY id`)
}

func TestPartialSuccessMarksOnlyWhatTheSinkTook(t *testing.T) {
	s := storetest.MustOpen(t, store.Options{})
	ids := insert(t, s, 10)
	// The sink answers event by event, as one with a publish ack per event
	// does: it takes most, refuses one for good and loses two acks.
	sink := &sinktest.Sink{PerEvent: true}
	sink.Reject(ids[4])
	sink.Lose(ids[2], ids[7])
	u := New(s, sink, Options{})

	n, err := u.Sync(context.Background())
	if err == nil {
		t.Fatal("a cycle with unacknowledged events succeeded")
	}
	if got, want := n, 8; got != want {
		t.Errorf("left the backlog = %d, want %d (7 delivered, 1 rejected)", got, want)
	}
	if got, want := backlogIDs(t, s), []int64{ids[2], ids[7]}; !slices.Equal(got, want) {
		t.Errorf("backlog = %v, want only the unacknowledged %v", got, want)
	}
	if h := u.Health(); h.Healthy || h.LastError == "" {
		t.Errorf("health = %+v, want failing with the reason", h)
	}
	if st := u.Stats(); st.EventsShipped != 7 || st.EventsRejected != 1 {
		t.Errorf("stats = %+v, want 7 shipped, 1 rejected", st)
	}
	// One row for what was marked (rejected, since one was refused), one for
	// what stays behind.
	if got := runs(t, s); got["rejected"] != 1 || got["failed"] != 1 || got["ok"] != 0 {
		t.Errorf("audit rows = %v, want 1 rejected + 1 failed", got)
	}
	var count int
	var first, last int64
	s.DB().QueryRow(`SELECT event_count, first_id, last_id FROM upload_runs WHERE status = 'failed'`).Scan(&count, &first, &last)
	if count != 2 || first != ids[2] || last != ids[7] {
		t.Errorf("failed audit row = %d events %d-%d, want 2 events %d-%d", count, first, last, ids[2], ids[7])
	}

	// The acks come back: the next cycle ships exactly the two left.
	sink.Lose()
	before := len(sink.IDs())
	if n, err := u.Sync(context.Background()); err != nil || n != 2 {
		t.Fatalf("second sync = %d, %v; want 2, nil", n, err)
	}
	if got, want := sink.IDs()[before:], []int64{ids[2], ids[7]}; !slices.Equal(got, want) {
		t.Errorf("re-shipped %v, want %v (nothing acknowledged before)", got, want)
	}
	if !u.Health().Healthy || s.Backlog() != 0 {
		t.Errorf("after recovery: health %+v, backlog %d", u.Health(), s.Backlog())
	}
}

// A sink whose receipt keeps events without giving a reason (a buggy one)
// must not lose them: they stay, the cycle fails, what it took is marked.
func TestReceiptKeepingWithoutReasonKeepsTheEvents(t *testing.T) {
	s := storetest.MustOpen(t, store.Options{})
	ids := insert(t, s, 4)
	sink := &sinktest.Sink{PerEvent: true}
	sink.Mute(ids[1], ids[3]) // a buggy sink: it keeps them and says nothing
	u := New(s, sink, Options{})
	n, err := u.Sync(context.Background())
	if err == nil || n != 2 {
		t.Fatalf("sync = %d, %v; want 2 and an error", n, err)
	}
	if got, want := backlogIDs(t, s), []int64{ids[1], ids[3]}; !slices.Equal(got, want) {
		t.Errorf("backlog = %v, want %v", got, want)
	}
}

// Bisection of a batch rejected as a whole stops at a retryable failure:
// what was delivered before it is marked, the rest stays.
func TestBisectionStopsAtRetryableFailure(t *testing.T) {
	s := storetest.MustOpen(t, store.Options{})
	ids := insert(t, s, 8)
	// The sink refuses any batch holding the poison event, and from its
	// fourth call on fails as if the upstream went away.
	sink := &sinktest.Sink{}
	sink.Reject(ids[6])
	sink.FailAfter(3, errors.New("upstream down"))
	u := New(s, sink, Options{})
	if _, err := u.Sync(context.Background()); err == nil {
		t.Fatal("sync succeeded; want the retryable failure")
	}
	// Calls: [1-8] rejected, [1-4] ok, [5-8] rejected, then down: 5-8 stay.
	if got, want := backlogIDs(t, s), ids[4:]; !slices.Equal(got, want) {
		t.Errorf("backlog = %v, want %v", got, want)
	}
}
