package uploader

import (
	"context"
	"slices"
	"testing"
	"time"

	"edgecollector/collector"
	"edgecollector/collector/store"
	"edgecollector/internal/sinktest"
	"edgecollector/internal/storetest"
)

// A batch the sink took but whose marks failed is not shipped again while
// the marks keep failing: the next cycles retry the marks alone.
func TestUnmarkedBatchIsMarkedNotReshipped(t *testing.T) {
	for _, m := range store.Modes {
		t.Run(string(m), func(t *testing.T) {
			path := storetest.Path(t)
			s := storetest.MustOpen(t, store.Options{Path: path, Mode: m, BusyTimeout: 5 * time.Millisecond, MaxRetries: 1})
			ids := insert(t, s, 6)
			// The sink takes the first batch, then another connection takes
			// the write lock, as a full disk or a long reader would stop the
			// marks: the batch is delivered but cannot be marked.
			var release func()
			sink := &sinktest.Sink{OnShip: func([]collector.Event) {
				if release == nil {
					release = storetest.HoldWriteLock(t, path)
				}
			}}
			u := New(s, sink, Options{Batch: 4})

			for i := range 3 { // the lock holds: every cycle fails to mark
				if n, err := u.Sync(context.Background()); err == nil || n != 0 {
					t.Fatalf("sync %d under the lock = %d, %v; want 0 and an error", i, n, err)
				}
			}
			if got, want := sink.IDs(), ids[:4]; !slices.Equal(got, want) {
				t.Fatalf("shipped %v while the marks failed, want the first batch once: %v", got, want)
			}
			if h := u.Health(); h.Healthy || h.ConsecutiveFailures != 3 {
				t.Errorf("health = %+v, want failing 3 times", h)
			}

			release()
			if n, err := u.Sync(context.Background()); err != nil || n != 4 {
				t.Fatalf("sync after the lock = %d, %v; want the 4 kept marked", n, err)
			}
			if err := u.Drain(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := sink.IDs(); !slices.Equal(got, ids) {
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

// Stop lets the cycle under way finish within its budget instead of cutting
// it between ship and answer, which would ship the batch again.
func TestStopFinishesTheCycleUnderWay(t *testing.T) {
	s := storetest.MustOpen(t, store.Options{})
	ids := insert(t, s, 5)
	// The upstream takes each batch at once but answers only when
	// released, as a slow webhook does.
	sink := &sinktest.Sink{}
	sink.Hold()
	held := sink.Held()
	u := New(s, sink, Options{Interval: time.Hour})
	u.Start(context.Background())
	select {
	case <-held:
	case <-time.After(10 * time.Second):
		t.Fatal("the first cycle did not ship within 10s")
	}
	time.AfterFunc(100*time.Millisecond, sink.Release)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := u.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if got := sink.IDs(); !slices.Equal(got, ids) {
		t.Errorf("upstream received %v, want each event once: %v", got, ids)
	}
	if s.Backlog() != 0 {
		t.Errorf("backlog = %d after Stop, want 0", s.Backlog())
	}
}
