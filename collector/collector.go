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

// Sink delivers a batch of events upstream. A nil error means every event of
// the batch was accepted. An error wrapping ErrRejected means the sink will
// never accept this batch as it is; any other error is worth retrying.
type Sink interface {
	Ship(ctx context.Context, collectorID string, events []Event) error
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
