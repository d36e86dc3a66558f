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
	"fmt"
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

// Sink delivers a batch of events upstream. A nil error means every event of
// the batch was accepted. A *PartialError says event by event what became of
// the batch (a sink that acknowledges each event on its own returns one). Any
// other error is about the whole batch: wrapping ErrRejected, the sink will
// never accept this batch as it is (the uploader then bisects it to find the
// events at fault); otherwise it is worth retrying.
type Sink interface {
	Ship(ctx context.Context, collectorID string, events []Event) error
}

// PartialError is a Ship error for a batch that the sink took only in part.
// Events whose ids are in Delivered were accepted upstream and are marked
// uploaded; those in Rejected were refused for good and leave the backlog
// unshipped (audited as rejected); every other event of the batch stays in
// the backlog and is shipped again later.
type PartialError struct {
	Delivered []int64
	Rejected  []int64
	// RejectErr says why the sink refused Rejected (nil when it refused none).
	RejectErr error
	// Err says why the other events were not accepted; it is retryable. Nil
	// when every event of the batch was delivered or rejected.
	Err error
}

func (e *PartialError) Error() string {
	msg := fmt.Sprintf("%d delivered, %d rejected", len(e.Delivered), len(e.Rejected))
	if e.RejectErr != nil {
		msg += fmt.Sprintf(" (%v)", e.RejectErr)
	}
	if e.Err != nil {
		msg += fmt.Sprintf(", the rest not accepted: %v", e.Err)
	}
	return msg
}

// Unwrap returns the retryable cause only: a caller that does not look into
// a PartialError must not take the whole batch for rejected.
func (e *PartialError) Unwrap() error { return e.Err }

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
