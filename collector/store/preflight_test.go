package store_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"edgecollector/collector"
	"edgecollector/collector/store"
	"edgecollector/internal/storetest"
)

const sqliteMagic = "SQLite format 3\x00"

// dirState is every file of dir with its bytes' hash: what a refusal must
// leave as it was.
func dirState(t *testing.T, dir string) string {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	var b strings.Builder
	for _, e := range ents {
		data, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		fmt.Fprintf(&b, "%s %x\n", e.Name(), sha256.Sum256(data))
	}
	return b.String()
}

// rawSQLite runs SQL on path with a plain connection: a foreign program.
func rawSQLite(t *testing.T, path string, stmts ...string) {
	t.Helper()
	db, err := sql.Open(store.SQLite.Driver, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// buffer makes a real buffer of n events with ~600-byte payloads, closed
// cleanly (the WAL folded into the file).
func buffer(t *testing.T, path string, n int) {
	t.Helper()
	s, err := store.Open(context.Background(), store.Options{Path: path, Synchronous: "NORMAL"})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i += 500 {
		evs := storetest.Events("d", min(500, n-i))
		for j := range evs {
			evs[j].Payload = []byte(fmt.Sprintf(`{"v":"%0600d"}`, i+j))
		}
		if _, err := s.Insert(context.Background(), evs); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// shipOldest marks the n oldest events of the buffer at path shipped.
func shipOldest(t *testing.T, path string, n int) {
	t.Helper()
	ctx := context.Background()
	s, err := store.Open(ctx, store.Options{Path: path, Synchronous: "NORMAL"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	evs, err := s.FetchBacklog(ctx, 0, n)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Checkpoint(ctx, evs, time.Now(), nil); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// damage overwrites pages [from, from+n) of the file with garbage.
func damage(t *testing.T, path string, from, n int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	junk := []byte(strings.Repeat("\xab\x00\xff\x13", 1024))
	for p := from; p < from+n; p++ {
		if _, err := f.WriteAt(junk, int64(p)*4096); err != nil {
			t.Fatal(err)
		}
	}
}

// TestOpenRefusesBeforeChangingAByte: each file below is refused with its
// name and the reason, and the directory is left exactly as it was: no
// byte of the file changed (on 4cb3049 the WAL switch changed header bytes
// 18-19 first, and a foreign database got the collector's tables), no file
// added beside it.
func TestOpenRefusesBeforeChangingAByte(t *testing.T) {
	for _, tc := range []struct {
		name string
		make func(t *testing.T, path string)
		want string
	}{
		{"foreign database", func(t *testing.T, p string) {
			rawSQLite(t, p, `CREATE TABLE foo(x)`, `INSERT INTO foo VALUES (1)`)
		}, "not a collector buffer"},
		{"foreign events table", func(t *testing.T, p string) {
			rawSQLite(t, p, `CREATE TABLE events(id INTEGER PRIMARY KEY, msg TEXT)`)
		}, "not a collector buffer"},
		{"foreign events table claiming our version", func(t *testing.T, p string) {
			rawSQLite(t, p, `CREATE TABLE events(id INTEGER PRIMARY KEY, msg TEXT)`, `PRAGMA user_version = 1`)
		}, "not a collector buffer"},
		{"our schema plus a foreign table", func(t *testing.T, p string) {
			buffer(t, p, 1)
			rawSQLite(t, p, `PRAGMA journal_mode = DELETE`, `CREATE TABLE foo(x)`)
		}, "never made"},
		{"our schema plus a trigger", func(t *testing.T, p string) {
			buffer(t, p, 1)
			rawSQLite(t, p, `PRAGMA journal_mode = DELETE`, `CREATE TRIGGER t AFTER INSERT ON events BEGIN DELETE FROM events; END`)
		}, "never made"},
		{"newer schema, rollback journal", func(t *testing.T, p string) {
			buffer(t, p, 1)
			rawSQLite(t, p, `PRAGMA journal_mode = DELETE`, `PRAGMA user_version = 999`)
		}, "newer than this collector"},
		{"newer schema, WAL", func(t *testing.T, p string) {
			buffer(t, p, 1)
			rawSQLite(t, p, `PRAGMA user_version = 999`)
		}, "newer than this collector"},
		{"text file", func(t *testing.T, p string) {
			os.WriteFile(p, []byte(strings.Repeat("not a database\n", 20)), 0o644)
		}, "not a SQLite database"},
		{"zeroed file", func(t *testing.T, p string) {
			os.WriteFile(p, make([]byte, 8192), 0o644)
		}, "not a SQLite database"},
		{"header only", func(t *testing.T, p string) {
			os.WriteFile(p, []byte(sqliteMagic+"\x10"), 0o644)
		}, "shorter than a database header"},
		{"cut mid-page", func(t *testing.T, p string) {
			buffer(t, p, 200)
			fi, _ := os.Stat(p)
			os.Truncate(p, fi.Size()-1000)
		}, "not a whole number"},
		{"cut at a page boundary", func(t *testing.T, p string) {
			buffer(t, p, 200)
			fi, _ := os.Stat(p)
			os.Truncate(p, fi.Size()-4*4096)
		}, "truncated"},
		{"damaged pages in the middle", func(t *testing.T, p string) {
			buffer(t, p, 3000)
			damage(t, p, 200, 4)
		}, "damaged"},
		{"a -wal without its database", func(t *testing.T, p string) {
			os.WriteFile(p+"-wal", []byte("x"), 0o644)
		}, "without its database"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "events.db")
			tc.make(t, path)
			before := dirState(t, dir)
			_, err := store.Open(context.Background(), store.Options{Path: path})
			if err == nil || !errors.Is(err, store.ErrRefusedFile) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want a refusal naming %s and saying %q", err, path, tc.want)
			}
			if after := dirState(t, dir); after != before {
				t.Errorf("the refusal changed the directory:\nbefore:\n%s\nafter:\n%s", before, after)
			}
		})
	}
}

// TestOpenRefusesWhatIsNotAFilePath: on 4cb3049 -db :memory: started and
// acknowledged events it then lost.
func TestOpenRefusesWhatIsNotAFilePath(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(t.TempDir(), "fifo.db")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "link.db")
	os.Symlink("/dev/null", link)
	for _, p := range []string{fifo, link, "", ":memory:", "file:" + filepath.Join(dir, "x.db"), "FILE:x.db", "file::memory:?cache=shared", dir, "/dev/null", filepath.Join(dir, "missing", "x.db")} {
		s, err := store.Open(context.Background(), store.Options{Path: p})
		if err == nil {
			s.Close()
			t.Errorf("store.Open(%q) succeeded", p)
		} else if !errors.Is(err, store.ErrRefusedFile) {
			t.Errorf("store.Open(%q): %v, want a refusal", p, err)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("files created: %v", ents)
	}
	for _, p := range []string{":memory:", "FILE:x.db"} {
		if _, err := os.Stat(p); err == nil {
			os.Remove(p)
			t.Errorf("%s was created in the working directory", p)
		}
	}
}

// TestOpenRefusesAFileItCannotWrite: on 4cb3049 a read-only file let the
// collector start, and every POST then got a 500. As root, permissions do
// not stop writes: a read-only mount does.
func TestOpenRefusesAFileItCannotWrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "events.db")
	if os.Geteuid() == 0 {
		if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", dir).CombinedOutput(); err != nil {
			t.Skipf("cannot mount a tmpfs: %v %s", err, out)
		}
		t.Cleanup(func() { exec.Command("umount", dir).Run() })
		buffer(t, path, 10)
		if out, err := exec.Command("mount", "-o", "remount,ro", dir).CombinedOutput(); err != nil {
			t.Skipf("cannot remount read-only: %v %s", err, out)
		}
	} else {
		buffer(t, path, 10)
		os.Chmod(path, 0o444)
		os.Chmod(dir, 0o555)
		t.Cleanup(func() { os.Chmod(dir, 0o755) })
	}
	before := dirState(t, dir)
	_, err := store.Open(context.Background(), store.Options{Path: path})
	if err == nil || !errors.Is(err, store.ErrRefusedFile) || !strings.Contains(err.Error(), "not writable") {
		t.Fatalf("err = %v, want a refusal: not writable", err)
	}
	if dirState(t, dir) != before {
		t.Error("the refusal changed the directory")
	}
}

// TestOpenTakesWhatIsOurs: the checks pass every file that is a buffer: a
// new path, an empty file, an empty database, a clean buffer (also with the
// optional device index), and one whose last writer was killed (its WAL not
// folded back), with every event it held.
func TestOpenTakesWhatIsOurs(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		make   func(t *testing.T, path string)
		events int
	}{
		{"new path", func(*testing.T, string) {}, 0},
		{"empty file", func(t *testing.T, p string) { os.WriteFile(p, nil, 0o644) }, 0},
		{"empty database", func(t *testing.T, p string) { rawSQLite(t, p, `PRAGMA user_version = 0`, `VACUUM`) }, 0},
		{"clean buffer", func(t *testing.T, p string) { buffer(t, p, 10) }, 10},
		{"buffer with the device index", func(t *testing.T, p string) {
			s, _ := store.Open(ctx, store.Options{Path: p, Indexed: true})
			s.Insert(ctx, storetest.Events("d", 3))
			s.Close()
		}, 3},
		{"buffer whose writer died", func(t *testing.T, p string) {
			s, _ := store.Open(ctx, store.Options{Path: p})
			s.Insert(ctx, storetest.Events("d", 7))
			// Copy the file and its WAL as a crash leaves them: unfolded.
			for _, suffix := range []string{"", "-wal"} {
				b, _ := os.ReadFile(p + suffix)
				os.WriteFile(p+".crash"+suffix, b, 0o644)
			}
			s.Close()
			for _, suffix := range []string{"", "-wal"} {
				os.Rename(p+".crash"+suffix, p+suffix)
			}
		}, 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "events.db")
			tc.make(t, path)
			s, err := store.Open(ctx, store.Options{Path: path})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			var n int
			s.DB().QueryRow(`SELECT count(*) FROM events`).Scan(&n)
			if n != tc.events {
				t.Errorf("events = %d, want %d", n, tc.events)
			}
			if _, err := s.Insert(ctx, storetest.Events("e", 1)); err != nil {
				t.Errorf("insert: %v", err)
			}
		})
	}
}

