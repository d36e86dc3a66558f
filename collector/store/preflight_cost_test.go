package store

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// TestDamageCheckCost measures what each candidate damage check costs at
// start on a large buffer, to choose the one Open runs (README: "Start-up
// checks"). It builds a buffer of PREFLIGHT_COST_MB megabytes (say 1024) in a
// temp dir (PREFLIGHT_COST_DIR to put it elsewhere) and logs the time of each
// check with the file's pages warm in the page cache and dropped from it.
//
//	PREFLIGHT_COST_MB=1024 go test -run DamageCheckCost -v -timeout 30m ./collector/store/
func TestDamageCheckCost(t *testing.T) {
	mb, _ := strconv.Atoi(os.Getenv("PREFLIGHT_COST_MB"))
	if mb <= 0 {
		t.Skip("set PREFLIGHT_COST_MB to measure the damage checks on a buffer of that size")
	}
	dir := os.Getenv("PREFLIGHT_COST_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	path := filepath.Join(dir, "cost.db")
	ctx := context.Background()
	if fi, err := os.Stat(path); err != nil || fi.Size() < int64(mb)<<20 {
		os.Remove(path)
		start := time.Now()
		st, err := Open(ctx, Options{Path: path, Synchronous: "NORMAL"})
		if err != nil {
			t.Fatal(err)
		}
		// ~1 KiB rows, as a real buffer of telemetry with modest payloads.
		for size := int64(0); size < int64(mb)<<20; {
			if _, err := st.DB().ExecContext(ctx, `
				WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 50000)
				INSERT INTO events (device_id, kind, payload_json, ts)
				SELECT 'sensor-' || (i % 5000), 'telemetry', '{"v":"' || hex(randomblob(480)) || '"}', 1748722000000 + i FROM n`); err != nil {
				t.Fatal(err)
			}
			st.DB().QueryRowContext(ctx, `SELECT page_count * page_size FROM pragma_page_count, pragma_page_size`).Scan(&size)
		}
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
		t.Logf("built %s in %v", path, time.Since(start).Round(time.Millisecond))
	}
	fi, _ := os.Stat(path)
	t.Logf("buffer: %d MiB", fi.Size()>>20)

	db, err := sql.Open(SQLite.Driver, SQLite.DSN(path, ConnConfig{BusyTimeout: time.Second, ReadOnly: true}))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	drop := func() {
		// Drop this file's pages from the page cache (only this file's: the
		// machine is shared).
		if out, err := exec.Command("dd", "if="+path, "iflag=nocache", "count=0", "status=none").CombinedOutput(); err != nil {
			t.Logf("could not drop the page cache: %v %s", err, out)
		}
	}
	checks := []struct {
		name string
		run  func() (string, error)
	}{
		{"read the file sequentially (floor)", func() (string, error) {
			f, err := os.Open(path)
			if err != nil {
				return "", err
			}
			defer f.Close()
			n, err := io.Copy(io.Discard, f)
			return fmt.Sprintf("%d bytes", n), err
		}},
		{"header + schema + page count (cheap)", func() (string, error) {
			var n int64
			var s string
			if err := db.QueryRow(`SELECT count(*), group_concat(name) FROM sqlite_master`).Scan(&n, &s); err != nil {
				return "", err
			}
			var pages int64
			err := db.QueryRow(`PRAGMA page_count`).Scan(&pages)
			return fmt.Sprintf("%d objects, %d pages", n, pages), err
		}},
		{"count backlog by index (cheap)", func() (string, error) {
			var n int64
			err := db.QueryRow(`SELECT count(*) FROM backlog`).Scan(&n)
			return strconv.FormatInt(n, 10), err
		}},
		{"PRAGMA quick_check", func() (string, error) {
			var s string
			err := db.QueryRow(`PRAGMA quick_check`).Scan(&s)
			return s, err
		}},
		{"PRAGMA integrity_check", func() (string, error) {
			var s string
			err := db.QueryRow(`PRAGMA integrity_check`).Scan(&s)
			return s, err
		}},
	}
	for _, cache := range []string{"cold", "warm"} {
		for _, c := range checks {
			if cache == "cold" {
				drop()
			} else {
				c.run() // warm it
			}
			start := time.Now()
			res, err := c.run()
			t.Logf("%-4s %-38s %8v  %s %v", cache, c.name, time.Since(start).Round(time.Millisecond), res, err)
		}
	}
}
