package uploader

import (
	"context"
	"errors"
	"time"

	"edgecollector/collector"
)

// round runs the pipeline once, from the oldest event of the backlog. It
// reads the next batch while the ones before it are shipped (reading past
// them: they are not marked yet), keeps up to InFlight batches in flight,
// and settles them in the order they were read, so their marks commit in
// id order. A batch answered early waits for the ones before it.
//
// The round ends once the backlog has run dry: a read came back short
// (while stopc is not nil: the loop polls again after Interval) or empty
// (a drain: stopc nil, or closed during the round); after a failure, when
// it reads and ships nothing more, settles what is in flight and returns
// the first failure; or, with retention on, after PurgeEvery, so that the
// loop can purge. full reports that its last read was a whole batch.
//
// Every goroutine it starts (one read at a time, one Ship per batch in
// flight, one settle at a time) has reported back before it returns.
func (u *Uploader) round(ctx context.Context, stopc <-chan struct{}) (full bool, err error) {
	u.runMu.Lock()
	defer u.runMu.Unlock()
	if len(u.unmarked) > 0 { // marks first, alone, before anything ships
		if _, err := u.remark(ctx); err != nil {
			return false, err
		}
	}
	type fetched struct {
		events []collector.Event
		err    error
	}
	type settled struct {
		n   int
		err error
	}
	var (
		began    = time.Now()
		k        = u.opts.InFlight
		cursor   int64             // the last id read
		window   []*batch          // in flight, in the order read
		next     []collector.Event // read, waiting for a slot
		fetching bool              // a read under way
		settling bool              // a settle under way (window[0])
		dry      bool              // read no more: the backlog ran dry, or time to purge
		empty    bool              // the last read found nothing
		failed   error             // the first failure: read and ship no more
		fetchc   = make(chan fetched, 1)
		shipc    = make(chan *batch, k)
		settlec  = make(chan settled, 1)
	)
	for {
		if failed != nil {
			next = nil // read past a failure: it is read again next round
		}
		if next != nil && len(window) < k {
			b := &batch{events: next, started: time.Now()}
			next = nil
			window = append(window, b)
			u.cycles.Add(1)
			go func() { // owned: reports on shipc, which the round drains
				b.receipt, b.err = u.sink.Ship(ctx, b.events)
				shipc <- b
			}()
		}
		if !fetching && next == nil && !dry && failed == nil {
			if u.opts.Retention > 0 && time.Since(began) >= u.opts.PurgeEvery {
				dry = true // end the round so the loop purges; it comes back at once
			} else {
				fetching = true
				go func(after int64) { // owned: reports on fetchc
					events, err := u.store.FetchBacklog(ctx, after, u.opts.Batch)
					fetchc <- fetched{events, err}
				}(cursor)
			}
		}
		if !settling && len(window) > 0 && window[0].answered {
			settling = true
			b, behind := window[0], len(u.unmarked) > 0
			go func() { // owned: reports on settlec
				n, err := u.settle(ctx, b, behind)
				settlec <- settled{n, err}
			}()
		}
		if !fetching && !settling && len(window) == 0 && next == nil && (dry || failed != nil) {
			break
		}
		select {
		case f := <-fetchc:
			fetching = false
			switch {
			case f.err != nil:
				failed = cmpErr(failed, f.err)
			case len(f.events) == 0:
				dry, empty, full = true, true, false
			default:
				next = f.events
				cursor = f.events[len(f.events)-1].ID
				full, empty = len(f.events) >= u.opts.Batch, false
				if !full && stopc != nil {
					dry = true // the backlog is under a batch: poll again after Interval
				}
			}
		case b := <-shipc:
			b.answered = true
		case s := <-settlec:
			settling = false
			window = window[1:]
			if s.err != nil {
				failed = cmpErr(failed, s.err)
			} else if failed == nil {
				u.succeed()
			}
		case <-stopc:
			stopc = nil // Stop: drain, reading until the backlog is empty
			if dry && !empty {
				dry = false
			}
		}
	}
	if failed != nil {
		u.fail(failed)
	}
	return full, failed
}

// errBehind fails a batch whose marks wait for an earlier batch's.
var errBehind = errors.New("marks wait for an earlier batch's")

// cmpErr keeps the first failure of a round.
func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}
