package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"edgecollector/collector"
)

// This file is the transaction toolkit every write mode uses: a write
// transaction that keeps count of its write set, the multi-row insert, one
// transaction run to its end, and the retry of busy transactions.

// rowOverhead is what RowBytes adds to an event's variable-length fields:
// the id, timestamps and record header of the stored row.
const rowOverhead = 32

// RowBytes estimates the bytes an event's row adds to a transaction's write
// set. The commit-size cap is enforced on this estimate, and the server uses
// it to refuse at ingest any event that could never fit under the cap.
func RowBytes(e collector.Event) int {
	return len(e.DeviceID) + len(e.Kind) + len(e.Payload) + rowOverhead
}

// requestBytes is the write set of one request's events.
func requestBytes(events []collector.Event) int {
	n := 0
	for _, e := range events {
		n += RowBytes(e)
	}
	return n
}

// wtx is a write transaction that keeps count of its write set. Code
// running in it uses its ctx, not the caller's: in group mode the
// transaction is shared, and one caller giving up must not abort the
// others' work.
type wtx struct {
	*sql.Tx
	ctx   context.Context
	s     *Store
	bytes int
}

// charge adds n bytes to the write set and fails, before anything commits,
// when that takes the transaction over MaxCommitBytes.
func (t *wtx) charge(n int) error {
	t.bytes += n
	if max := t.s.opts.MaxCommitBytes; max > 0 && t.bytes > max {
		return fmt.Errorf("%w: %d bytes, cap %d", collector.ErrCommitTooLarge, t.bytes, max)
	}
	return nil
}

// insertEvents charges bytes (the events' write set, requestBytes) and
// inserts events with bound parameters, returning their ids. Events go in
// multi-row statements (see insertRows): far fewer statement executions for
// a batch. Within one statement on the write lock, an AUTOINCREMENT table
// hands out consecutive ids, so a statement's last insert id gives all of them.
//
// stmts is the statement set: t.s.insert (a failed statement leaves the
// transaction as it was) or t.s.insertOrRollback (a failed statement ends
// the transaction; no statement journal is kept for it).
func (t *wtx) insertEvents(ctx context.Context, events []collector.Event, bytes int, stmts *insertStmts) ([]int64, error) {
	if err := t.charge(bytes); err != nil {
		return nil, err
	}
	ids := make([]int64, 0, len(events))
	args := make([]any, 0, 5*min(len(events), insertRows[0]))
	// The collector's clock, beside the producer's ts; boxed once, not per row.
	var received any = time.Now().UnixMilli()
	for rest := events; len(rest) > 0; {
		i := 0
		for insertRows[i] > len(rest) {
			i++
		}
		n := insertRows[i]
		args = args[:0]
		for _, e := range rest[:n] {
			var payload any // NULL when absent; TEXT (not BLOB) so json_valid reads it as JSON
			if len(e.Payload) > 0 {
				payload = string(e.Payload)
			}
			args = append(args, e.DeviceID, e.Kind, payload, e.TS, received)
		}
		res, err := t.StmtContext(ctx, stmts[i]).ExecContext(ctx, args...)
		if err != nil {
			return nil, fmt.Errorf("insert events %d-%d: %w", len(ids), len(ids)+n-1, err)
		}
		last, err := res.LastInsertId()
		if err != nil {
			return nil, fmt.Errorf("insert events: %w", err)
		}
		for id := last - int64(n) + 1; id <= last; id++ {
			ids = append(ids, id)
		}
		rest = rest[n:]
	}
	return ids, nil
}

// insertRows are the row counts of the prepared insert statements, largest
// first, each half the one before: any count of events under 128 is at
// most 7 statements (31 events: 16+8+4+2+1).
var insertRows = [...]int{64, 32, 16, 8, 4, 2, 1}

// insertStmts holds a prepared insert per entry of insertRows.
type insertStmts [len(insertRows)]*sql.Stmt

// insertSQL is the insert of rows events; conflict is "" (a constraint
// failure undoes the statement: SQLite keeps a statement journal for that)
// or "OR ROLLBACK " (it undoes the whole transaction: no statement journal).
func insertSQL(rows int, conflict string) string {
	var b strings.Builder
	b.WriteString(`INSERT ` + conflict + `INTO events (device_id, kind, payload_json, ts, received_at) VALUES `)
	for i := 0; i < rows; i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(?, ?, ?, ?, ?)")
	}
	return b.String()
}

type beginner interface {
	BeginTx(context.Context, *sql.TxOptions) (*sql.Tx, error)
}

// runTx runs fn in one transaction on b (begun IMMEDIATE, see engine.go).
//
// A begun transaction is not cancellable: it runs to its commit or its
// rollback. database/sql rolls a transaction back on its own goroutine when
// the context ends, racing the statements and the commit still running on
// the connection; on the one connection of the serialized and group writers
// that race left SQLite inside a transaction ("cannot start a transaction
// within a transaction") and every later write failed. A caller that left
// loses only the answer; the transaction is short (bounded by busy_timeout)
// and a write it wanted is kept, never half-done.
func (s *Store) runTx(ctx context.Context, b beginner, fn func(*wtx) error) error {
	ctx = context.WithoutCancel(ctx)
	tx, err := b.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(&wtx{Tx: tx, ctx: ctx, s: s}); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// maxBackoff bounds one wait between retries of a busy transaction.
const maxBackoff = 100 * time.Millisecond

// backoff is the wait before retry number attempt+1: exponential from 1 ms
// up to maxBackoff, with full jitter (half to one and a half times).
func backoff(attempt int) time.Duration {
	d := maxBackoff
	if attempt < 7 { // a wider shift overflows the Duration: 1ms<<64 is 0
		d = min(time.Millisecond<<attempt, maxBackoff)
	}
	return rand.N(d) + d/2
}

// retry runs op until it succeeds, fails with something other than busy, or
// has been retried MaxRetries times. Every busy error and every retry is
// counted. Backoff is exponential with full jitter so that writers that
// collided do not collide again in step.
func (s *Store) retry(ctx context.Context, op func() error) error {
	for attempt := 0; ; attempt++ {
		err := op()
		if err == nil {
			return nil
		}
		if s.engine.classify(err) != classBusy {
			return s.classify(err)
		}
		s.stats.conflicts.Add(1)
		if attempt >= s.opts.MaxRetries {
			s.stats.gaveUp.Add(1)
			return fmt.Errorf("%w: gave up after %d retries: %w", collector.ErrBusy, attempt, err)
		}
		s.stats.retries.Add(1)
		t := time.NewTimer(backoff(attempt))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("retry: %w (last: %w)", ctx.Err(), err)
		}
	}
}

// requestLocal reports whether err failed only the request that caused it,
// leaving the surrounding group transaction usable.
func (s *Store) requestLocal(err error) bool {
	return errors.Is(err, collector.ErrCommitTooLarge) || s.engine.classify(err) == classConstraint
}

// writeLocal reports whether a Write's error failed only that write: an
// error of its own making, rather than the engine's trouble with the whole
// transaction (busy, full, not a database, read-only) or a cancelled context.
func (s *Store) writeLocal(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	switch s.engine.classify(err) {
	case classBusy, classFull, classNotDB, classReadOnly:
		return false
	}
	return true
}
