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
	T, R, K := collector.Taken, collector.Refused, collector.Kept
	for _, tc := range []struct {
		name      string
		sink      *Sink
		script    func(s *Sink)
		wantErr   func(error) bool
		wantFates []collector.Fate
		wantIDs   []int64
		wantCalls int
	}{
		// The zero value takes everything.
		{"accept", &Sink{}, nil, isNil, []collector.Fate{T, T, T}, []int64{1, 2, 3}, 1},
		{"fail", &Sink{}, func(s *Sink) { s.Fail(down) }, is(down), nil, nil, 1},
		{"fail then recover", &Sink{}, func(s *Sink) { s.Fail(down); s.Fail(nil) }, isNil, []collector.Fate{T, T, T}, []int64{1, 2, 3}, 1},
		// A whole batch is refused for one bad event, and bisected (as the
		// webhook's is): [1 2 3] refused, [1] taken, [2 3] refused, [2]
		// refused, [3] taken.
		{"reject", &Sink{}, func(s *Sink) { s.Reject(2) }, isNil, []collector.Fate{T, R, T}, []int64{1, 3}, 5},
		// A later Reject replaces the earlier one.
		{"reject replaced", &Sink{}, func(s *Sink) { s.Reject(2); s.Reject(9) }, isNil, []collector.Fate{T, T, T}, []int64{1, 2, 3}, 1},
		// One batch fails for an event it holds, taking nothing.
		{"fail on", &Sink{}, func(s *Sink) { s.FailOn(down, 3) }, is(down), nil, nil, 1},
		// Event by event: 2 refused for good, 3 unacknowledged, 1 taken.
		{"per event", &Sink{PerEvent: true}, func(s *Sink) { s.Reject(2); s.Lose(3) }, isErr, []collector.Fate{T, R, K}, []int64{1}, 1},
		// A buggy sink keeps an event and says nothing.
		{"per event mute", &Sink{PerEvent: true}, func(s *Sink) { s.Mute(3) }, isNil, []collector.Fate{T, T, K}, []int64{1, 2}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.script != nil {
				tc.script(tc.sink)
			}
			r, err := tc.sink.Ship(context.Background(), batch)
			if !tc.wantErr(err) {
				t.Errorf("Ship = %v", err)
			}
			var fates []collector.Fate
			if tc.wantFates != nil {
				for i := range batch {
					fates = append(fates, r.Fate(i))
				}
			} else if r.Count(len(batch), collector.Kept) != len(batch) {
				t.Errorf("receipt %+v of a failed call, want everything kept", r)
			}
			if !slices.Equal(fates, tc.wantFates) {
				t.Errorf("fates %v, want %v", fates, tc.wantFates)
			}
			if (r.Count(len(batch), collector.Refused) > 0) != (r.Refusal != nil) {
				t.Errorf("refusal %v beside fates %v", r.Refusal, r.Fates)
			}
			if got := tc.sink.IDs(); !slices.Equal(got, tc.wantIDs) {
				t.Errorf("took %v, want %v", got, tc.wantIDs)
			}
			if got := tc.sink.Calls(); got != tc.wantCalls {
				t.Errorf("calls = %d, want %d", got, tc.wantCalls)
			}
		})
	}
}

func TestFailAfterCountsCalls(t *testing.T) {
	s := &Sink{}
	s.FailAfter(2, errors.New("down"))
	var got []bool
	for range 4 {
		_, err := s.Ship(context.Background(), batch)
		got = append(got, err == nil)
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
	go func() { _, err := s.Ship(ctx, batch[:1]); done <- err }()
	<-held
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("held call given up = %v, want context.Canceled", err)
	}

	go func() { _, err := s.Ship(context.Background(), batch[1:2]); done <- err }()
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
	if _, err := s.Ship(context.Background(), batch[2:]); err != nil {
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
