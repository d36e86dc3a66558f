package store

import (
	"context"
	"database/sql"
	"fmt"

	"edgecollector/collector"
)

// A writer is one write mode: how a transaction gets to run. Each mode has
// its file: serialized.go, concurrent.go, group.go.
type writer interface {
	// do runs fn as one transaction, retrying it while the engine reports busy.
	do(ctx context.Context, fn func(*wtx) error) error
	// insert commits one request's events atomically and returns their ids;
	// bytes is their write set (requestBytes).
	insert(ctx context.Context, events []collector.Event, bytes int) ([]int64, error)
	// close stops the writer. No call is in flight when it runs.
	close() error
}

// Insert commits events as one atomic request in the store's write mode and
// returns their ids. When it returns nil, every event is committed and
// fsync'd; otherwise none is stored.
func (s *Store) Insert(ctx context.Context, events []collector.Event) ([]int64, error) {
	if len(events) == 0 {
		return nil, nil
	}
	bytes := requestBytes(events)
	if max := s.opts.MaxCommitBytes; max > 0 && bytes > max {
		return nil, fmt.Errorf("insert %d events: %w: %d bytes, cap %d", len(events), collector.ErrCommitTooLarge, bytes, max)
	}
	if err := s.integ.err(); err != nil {
		return nil, err
	}
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.leave()
	ids, err := s.w.insert(ctx, events, bytes)
	if err != nil {
		return nil, fmt.Errorf("insert %d events: %w", len(events), err)
	}
	s.stats.written.Add(int64(len(events)))
	s.stats.backlog.Add(int64(len(events)))
	return ids, nil
}

// Write runs fn as one write transaction in the store's write mode:
// serialized, under the mutex; concurrent, on a pooled connection; group,
// in the next group commit, under a savepoint of its own. Busy errors are
// retried like every other write, so fn may run more than once. fn must use
// the ctx it is given (in group mode the transaction is shared) and must
// not commit or roll back tx.
func (s *Store) Write(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	if err := s.w.do(ctx, func(t *wtx) error { return fn(t.ctx, t.Tx) }); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

// insertTx is one request in one transaction, for the modes that do not
// batch (serialized, concurrent).
func insertTx(ctx context.Context, s *Store, w writer, events []collector.Event, bytes int) ([]int64, error) {
	var ids []int64
	err := w.do(ctx, func(t *wtx) (err error) {
		// The request is the transaction: a failure undoes all of it.
		ids, err = t.insertEvents(t.ctx, events, bytes, &s.insertOrRollback)
		return err
	})
	if err != nil {
		return nil, err
	}
	s.stats.commits.Add(1)
	return ids, nil
}
