package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"edgecollector/collector"
)

// Insert commits events as one atomic request in the store's write mode and
// returns their ids. When it returns nil, every event is committed and
// fsync'd; otherwise none is stored.
func (s *Store) Insert(ctx context.Context, events []collector.Event) ([]int64, error) {
	if len(events) == 0 {
		return nil, nil
	}
	bytes := 0
	for _, e := range events {
		bytes += RowBytes(e)
	}
	if max := s.opts.MaxCommitBytes; max > 0 && bytes > max {
		return nil, fmt.Errorf("insert %d events: %w: %d bytes, cap %d", len(events), collector.ErrCommitTooLarge, bytes, max)
	}
	if err := s.begin(); err != nil {
		return nil, err
	}
	defer s.closeMu.RUnlock()
	ids, err := s.w.insert(ctx, events, bytes)
	if err != nil {
		return nil, fmt.Errorf("insert %d events: %w", len(events), err)
	}
	s.stats.written.Add(int64(len(events)))
	s.stats.backlog.Add(int64(len(events)))
	return ids, nil
}

// FetchBacklog returns up to limit of the oldest events not yet uploaded.
func (s *Store) FetchBacklog(ctx context.Context, limit int) ([]collector.Event, error) {
	rows, err := s.db.QueryContext(ctx,
		`SELECT id, device_id, kind, payload_json, ts FROM events
		 WHERE uploaded_at IS NULL ORDER BY id LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("read backlog: %w", s.classify(err))
	}
	defer rows.Close()
	var events []collector.Event
	for rows.Next() {
		var e collector.Event
		var payload sql.NullString
		if err := rows.Scan(&e.ID, &e.DeviceID, &e.Kind, &payload, &e.TS); err != nil {
			return nil, fmt.Errorf("read backlog: %w", err)
		}
		if payload.Valid {
			e.Payload = json.RawMessage(payload.String)
		}
		events = append(events, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read backlog: %w", s.classify(err))
	}
	return events, nil
}

// Checkpoint marks events uploaded at `at`, records each device's newest
// event time and, when run is not nil, writes the cycle's audit row in the
// last transaction (one fsync for the whole checkpoint when it fits). It
// first tries one commit; when that is over MaxCommitBytes it halves the
// chunk, again and again down to one event per commit, counting each split.
// Chunks commit one by one, so a crash can leave a prefix marked: the rest
// is shipped again (at-least-once).
func (s *Store) Checkpoint(ctx context.Context, events []collector.Event, at time.Time, run *collector.UploadRun) error {
	if err := s.begin(); err != nil {
		return err
	}
	defer s.closeMu.RUnlock()
	chunk := len(events)
	for len(events) > 0 {
		n := min(chunk, len(events))
		var r *collector.UploadRun
		if n == len(events) {
			r = run // the audit row rides with the last chunk
		}
		marked, err := s.markChunk(ctx, events[:n], at.UnixMilli(), r)
		if err != nil && isCommitTooLarge(err) {
			if n > 1 {
				chunk = (n + 1) / 2
				s.stats.splits.Add(1)
				continue
			}
			if r != nil { // one row fits, not with the audit row: write that alone, after
				s.stats.splits.Add(1)
				if marked, err = s.markChunk(ctx, events[:1], at.UnixMilli(), nil); err == nil {
					err = s.w.do(ctx, func(t *wtx) error { return insertRun(t.ctx, t, *r) })
				}
			}
		}
		if err != nil {
			return fmt.Errorf("checkpoint: %w", err)
		}
		s.stats.uploaded.Add(marked)
		s.stats.backlog.Add(-marked)
		events = events[n:]
	}
	var devices int64
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM devices`).Scan(&devices); err == nil {
		s.stats.devices.Store(devices)
	}
	return nil
}

