package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"edgecollector/collector"
)

// The backlog's life: read the oldest events not yet uploaded, and mark them
// uploaded once a sink took them.

// FetchBacklog returns up to limit of the oldest events not yet uploaded.
func (s *Store) FetchBacklog(ctx context.Context, limit int) ([]collector.Event, error) {
	if err := s.FailErr(); err != nil {
		// Fail-stop: ship nothing more; the restart ships what is on disk.
		return nil, fmt.Errorf("read backlog: %w", err)
	}
	db, done := s.reader()
	defer done()
	rows, err := db.QueryContext(ctx,
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
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	chunk := len(events)
	for len(events) > 0 {
		n := min(chunk, len(events))
		var r *collector.UploadRun
		if n == len(events) {
			r = run // the audit row rides with the last chunk
		}
		marked, err := s.markChunk(ctx, events[:n], at.UnixMilli(), r)
		if err != nil && errors.Is(err, collector.ErrCommitTooLarge) {
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
	db, done := s.reader()
	defer done()
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM devices`).Scan(&devices); err == nil {
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
			if err := t.charge(len(device) + rowOverhead); err != nil {
				return err
			}
			if _, err := t.ExecContext(t.ctx,
				`INSERT INTO devices (device_key, last_seen_at, last_shipped_at) VALUES (?, ?, ?)
				 ON CONFLICT (device_key) DO UPDATE
				 SET last_seen_at = max(coalesce(last_seen_at, 0), excluded.last_seen_at),
				     last_shipped_at = excluded.last_shipped_at`,
				device, ts, at); err != nil {
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
