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
	p := &pipe{u: u, ctx: ctx, began: time.Now(),
		fetchc: make(chan fetched, 1), shipc: make(chan *batch, u.opts.InFlight), settlec: make(chan settled, 1)}
	for {
		p.launch()
		if p.over() {
			break
		}
		select {
		case f := <-p.fetchc:
			p.fetched(f, stopc != nil)
		case b := <-p.shipc:
			b.answered = true
			b.v = judge(b.events, b.receipt, b.err)
		case s := <-p.settlec:
			p.settling = false
			p.window = p.window[s.batches:]
			if s.err != nil {
				p.failed = cmpErr(p.failed, s.err)
			} else if p.failed == nil {
				u.succeed()
			}
		case <-stopc:
			stopc = nil // Stop: drain, reading until the backlog is empty
			if p.dry && !p.empty {
				p.dry = false
			}
		}
	}
	if p.failed != nil {
		u.fail(p.failed)
	}
	return p.full, p.failed
}

type fetched struct {
	events []collector.Event
	err    error
}

type settled struct {
	n, batches int
	err        error
}

// pipe is one round's state. Only the round's goroutine touches it; the
// goroutines it starts report on its channels.
type pipe struct {
	u     *Uploader
	ctx   context.Context
	began time.Time

	cursor   int64             // the last id read
	window   []*batch          // in flight, in the order read
	next     []collector.Event // read, waiting for a slot
	fetching bool              // a read under way
	settling bool              // a settle under way (window[0])
	dry      bool              // read no more: the backlog ran dry, or time to purge
	empty    bool              // the last read found nothing
	full     bool              // the last read was a whole batch
	failed   error             // the first failure: read and ship no more

	fetchc  chan fetched
	shipc   chan *batch
	settlec chan settled
}

// launch starts what can start: a ship for a batch read when a slot is
// free, the next read, the settle of the oldest batch once answered.
func (p *pipe) launch() {
	u := p.u
	if p.failed != nil {
		p.next = nil // read past a failure: it is read again next round
	}
	if p.next != nil && len(p.window) < u.opts.InFlight {
		b := &batch{events: p.next, started: time.Now()}
		p.next = nil
		p.window = append(p.window, b)
		u.cycles.Add(1)
		go func() { // owned: reports on shipc, which the round drains
			b.receipt, b.err = u.sink.Ship(p.ctx, b.events)
			p.shipc <- b
		}()
	}
	if !p.fetching && p.next == nil && !p.dry && p.failed == nil {
		if u.opts.Retention > 0 && time.Since(p.began) >= u.opts.PurgeEvery {
			p.dry = true // end the round so the loop purges; it comes back at once
		} else {
			p.fetching = true
			go func(after int64) { // owned: reports on fetchc
				events, err := u.store.FetchBacklog(p.ctx, after, u.opts.Batch)
				p.fetchc <- fetched{events, err}
			}(p.cursor)
		}
	}
	if !p.settling && len(p.window) > 0 && p.window[0].answered {
		p.settling = true
		bs, behind := p.window[:1:1], len(u.unmarked) > 0
		if !behind {
			// The answered batches at the head that kept nothing settle
			// together: one write turn (one fsync) marks them all.
			j := 0
			for j < len(p.window) && p.window[j].answered && p.window[j].v.err == nil {
				j++
			}
			if j > 1 {
				bs = p.window[:j:j]
			}
		}
		go func() { // owned: reports on settlec
			var n int
			var err error
			if len(bs) == 1 {
				n, err = u.settle(p.ctx, bs[0], behind)
			} else {
				n, err = u.settleTogether(p.ctx, bs)
			}
			p.settlec <- settled{n, len(bs), err}
		}()
	}
}

// over reports that nothing is under way and nothing more will start.
func (p *pipe) over() bool {
	return !p.fetching && !p.settling && len(p.window) == 0 && p.next == nil && (p.dry || p.failed != nil)
}

// fetched takes a read's result. polling is set while the loop will poll
// again after Interval (not a drain): a short read ends the reading.
func (p *pipe) fetched(f fetched, polling bool) {
	p.fetching = false
	switch {
	case f.err != nil:
		p.failed = cmpErr(p.failed, f.err)
	case len(f.events) == 0:
		p.dry, p.empty, p.full = true, true, false
	default:
		p.next = f.events
		p.cursor = f.events[len(f.events)-1].ID
		p.full, p.empty = len(f.events) >= p.u.opts.Batch, false
		if !p.full && polling {
			p.dry = true // the backlog is under a batch: poll again after Interval
		}
	}
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
