package rig

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"net/url"

	_ "modernc.org/sqlite" // the engine the collector writes with
)

// Row is an event as the collector's database holds it.
type Row struct {
	DeviceID, Kind string
	Payload        []byte // as stored; nil for none
	TS             int64
	Uploaded       bool
}

// openRO opens a collector's database read-only, as a diagnostic reader
// would: it may be live, or as a SIGKILL left it (WAL and all).
func openRO(path string) (*sql.DB, error) {
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?mode=ro&_pragma=busy_timeout(5000)&_pragma=query_only(1)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return db, nil
}

// ReadRows reads every event of a collector's database.
func ReadRows(ctx context.Context, path string) (map[int64]*Row, error) {
	db, err := openRO(path)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	q, err := db.QueryContext(ctx, `SELECT id, device_id, kind, payload_json, ts, id NOT IN (SELECT id FROM backlog) FROM events`)
	if err != nil {
		return nil, fmt.Errorf("read events of %s: %w", path, err)
	}
	defer q.Close()
	rows := make(map[int64]*Row)
	for q.Next() {
		var (
			id      int64
			r       Row
			payload sql.RawBytes
		)
		if err := q.Scan(&id, &r.DeviceID, &r.Kind, &payload, &r.TS, &r.Uploaded); err != nil {
			return nil, fmt.Errorf("read events of %s: %w", path, err)
		}
		if payload != nil {
			r.Payload = bytes.Clone(payload)
		}
		rows[id] = &r
	}
	if err := q.Err(); err != nil {
		return nil, fmt.Errorf("read events of %s: %w", path, err)
	}
	return rows, nil
}

// CrashState reads a file a SIGKILL left behind (WAL and all): the largest
// id it ever handed out (AUTOINCREMENT's high-water mark, which survives
// deletes), and SQLite's quick_check verdict, "ok" when intact.
func CrashState(ctx context.Context, path string) (maxID int64, check string, err error) {
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

// CountRows counts the events of a collector's database.
func CountRows(ctx context.Context, path string) (int64, error) {
	db, err := openRO(path)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var n int64
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM events`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count events of %s: %w", path, err)
	}
	return n, nil
}
