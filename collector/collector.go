// Package collector holds the domain types shared by the collector's parts:
// the event a producer sends, the audit record of an upload cycle, the sink
// that upstream delivery goes through, and the errors every layer speaks.
//
// Dependencies point one way: cmd -> server, uploader -> store -> engine.
// Nothing here imports another package of the module.
package collector

import (
	"context"
	"encoding/json"
	"time"
)

// Event is one telemetry record. ID is assigned by the store on commit and is
// never reused, so receivers can deduplicate re-shipped events on it.
type Event struct {
	ID       int64           `json:"id,omitempty"`
	DeviceID string          `json:"device_id"`
	Kind     string          `json:"kind"`
	Payload  json.RawMessage `json:"payload,omitempty"`
	TS       int64           `json:"ts"` // unix milliseconds
}

// Shipped is the wire form of an event sent upstream: the event plus the
// identity of the collector that buffered it, so a fleet's receivers can
// deduplicate on (collector_id, id).
type Shipped struct {
	CollectorID string          `json:"collector_id"`
	ID          int64           `json:"id"`
	DeviceID    string          `json:"device_id"`
	Kind        string          `json:"kind"`
	Payload     json.RawMessage `json:"payload,omitempty"`
	TS          int64           `json:"ts"`
}

// Sink delivers a batch of events upstream, under the collector identity it
// was built with (a sink is given it once, when made). Its Receipt says
// event by event what became of the batch; err says why the events it kept
// (neither took nor refused) were not taken: a retryable failure, a
// *RetryAfterError, or one wrapping ErrEndpoint. err is nil only when the
// sink took or refused every event. A sink that takes or refuses a batch
// whole (an HTTP POST) answers through a bisecting wrapper (sink.Bisect),
// which finds the events refused on their own.
type Sink interface {
	Ship(ctx context.Context, events []Event) (Receipt, error)
}

// Fate is what became of one event a sink was given.
type Fate uint8

const (
	// Kept: the sink did not take the event (the zero value, so an event a
	// receipt does not reach is kept): it stays in the backlog and is
	// shipped again later.
	Kept Fate = iota
	// Taken: accepted upstream; the event is marked uploaded.
	Taken
	// Refused: refused for good; the event leaves the backlog unshipped and
	// is audited as rejected (the uploader's endpoint rule permitting).
	Refused
)

// Receipt is a sink's account of one batch, event by event.
type Receipt struct {
	// Fates holds one Fate per event of the batch, in the batch's order.
	// An event past its end is Kept, so the zero Receipt keeps everything.
	Fates []Fate
	// Refusal says why the sink refused what it refused (nil when it
	// refused nothing).
	Refusal error
}

// TookAll is the receipt of a batch of n events taken whole.
func TookAll(n int) Receipt { return Receipt{Fates: fill(n, Taken)} }

// RefusedAll is the receipt of a batch of n events refused whole, for why.
func RefusedAll(n int, why error) Receipt { return Receipt{Fates: fill(n, Refused), Refusal: why} }

func fill(n int, f Fate) []Fate {
	fates := make([]Fate, n)
	for i := range fates {
		fates[i] = f
	}
	return fates
}

// Fate returns what became of event i of the batch.
func (r Receipt) Fate(i int) Fate {
	if i < len(r.Fates) {
		return r.Fates[i]
	}
	return Kept
}

// Count returns how many of the batch's n events met fate f.
func (r Receipt) Count(n int, f Fate) int {
	c := 0
	for i := range n {
		if r.Fate(i) == f {
			c++
		}
	}
	return c
}

// Upload run statuses, as stored in upload_runs.status.
const (
	RunOK       = "ok"       // batch shipped and marked
	RunFailed   = "failed"   // sink or checkpoint failed; the batch stays in the backlog
	RunRejected = "rejected" // the sink refused some events for good; they left the backlog unshipped
)

// UploadRun is the audit record of one uploader cycle that had work to do.
type UploadRun struct {
	StartedAt  time.Time
	FinishedAt time.Time
	EventCount int    // events shipped (ok) or attempted (failed) or dropped (rejected)
	FirstID    int64  // smallest event id of the batch
	LastID     int64  // largest event id of the batch
	Status     string // RunOK, RunFailed or RunRejected
	Error      string
}
