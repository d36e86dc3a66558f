package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/binary"
	"fmt"
	"time"
)

// schemaVersion is stored in PRAGMA user_version. Each entry of migrations
// upgrades the schema by one version; a file newer than this build is refused.
const schemaVersion = 3

var migrations = []string{
	// 0 -> 1: the buffer.
	`
CREATE TABLE events (
	-- AUTOINCREMENT: ids are never reused, even after the newest rows are
	-- purged, because receivers deduplicate on them.
	id           INTEGER PRIMARY KEY AUTOINCREMENT,
	device_id    TEXT    NOT NULL,
	kind         TEXT    NOT NULL,
	payload_json TEXT    CHECK (payload_json IS NULL OR json_valid(payload_json)),
	ts           INTEGER NOT NULL,  -- unix ms, producer's clock (server-stamped when absent)
	uploaded_at  INTEGER            -- unix ms; NULL means: in the upload backlog
);
-- The backlog: only rows not yet uploaded are in this index, so fetching the
-- oldest batch and counting the backlog never scan uploaded history.
CREATE INDEX events_backlog ON events(id) WHERE uploaded_at IS NULL;

CREATE TABLE devices (
	id           INTEGER PRIMARY KEY,
	device_key   TEXT NOT NULL UNIQUE,
	label        TEXT,
	last_seen_at INTEGER             -- newest event ts shipped for the device
);

-- One row per uploader cycle that had events to ship, success or failure.
CREATE TABLE upload_runs (
	id          INTEGER PRIMARY KEY,
	started_at  INTEGER NOT NULL,
	finished_at INTEGER NOT NULL,
	event_count INTEGER NOT NULL,
	first_id    INTEGER,
	last_id     INTEGER,
	status      TEXT NOT NULL CHECK (status IN ('ok', 'failed', 'rejected')),
	error       TEXT
);
CREATE INDEX upload_runs_started ON upload_runs(started_at);
`,
	// 1 -> 2: the collector's own clock beside the producers' ts, which a
	// device's wrong clock can put years off: when an event was received
	// (silence and backlog age are measured on it), and when a device was
	// last shipped (devices are purged on it, with their events).
	`
ALTER TABLE events ADD COLUMN received_at INTEGER;      -- unix ms, collector's clock; NULL before version 2
ALTER TABLE devices ADD COLUMN last_shipped_at INTEGER; -- unix ms, collector's clock
UPDATE devices SET last_shipped_at = CAST(strftime('%s', 'now') AS INTEGER) * 1000;
`,
	// 2 -> 3: what left the backlog is kept as runs of ids (shipped), not a
	// time written into every row: a mark rewrote each row it marked and
	// its entry in the backlog index, as much work as the insert had been.
	// A run merges the marks of up to a minute (markSpan), so the table
	// stays small and retention still cuts on the collector's clock. The
	// marks already made become runs: one per stretch of marked rows.
	`
CREATE TABLE shipped (
	first_id INTEGER PRIMARY KEY,  -- every event with an id from first_id
	last_id  INTEGER NOT NULL,     -- to last_id has left the backlog
	first_at INTEGER NOT NULL,     -- unix ms, collector's clock: the run's first mark
	last_at  INTEGER NOT NULL,     -- and its newest (retention cuts on it)
	CHECK (last_id >= first_id)
);
INSERT INTO shipped (first_id, last_id, first_at, last_at)
	SELECT min(id), max(id), min(uploaded_at), max(uploaded_at) FROM (
		SELECT id, uploaded_at, sum(uploaded_at IS NULL) OVER (ORDER BY id) AS stretch FROM events
	) WHERE uploaded_at IS NOT NULL GROUP BY stretch;
DROP INDEX events_backlog;
ALTER TABLE events DROP COLUMN uploaded_at;
-- The backlog, for diagnostics: the events no run covers. The first
-- uncovered id is found from the runs' ends, so the view reads only the
-- backlog's part of the table, however much shipped history it holds.
CREATE VIEW backlog AS
SELECT e.* FROM events AS e
WHERE e.id >= (
		SELECT coalesce(min(c.id), 9223372036854775807) FROM (
			SELECT (SELECT min(id) FROM events) AS id
			UNION ALL
			SELECT (SELECT min(id) FROM events WHERE id > s.last_id) FROM shipped AS s
		) AS c
		WHERE c.id IS NOT NULL
		AND coalesce((SELECT last_id FROM shipped WHERE first_id <= c.id ORDER BY first_id DESC LIMIT 1), 0) < c.id)
	AND coalesce((SELECT last_id FROM shipped WHERE first_id <= e.id ORDER BY first_id DESC LIMIT 1), 0) < e.id;
`,
}

// Seeds for a new file's event ids, all below 2^53 so that every id is
// exact in any JSON reader (JavaScript's numbers included).
const (
	clockSetSince  = 1_577_836_800_000_000 // 2020-01-01 in µs: a clock before it was never set
	randomSeedLow  = 1 << 52               // the clock's µs reach it in 2112
	randomSeedSpan = 1<<53 - 1<<52 - 1<<44 // leave 2^44 ids of room below 2^53
)

// firstEventID chooses the first id of a new buffer file. Receivers
// deduplicate on (collector_id, id) for good, so a buffer started anew
// under the same collector id (the old file lost, removed or moved away)
// must not hand out ids they have already seen. The clock's microseconds
// do that: ids grow by one per event, far slower than the clock, so a later
// file starts above every id an earlier one gave. An edge box without a
// real-time clock may boot in 1970, where the clock says nothing; then a
// random start in [2^52, 2^53) keeps clear of every clock-seeded file,
// and of earlier random ones but for odds of about n in 2^52, n the events
// they hold between them.
func firstEventID(now time.Time) int64 {
	if us := now.UnixMicro(); us >= clockSetSince {
		return us
	}
	var b [8]byte
	rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return randomSeedLow + int64(binary.LittleEndian.Uint64(b[:])%randomSeedSpan)
}

// migrate brings the schema to schemaVersion in one transaction, and adds
// the optional device index. A new file's event ids start at firstID.
// Reopening an up-to-date file changes nothing.
func migrate(ctx context.Context, db *sql.DB, indexed bool, firstID int64) error {
	var version int
	if err := db.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&version); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if version > schemaVersion {
		return fmt.Errorf("schema version %d is newer than this collector supports (%d)", version, schemaVersion)
	}
	if version < schemaVersion {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		defer tx.Rollback()
		for v := version; v < schemaVersion; v++ {
			if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
				return fmt.Errorf("migrate to version %d: %w", v+1, err)
			}
		}
		if version == 0 && firstID > 1 {
			// AUTOINCREMENT hands out max(seq, max(id)) + 1.
			if _, err := tx.ExecContext(ctx, `INSERT INTO sqlite_sequence (name, seq) VALUES ('events', ?)`, firstID-1); err != nil {
				return fmt.Errorf("seed event ids: %w", err)
			}
		}
		// PRAGMA takes no bound parameters; the value is our own constant.
		if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, schemaVersion)); err != nil {
			return fmt.Errorf("set schema version: %w", err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
	}
	if indexed {
		if _, err := db.ExecContext(ctx, `CREATE INDEX IF NOT EXISTS events_device ON events(device_id)`); err != nil {
			return fmt.Errorf("create device index: %w", err)
		}
	}
	return nil
}
