package store

import (
	"context"
	"errors"
	"testing"

	"edgecollector/collector"
)

// TestFailStop: once the storage failed a write (an I/O error; the
// harness's faultfs test makes a real fsync fail), every later write and
// backlog read is refused with ErrStorageFailed, Failed is closed, and
// Close leaves the file alone. The classification of a real SQLite I/O
// error is ClassIO.
func TestFailStop(t *testing.T) {
	s := MustOpen(t, Options{Mode: Group})
	ctx := context.Background()
	if _, err := s.Insert(ctx, Events("d", 3)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.Failed():
		t.Fatal("failed before any failure")
	default:
	}
	cause := errors.New("fsync: disk I/O error")
	if err := s.failStop(cause); !errors.Is(err, collector.ErrStorageFailed) || !errors.Is(err, cause) {
		t.Fatalf("failStop = %v", err)
	}
	select {
	case <-s.Failed():
	default:
		t.Fatal("Failed not closed")
	}
	if _, err := s.Insert(ctx, Events("d", 1)); !errors.Is(err, collector.ErrStorageFailed) {
		t.Errorf("insert after the failure: %v", err)
	}
	if _, err := s.FetchBacklog(ctx, 10); !errors.Is(err, collector.ErrStorageFailed) {
		t.Errorf("backlog read after the failure: %v", err)
	}
	if err := s.Write(ctx, nil); !errors.Is(err, collector.ErrStorageFailed) {
		t.Errorf("write after the failure: %v", err)
	}
	if err := s.failStop(errors.New("later")); !errors.Is(err, cause) {
		t.Errorf("a later failure replaced the first cause: %v", err)
	}
	if err := s.Close(); !errors.Is(err, collector.ErrStorageFailed) {
		t.Errorf("close after the failure = %v, want the failure", err)
	}
}
