// Package sinktest is a scriptable fake of the uploader's upstream, a
// collector.Sink for tests: it takes every batch and records it unless a
// test tells it to fail, to refuse some events for good, to answer event by
// event, or to hold its answers (all of them, or batch by batch, so that
// batches in flight together can be answered in any order). It stands at
// the service boundary only; tests of a real sink use the real thing (an
// httptest server, natstest).
package sinktest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"edgecollector/collector"
	"edgecollector/collector/sink"
)

// Sink is the fake. The zero value takes every batch whole, as a webhook
// does (a batch holding a refused event is refused whole, and bisected by
// sink.Bisect, as the webhook's is). Set the fields before the first Ship;
// the methods may be called at any time, from any goroutine.
type Sink struct {
	// PerEvent makes the sink answer event by event, as one with a publish
	// ack per event does: refused and lost events are named in the receipt,
	// the others taken.
	PerEvent bool
	// OnShip, when set, runs after the sink has taken a batch and before it
	// answers, with the events it took.
	OnShip func(taken []collector.Event)

	mu             sync.Mutex
	calls          int
	got            []collector.Event
	fail           error
	failFrom       int             // the first call that fails with fail
	failOn         map[int64]error // a call holding one of these ids fails with its error
	reject         map[int64]bool  // refused for good
	lose           map[int64]bool  // kept, with a reason (PerEvent)
	mute           map[int64]bool  // kept, without a reason (PerEvent): a buggy sink
	gate           *gate           // while not nil, answers wait for a release
	inFlight, most int             // calls under way now, and at most
}

// A gate holds answers. held signals a waiting call; release, once closed,
// lets them all go; each call can also be let go on its own (calls).
type gate struct {
	release, held chan struct{}
	calls         map[int64]chan struct{} // by the first id of the batch
	order         []int64                 // first ids of the calls held, in arrival order
}

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

// FailOn makes every call whose batch holds one of ids fail with err,
// taking nothing, while other calls are answered as usual (and no longer
// those of an earlier FailOn; nil err clears it): one batch in flight
// failing beside others that succeed.
func (s *Sink) FailOn(err error, ids ...int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failOn = make(map[int64]error, len(ids))
	if err != nil {
		for _, id := range ids {
			s.failOn[id] = err
		}
	}
}

// Reject makes the sink refuse the events with these ids for good (and no
// longer those of an earlier call). A batch holding one is refused whole,
// wrapping collector.ErrRejected, as a webhook's 400 is (and bisected);
// with PerEvent only those events are refused.
func (s *Sink) Reject(ids ...int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reject = set(ids)
}

// Lose makes a PerEvent sink keep the events with these ids (and no longer
// those of an earlier call), as a lost publish ack does: the receipt keeps
// them and the error says why.
func (s *Sink) Lose(ids ...int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lose = set(ids)
}

// Mute makes a PerEvent sink keep the events with these ids without giving
// any reason (a nil error), as a buggy sink might.
func (s *Sink) Mute(ids ...int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mute = set(ids)
}

// Hold makes every call from now on take its batch (the upstream has it)
// and then wait to answer until Release, or ReleaseBatch of its batch, or
// until the caller gives up. Held receives once a call waits.
func (s *Sink) Hold() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gate = &gate{release: make(chan struct{}), held: make(chan struct{}, 1), calls: map[int64]chan struct{}{}}
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

// Holding returns the first event id of each batch held unanswered now,
// in the order the calls arrived.
func (s *Sink) Holding() []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gate == nil {
		return nil
	}
	return slices.Clone(s.gate.order)
}

// ReleaseBatch answers the held call whose batch begins with id, and
// reports whether there was one.
func (s *Sink) ReleaseBatch(id int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gate == nil {
		return false
	}
	c, ok := s.gate.calls[id]
	if ok {
		close(c)
		delete(s.gate.calls, id)
		s.gate.order = slices.DeleteFunc(s.gate.order, func(x int64) bool { return x == id })
	}
	return ok
}

