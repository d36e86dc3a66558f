package store

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"

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
	if err := s.fileLost(); err != nil {
		return nil, fmt.Errorf("insert %d events: %w", len(events), err)
	}
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
	// The last step before the acknowledgement: the path must still name
	// the file committed to (identity.go).
	if ferr := s.checkFile(); ferr != nil {
		s.unstore(ctx, w.do, ids)
		return nil, ferr
	}
	return ids, nil
}

// unstore deletes again the events ids, just committed to a file the path
// no longer names, which the uploader still ships from: their request is
// refused, so it must store nothing.
func (s *Store) unstore(ctx context.Context, do func(context.Context, func(*wtx) error) error, ids []int64) {
	if err := do(ctx, func(t *wtx) error { return deleteEvents(t, ids) }); err != nil {
		s.log.Error("refused events stay in the replaced buffer", "events", len(ids), "err", err)
	}
}

// deleteEvents deletes the events ids.
func deleteEvents(t *wtx, ids []int64) error {
	list := make([]byte, 0, 8*len(ids)+2)
	list = append(list, '[')
	for i, id := range ids {
		if i > 0 {
			list = append(list, ',')
		}
		list = strconv.AppendInt(list, id, 10)
	}
	list = append(list, ']')
	_, err := t.ExecContext(t.ctx, `DELETE FROM events WHERE id IN (SELECT value FROM json_each(?))`, string(list))
	return err
}
