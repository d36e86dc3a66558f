package diag

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// DefaultTimeLimit bounds one diagnostic call (a query, the stats, the
// schema, the check). A read transaction held open pins the collector's
// WAL: it cannot be checkpointed past what the reader sees, and under load
// it grows by megabytes a second.
const DefaultTimeLimit = 30 * time.Second

// ErrTimeLimit: a call ran past the time limit and was interrupted.
var ErrTimeLimit = errors.New("time limit reached")

// SetTimeLimit sets how long one call may run; 0 means no limit.
func (d *DB) SetTimeLimit(limit time.Duration) { d.limit = limit }

// bound applies the time limit to ctx.
func (d *DB) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if d.limit <= 0 {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, d.limit)
}

// limited says so when err came from the time limit running out.
func (d *DB) limited(ctx context.Context, err error) error {
	if err != nil && d.limit > 0 && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%w (%s): interrupted, so it no longer holds back the collector's WAL; narrow the query or raise -timeout: %v",
			ErrTimeLimit, d.limit, err)
	}
	return err
}
