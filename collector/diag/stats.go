package diag

import (
	"context"
	"fmt"
	"os"
	"time"
)

// Stats answers an operator's first questions about a buffer: how big is
// the backlog, how old is it, which devices have gone silent, is the
// upload working, how big is the file.
type Stats struct {
	Events             int64        `json:"events"`
	Backlog            int64        `json:"backlog"`
	OldestBacklogAgeS  float64      `json:"oldest_backlog_age_s"` // 0 with no backlog
	Devices            []DeviceStat `json:"devices"`              // most silent first
	RecentRuns         []Run        `json:"recent_runs"`          // newest first
	FailedRunsLastHour int64        `json:"failed_runs_last_hour"`
	File               FileStat     `json:"file"`
	At                 time.Time    `json:"at"`
}

// DeviceStat is one device's events in the buffer. Silence is measured on
// the collector's clock (when it received the events), never on the
// device's own, which may be years off.
type DeviceStat struct {
	Device         string  `json:"device_id"`
	Events         int64   `json:"events"`
	Backlog        int64   `json:"backlog"`
	LastTS         int64   `json:"last_ts"`          // newest event time, unix ms, the producer's clock
	LastReceivedAt int64   `json:"last_received_at"` // unix ms, the collector's clock
	SilentForS     float64 `json:"silent_for_s"`     // since LastReceivedAt
}

// Run is one upload_runs audit row.
type Run struct {
	ID         int64  `json:"id"`
	StartedAt  int64  `json:"started_at"`
	FinishedAt int64  `json:"finished_at"`
	EventCount int64  `json:"event_count"`
	Status     string `json:"status"`
	Error      string `json:"error,omitempty"`
}

// FileStat is the database file's size and free space.
type FileStat struct {
	Bytes     int64 `json:"bytes"`
	WALBytes  int64 `json:"wal_bytes"`
	PageSize  int64 `json:"page_size"`
	Pages     int64 `json:"pages"`
	FreePages int64 `json:"free_pages"` // reused by new rows before the file grows
}

// MaxDevices bounds the device list of Stats.
const MaxDevices = 50

// Stats summarises the buffer as of now.
func (d *DB) Stats(ctx context.Context, now time.Time) (*Stats, error) {
	ctx, cancel := d.bound(ctx)
	defer cancel()
	st, err := d.stats(ctx, now)
	return st, d.limited(ctx, err)
}

func (d *DB) stats(ctx context.Context, now time.Time) (*Stats, error) {
	st := &Stats{At: now.UTC(), Devices: []DeviceStat{}, RecentRuns: []Run{}}
	nowMS := now.UnixMilli()
	q := func(query string, args []any, dest ...any) error {
		if err := d.db.QueryRow(ctx, query, args, dest...); err != nil {
			return fmt.Errorf("stats: %w", err)
		}
		return nil
	}
	// Ages on the collector's clock (received_at; ts for rows from before it was kept).
	var oldest *int64
	if err := q(`SELECT count(*), min(coalesce(received_at, ts)) FROM backlog`, nil, &st.Backlog, &oldest); err != nil {
		return nil, err
	}
	if oldest != nil {
		st.OldestBacklogAgeS = max(0, float64(nowMS-*oldest)/1000)
	}
	if err := q(`SELECT count(*) FROM events`, nil, &st.Events); err != nil {
		return nil, err
	}
	if err := q(`SELECT count(*) FROM upload_runs WHERE status = 'failed' AND started_at >= ?`, []any{nowMS - time.Hour.Milliseconds()}, &st.FailedRunsLastHour); err != nil {
		return nil, err
	}
	rows, err := d.db.Query(ctx, `
		SELECT device_id, count(*), sum(id IN (SELECT id FROM backlog)), max(ts), max(coalesce(received_at, ts)) AS heard FROM events
		GROUP BY device_id ORDER BY heard, device_id LIMIT ?`, MaxDevices)
	if err != nil {
		return nil, fmt.Errorf("stats: devices: %w", err)
	}
	for rows.Next() {
		var ds DeviceStat
		if err := rows.Scan(&ds.Device, &ds.Events, &ds.Backlog, &ds.LastTS, &ds.LastReceivedAt); err != nil {
			rows.Close()
			return nil, fmt.Errorf("stats: devices: %w", err)
		}
		ds.SilentForS = max(0, float64(nowMS-ds.LastReceivedAt)/1000)
		st.Devices = append(st.Devices, ds)
	}
	rows.Close()
	rows, err = d.db.Query(ctx, `
		SELECT id, started_at, finished_at, event_count, status, coalesce(error, '') FROM upload_runs
		ORDER BY id DESC LIMIT 10`)
	if err != nil {
		return nil, fmt.Errorf("stats: upload runs: %w", err)
	}
	for rows.Next() {
		var r Run
		if err := rows.Scan(&r.ID, &r.StartedAt, &r.FinishedAt, &r.EventCount, &r.Status, &r.Error); err != nil {
			rows.Close()
			return nil, fmt.Errorf("stats: upload runs: %w", err)
		}
		st.RecentRuns = append(st.RecentRuns, r)
	}
	rows.Close()
	for _, p := range []struct {
		pragma string
		dest   *int64
	}{{"page_size", &st.File.PageSize}, {"page_count", &st.File.Pages}, {"freelist_count", &st.File.FreePages}} {
		if err := q(`PRAGMA `+p.pragma, nil, p.dest); err != nil {
			return nil, err
		}
	}
	if fi, err := os.Stat(d.path); err == nil {
		st.File.Bytes = fi.Size()
	}
	if fi, err := os.Stat(d.path + "-wal"); err == nil {
		st.File.WALBytes = fi.Size()
	}
	return st, nil
}
