package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"edgecollector/collector"
	"edgecollector/collector/store"
	"edgecollector/internal/storetest"
)

// TestFailStop: once the storage failed a write (an I/O error; the
// harness's faultfs test makes a real fsync fail), every later write and
// backlog read is refused with ErrStorageFailed, Failed is closed, and
// Close leaves the file alone.
func TestFailStop(t *testing.T) {
	s := storetest.MustOpen(t, store.Options{Mode: store.Group})
	ctx := context.Background()
	if _, err := s.Insert(ctx, storetest.Events("d", 3)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.Failed():
		t.Fatal("failed before any failure")
	default:
	}
	cause := errors.New("fsync: disk I/O error")
	if err := store.FailStop(s, cause); !errors.Is(err, collector.ErrStorageFailed) || !errors.Is(err, cause) {
		t.Fatalf("failStop = %v", err)
	}
	select {
	case <-s.Failed():
	default:
		t.Fatal("Failed not closed")
	}
	if _, err := s.Insert(ctx, storetest.Events("d", 1)); !errors.Is(err, collector.ErrStorageFailed) {
		t.Errorf("insert after the failure: %v", err)
	}
	if _, err := s.FetchBacklog(ctx, 0, 10); !errors.Is(err, collector.ErrStorageFailed) {
		t.Errorf("backlog read after the failure: %v", err)
	}
	if err := s.Write(ctx, nil); !errors.Is(err, collector.ErrStorageFailed) {
		t.Errorf("write after the failure: %v", err)
	}
	if h := s.Health(); h.OK || len(h.Problems) == 0 || !strings.Contains(h.Problems[0], cause.Error()) {
		t.Errorf("health after the failure = %+v, want not ok, naming the cause", h)
	}
	if err := store.FailStop(s, errors.New("later")); !errors.Is(err, cause) {
		t.Errorf("a later failure replaced the first cause: %v", err)
	}
	if err := s.Close(); !errors.Is(err, collector.ErrStorageFailed) {
		t.Errorf("close after the failure = %v, want the failure", err)
	}
}
