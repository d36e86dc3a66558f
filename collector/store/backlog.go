package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"edgecollector/collector"
)

// The backlog's life: read the oldest events not yet uploaded, and mark them
// uploaded once a sink took them.

// What has left the backlog is kept as runs of ids in the shipped table
// (schema.go): a mark writes one small row, or widens the run before it,
// where it once rewrote every row it marked. The store keeps the first
// id not yet shipped (low) in memory, so that a read starts there and never
// walks the shipped history the retention period keeps.

// markSpan bounds how long one run of ids keeps growing: retention deletes
// a run once its newest mark is older than the cut, so a run that grew for
// ever would never go.
const markSpan = time.Minute

// coveredBy is the last id of the run that starts at or before ?1 (0 when
// none): ?1 has shipped when it is at least ?1. One seek down the key.
const coveredBy = `coalesce((SELECT last_id FROM shipped WHERE first_id <= %s ORDER BY first_id DESC LIMIT 1), 0)`

var (
	fetchSQL = `SELECT e.id, e.device_id, e.kind, e.payload_json, e.ts FROM events AS e
		WHERE e.id >= ? AND ` + fmt.Sprintf(coveredBy, "e.id") + ` < e.id ORDER BY e.id LIMIT ?`
	coverSQL = `SELECT ` + fmt.Sprintf(coveredBy, "?")
)

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
	rows, err := db.QueryContext(ctx, fetchSQL, max(after+1, s.low.Load()), limit)
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

// firstUnshipped returns the first id from `from` on that no run covers:
// the oldest event of the backlog, or, with none, an id past every event.
// Each step jumps one run.
func firstUnshipped(ctx context.Context, q querier, from int64) (int64, error) {
	cur := from
	for {
		var next sql.NullInt64
		if err := q.QueryRowContext(ctx, `SELECT min(id) FROM events WHERE id >= ?`, cur).Scan(&next); err != nil {
			return 0, fmt.Errorf("find backlog start: %w", err)
		}
		if !next.Valid {
			return cur, nil
		}
		var last int64
		if err := q.QueryRowContext(ctx, coverSQL, next.Int64).Scan(&last); err != nil {
			return 0, fmt.Errorf("find backlog start: %w", err)
		}
		if last < next.Int64 {
			return next.Int64, nil
		}
		cur = last + 1
	}
}

// checkRuns refuses runs this collector cannot have written, which would
// hide events from the uploader for good: one that reaches past the last id
// the file ever gave (it would cover events not yet received), or two that
// overlap. The file is not trusted (someone may have edited it); a few
// statements over the small runs table are the price.
func checkRuns(ctx context.Context, q querier) error {
	for _, c := range []struct{ why, query string }{
		{"reaches past the last event id the file gave", `SELECT first_id, last_id FROM shipped
			WHERE last_id > coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0) LIMIT 1`},
		{"overlaps the next run", `SELECT a.first_id, a.last_id FROM shipped AS a
			WHERE a.last_id >= (SELECT min(b.first_id) FROM shipped AS b WHERE b.first_id > a.first_id) LIMIT 1`},
	} {
		var first, last int64
		err := q.QueryRowContext(ctx, c.query).Scan(&first, &last)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return fmt.Errorf("check shipped runs: %w", err)
		}
		return fmt.Errorf("shipped run %d-%d %s: the file was changed outside the collector", first, last, c.why)
	}
	return nil
}

// raiseLow moves the backlog's start up to id; it never moves down.
func (s *Store) raiseLow(id int64) {
	for {
		old := s.low.Load()
		if id <= old || s.low.CompareAndSwap(old, id) {
			return
		}
	}
}

// Checkpoint marks events uploaded at `at`, records each device's newest
// event time and writes the audit rows of runs (one a batch) in the last
// transaction (one fsync for the whole checkpoint when it fits; in
// group mode, the fsync the inserts of that turn share). Marking an event
// twice changes nothing. It first tries one commit; when that is over
// MaxCommitBytes (many devices, many audit rows) it halves the chunk,
// again and again down to one event per commit, counting each split.
// Chunks commit one by one, so a crash can leave a prefix marked: the rest
// is shipped again (at-least-once).
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
		s.raiseLow(m.low)
		events = events[n:]
	}
	return nil
}

// marked is what one checkpoint transaction changed, and where the backlog
// starts after it.
type marked struct{ events, newDevices, low int64 }

