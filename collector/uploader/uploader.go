// Package uploader drains the store's backlog to a sink: ship first, then
// mark, so delivery is at-least-once, with an audit row for every batch
// that had events, exponential backoff on failure, and retention purges.
//
// The drain is a pipeline (pipeline.go): the next batch is read while the
// ones before it are shipped, up to Options.InFlight batches are in flight
// at once, and their marks commit in id order. This file holds what a batch
// goes through once the sink has answered: the verdict (what left the
// backlog, what stays, and why), the marks, the audit rows, the health.
package uploader

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"edgecollector/collector"
	"edgecollector/collector/store"
)

// Defaults for Options fields left zero.
const (
	DefaultInterval   = time.Second
	DefaultBatch      = 1000
	DefaultInFlight   = 4
	DefaultMaxBackoff = 30 * time.Second
	defaultPurgeEvery = time.Minute
)

// DefaultRetention is the retention the collector command starts with. It
// is not applied to a zero Options.Retention: zero keeps events forever, as
// a library must not delete what it was not told to.
const DefaultRetention = 24 * time.Hour

// Options configure an Uploader.
type Options struct {
	// Interval is the polling period while the backlog is small. It is not a
	// rate limit: while batches come out whole, the next is read at once.
	Interval time.Duration
	Batch    int
	// InFlight is how many batches may be in flight at once: shipped, or
	// being shipped, and not yet marked. 1 keeps strict order: a batch goes
	// out once the one before it was answered. More lets the sink take
	// several at once and answer them in any order, for sinks that
	// deduplicate on (collector_id, id); the marks still commit in id order.
	InFlight int
	// MaxBackoff caps the wait after consecutive failures (which starts at
	// Interval and doubles, with jitter).
	MaxBackoff time.Duration
	// Retention: uploaded events older than this are purged every
	// PurgeEvery. Zero (or negative) keeps them forever.
	Retention  time.Duration
	PurgeEvery time.Duration
	Logger     *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.Batch <= 0 {
		o.Batch = DefaultBatch
	}
	if o.InFlight <= 0 {
		o.InFlight = DefaultInFlight
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = DefaultMaxBackoff
	}
	if o.PurgeEvery <= 0 {
		o.PurgeEvery = defaultPurgeEvery
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Health is the uploader's state as /healthz reports it.
type Health struct {
	Healthy             bool       `json:"healthy"`
	FailingSince        *time.Time `json:"failing_since,omitempty"`
	ConsecutiveFailures int        `json:"consecutive_failures"`
	LastError           string     `json:"last_error,omitempty"`
	LastSuccess         *time.Time `json:"last_success,omitempty"`
}

// Stats are the uploader's counters since start.
type Stats struct {
	Cycles         int64 `json:"cycles"` // batches shipped, and retries of their marks
	EventsShipped  int64 `json:"events_shipped"`
	EventsRejected int64 `json:"events_rejected"`
	Failures       int64 `json:"failures"`
	InFlight       int   `json:"in_flight"` // the most batches in flight at once (Options.InFlight)
	Health
	// Sink holds the sink's own counters, when it keeps any (a sink with a
	// Stats() any method, such as the NATS sink's acks and duplicates).
	Sink any `json:"sink,omitempty"`
}

// Uploader drains a store to a sink in the background (Start/Stop), or step
// by step (Sync, Drain) in tests.
type Uploader struct {
	store *store.Store
	sink  collector.Sink
	opts  Options

	runMu sync.Mutex // one round (or Sync) at a time
	// unmarked are batches the sink took whose marks did not commit (a full
	// disk, a lock held too long), in id order. Before anything else ships,
	// their marks are retried, alone: shipping them again on every retry
	// would flood the sink with duplicates for as long as the disk stays
	// full. Guarded by runMu; lost in a crash, when they are shipped again.
	unmarked []*batch

	mu     sync.Mutex
	health Health

	cycles, shipped, rejected, failures atomic.Int64

	// The background loop (Start, Stop).
	stopOnce sync.Once
	stopc    chan struct{}      // closed by Stop: drain, then end
	abort    context.CancelFunc // cancels the batches under way
	done     chan struct{}      // closed once the loop has ended
	stopErr  error              // the final drain's; read after done
}

// New returns an uploader; Start runs it.
func New(st *store.Store, sink collector.Sink, o Options) *Uploader {
	return &Uploader{store: st, sink: sink, opts: o.withDefaults(), health: Health{Healthy: true}}
}

// Start runs the drain in the background until Stop.
func (u *Uploader) Start(ctx context.Context) {
	// Batches under way when Stop is called finish (the sink answers or
	// times out, the marks commit) unless Stop's own budget runs out first:
	// a batch cut between ship and answer would be shipped again.
	batchCtx, abort := context.WithCancel(context.WithoutCancel(ctx))
	u.stopc, u.abort, u.done = make(chan struct{}), abort, make(chan struct{})
	go func() { // owned: Stop ends it and waits
		defer close(u.done)
		defer abort()
		u.stopErr = u.loop(ctx, batchCtx)
	}()
}

// Stop drains what is left (the batches in flight, then the backlog, with
// the pipeline) and ends the loop, once the backlog is empty or a batch
// fails; when ctx ends first, the batches under way are cancelled. It
// returns the drain's failure, if any. Without Start, it is Drain.
func (u *Uploader) Stop(ctx context.Context) error {
	if u.stopc == nil {
		return u.Drain(ctx)
	}
	u.stopOnce.Do(func() { close(u.stopc) })
	select {
	case <-u.done:
	case <-ctx.Done():
		u.abort()
		<-u.done
	}
	if u.stopErr != nil {
		return fmt.Errorf("drain: %w", u.stopErr)
	}
	return nil
}

// Drain ships until the backlog is empty, a batch fails, or ctx ends.
func (u *Uploader) Drain(ctx context.Context) error {
	if _, err := u.round(ctx, nil); err != nil {
		return fmt.Errorf("drain: %w", err)
	}
	return nil
}

// loop runs rounds of the pipeline until Stop (then a last round drains),
// or ctx ends, purging before a round once PurgeEvery has passed since the
// last purge. Between rounds it waits: Interval once the backlog ran dry,
// a backoff after a failure, nothing when the round ended on a whole batch
// (to purge).
func (u *Uploader) loop(ctx, batchCtx context.Context) error {
	var lastPurge time.Time // the first purge comes before the first round
	for {
		if u.opts.Retention > 0 && time.Since(lastPurge) >= u.opts.PurgeEvery {
			lastPurge = time.Now()
			if n, err := u.store.Purge(ctx, time.Now().Add(-u.opts.Retention)); err != nil {
				u.opts.Logger.Warn("retention purge failed", "err", err)
			} else if n > 0 {
				u.opts.Logger.Info("retention purge", "events", n)
			}
		}
		if isClosed(u.stopc) {
			_, err := u.round(batchCtx, nil) // the drain: until the backlog is empty
			return err
		}
		full, err := u.round(batchCtx, u.stopc)
		if isClosed(u.stopc) {
			if err != nil {
				return err
			}
			continue // the round may have ended before Stop: drain what is left
		}
		wait := u.opts.Interval
		switch {
		case err != nil:
			wait = u.backoff()
			var ra *collector.RetryAfterError
			if errors.As(err, &ra) { // the sink asked for a pause: honour it, within the cap
				wait = min(max(wait, ra.After), u.opts.MaxBackoff)
			}
		case full:
			wait = 0
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-u.stopc:
			t.Stop()
		case <-t.C:
		}
	}
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// backoff is Interval doubled per consecutive failure, capped, with jitter
// in [d/2, d) so a fleet that failed together does not retry together.
func (u *Uploader) backoff() time.Duration {
	u.mu.Lock()
	n := u.health.ConsecutiveFailures
	u.mu.Unlock()
	d := u.opts.Interval
	for i := 1; i < n && d < u.opts.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, u.opts.MaxBackoff)
	return d/2 + rand.N(d/2+1)
}

// Sync runs one cycle, on its own: the marks of batches taken but not yet
// marked, if any; else the oldest batch, shipped, judged and marked. It
// returns how many events left the backlog; with an error, the others stay
// in it for the next cycle.
func (u *Uploader) Sync(ctx context.Context) (int, error) {
	u.runMu.Lock()
	defer u.runMu.Unlock()
	if len(u.unmarked) > 0 {
		return u.remark(ctx)
	}
	events, err := u.store.FetchBacklog(ctx, 0, u.opts.Batch)
	if err != nil {
		u.fail(err)
		return 0, err
	}
	if len(events) == 0 {
		return 0, nil
	}
	b := u.ship(ctx, events)
	n, err := u.settle(ctx, b, false)
	if err != nil {
		u.fail(err)
	} else {
		u.succeed()
	}
	return n, err
}

// remark retries the marks of the batches the sink took whose marks did
// not commit, in order, and stops at the first that fails again. runMu held.
func (u *Uploader) remark(ctx context.Context) (int, error) {
	left := 0
	var failed error
	for len(u.unmarked) > 0 {
		b := u.unmarked[0]
		u.cycles.Add(1)
		if err := u.mark(ctx, b); err != nil {
			u.fail(err)
			return left, err
		}
		u.unmarked = u.unmarked[1:]
		left += len(b.v.done)
		if b.v.err != nil && failed == nil { // what the sink kept of it stays
			failed = b.v.err
			u.failRun(ctx, newRun(b.started, b.v.kept, collector.RunFailed, b.v.err.Error()))
		}
	}
	u.unmarked = nil
	if failed != nil {
		u.fail(failed)
		return left, failed
	}
	u.succeed()
	return left, nil
}

// batch is a batch of events on its way: read, shipped, answered, judged,
// marked.
type batch struct {
	events   []collector.Event // in id order
	started  time.Time
	receipt  collector.Receipt
	err      error // the sink's, about what it kept
	answered bool  // the sink has answered (set by the round's goroutine)
	v        verdict
}

// ship sends b's events to the sink and keeps its answer.
func (u *Uploader) ship(ctx context.Context, events []collector.Event) *batch {
	u.cycles.Add(1)
	b := &batch{events: events, started: time.Now()}
	b.receipt, b.err = u.sink.Ship(ctx, events)
	return b
}

// verdict is what became of a batch, event by event, once the endpoint
// rule has spoken.
type verdict struct {
	done             []collector.Event // taken or refused: they leave the backlog (id order)
	taken, refused   int
	refusal          error             // why the sink refused what it refused
	kept             []collector.Event // they stay in the backlog
	err              error             // why (nil when none is kept)
	status, rejected string            // the audit row's status and message for done
}

// judge reads the sink's receipt. The rule that tells a poison event from
// a wrong endpoint: refused events leave the backlog only in a batch where
// the sink took some other event, the evidence that the endpoint works and
// that what it refused is wrong in itself. A batch where it took nothing
// and refused something (a receiver answering 400 to everything, so that
// bisection ends with each event refused on its own) speaks about the
// endpoint: every event stays, the batch fails. A lone poison event waits,
// so, until a good one shares its batch.
func judge(events []collector.Event, r collector.Receipt, err error) verdict {
	var v verdict
	for i := range events {
		switch r.Fate(i) {
		case collector.Taken:
			v.taken++
		case collector.Refused:
			v.refused++
		}
	}
	endpoint := v.refused > 0 && v.taken == 0
	v.done = make([]collector.Event, 0, v.taken+v.refused)
	var refused []collector.Event
	for i, e := range events {
		switch f := r.Fate(i); {
		case f == collector.Taken, f == collector.Refused && !endpoint:
			v.done = append(v.done, e)
			if f == collector.Refused {
				refused = append(refused, e)
			}
		default:
			v.kept = append(v.kept, e)
		}
	}
	if v.refused > 0 {
		v.refusal = r.Refusal
		if v.refusal == nil {
			v.refusal = collector.ErrRejected
		}
	}
	switch {
	case endpoint:
		why := fmt.Errorf("%w: the sink took none of the batch and refused each of %d events on its own (%v)",
			collector.ErrEndpoint, v.refused, v.refusal)
		if err != nil {
			why = fmt.Errorf("%w; the others: %w", why, err)
		}
		v.err, v.refused = why, 0
	case len(v.kept) > 0 && err == nil:
		v.err = fmt.Errorf("the sink kept %d of %d events without saying why", len(v.kept), len(events))
	case len(v.kept) > 0:
		v.err = err
		if len(v.done) > 0 {
			v.err = fmt.Errorf("%d of %d events not accepted: %w", len(v.kept), len(events), err)
		}
	}
	v.status = collector.RunOK
	if v.refused > 0 {
		v.status = collector.RunRejected
		v.rejected = rejectedMessage(refused, len(events), v.refusal)
	}
	return v
}

// settle judges an answered batch and commits what became of it: the
// marks of what left the backlog with their audit row, then the audit row
// of what stays. behind is set when a batch before this one is still
// unmarked: marks commit in id order, so this one waits with it. A batch
// whose marks fail joins u.unmarked. It returns how many events left the
// backlog, and what fails the batch (nil when nothing stays). runMu held.
func (u *Uploader) settle(ctx context.Context, b *batch, behind bool) (int, error) {
	if !b.answered { // a round judges a batch as its answer comes
		b.v = judge(b.events, b.receipt, b.err)
	}
	if len(b.v.done) > 0 {
		if behind {
			u.unmarked = append(u.unmarked, b)
			return 0, errBehind
		}
		// Ship first, then mark: a crash between the two ships again,
		// never loses. The audit row commits with the marks.
		if err := u.mark(ctx, b); err != nil {
			u.unmarked = append(u.unmarked, b)
			return 0, err
		}
	}
	if b.v.err != nil {
		u.failRun(ctx, newRun(b.started, b.v.kept, collector.RunFailed, b.v.err.Error()))
		return len(b.v.done), b.v.err
	}
	return len(b.v.done), nil
}

// mark commits b's marks with its audit row. On failure the marks'
// failure is audited.
func (u *Uploader) mark(ctx context.Context, b *batch) error {
	v := b.v
	run := newRun(b.started, v.done, v.status, v.rejected)
	if err := u.store.Checkpoint(ctx, v.done, run.FinishedAt, []collector.UploadRun{run}); err != nil {
		err = fmt.Errorf("mark %d events the sink took (kept to retry before shipping more): %w", len(v.done), err)
		u.failRun(ctx, newRun(b.started, v.done, collector.RunFailed, err.Error()))
		return err
	}
	u.account(v)
	return nil
}

// settleTogether commits the marks of answered batches that kept nothing
// (judged, in id order, none behind an unmarked one) in one checkpoint: one
// write turn and one fsync for all of them, each batch with its audit row.
// On failure every batch joins u.unmarked, as one settled alone would.
func (u *Uploader) settleTogether(ctx context.Context, bs []*batch) (int, error) {
	var done []collector.Event
	runs := make([]collector.UploadRun, 0, len(bs))
	for _, b := range bs {
		done = append(done, b.v.done...)
		runs = append(runs, newRun(b.started, b.v.done, b.v.status, b.v.rejected))
	}
	if err := u.store.Checkpoint(ctx, done, runs[len(runs)-1].FinishedAt, runs); err != nil {
		err = fmt.Errorf("mark %d events the sink took (kept to retry before shipping more): %w", len(done), err)
		for _, b := range bs {
			u.failRun(ctx, newRun(b.started, b.v.done, collector.RunFailed, err.Error()))
		}
		u.unmarked = append(u.unmarked, bs...)
		return 0, err
	}
	for _, b := range bs {
		u.account(b.v)
	}
	return len(done), nil
}

// account counts what a marked batch's verdict took and refused.
func (u *Uploader) account(v verdict) {
	u.shipped.Add(int64(v.taken))
	if v.refused > 0 {
		u.rejected.Add(int64(v.refused))
		u.opts.Logger.Error("sink rejected events for good; they left the backlog unshipped",
			"events", v.refused, "err", v.refusal)
	}
}

// newRun is the audit record of a batch over events (sorted by id).
func newRun(started time.Time, events []collector.Event, status, msg string) collector.UploadRun {
	return collector.UploadRun{
		StartedAt:  started,
		FinishedAt: time.Now(),
		EventCount: len(events),
		FirstID:    events[0].ID,
		LastID:     events[len(events)-1].ID,
		Status:     status,
		Error:      msg,
	}
}

// failRun writes a failed batch's audit row; if even that fails, it is
// logged.
func (u *Uploader) failRun(ctx context.Context, run collector.UploadRun) {
	if err := u.store.RecordRun(context.WithoutCancel(ctx), run); err != nil {
		u.opts.Logger.Error("audit row not written", "err", err)
	}
}

func rejectedMessage(rejected []collector.Event, total int, err error) string {
	ids := make([]string, 0, 20)
	for i, e := range rejected {
		if i == 20 {
			ids = append(ids, "...")
			break
		}
		ids = append(ids, fmt.Sprint(e.ID))
	}
	return fmt.Sprintf("%d of %d events rejected for good (ids %s): %v",
		len(rejected), total, strings.Join(ids, ","), err)
}

// fail records a failed cycle (a round, or a Sync) in the health.
func (u *Uploader) fail(err error) {
	u.failures.Add(1)
	now := time.Now()
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.health.Healthy {
		u.health.FailingSince = &now
	}
	u.health.Healthy = false
	u.health.ConsecutiveFailures++
	u.health.LastError = err.Error()
	u.opts.Logger.Warn("upload failed", "err", err, "consecutive", u.health.ConsecutiveFailures)
}

func (u *Uploader) succeed() {
	now := time.Now()
	u.mu.Lock()
	defer u.mu.Unlock()
	if !u.health.Healthy {
		u.opts.Logger.Info("uploader recovered", "failing_since", u.health.FailingSince)
	}
	u.health = Health{Healthy: true, LastSuccess: &now}
}

// Health reports the uploader's state.
func (u *Uploader) Health() Health {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.health
}

// Stats reports the uploader's counters and health.
func (u *Uploader) Stats() Stats {
	return Stats{
		Cycles:         u.cycles.Load(),
		EventsShipped:  u.shipped.Load(),
		EventsRejected: u.rejected.Load(),
		Failures:       u.failures.Load(),
		InFlight:       u.opts.InFlight,
		Health:         u.Health(),
		Sink:           sinkStats(u.sink),
	}
}

func sinkStats(s collector.Sink) any {
	if r, ok := s.(interface{ Stats() any }); ok {
		return r.Stats()
	}
	return nil
}