func (s *Store) markChunk(ctx context.Context, events []collector.Event, at int64, run *collector.UploadRun) (int64, error) {
	var marked int64
	err := s.w.do(ctx, func(t *wtx) error {
		marked = 0
		ids := make([]string, len(events))
		seen := make(map[string]int64) // device -> newest ts in this chunk
		for i, e := range events {
			if err := t.charge(RowBytes(e)); err != nil {
				return err
			}
			ids[i] = strconv.FormatInt(e.ID, 10)
			if ts, ok := seen[e.DeviceID]; !ok || e.TS > ts {
				seen[e.DeviceID] = e.TS
			}
		}
		// One statement for the chunk: the ids travel as one bound JSON array.
		res, err := t.ExecContext(t.ctx,
			`UPDATE events SET uploaded_at = ?
			 WHERE id IN (SELECT value FROM json_each(?)) AND uploaded_at IS NULL`,
			at, "["+strings.Join(ids, ",")+"]")
		if err != nil {
			return fmt.Errorf("mark uploaded: %w", err)
		}
		if marked, err = res.RowsAffected(); err != nil {
			return err
		}
		for device, ts := range seen {
			if err := t.charge(len(device) + RowOverhead); err != nil {
				return err
			}
			if _, err := t.ExecContext(t.ctx,
				`INSERT INTO devices (device_key, last_seen_at) VALUES (?, ?)
				 ON CONFLICT (device_key) DO UPDATE
				 SET last_seen_at = max(coalesce(last_seen_at, 0), excluded.last_seen_at)`,
				device, ts); err != nil {
				return fmt.Errorf("upsert device: %w", err)
			}
		}
		if run != nil {
			return insertRun(t.ctx, t, *run)
		}
		return nil
	})
	return marked, err
}

// maxRunError bounds the error text of an audit row, so the row fits under
// any sensible commit cap.
const maxRunError = 1024

// RecordRun writes the audit row of one uploader cycle on its own (a failed
// cycle; a successful one rides with its Checkpoint).
func (s *Store) RecordRun(ctx context.Context, r collector.UploadRun) error {
	if err := s.begin(); err != nil {
		return err
	}
	defer s.closeMu.RUnlock()
	if err := s.w.do(ctx, func(t *wtx) error { return insertRun(t.ctx, t, r) }); err != nil {
		return fmt.Errorf("record upload run: %w", err)
	}
	return nil
}

func insertRun(ctx context.Context, t *wtx, r collector.UploadRun) error {
	msg := r.Error
	if len(msg) > maxRunError {
		msg = msg[:maxRunError]
	}
	var errText any
	if msg != "" {
		errText = msg
	}
	if err := t.charge(len(msg) + 2*RowOverhead); err != nil {
		return err
	}
	if _, err := t.ExecContext(t.ctx,
		`INSERT INTO upload_runs (started_at, finished_at, event_count, first_id, last_id, status, error)
		 VALUES (?, ?, ?, ?, ?, ?, ?)`,
		r.StartedAt.UnixMilli(), r.FinishedAt.UnixMilli(), r.EventCount, r.FirstID, r.LastID, r.Status, errText); err != nil {
		return fmt.Errorf("insert audit row: %w", err)
	}
	return nil
}

// PurgeBatch is how many rows one purge transaction deletes: small, so a
// purge never holds the write lock for long.
const PurgeBatch = 500

// Purge deletes events uploaded before `before`, and audit rows started
// before it, in transactions of PurgeBatch rows. SQLite keeps the freed pages
// and reuses them, so a long-lived file stops growing. AUTOINCREMENT keeps
// ids from being reused. It returns the number of events deleted.
func (s *Store) Purge(ctx context.Context, before time.Time) (int64, error) {
	if err := s.begin(); err != nil {
		return 0, err
	}
	defer s.closeMu.RUnlock()
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
	} {
		for {
			var n int64
			err := s.w.do(ctx, func(t *wtx) error {
				res, err := t.ExecContext(t.ctx, p.query, cut, PurgeBatch)
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
			if n < PurgeBatch {
				break
			}
		}
	}
	return total, nil
}