func (s *Store) markChunk(ctx context.Context, events []collector.Event, at int64, runs []collector.UploadRun) (marked, error) {
	var m marked
	err := s.w.do(ctx, func(t *wtx) error {
		m = marked{}
		newest := make(map[string]int64) // device -> newest ts in this chunk
		for _, e := range events {
			if ts, ok := newest[e.DeviceID]; !ok || e.TS > ts {
				newest[e.DeviceID] = e.TS
			}
		}
		// The ids as runs of consecutive ids: a batch read from the backlog
		// is one run, or a few around the ids that left it before.
		for _, r := range idRanges(events) {
			n, err := markRange(t, r, at)
			if err != nil {
				return fmt.Errorf("mark uploaded: %w", err)
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
		m.low, err = firstUnshipped(t.ctx, t, t.s.low.Load())
		return err
	})
	return m, err
}

// markRange records that the events r names have shipped, at `at`, and
// returns how many had not been marked before. Its ids are events' ids
// (idRanges), so the ids no run covers yet are events newly marked. A part
// next to a run begun under markSpan ago widens that run (and one that
// fills the hole between two joins them); any other part is a run of its
// own.
func markRange(t *wtx, r idRange, at int64) (int64, error) {
	near, err := runsNear(t, r)
	if err != nil {
		return 0, err
	}
	var added int64
	cur, i := r.first, 0
	for cur <= r.last {
		for i < len(near) && near[i].last < cur {
			i++ // ends before: at most the run before r
		}
		if i < len(near) && near[i].first <= cur {
			cur = near[i].last + 1 // covered already
			i++
			continue
		}
		part := idRange{cur, r.last} // up to the next run, or r's end
		var next *run
		if i < len(near) {
			part.last = near[i].first - 1
			next = &near[i]
		}
		if err := t.charge(rowOverhead); err != nil {
			return 0, err
		}
		if err := writeRun(t, near, part, next, at); err != nil {
			return 0, err
		}
		added += part.last - part.first + 1
		cur = part.last + 1
	}
	return added, nil
}

// run is a row of shipped.
type run struct{ first, last, firstAt, lastAt int64 }

// runsNear returns the run that starts before r, if any, and every run
// that starts in r or right after it, in id order.
func runsNear(t *wtx, r idRange) ([]run, error) {
	rows, err := t.QueryContext(t.ctx, `SELECT first_id, last_id, first_at, last_at FROM shipped
		WHERE first_id <= ? AND first_id >= coalesce((SELECT first_id FROM shipped WHERE first_id < ? ORDER BY first_id DESC LIMIT 1), 0)
		ORDER BY first_id`, r.last+1, r.first)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var near []run
	for rows.Next() {
		var x run
		if err := rows.Scan(&x.first, &x.last, &x.firstAt, &x.lastAt); err != nil {
			return nil, err
		}
		near = append(near, x)
	}
	return near, rows.Err()
}

// writeRun records part, which no run covers, as shipped at `at`: it widens
// the run that ends right before it, or the one that starts right after it
// (next, when it does), or begins a run. near is kept true to the table.
func writeRun(t *wtx, near []run, part idRange, next *run, at int64) error {
	young := func(x *run) bool { return x != nil && at-x.firstAt < markSpan.Milliseconds() }
	var prev *run
	for j := range near {
		if near[j].last == part.first-1 {
			prev = &near[j]
		}
	}
	if next != nil && next.first != part.last+1 {
		next = nil
	}
	switch {
	case young(prev):
		last, lastAt := part.last, at
		if young(next) { // the part fills the hole between them: one run
			if _, err := t.ExecContext(t.ctx, `DELETE FROM shipped WHERE first_id = ?`, next.first); err != nil {
				return err
			}
			last, lastAt = next.last, max(at, next.lastAt)
			next.first = prev.first // the same run now
		}
		if _, err := t.ExecContext(t.ctx, `UPDATE shipped SET last_id = ?, last_at = max(last_at, ?) WHERE first_id = ?`,
			last, lastAt, prev.first); err != nil {
			return err
		}
		prev.last, prev.lastAt = last, max(prev.lastAt, lastAt)
	case young(next):
		if _, err := t.ExecContext(t.ctx, `UPDATE shipped SET first_id = ?, last_at = max(last_at, ?) WHERE first_id = ?`,
			part.first, at, next.first); err != nil {
			return err
		}
		next.first = part.first
	default:
		if _, err := t.ExecContext(t.ctx, `INSERT INTO shipped (first_id, last_id, first_at, last_at) VALUES (?, ?, ?, ?)`,
			part.first, part.last, at, at); err != nil {
			return err
		}
	}
	return nil
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
