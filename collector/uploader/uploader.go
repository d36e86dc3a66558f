// Package uploader drains the store's backlog to a sink: ship first, then
// mark, so delivery is at-least-once, with an audit row for every cycle that
// had events, exponential backoff on failure, and retention purges.
package uploader

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
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
	DefaultMaxBackoff = 30 * time.Second
	defaultPurgeEvery = time.Minute
)

// DefaultRetention is the retention the collector command starts with. It
// is not applied to a zero Options.Retention: zero keeps events forever, as
// a library must not delete what it was not told to.
const DefaultRetention = 24 * time.Hour

// Options configure an Uploader.
type Options struct {
	CollectorID string
	// Interval is the polling period while the backlog is small. It is not a
	// rate limit: while a cycle fills a whole batch, the next starts at once.
	Interval time.Duration
	Batch    int
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
	Cycles         int64 `json:"cycles"`
	EventsShipped  int64 `json:"events_shipped"`
	EventsRejected int64 `json:"events_rejected"`
	Failures       int64 `json:"failures"`
	Health
	// Sink holds the sink's own counters, when it keeps any (a sink with a
	// Stats() any method, such as the NATS sink's acks and duplicates).
	Sink any `json:"sink,omitempty"`
}

// Uploader drains a store to a sink in the background (Start/Stop), or step
// by step (Sync) in tests.
type Uploader struct {
	store *store.Store
	sink  collector.Sink
	opts  Options

	syncMu sync.Mutex // one cycle at a time
	// unmarked is a batch the sink took whose marks did not commit (a full
	// disk, a lock held too long). The next cycle retries the marks before
	// it ships anything: shipping the batch again on every retry would
	// flood the sink with duplicates for as long as the disk stays full.
	// Guarded by syncMu; lost in a crash, when the batch is shipped again.
	unmarked *unmarked

	mu     sync.Mutex
	health Health

	cycles, shipped, rejected, failures atomic.Int64

	cancel context.CancelFunc // ends the loop after its cycle
	abort  context.CancelFunc // cancels the cycle under way
	wg     sync.WaitGroup
}

// New returns an uploader; Start runs it.
func New(st *store.Store, sink collector.Sink, o Options) *Uploader {
	return &Uploader{store: st, sink: sink, opts: o.withDefaults(), health: Health{Healthy: true}}
}

// Start runs the drain loop until Stop.
func (u *Uploader) Start(ctx context.Context) {
	// A cycle under way when Stop is called finishes (the sink answers or
	// times out, the marks commit) unless Stop's own budget runs out first:
	// a cycle cut between ship and answer would ship the batch again.
	cycleCtx, abort := context.WithCancel(context.WithoutCancel(ctx))
	ctx, cancel := context.WithCancel(ctx)
	u.cancel = cancel
	u.abort = abort
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		defer abort()
		u.loop(ctx, cycleCtx)
	}()
}

// Stop ends the loop after the cycle under way, then drains what is left
// with one more round of cycles until the backlog is empty, a cycle fails,
// or ctx ends. When ctx ends first, the cycle under way is cancelled.
func (u *Uploader) Stop(ctx context.Context) error {
	if u.cancel != nil {
		u.cancel()
		stopped := make(chan struct{})
		go func() { u.wg.Wait(); close(stopped) }()
		select {
		case <-stopped:
		case <-ctx.Done():
			u.abort()
			<-stopped
		}
	}
	return u.Drain(ctx)
}

// Drain runs cycles until the backlog is empty, a cycle fails, or ctx ends.
func (u *Uploader) Drain(ctx context.Context) error {
	for {
		n, err := u.Sync(ctx)
		if err != nil {
			return fmt.Errorf("drain: %w", err)
		}
		if n == 0 {
			return nil
		}
	}
}

