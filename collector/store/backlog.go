package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"edgecollector/collector"
)

// The backlog's life: read the oldest events not yet uploaded, and mark them
// uploaded once a sink took them.

// FetchBacklog returns up to limit of the oldest events not yet uploaded
// whose ids are above after (0: from the oldest), in id order. The
// pipelined uploader reads the next batch while the ones before it are
// still in flight, unmarked: it reads past them.
func (s *Store) FetchBacklog(ctx context.Context, after int64, limit int) ([]collector.Event, error) {
	if err := s.FailErr(); err != nil {
		// Fail-stop: ship nothing more; the restart ships what is on disk.
		return nil, fmt.Errorf("read backlog: %w", err)
	}
	db, done := s.reader()
	defer done()
	rows, err := db.QueryContext(ctx,
		`SELECT id, device_id, kind, payload_json, ts FROM events
		 WHERE uploaded_at IS NULL AND id > ? ORDER BY id LIMIT ?`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("read backlog: %w", s.classify(err))
	}
	defer rows.Close()
	events := make([]collector.Event, 0, min(limit, 1024))
	for rows.Next() {
		var e collector.Event
		var payload []byte // nil for NULL; one copy of the driver's text
		if err := rows.Scan(&e.ID, &e.DeviceID, &e.Kind, &payload, &e.TS); err != nil {
			return nil, fmt.Errorf("read backlog: %w", err)
		}
		e.Payload = payload
		events = append(events, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read backlog: %w", s.classify(err))
	}
	return events, nil
}

// Checkpoint marks events uploaded at `at`, records each device's newest
// event time and writes the audit rows of runs (one a batch) in the last
// transaction (one fsync for the whole checkpoint when it fits; in
// group mode, the fsync the inserts of that turn share). It first tries one
// commit; when that is over MaxCommitBytes it halves the chunk, again and
// again down to one event per commit, counting each split. Chunks commit
// one by one, so a crash can leave a prefix marked: the rest is shipped
// again (at-least-once).
func (s *Store) Checkpoint(ctx context.Context, events []collector.Event, at time.Time, runs []collector.UploadRun) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	chunk := len(events)
	for len(events) > 0 {
		n := min(chunk, len(events))
		var r []collector.UploadRun
		if n == len(events) {
			r = runs // the audit rows ride with the last chunk
		}
		m, err := s.markChunk(ctx, events[:n], at.UnixMilli(), r)
		if err != nil && errors.Is(err, collector.ErrCommitTooLarge) {
			if n > 1 {
				chunk = (n + 1) / 2
				s.stats.splits.Add(1)
				continue
			}
			if len(r) > 0 { // one row fits, not with the audit rows: write those alone, after
				s.stats.splits.Add(1)
				if m, err = s.markChunk(ctx, events[:1], at.UnixMilli(), nil); err == nil {
					for _, run := range r {
						if err = s.w.do(ctx, func(t *wtx) error { return insertRun(t.ctx, t, run) }); err != nil {
							break
						}
					}
				}
			}
		}
		if err != nil {
			return fmt.Errorf("checkpoint: %w", err)
		}
		// Committed: the gauges follow what the transaction did.
		s.stats.uploaded.Add(m.events)
		s.stats.backlog.Add(-m.events)
		s.stats.devices.Add(m.newDevices)
		events = events[n:]
	}
	return nil
}

// marked is what one checkpoint transaction changed.
type marked struct{ events, newDevices int64 }

func (s *Store) markChunk(ctx context.Context, events []collector.Event, at int64, runs []collector.UploadRun) (marked, error) {
	var m marked
	err := s.w.do(ctx, func(t *wtx) error {
		m = marked{}
		newest := make(map[string]int64) // device -> newest ts in this chunk
		for _, e := range events {
			if err := t.charge(RowBytes(e)); err != nil {
				return err
			}
			if ts, ok := newest[e.DeviceID]; !ok || e.TS > ts {
				newest[e.DeviceID] = e.TS
			}
		}
		// The ids as runs of consecutive ids: a batch read from the backlog
		// is one run, or a few around the ids that left it before. Each
		// run is one range scan of the table, exact to the id, with nothing
		// to encode or parse.
		for _, r := range idRanges(events) {
			res, err := t.ExecContext(t.ctx,
				`UPDATE events SET uploaded_at = ? WHERE id BETWEEN ? AND ? AND uploaded_at IS NULL`,
				at, r.first, r.last)
			if err != nil {
				return fmt.Errorf("mark uploaded: %w", err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return err
			}
			m.events += n
		}
		n, err := upsertDevices(t, newest, at)
		if err != nil {
			return err
		}
		m.newDevices = n
		for _, run := range runs {
			if err := insertRun(t.ctx, t, run); err != nil {
				return err
			}
		}
		return nil
	})
	return m, err
}

// idRange is a run of consecutive event ids, first to last.
type idRange struct{ first, last int64 }

// idRanges returns the ids of events as runs of consecutive ids, in the
// events' order. It is exact whatever the order: a run grows only by the
// next id.
func idRanges(events []collector.Event) []idRange {
	var rs []idRange
	for _, e := range events {
		if n := len(rs); n > 0 && rs[n-1].last+1 == e.ID {
			rs[n-1].last = e.ID
			continue
		}
		rs = append(rs, idRange{e.ID, e.ID})
	}
	return rs
}

// devicesPerStatement bounds the rows of one device statement (3 bound
// parameters each, well under SQLite's limit).
const devicesPerStatement = 256

// upsertDevices records, for each device of a chunk, its newest event time
// and the time of the mark, a few statements for the whole chunk rather
// than one per device. It returns how many devices were new, so that the
// devices gauge follows the table without counting it.
func upsertDevices(t *wtx, newest map[string]int64, at int64) (int64, error) {
	keys := make([]string, 0, len(newest))
	for k := range newest {
		if err := t.charge(len(k) + rowOverhead); err != nil {
			return 0, err
		}
		keys = append(keys, k)
	}
	var added int64
	for len(keys) > 0 {
		part := keys[:min(len(keys), devicesPerStatement)]
		keys = keys[len(part):]
		rows := strings.Repeat("(?, ?, ?), ", len(part))
		rows = rows[:len(rows)-2]
		args := make([]any, 0, 3*len(part))
		for _, k := range part {
			args = append(args, k, newest[k], at)
		}
		// New devices first: what they add is the gauge's step.
		res, err := t.ExecContext(t.ctx,
			`INSERT OR IGNORE INTO devices (device_key, last_seen_at, last_shipped_at) VALUES `+rows, args...)
		if err != nil {
			return 0, fmt.Errorf("insert devices: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return 0, err
		}
		added += n
		if int(n) == len(part) {
			continue // all new: nothing to update
		}
		// Then every device of the chunk, as one join on the unique key.
		if _, err := t.ExecContext(t.ctx,
			`UPDATE devices SET last_seen_at = max(coalesce(last_seen_at, 0), v.column2), last_shipped_at = v.column3
			 FROM (VALUES `+rows+`) AS v WHERE devices.device_key = v.column1`, args...); err != nil {
			return 0, fmt.Errorf("update devices: %w", err)
		}
	}
	return added, nil
}
