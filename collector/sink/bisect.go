package sink

import (
	"context"
	"errors"

	"edgecollector/collector"
)

// Whole is a sink that takes or refuses a batch whole, as an HTTP POST
// does. Send returns nil when it took the batch; an error wrapping
// collector.ErrRejected when it refuses the batch's content for good (an
// event in it, or its size); any other error when the batch is to be
// retried later, or when the endpoint refuses everything (ErrEndpoint).
type Whole interface {
	Send(ctx context.Context, events []collector.Event) error
}

// Bisect is the collector.Sink of a Whole sink. A batch refused for its
// content is split in halves, and each half sent again, until the events
// the sink refuses on their own are found: those are Refused, the others
// Taken. A failure that is not a refusal stops the bisection, and what is
// left is Kept. Whether the refusals may leave the backlog is the
// uploader's decision (its endpoint rule: only beside an event taken).
type Bisect struct{ Whole }

func (b Bisect) Ship(ctx context.Context, events []collector.Event) (collector.Receipt, error) {
	r := collector.Receipt{Fates: make([]collector.Fate, len(events))}
	err := b.bisect(ctx, events, r.Fates, &r.Refusal)
	return r, err
}

// bisect sends events, whose fates are the receipt's slice for them.
func (b Bisect) bisect(ctx context.Context, events []collector.Event, fates []collector.Fate, refusal *error) error {
	err := b.Send(ctx, events)
	switch {
	case err == nil:
		for i := range fates {
			fates[i] = collector.Taken
		}
		return nil
	case !errors.Is(err, collector.ErrRejected):
		return err
	case len(events) == 1:
		fates[0] = collector.Refused
		if *refusal == nil {
			*refusal = err // the first reason met
		}
		return nil
	}
	mid := len(events) / 2
	if err := b.bisect(ctx, events[:mid], fates[:mid], refusal); err != nil {
		return err
	}
	return b.bisect(ctx, events[mid:], fates[mid:], refusal)
}