// loop runs cycles until ctx ends; each cycle runs under cycleCtx.
func (u *Uploader) loop(ctx, cycleCtx context.Context) {
	lastPurge := time.Time{}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		n, err := u.Sync(cycleCtx)
		wait := u.opts.Interval
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			wait = u.backoff()
			var ra *collector.RetryAfterError
			if errors.As(err, &ra) { // the sink asked for a pause: honour it, within the cap
				wait = min(max(wait, ra.After), u.opts.MaxBackoff)
			}
		case n >= u.opts.Batch:
			wait = 0 // more backlog than a batch: keep draining
		}
		if u.opts.Retention > 0 && time.Since(lastPurge) >= u.opts.PurgeEvery {
			lastPurge = time.Now()
			if n, err := u.store.Purge(ctx, time.Now().Add(-u.opts.Retention)); err != nil {
				u.opts.Logger.Warn("retention purge failed", "err", err)
			} else if n > 0 {
				u.opts.Logger.Info("retention purge", "events", n)
			}
		}
		timer.Reset(wait)
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

// Sync runs one cycle: fetch the oldest batch, ship it, mark what the sink
// took (delivered or rejected for good), audit it. It returns how many events
// left the backlog; with an error, the others stay in it for the next cycle.
func (u *Uploader) Sync(ctx context.Context) (int, error) {
	u.syncMu.Lock()
	defer u.syncMu.Unlock()

	if b := u.unmarked; b != nil {
		u.cycles.Add(1)
		if err := u.mark(ctx, b); err != nil {
			return 0, err
		}
		u.unmarked = nil
		u.succeed()
		return len(b.done), nil
	}
	events, err := u.store.FetchBacklog(ctx, u.opts.Batch)
	if err != nil {
		u.fail(err)
		return 0, err
	}
	if len(events) == 0 {
		return 0, nil
	}
	u.cycles.Add(1)
	started := time.Now()
	o := endpointOrEvents(u.ship(ctx, events))
	done := append(slices.Clip(o.delivered), o.rejected...)
	slices.SortFunc(done, func(a, b collector.Event) int { return cmp.Compare(a.ID, b.ID) })
	if len(done) > 0 {
		// Ship first, then mark: a crash between the two ships again, never
		// loses. The audit row commits with the marks.
		b := &unmarked{started: started, done: done, delivered: len(o.delivered), rejected: len(o.rejected)}
		if len(o.rejected) > 0 {
			b.status = collector.RunRejected
			b.msg = rejectedMessage(o.rejected, len(events), o.rejectErr)
			b.rejectErr = o.rejectErr
		}
		if err := u.mark(ctx, b); err != nil {
			u.unmarked = b
			return 0, err
		}
	}
	if o.err != nil {
		err := o.err
		if len(done) > 0 {
			err = fmt.Errorf("%d of %d events not accepted: %w", len(o.pending), len(events), o.err)
		}
		u.failRun(ctx, newRun(started, o.pending, collector.RunFailed, err.Error()), err)
		return len(done), err
	}
	u.succeed()
	return len(done), nil
}

// unmarked is a batch the sink has taken (delivered, or rejected for good)
// that waits for its marks and its audit row.
type unmarked struct {
	started             time.Time
	done                []collector.Event // sorted by id
	status, msg         string            // the audit row's; "" is ok
	delivered, rejected int
	rejectErr           error
}

// mark commits b's marks with its audit row. On failure the marks'
// failure is audited and recorded in the uploader's health.
func (u *Uploader) mark(ctx context.Context, b *unmarked) error {
	status := b.status
	if status == "" {
		status = collector.RunOK
	}
	run := newRun(b.started, b.done, status, b.msg)
	if err := u.store.Checkpoint(ctx, b.done, run.FinishedAt, &run); err != nil {
		err = fmt.Errorf("mark %d events the sink took (kept to retry before shipping more): %w", len(b.done), err)
		u.failRun(ctx, newRun(b.started, b.done, collector.RunFailed, err.Error()), err)
		return err
	}
	u.shipped.Add(int64(b.delivered))
	if b.rejected > 0 {
		u.rejected.Add(int64(b.rejected))
		u.opts.Logger.Error("sink rejected events for good; they left the backlog unshipped",
			"events", b.rejected, "err", b.rejectErr)
	}
	return nil
}

// newRun is the audit record of a cycle over events (sorted by id).
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

// failRun audits a failed cycle (if even that fails, it is logged) and
// records the failure in the uploader's health.
func (u *Uploader) failRun(ctx context.Context, run collector.UploadRun, err error) {
	if rerr := u.store.RecordRun(context.WithoutCancel(ctx), run); rerr != nil {
		u.opts.Logger.Error("audit row not written", "err", rerr)
	}
	u.fail(err)
}

