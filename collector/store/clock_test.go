package store_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"edgecollector/collector"
	"edgecollector/collector/store"
	"edgecollector/internal/storetest"
)

// Retention runs on the collector's clock: events stamped years ahead or at
// the epoch by a producer's clock go like the others, and devices not
// shipped for longer than retention go with them (200,000 device ids never
// left the table); a device shipped since stays, and comes back when its
// next event is shipped. Each event records when the collector received it.
func TestRetentionOnTheCollectorsClock(t *testing.T) {
	storetest.ForModes(t, func(t *testing.T, mode store.Mode) {
		s := storetest.MustOpen(t, store.Options{Mode: mode})
		ctx := context.Background()
		now := time.Now()
		year := now.Add(365 * 24 * time.Hour).UnixMilli()
		before := now.UnixMilli()
		if _, err := s.Insert(ctx, []collector.Event{
			{DeviceID: "ahead", Kind: "t", TS: year},
			{DeviceID: "epoch", Kind: "t", TS: 1},
			{DeviceID: "fine", Kind: "t", TS: before},
		}); err != nil {
			t.Fatal(err)
		}
		after := time.Now().UnixMilli()
		if n := storetest.Count(t, s.DB(), `SELECT count(*) FROM events WHERE received_at BETWEEN ? AND ?`, before, after); n != 3 {
			t.Errorf("%d events with a received_at from the collector's clock, want 3", n)
		}
		evs, err := s.FetchBacklog(ctx, 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		// Shipped two days ago, all three; "fine" is shipped again today.
		if err := s.Checkpoint(ctx, evs, now.Add(-48*time.Hour), nil); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Insert(ctx, []collector.Event{{DeviceID: "fine", Kind: "t", TS: before}}); err != nil {
			t.Fatal(err)
		}
		evs, _ = s.FetchBacklog(ctx, 0, 10)
		if err := s.Checkpoint(ctx, evs, now, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := s.DB().Exec(`UPDATE devices SET label = 'keep me' WHERE device_key = 'epoch'`); err != nil {
			t.Fatal(err)
		}

		n, err := s.Purge(ctx, now.Add(-24*time.Hour)) // retention 24h
		if err != nil {
			t.Fatal(err)
		}
		if n != 3 {
			t.Errorf("purged %d events, want the 3 shipped two days ago whatever their ts", n)
		}
		var devices []string
		rows, err := s.DB().Query(`SELECT device_key FROM devices ORDER BY device_key`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var d string
			rows.Scan(&d)
			devices = append(devices, d)
		}
		rows.Close()
		if len(devices) != 2 || devices[0] != "epoch" || devices[1] != "fine" {
			t.Errorf("devices after the purge = %v, want [epoch (labelled) fine (shipped today)]", devices)
		}
		if got := s.Stats().Devices; got != 2 {
			t.Errorf("devices_seen = %d, want 2", got)
		}
	})
}

// A version 1 file (before the collector's clock was recorded) migrates:
// its rows keep a NULL received_at, its devices count as shipped now.
func TestMigrateVersion1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.db")
	db, err := sql.Open(store.SQLite.Driver, store.SQLite.DSN(path, store.ConnConfig{BusyTimeout: time.Second, Synchronous: "FULL"}))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{store.MigrationV1, `PRAGMA user_version = 1`,
		`INSERT INTO events (device_id, kind, ts) VALUES ('old', 't', 5)`,
		`INSERT INTO devices (device_key, last_seen_at) VALUES ('old', 5)`} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	s := storetest.MustOpen(t, store.Options{Path: path})
	if n := storetest.Count(t, s.DB(), `SELECT count(*) FROM events WHERE received_at IS NULL`); n != 1 {
		t.Errorf("old rows with NULL received_at = %d, want 1", n)
	}
	if n := storetest.Count(t, s.DB(), `SELECT count(*) FROM devices WHERE last_shipped_at > ?`, time.Now().Add(-time.Hour).UnixMilli()); n != 1 {
		t.Errorf("old devices stamped shipped now = %d, want 1", n)
	}
	if n := storetest.Count(t, s.DB(), `PRAGMA user_version`); n != store.SchemaVersion {
		t.Errorf("user_version = %d, want %d", n, store.SchemaVersion)
	}
}