// TestBackgroundCheckStopsIngestOnDamage: a file too large to check at start
// opens, and the background check then finds the damage in its shipped
// history: Insert fails with ErrDamaged (the server answers 503) and
// Integrity says why. Open reads the backlog's rows to count them, so
// damage there refuses the file at once.
func TestBackgroundCheckStopsIngestOnDamage(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "events.db")
	buffer(t, path, 3000)
	shipOldest(t, path, 2500)
	inBacklog := filepath.Join(t.TempDir(), "events.db")
	copyFile(t, path, inBacklog)
	damage(t, path, 200, 4)
	// The last pages hold the newest events, the backlog.
	fi, err := os.Stat(inBacklog)
	if err != nil {
		t.Fatal(err)
	}
	damage(t, inBacklog, int(fi.Size()/4096)-20, 4)
	if s, err := store.Open(ctx, store.Options{Path: inBacklog, StartCheckBytes: -1}); err == nil {
		s.Close()
		t.Errorf("open a file damaged in its backlog: no error")
	} else if !strings.Contains(err.Error(), "count backlog") {
		t.Errorf("open a file damaged in its backlog: %v, want the backlog count's failure", err)
	}

	s, err := store.Open(ctx, store.Options{Path: path, StartCheckBytes: -1})
	if err != nil {
		t.Fatalf("open with the check in the background: %v", err)
	}
	defer s.Close()
	deadline := time.Now().Add(30 * time.Second)
	for s.Integrity().State == "checking" && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if st := s.Integrity(); !st.Damaged() || st.Findings == "" {
		t.Fatalf("integrity = %+v, want damaged", st)
	}
	if _, err := s.Insert(ctx, storetest.Events("d", 1)); !errors.Is(err, collector.ErrDamaged) {
		t.Errorf("insert into a damaged buffer: %v, want ErrDamaged", err)
	}

	// A sound file passes the same check.
	sound := filepath.Join(t.TempDir(), "events.db")
	buffer(t, sound, 100)
	s2, err := store.Open(ctx, store.Options{Path: sound, StartCheckBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	for s2.Integrity().State == "checking" && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if st := s2.Integrity(); st.State != "ok" {
		t.Errorf("sound file: integrity = %+v", st)
	}
}

// hotJournal leaves at path what a power cut leaves in the middle of a
// rollback-journal transaction: the database file already holds some of the
// transaction's pages and path-journal holds the originals. It is made by
// copying both files while a writer that spills its cache holds the
// transaction open.
func hotJournal(t *testing.T, path string, setup, interrupted []string) {
	t.Helper()
	work := filepath.Join(t.TempDir(), "live.db")
	rawSQLite(t, work, append([]string{`PRAGMA journal_mode = DELETE`}, setup...)...)
	db, err := sql.Open(store.SQLite.Driver, work)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, s := range append([]string{`PRAGMA cache_size = 1`, `BEGIN`}, interrupted...) {
		if _, err := conn.ExecContext(context.Background(), s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	for _, suffix := range []string{"", "-journal"} {
		data, err := os.ReadFile(work + suffix)
		if err != nil {
			t.Fatalf("the interrupted transaction left no %s: %v", work+suffix, err)
		}
		if err := os.WriteFile(path+suffix, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	conn.ExecContext(context.Background(), `ROLLBACK`)
}

// A power cut during the first start, while SQLite turned a new file into a
// WAL database through its rollback journal, leaves a hot journal. SQLite
// rolls it back at the next open; the start-up checks must not refuse the
// file for it (read-only, they cannot roll it back) and leave the box
// unable to start until someone intervenes.
func TestOpenRollsBackAHotJournal(t *testing.T) {
	fill := `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 2000)
		INSERT INTO scratch SELECT i, randomblob(500) FROM n`
	for _, tc := range []struct {
		name               string
		setup, interrupted []string
		want               string // "" = opens; else the refusal names this
	}{
		// The first start's own transaction: nothing committed before it.
		{name: "empty", interrupted: []string{`CREATE TABLE scratch(i, b)`, fill}},
		// A foreign database with a hot journal is still refused for what it is.
		{name: "foreign", setup: []string{`CREATE TABLE foo(x)`}, interrupted: []string{`CREATE TABLE scratch(i, b)`, fill}, want: "events.db: not a collector buffer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "events.db")
			hotJournal(t, path, tc.setup, tc.interrupted)
			s, err := store.Open(context.Background(), store.Options{Path: path})
			if tc.want != "" {
				if !errors.Is(err, store.ErrRefusedFile) || !strings.Contains(err.Error(), tc.want) {
					if s != nil {
						s.Close()
					}
					t.Fatalf("Open = %v, want a refusal naming %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open refused a file SQLite rolls back: %v", err)
			}
			defer s.Close()
			ids, err := s.Insert(context.Background(), storetest.Events("d", 1))
			if err != nil || len(ids) != 1 {
				t.Fatalf("Insert after the roll-back: %v %v", ids, err)
			}
			var scratch int
			s.DB().QueryRow(`SELECT count(*) FROM sqlite_master WHERE name = 'scratch'`).Scan(&scratch)
			if scratch != 0 {
				t.Error("the interrupted transaction's table survived: the journal was not rolled back")
			}
		})
	}
}

// A power cut in the middle of a checkpoint can leave part of a page past
// the end of the file, with the WAL still holding every frame: SQLite
// redoes the checkpoint, so the file is the buffer as acknowledged, not
// damage. (The powercut experiment met it: a restart refused the file.)
func TestOpenTakesACheckpointCutShort(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "events.db")
	s := storetest.MustOpen(t, store.Options{Path: path})
	ids := storetest.MustInsert(t, s, storetest.Events("d", 300))
	// The files as a crash leaves them: the WAL not checkpointed (the
	// store stays open while they are copied), and a torn page past the end.
	crash := filepath.Join(t.TempDir(), "events.db")
	for _, suffix := range []string{"", "-wal"} {
		b, err := os.ReadFile(path + suffix)
		if err != nil {
			t.Fatal(err)
		}
		if suffix == "" {
			b = append(b, bytes.Repeat([]byte{0xab}, 1536)...) // three sectors of a page
		}
		if err := os.WriteFile(crash+suffix, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s2 := storetest.MustOpen(t, store.Options{Path: crash})
	if got := s2.Backlog(); got != int64(len(ids)) {
		t.Fatalf("backlog %d after the restart, want %d", got, len(ids))
	}
	var check string
	if err := s2.DB().QueryRow(`PRAGMA integrity_check`).Scan(&check); err != nil || check != "ok" {
		t.Fatalf("integrity_check: %q %v", check, err)
	}
}
