package diag

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// snapshot is what a refused statement must leave as it was: the bytes of
// the buffer and its WAL, and the names of the files in each directory.
func snapshot(t *testing.T, db string, dirs ...string) string {
	t.Helper()
	var b strings.Builder
	for _, p := range []string{db, db + "-wal"} {
		data, _ := os.ReadFile(p)
		b.WriteString(fmt.Sprintf("%s: %x\n", p, sha256.Sum256(data)))
	}
	for _, d := range dirs {
		ents, _ := os.ReadDir(d)
		for _, e := range ents {
			b.WriteString(d + "/" + e.Name() + "\n")
		}
	}
	return b.String()
}

// TestQueryRefusesEveryBypass holds the read-only guard to attempts to write
// the buffer, or any file, through diagnostic SQL. Each must be refused as
// read-only and change nothing anywhere: not the buffer's bytes, not the
// files in its directory or in another one. (On 4cb3049 the first case
// deleted 10 events, and ATTACH and VACUUM INTO created files.)
func TestQueryRefusesEveryBypass(t *testing.T) {
	st, d := liveBuffer(t)
	ctx := context.Background()
	insert(t, st, "a", 1, 20)
	db := d.path
	other := t.TempDir()
	out := filepath.Join(other, "out.db")
	for _, q := range []string{
		// the issue's: turn query_only off, attach the buffer again read-write, delete
		`PRAGMA query_only=0; ATTACH '` + db + `' AS rw; DELETE FROM rw.events WHERE id<=10`,
		`PRAGMA query_only=0`,
		`PRAGMA Query_Only = false`,
		`PRAGMA main.query_only = 0`,
		`PRAGMA query_only('')`, // '' reaches the authorizer as "no value"
		`PRAGMA query_only=''`,
		`PRAGMA writable_schema=1`,
		`PRAGMA journal_mode=DELETE`,
		`PRAGMA journal_mode=''`, // '' matches the first journal mode, DELETE
		`PRAGMA user_version=''`, // allowed to compile (it reports); the read-only file refuses the write
		`PRAGMA user_version=7`,
		`PRAGMA wal_checkpoint(TRUNCATE)`,
		`PRAGMA optimize`,
		`PRAGMA incremental_vacuum`,
		`ATTACH '` + db + `' AS rw`,
		`ATTACH '` + out + `' AS w`,
		`ATTACH 'file:` + out + `?mode=rwc' AS w`,
		`ATTACH ':memory:' AS m`,
		`DETACH main`,
		`VACUUM INTO '` + out + `'`,
		`VACUUM INTO lower('` + out + `')`,
		`VACUUM`,
		`SELECT 1; DELETE FROM events`,
		`SELECT ';'; DELETE FROM events`,
		`SELECT 1 /* ; */; PRAGMA query_only=0`,
		`;DELETE FROM events`,
		`SELECT count(*) FROM events; ATTACH '` + out + `' AS w`,
		`WITH x AS (SELECT 1) DELETE FROM events`,
		`EXPLAIN DELETE FROM events`,
		`CREATE TEMP TABLE t(x)`,
		`CREATE TEMP VIEW v AS SELECT 1`,
		`CREATE TEMP TRIGGER tr AFTER INSERT ON events BEGIN SELECT 1; END`,
		`BEGIN IMMEDIATE`,
		`SAVEPOINT s`,
		`REINDEX`,
		`ANALYZE`,
		`SELECT load_extension('/tmp/x.so')`,
		`SELECT * FROM pragma_query_only`,
		`REPLACE INTO devices (device_key) VALUES ('evil')`,
		`INSERT INTO events (device_id, kind, ts) SELECT device_id, kind, ts FROM events RETURNING id`,
	} {
		before := snapshot(t, db, filepath.Dir(db), other)
		_, err := d.Query(ctx, q, 10)
		if !errors.Is(err, ErrReadOnly) {
			t.Errorf("%s: err = %v, want ErrReadOnly", q, err)
		}
		if after := snapshot(t, db, filepath.Dir(db), other); after != before {
			t.Errorf("%s: changed files:\nbefore:\n%s\nafter:\n%s", q, before, after)
		}
	}
	if got := st.Stats().Backlog; got != 20 {
		t.Errorf("backlog = %d, want 20", got)
	}
	res, err := d.Query(ctx, `SELECT count(*), max(id) FROM events`, 10)
	if err != nil || res.Rows[0][0] != int64(20) {
		t.Errorf("after the attempts: %v %v, want 20 events", res, err)
	}
	// The connection is still read-only after all of that.
	if _, err := d.Query(ctx, `DELETE FROM events`, 10); !errors.Is(err, ErrReadOnly) {
		t.Errorf("DELETE after the attempts: %v", err)
	}
}

// TestQueryAllowsWhatReads: the guard leaves every way of reading alone.
func TestQueryAllowsWhatReads(t *testing.T) {
	st, d := liveBuffer(t)
	insert(t, st, "a", 1, 3)
	for q, want := range map[string]string{
		`SELECT count(*) FROM events`:                          "3",
		`SELECT count(*) FROM events;`:                         "3",
		"SELECT count(*) FROM events; -- trailing comment\n;;": "3",
		`/* lead */ SELECT ';' || ' x'`:                        "; x",
		`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i<5) SELECT sum(i) FROM n`: "15",
		`SELECT name FROM pragma_table_info('events') WHERE cid = 0`:                                   "id",
		`PRAGMA table_info(events)`:                                    "0",
		`PRAGMA page_count`:                                            "",
		`PRAGMA user_version`:                                          "3", // the schema version
		`SELECT * FROM pragma_user_version`:                            "3",
		`PRAGMA quick_check`:                                           "ok",
		`PRAGMA integrity_check(events)`:                               "ok",
		`SELECT json_extract(payload_json, '$.v') FROM events LIMIT 1`: "1",
		`EXPLAIN QUERY PLAN SELECT * FROM backlog`:                     "",
		`SELECT count(*) FROM sqlite_master`:                           "",
	} {
		res, err := d.Query(context.Background(), q, 10)
		if err != nil {
			t.Errorf("%s: %v", q, err)
			continue
		}
		if want != "" && (len(res.Rows) == 0 || cell(res.Rows[0][0]) != want) {
			t.Errorf("%s = %v, want %s first", q, res.Rows, want)
		}
	}
}

func TestQueryRefusesNoneOrTooMuch(t *testing.T) {
	_, d := liveBuffer(t)
	for _, q := range []string{"", " ", "-- only a comment", ";;", "SELECT 1\x00; DELETE FROM events", "SELECT '" + strings.Repeat("x", 20<<10) + "'"} {
		if _, err := d.Query(context.Background(), q, 10); err == nil {
			t.Errorf("%.40q: accepted", q)
		}
	}
	if !slices.Contains(Formats, "csv") {
		t.Fatal("formats")
	}
}