// outcome is what became of a batch, event by event.
type outcome struct {
	delivered []collector.Event // accepted upstream
	rejected  []collector.Event // refused for good
	rejectErr error             // why (the first reason met)
	pending   []collector.Event // neither: they stay in the backlog
	err       error             // why they are pending (retryable); nil when none is
}

// ship sends events to the sink. When the sink rejects a batch for good as a
// whole, the batch is split in halves and each half retried, so that only
// the events the sink refuses on their own are given up; the rest are
// delivered. A sink that answers event by event (*collector.PartialError)
// is taken at its word. A retryable failure stops the bisection: what is
// left stays pending.
func (u *Uploader) ship(ctx context.Context, events []collector.Event) outcome {
	err := u.sink.Ship(ctx, u.opts.CollectorID, events)
	var pe *collector.PartialError
	switch {
	case err == nil:
		return outcome{delivered: events}
	case errors.As(err, &pe):
		return partial(events, pe)
	case !errors.Is(err, collector.ErrRejected):
		return outcome{pending: events, err: err}
	case len(events) == 1:
		return outcome{rejected: events, rejectErr: err}
	}
	mid := len(events) / 2
	o := u.ship(ctx, events[:mid])
	if o.err != nil {
		o.pending = append(o.pending, events[mid:]...)
		return o
	}
	o2 := u.ship(ctx, events[mid:])
	return outcome{
		delivered: append(o.delivered, o2.delivered...),
		rejected:  append(o.rejected, o2.rejected...),
		rejectErr: cmp.Or(o.rejectErr, o2.rejectErr),
		pending:   o2.pending,
		err:       o2.err,
	}
}

// endpointOrEvents decides whether the refusals of a cycle were about the
// events or about the endpoint. Refused events leave the backlog only in a
// cycle where the sink took some other event: that is the evidence that the
// endpoint works and that what it refused is wrong in itself. A cycle where
// it took nothing and refused something (a receiver answering 400 to
// everything, so that bisection ends with each event refused on its own)
// speaks about the endpoint: every event stays, the cycle fails. A lone
// poison event waits, so, until a good one shares its batch.
func endpointOrEvents(o outcome) outcome {
	if len(o.rejected) == 0 || len(o.delivered) > 0 {
		return o
	}
	err := fmt.Errorf("%w: the sink took none of the batch and refused each of %d events on its own (%v)",
		collector.ErrEndpoint, len(o.rejected), o.rejectErr)
	pending := append(slices.Clip(o.rejected), o.pending...)
	slices.SortFunc(pending, func(a, b collector.Event) int { return cmp.Compare(a.ID, b.ID) })
	if o.err != nil {
		err = fmt.Errorf("%w; the others: %w", err, o.err)
	}
	return outcome{pending: pending, err: err}
}

// partial sorts events by what the sink said of each. An event the sink
// names neither delivered nor rejected is pending, whatever else it said.
func partial(events []collector.Event, pe *collector.PartialError) outcome {
	delivered := make(map[int64]bool, len(pe.Delivered))
	for _, id := range pe.Delivered {
		delivered[id] = true
	}
	rejected := make(map[int64]bool, len(pe.Rejected))
	for _, id := range pe.Rejected {
		rejected[id] = true
	}
	o := outcome{rejectErr: pe.RejectErr}
	for _, e := range events {
		switch {
		case delivered[e.ID]:
			o.delivered = append(o.delivered, e)
		case rejected[e.ID]:
			o.rejected = append(o.rejected, e)
		default:
			o.pending = append(o.pending, e)
		}
	}
	if len(o.rejected) > 0 && o.rejectErr == nil {
		o.rejectErr = collector.ErrRejected
	}
	if len(o.pending) > 0 {
		o.err = cmp.Or(pe.Err, error(pe)) // a sink that left events unnamed and gave no reason
	}
	return o
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
	u.opts.Logger.Warn("upload cycle failed", "err", err, "consecutive", u.health.ConsecutiveFailures)
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