// Release answers every held call and stops holding.
func (s *Sink) Release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gate != nil {
		close(s.gate.release)
		s.gate = nil
	}
}

// Calls returns how many batches were sent (a refused batch's bisection
// sends its halves too).
func (s *Sink) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// MostInFlight returns the most calls that were ever under way at once.
func (s *Sink) MostInFlight() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.most
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

func (s *Sink) Ship(ctx context.Context, events []collector.Event) (collector.Receipt, error) {
	if !s.PerEvent {
		return sink.Bisect{Whole: whole{s}}.Ship(ctx, events)
	}
	var r collector.Receipt
	err := s.call(ctx, events, func() ([]collector.Event, error) {
		var taken []collector.Event
		r, taken = s.perEvent(events)
		return taken, nil
	})
	if err == nil {
		for i := range events {
			if r.Fates[i] == collector.Kept && s.lost(events[i].ID) {
				err = errors.New("ack lost")
			}
		}
	} else {
		r = collector.Receipt{} // it failed whole: nothing taken
	}
	return r, err
}

// whole is the fake as an all-or-nothing sink.
type whole struct{ s *Sink }

func (w whole) Send(ctx context.Context, events []collector.Event) error {
	return w.s.call(ctx, events, func() ([]collector.Event, error) {
		for _, e := range events {
			if w.s.reject[e.ID] {
				return nil, fmt.Errorf("event %d refused: %w", e.ID, collector.ErrRejected)
			}
		}
		return events, nil
	})
}

// call counts a call, applies the failures scripted, lets answer decide
// (under the lock) what the sink takes, records it, then holds the answer
// if told to.
func (s *Sink) call(ctx context.Context, events []collector.Event, answer func() ([]collector.Event, error)) error {
	s.mu.Lock()
	s.calls++
	s.inFlight++
	s.most = max(s.most, s.inFlight)
	taken, err := s.failure(events)
	if err == nil {
		taken, err = answer()
	}
	s.got = append(s.got, taken...)
	g := s.gate
	if len(events) == 0 {
		g = nil
	}
	var mine chan struct{}
	if g != nil {
		mine = make(chan struct{})
		g.calls[events[0].ID] = mine
		g.order = append(g.order, events[0].ID)
	}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.inFlight--
		s.mu.Unlock()
	}()
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
		case <-mine:
		case <-ctx.Done():
			s.forget(g, events[0].ID)
			return ctx.Err()
		}
		s.forget(g, events[0].ID)
	}
	return err
}

// forget drops a held call that was answered or given up.
func (s *Sink) forget(g *gate, id int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(g.calls, id)
	g.order = slices.DeleteFunc(g.order, func(x int64) bool { return x == id })
}

// failure is the scripted failure of a call, if any; s.mu held.
func (s *Sink) failure(events []collector.Event) ([]collector.Event, error) {
	if s.fail != nil && s.calls >= s.failFrom {
		return nil, s.fail
	}
	for _, e := range events {
		if err := s.failOn[e.ID]; err != nil {
			return nil, err
		}
	}
	return nil, nil
}

// perEvent answers event by event; s.mu held.
func (s *Sink) perEvent(events []collector.Event) (collector.Receipt, []collector.Event) {
	var taken []collector.Event
	r := collector.Receipt{Fates: make([]collector.Fate, len(events))}
	for i, e := range events {
		switch {
		case s.reject[e.ID]:
			r.Fates[i] = collector.Refused
			r.Refusal = errors.New("refused for good")
		case s.lose[e.ID], s.mute[e.ID]:
		default:
			r.Fates[i] = collector.Taken
			taken = append(taken, e)
		}
	}
	return r, taken
}

func (s *Sink) lost(id int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lose[id]
}

func set(ids []int64) map[int64]bool {
	m := make(map[int64]bool, len(ids))
	for _, id := range ids {
		m[id] = true
	}
	return m
}
