package collector

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors. Every layer wraps these with context; the HTTP server maps
// them to status codes in exactly one place (server.errorStatus).
var (
	// ErrInvalid: the request is malformed. The message names what is wrong.
	ErrInvalid = errors.New("invalid input")
	// ErrTooLarge: a body, payload or request exceeds a configured limit.
	ErrTooLarge = errors.New("too large")
	// ErrCommitTooLarge: a transaction's write set exceeds MaxCommitBytes. It is
	// raised before commit, so nothing of that transaction is stored.
	ErrCommitTooLarge = errors.New("write set over the commit-size cap")
	// ErrBusy: the engine kept reporting busy or conflict until the retry
	// budget ran out. Nothing of the transaction is stored; retrying later may work.
	ErrBusy = errors.New("database busy")
	// ErrBacklogFull: the backlog is at its cap; the request is refused unstored.
	ErrBacklogFull = errors.New("backlog full")
	// ErrDiskFull: the filesystem has no room for the write. Nothing stored.
	ErrDiskFull = errors.New("disk full")
	// ErrClosed: the store is shutting down and accepts no more writes.
	ErrClosed = errors.New("store closed")
	// ErrStorageFailed: the storage failed a write in a way that leaves what is
	// on disk unknown (an I/O error, such as a failed fsync, after which the
	// kernel may have dropped the written pages). The store is fail-stop from
	// then on: it refuses every write, and the collector exits so that its
	// supervisor restarts it on what is really on disk.
	ErrStorageFailed = errors.New("storage failed")
	// ErrRejected: a sink refused a batch for good (for example HTTP 400).
	ErrRejected = errors.New("rejected by sink")
	// ErrEndpoint: the sink's endpoint refuses deliveries whatever the events
	// (a redirect, 401, 403, 404, 405, or every event of a batch refused on
	// its own): a wrong URL or an expired credential, not a poison event. The
	// cycle fails and the batch stays in the backlog.
	ErrEndpoint = errors.New("sink endpoint refuses deliveries (check its configuration)")
	// ErrBufferReplaced: the buffer's path no longer names the file the
	// collector has open (deleted, renamed or swapped underneath it). New
	// events are refused: an acknowledgement would go to a file nobody finds.
	ErrBufferReplaced = errors.New("buffer file deleted or replaced")
	// ErrDamaged: the damage check found the buffer file damaged; ingest
	// stops, since what it acknowledged could not be trusted to be read back.
	ErrDamaged = errors.New("buffer file damaged")
)

// RetryAfterError is a retryable Ship failure whose sink asked for a pause
// (HTTP 429 or 503 with Retry-After). The uploader waits at least After
// before its next cycle, within its longest backoff.
type RetryAfterError struct {
	After time.Duration
	Err   error
}

func (e *RetryAfterError) Error() string {
	return fmt.Sprintf("%v (retry after %s)", e.Err, e.After)
}

func (e *RetryAfterError) Unwrap() error { return e.Err }

// InputError is a validation failure pinned to one event of a request and,
// when known, one field. It wraps ErrInvalid or ErrTooLarge.
type InputError struct {
	Index int    // index in the request's array; -1 for the request as a whole
	Field string // JSON field name, or "" when the whole event or body is wrong
	Msg   string
	Err   error // ErrInvalid or ErrTooLarge
}

func (e *InputError) Error() string {
	switch {
	case e.Index >= 0 && e.Field != "":
		return fmt.Sprintf("event[%d].%s: %s", e.Index, e.Field, e.Msg)
	case e.Index >= 0:
		return fmt.Sprintf("event[%d]: %s", e.Index, e.Msg)
	case e.Field != "":
		return fmt.Sprintf("%s: %s", e.Field, e.Msg)
	default:
		return e.Msg
	}
}

func (e *InputError) Unwrap() error { return e.Err }
