package torture

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"edgecollector/collector/store"
)

// row is an event as the database holds it.
type row struct {
	deviceID, kind string
	payload        []byte
	uploaded       bool
}

// readRows reads every event of the stopped collector's database.
func readRows(ctx context.Context, path string) (map[int64]*row, error) {
	db, err := openRO(path)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	q, err := db.QueryContext(ctx, `SELECT id, device_id, kind, payload_json, uploaded_at IS NOT NULL FROM events`)
	if err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	defer q.Close()
	rows := make(map[int64]*row)
	for q.Next() {
		var (
			id      int64
			r       row
			payload sql.RawBytes
		)
		if err := q.Scan(&id, &r.deviceID, &r.kind, &payload, &r.uploaded); err != nil {
			return nil, fmt.Errorf("read events: %w", err)
		}
		r.payload = bytes.Clone(payload)
		rows[id] = &r
	}
	if err := q.Err(); err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	return rows, nil
}

// crashState reads a file a SIGKILL left behind (WAL and all): the
// largest id it ever handed out (AUTOINCREMENT's high-water mark, which
// survives deletes), and SQLite's quick_check verdict, "ok" when intact.
func crashState(ctx context.Context, path string) (maxID int64, check string, err error) {
	db, err := openRO(path)
	if err != nil {
		return 0, "", err
	}
	defer db.Close()
	var n sql.NullInt64
	err = db.QueryRowContext(ctx, `SELECT max(x) FROM (SELECT seq AS x FROM sqlite_sequence WHERE name = 'events' UNION ALL SELECT max(id) FROM events)`).Scan(&n)
	if err != nil {
		return 0, "", fmt.Errorf("max id: %w", err)
	}
	if err := db.QueryRowContext(ctx, `PRAGMA quick_check`).Scan(&check); err != nil {
		return 0, "", fmt.Errorf("quick_check: %w", err)
	}
	return n.Int64, check, nil
}

func openRO(path string) (*sql.DB, error) {
	db, err := sql.Open(store.SQLite.Driver, store.SQLite.DSN(path, store.ConnConfig{BusyTimeout: 5 * time.Second, ReadOnly: true}))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return db, nil
}

// verdict is the ledger's finding for one repetition.
type verdict struct {
	acked      int // events acknowledged with 200
	stored     int // of those, in the database as sent
	delivered  int // of those, delivered at least once as sent
	lost       int // acknowledged, and missing from the database or never delivered
	duplicates int // deliveries beyond the first, over all ids
	rows       int
	problems   []string
}

func (v *verdict) problem(format string, args ...any) {
	// Enough to diagnose; a systematic fault would otherwise flood machine.json.
	const most = 12
	if len(v.problems) == most {
		v.problems = append(v.problems, "... (more problems not listed)")
	}
	if len(v.problems) < most {
		v.problems = append(v.problems, fmt.Sprintf(format, args...))
	}
}

// checkLedger holds the collector to its promises, against the database it
// left and what the receiver took:
//   - every acknowledged event is stored with the device, kind and payload
//     bytes sent, and delivered at least once with the same bytes;
//   - every request is all or nothing: a request answered with an error
//     stored nothing, one cut off by a kill stored all its events or none;
//   - ids are never reused: each acknowledged once, and those a restarted
//     collector gives are above every id its crashed predecessor handed out
//     (highWater[e] is the largest id on disk when epoch e was killed);
//   - nothing is marked uploaded that the receiver never took, nothing is
//     delivered that is not in the database, and a re-delivery carries the
//     same bytes as the first.
func checkLedger(l *load, rows map[int64]*row, got map[int64]*delivery, badBodies int64, highWater []int64) verdict {
	l.mu.Lock()
	defer l.mu.Unlock()
	v := verdict{rows: len(rows)}
	if badBodies > 0 {
		v.problem("the receiver took %d batches that were not JSON arrays of events", badBodies)
	}
	seen := make(map[int64]tag)
	for _, a := range l.acked {
		minID := int64(0)
		if a.epoch > 0 && a.epoch-1 < len(highWater) {
			minID = highWater[a.epoch-1]
		}
		for i, id := range a.ids {
			e := a.events[i]
			v.acked++
			if prev, dup := seen[id]; dup {
				v.problem("id %d acknowledged twice (requests %v and %v): an id was reused", id, prev, a.tag)
			}
			seen[id] = a.tag
			if id <= minID {
				v.problem("id %d acknowledged after restart %d, not above %d, the highest id before that kill: an id was reused", id, a.epoch, minID)
			}
			r := rows[id]
			switch {
			case r == nil:
				v.lost++
				v.problem("id %d (request %v) acknowledged but not in the database: lost", id, a.tag)
				continue
			case r.deviceID != e.deviceID || r.kind != e.kind:
				v.problem("id %d stored as %q/%q, sent as %q/%q", id, r.deviceID, r.kind, e.deviceID, e.kind)
			case !bytes.Equal(r.payload, e.payload):
				v.problem("id %d stored payload %s, sent %s", id, r.payload, e.payload)
			default:
				v.stored++
			}
			d := got[id]
			switch {
			case d == nil:
				v.lost++
				v.problem("id %d (request %v) acknowledged but never delivered: lost", id, a.tag)
			case d.first.DeviceID != e.deviceID || d.first.Kind != e.kind || !bytes.Equal(d.first.Payload, e.payload):
				v.problem("id %d delivered as %q/%q %s, sent as %q/%q %s", id, d.first.DeviceID, d.first.Kind, d.first.Payload, e.deviceID, e.kind, e.payload)
			default:
				v.delivered++
			}
		}
	}

	// All or nothing, per request: group the rows by the tag in their payload.
	groups := make(map[tag]int)
	for id, r := range rows {
		var p struct{ W, R, N *int }
		if err := json.Unmarshal(r.payload, &p); err != nil || p.W == nil || p.R == nil || p.N == nil {
			v.problem("id %d: payload %s carries no request tag", id, r.payload)
			continue
		}
		t := tag{*p.W, *p.R}
		groups[t]++
		if n, ok := l.sizes[t]; !ok || n != *p.N {
			v.problem("id %d: request %v was never sent with %d events", id, t, *p.N)
		}
	}
	for t, n := range groups {
		if want := l.sizes[t]; n != want {
			v.problem("request %v: %d of its %d events stored: half-written", t, n, want)
		}
	}
	for _, t := range l.refused {
		if n := groups[t]; n > 0 {
			v.problem("request %v was refused, yet %d of its events are stored", t, n)
		}
	}

	// Deliveries against the database.
	for _, id := range sortedIDs(got) {
		d := got[id]
		v.duplicates += d.count - 1
		r := rows[id]
		switch {
		case r == nil:
			v.problem("id %d delivered but not in the database", id)
		case d.differs:
			v.problem("id %d delivered twice with different bytes", id)
		case d.first.DeviceID != r.deviceID || d.first.Kind != r.kind || !bytes.Equal(d.first.Payload, r.payload):
			v.problem("id %d delivered as %q/%q %s, stored %q/%q %s", id, d.first.DeviceID, d.first.Kind, d.first.Payload, r.deviceID, r.kind, r.payload)
		}
	}
	for id, r := range rows {
		if r.uploaded && got[id] == nil {
			v.problem("id %d is marked uploaded but was never delivered: lost", id)
		}
	}
	return v
}

func sortedIDs[V any](m map[int64]V) []int64 {
	ids := make([]int64, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}
