// Package sinktest is a scriptable fake of the uploader's upstream, a
// collector.Sink for tests: it takes every batch and records it unless a
// test tells it to fail, to refuse some events for good, to answer event by
// event, or to hold its answer. It stands at the service boundary only;
// tests of a real sink use the real thing (an httptest server, natstest).
package sinktest

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"edgecollector/collector"
)

// Sink is the fake. The zero value takes every batch. Set the fields before
// the first Ship; the methods may be called at any time.
type Sink struct {
	// Collector, when set, is the collector id the uploader must ship
	// under: a batch shipped under another fails (retryably).
	Collector string
	// PerEvent makes the sink answer event by event, as one with a publish
	// ack per event does: refused and lost events are named in a
	// *collector.PartialError, the others delivered.
	PerEvent bool
	// OnShip, when set, runs after the sink has taken a batch and before it
	// answers, with the events it took.
	OnShip func(taken []collector.Event)

	mu       sync.Mutex
	calls    int
	got      []collector.Event
	fail     error
	failFrom int // the first call that fails with fail
	reject   map[int64]bool
	lose     map[int64]bool
	gate     *gate // while not nil, answers wait for its release
}

// A gate holds answers: held signals a waiting call, release lets them go.
type gate struct{ release, held chan struct{} }

// Fail makes every call from now on fail with err, taking nothing; nil
// makes the sink take batches again.
func (s *Sink) Fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail, s.failFrom = err, 0
}

// FailAfter lets the first n calls (counted since the sink was made) be
// answered as usual and fails every later one with err, as an upstream
// that goes away does.
func (s *Sink) FailAfter(n int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail, s.failFrom = err, n+1
}

// Reject makes the sink refuse the events with these ids for good (and no
// longer those of an earlier call). A batch holding one is refused whole,
// wrapping collector.ErrRejected, as a webhook's 400 is; with PerEvent only
// those events are refused.
func (s *Sink) Reject(ids ...int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reject = set(ids)
}

// Lose makes a PerEvent sink leave the events with these ids unacknowledged
// (and no longer those of an earlier call), as a lost publish ack does: the
// batch's answer is a retryable *collector.PartialError.
func (s *Sink) Lose(ids ...int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lose = set(ids)
}

// Hold makes every call from now on take its batch (the upstream has it)
// and then wait to answer until Release, or until the caller gives up.
// Held receives once a call waits.
func (s *Sink) Hold() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gate = &gate{release: make(chan struct{}), held: make(chan struct{}, 1)}
}

// Held receives when a call is held (at most one signal is buffered). It is
// nil while the sink does not hold.
func (s *Sink) Held() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gate == nil {
		return nil
	}
	return s.gate.held
}

// Release answers the held calls and stops holding.
func (s *Sink) Release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gate != nil {
		close(s.gate.release)
		s.gate = nil
	}
}

// Calls returns how many times Ship was called.
func (s *Sink) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// Events returns the events the sink took, in order, re-ships included.
func (s *Sink) Events() []collector.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]collector.Event(nil), s.got...)
}

// IDs returns the ids of the events the sink took, in order.
func (s *Sink) IDs() []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]int64, len(s.got))
	for i, e := range s.got {
		ids[i] = e.ID
	}
	return ids
}

func (s *Sink) Ship(ctx context.Context, collectorID string, events []collector.Event) error {
	taken, g, err := s.answer(collectorID, events)
	if len(taken) > 0 && s.OnShip != nil {
		s.OnShip(taken)
	}
	if g != nil {
		select {
		case g.held <- struct{}{}:
		default:
		}
		select {
		case <-g.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return err
}

// answer decides what becomes of one call's batch and records what the
// sink took.
func (s *Sink) answer(collectorID string, events []collector.Event) (taken []collector.Event, g *gate, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	switch {
	case s.Collector != "" && collectorID != s.Collector:
		return nil, nil, fmt.Errorf("shipped under collector id %q, want %q", collectorID, s.Collector)
	case s.fail != nil && s.calls >= s.failFrom:
		return nil, nil, s.fail
	case s.PerEvent:
		taken, err = s.perEvent(events)
	default:
		for _, e := range events {
			if s.reject[e.ID] {
				return nil, nil, fmt.Errorf("event %d refused: %w", e.ID, collector.ErrRejected)
			}
		}
		taken = events
	}
	s.got = append(s.got, taken...)
	return taken, s.gate, err
}

func (s *Sink) perEvent(events []collector.Event) ([]collector.Event, error) {
	var taken []collector.Event
	pe := &collector.PartialError{}
	for _, e := range events {
		switch {
		case s.reject[e.ID]:
			pe.Rejected = append(pe.Rejected, e.ID)
			pe.RejectErr = errors.New("refused for good")
		case s.lose[e.ID]:
			pe.Err = errors.New("ack lost")
		default:
			pe.Delivered = append(pe.Delivered, e.ID)
			taken = append(taken, e)
		}
	}
	if pe.Err == nil && len(pe.Rejected) == 0 {
		return taken, nil
	}
	return taken, pe
}

func set(ids []int64) map[int64]bool {
	m := make(map[int64]bool, len(ids))
	for _, id := range ids {
		m[id] = true
	}
	return m
}
