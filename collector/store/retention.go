package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// purgeBatch is how many rows one purge transaction deletes: small, so a
// purge never holds the write lock for long.
const purgeBatch = 500

// Purge deletes events uploaded before `before` (to the minute: a run of
// marks grows for markSpan), audit rows started before it, and devices last
// shipped before it (unless an operator labelled them), in transactions of
// purgeBatch rows. Every cut is on the
// collector's own clock, never on a producer's ts: an event stamped years
// ahead goes like the others. SQLite keeps the freed pages and reuses
// them, so a long-lived file stops growing. AUTOINCREMENT keeps ids from
// being reused. It returns the number of events deleted.
func (s *Store) Purge(ctx context.Context, before time.Time) (int64, error) {
	if err := s.enter(); err != nil {
		return 0, err
	}
	defer s.leave()
	cut := before.UnixMilli()
	total, err := s.purgeShipped(ctx, cut)
	if err != nil {
		return total, fmt.Errorf("purge: %w", err)
	}
	for _, query := range []string{
		`DELETE FROM upload_runs WHERE id IN (
			SELECT id FROM upload_runs WHERE started_at < ? ORDER BY id LIMIT ?)`,
		// A device comes back with its next shipped event.
		`DELETE FROM devices WHERE id IN (
			SELECT id FROM devices WHERE last_shipped_at < ? AND label IS NULL ORDER BY id LIMIT ?)`,
	} {
		for {
			var n int64
			err := s.w.do(ctx, func(t *wtx) error {
				res, err := t.ExecContext(t.ctx, query, cut, purgeBatch)
				if err != nil {
					return err
				}
				n, err = res.RowsAffected()
				return err
			})
			if err != nil {
				return total, fmt.Errorf("purge: %w", err)
			}
			if n < purgeBatch {
				break
			}
		}
	}
	db, done := s.reader()
	defer done()
	var devices int64
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM devices`).Scan(&devices); err == nil {
		s.stats.devices.Store(devices)
	}
	return total, nil
}

// purgeShipped deletes the events of the runs whose newest mark is before
// cut, oldest run first, up to purgeBatch ids a transaction: each takes the
// front of a run, its events and the run's first_id together, so the table
// and the runs agree at every commit.
func (s *Store) purgeShipped(ctx context.Context, cut int64) (int64, error) {
	var total int64
	for {
		var n int64
		more := false
		err := s.w.do(ctx, func(t *wtx) error {
			n, more = 0, false
			var first, last int64
			err := t.QueryRowContext(t.ctx, `SELECT first_id, last_id FROM shipped WHERE last_at < ? ORDER BY first_id LIMIT 1`, cut).Scan(&first, &last)
			if errors.Is(err, sql.ErrNoRows) {
				return nil
			}
			if err != nil {
				return err
			}
			end := min(last, first+purgeBatch-1)
			res, err := t.ExecContext(t.ctx, `DELETE FROM events WHERE id BETWEEN ? AND ?`, first, end)
			if err != nil {
				return err
			}
			if n, err = res.RowsAffected(); err != nil {
				return err
			}
			if end == last {
				_, err = t.ExecContext(t.ctx, `DELETE FROM shipped WHERE first_id = ?`, first)
			} else {
				_, err = t.ExecContext(t.ctx, `UPDATE shipped SET first_id = ? WHERE first_id = ?`, end+1, first)
			}
			more = true
			return err
		})
		if err != nil {
			return total, err
		}
		total += n
		s.stats.purged.Add(n)
		if !more {
			return total, nil
		}
	}
}
