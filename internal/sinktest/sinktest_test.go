package sinktest

import (
	"context"
	"errors"
	"slices"
	"testing"

	"edgecollector/collector"
)

var batch = []collector.Event{{ID: 1}, {ID: 2}, {ID: 3}}

func TestScript(t *testing.T) {
	down := errors.New("upstream down")
	for _, tc := range []struct {
		name      string
		sink      *Sink
		script    func(s *Sink)
		collector string
		wantErr   func(error) bool
		wantIDs   []int64
	}{
		// The zero value takes everything.
		{"accept", &Sink{}, nil, "c", isNil, []int64{1, 2, 3}},
		{"fail", &Sink{}, func(s *Sink) { s.Fail(down) }, "c", is(down), nil},
		{"fail then recover", &Sink{}, func(s *Sink) { s.Fail(down); s.Fail(nil) }, "c", isNil, []int64{1, 2, 3}},
		// A whole batch is refused for one bad event.
		{"reject", &Sink{}, func(s *Sink) { s.Reject(2) }, "c", is(collector.ErrRejected), nil},
		// A later Reject replaces the earlier one.
		{"reject replaced", &Sink{}, func(s *Sink) { s.Reject(2); s.Reject(9) }, "c", isNil, []int64{1, 2, 3}},
		{"wrong collector", &Sink{Collector: "edge-1"}, nil, "edge-2", isErr, nil},
		// Event by event: 2 refused for good, 3 unacknowledged, 1 delivered.
		{"per event", &Sink{PerEvent: true}, func(s *Sink) { s.Reject(2); s.Lose(3) }, "c", func(err error) bool {
			var pe *collector.PartialError
			return errors.As(err, &pe) && slices.Equal(pe.Delivered, []int64{1}) &&
				slices.Equal(pe.Rejected, []int64{2}) && pe.RejectErr != nil && pe.Err != nil
		}, []int64{1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.script != nil {
				tc.script(tc.sink)
			}
			err := tc.sink.Ship(context.Background(), tc.collector, batch)
			if !tc.wantErr(err) {
				t.Errorf("Ship = %v", err)
			}
			if got := tc.sink.IDs(); !slices.Equal(got, tc.wantIDs) {
				t.Errorf("took %v, want %v", got, tc.wantIDs)
			}
			if got := tc.sink.Calls(); got != 1 {
				t.Errorf("calls = %d, want 1", got)
			}
		})
	}
}

func TestFailAfterCountsCalls(t *testing.T) {
	s := &Sink{}
	s.FailAfter(2, errors.New("down"))
	var got []bool
	for range 4 {
		got = append(got, s.Ship(context.Background(), "c", batch) == nil)
	}
	if want := []bool{true, true, false, false}; !slices.Equal(got, want) {
		t.Errorf("calls answered ok = %v, want %v", got, want)
	}
}

func TestHoldTakesTheBatchThenWaits(t *testing.T) {
	s := &Sink{}
	var onShip []int64
	s.OnShip = func(taken []collector.Event) { onShip = append(onShip, taken[0].ID) }
	s.Hold()
	held := s.Held()

	// A caller that gives up is answered with its context's error, and the
	// upstream has the batch all the same.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Ship(ctx, "c", batch[:1]) }()
	<-held
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("held call given up = %v, want context.Canceled", err)
	}

	go func() { done <- s.Ship(context.Background(), "c", batch[1:2]) }()
	<-held
	select {
	case err := <-done:
		t.Fatalf("held call answered %v before Release", err)
	default:
	}
	s.Release()
	if err := <-done; err != nil {
		t.Errorf("released call = %v", err)
	}
	if err := s.Ship(context.Background(), "c", batch[2:]); err != nil {
		t.Errorf("call after Release = %v", err)
	}
	if got, want := s.IDs(), []int64{1, 2, 3}; !slices.Equal(got, want) || !slices.Equal(onShip, want) {
		t.Errorf("took %v, OnShip saw %v, want %v", got, onShip, want)
	}
}

func isNil(err error) bool { return err == nil }
func isErr(err error) bool { return err != nil }
func is(target error) func(error) bool {
	return func(err error) bool { return errors.Is(err, target) }
}
