package store

import (
	"context"
	"fmt"
	"time"
)

// purgeBatch is how many rows one purge transaction deletes: small, so a
// purge never holds the write lock for long.
const purgeBatch = 500

// Purge deletes events uploaded before `before`, audit rows started before
// it, and devices last shipped before it (unless an operator labelled
// them), in transactions of purgeBatch rows. Every cut is on the
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
	var total int64
	for _, p := range []struct {
		query  string
		events bool
	}{
		{`DELETE FROM events WHERE id IN (
			SELECT id FROM events WHERE uploaded_at IS NOT NULL AND uploaded_at < ? ORDER BY id LIMIT ?)`, true},
		{`DELETE FROM upload_runs WHERE id IN (
			SELECT id FROM upload_runs WHERE started_at < ? ORDER BY id LIMIT ?)`, false},
		// A device comes back with its next shipped event.
		{`DELETE FROM devices WHERE id IN (
			SELECT id FROM devices WHERE last_shipped_at < ? AND label IS NULL ORDER BY id LIMIT ?)`, false},
	} {
		for {
			var n int64
			err := s.w.do(ctx, func(t *wtx) error {
				res, err := t.ExecContext(t.ctx, p.query, cut, purgeBatch)
				if err != nil {
					return err
				}
				n, err = res.RowsAffected()
				return err
			})
			if err != nil {
				return total, fmt.Errorf("purge: %w", err)
			}
			if p.events {
				total += n
				s.stats.purged.Add(n)
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
