package store

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// This file holds the start-up checks: Open runs preflight before anything
// opens the file read-write, because that open changes the file (it switches
// a rollback-journal file to WAL, and migrate adds tables). Every check runs
// on os calls and a read-only connection (readonly.go), so a file that is
// refused is left byte for byte as it was.
//
// What is refused, each with the file's name and the reason: a path that is
// not a file path (empty, ":memory:", a "file:" URI), something that is not a
// regular file, a file or directory this process cannot write, a file that
// is not SQLite, a damaged file, a foreign database (any schema that is not
// this collector's at some version: "CREATE TABLE foo(x)", or a foreign
// events table), and a schema newer than this build. A missing or empty file
// is created as before. A file with a rollback journal waiting to be
// replayed is judged as SQLite will see it: on a rolled-back copy.
//
// Damage: PRAGMA quick_check reads every page, and costs ~94 ms per MiB with
// the file cold in the page cache (~8.5 ms per MiB warm) on the 2-core box
// it was measured on (shared; README "Start-up checks"): 1.5 minutes for a
// 1 GiB buffer. So a file up to StartCheckBytes is checked in full before
// start; a larger one gets the cheap checks (header, size, schema) at start
// and the full check in the background (integrity.go), which stops ingest
// and turns /healthz 503 if it finds damage.

// DefaultStartCheckBytes: files up to this size get quick_check at start
// (~1.5 s cold on the measuring box).
const DefaultStartCheckBytes = 16 << 20

// ErrRefusedFile: preflight refused the database file.
var ErrRefusedFile = errors.New("refusing the database file")

// sqliteMagic opens every SQLite database file.
const sqliteMagic = "SQLite format 3\x00"

// preflightResult is what Open needs to know after the checks.
type preflightResult struct {
	fresh   bool // no database yet: Open creates one
	checked bool // quick_check ran and passed (no background check needed)
}

func refuse(path, format string, args ...any) error {
	return fmt.Errorf("%w %s: %s", ErrRefusedFile, path, fmt.Sprintf(format, args...))
}

// preflight checks the file at path without changing it.
func preflight(ctx context.Context, path string, startCheckBytes int64) (preflightResult, error) {
	if err := checkPath(path); err != nil {
		return preflightResult{}, err
	}
	_, walErr := os.Stat(path + "-wal")
	hasWAL := walErr == nil
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if hasWAL {
			return preflightResult{}, refuse(path, "%s-wal exists without its database: move it away or restore the database", path)
		}
		return preflightResult{fresh: true}, nil
	case err != nil:
		return preflightResult{}, refuse(path, "%v", err)
	case !fi.Mode().IsRegular():
		return preflightResult{}, refuse(path, "not a regular file (%s)", fi.Mode().Type())
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if _, err := os.Stat(p); err == nil {
			if err := writable(p); err != nil {
				return preflightResult{}, refuse(path, "%s is not writable: %v", p, err)
			}
		}
	}
	if j, err := os.Stat(path + "-journal"); err == nil && j.Size() > 0 {
		// A rollback journal waits to be replayed (a power cut in the middle
		// of the first start's switch to WAL leaves one). Read-only, the
		// checks cannot roll it back, and the file without it is not what
		// SQLite will see: check a rolled-back copy instead.
		return preflightCopy(ctx, path, fi.Size()+j.Size(), startCheckBytes)
	}
	if fi.Size() == 0 && !hasWAL {
		return preflightResult{fresh: true}, nil // SQLite makes an empty file a database
	}
	if err := checkHeader(path, fi.Size(), hasWAL); err != nil {
		return preflightResult{}, refuse(path, "%v", err)
	}

	// With nothing beside it (no WAL, no WAL index, no rollback journal to
	// replay), the file alone is the database: it is read as immutable, so
	// that even a file in WAL mode gets no -wal and -shm made by the checks.
	alone := !hasWAL
	for _, suffix := range []string{"-shm", "-journal"} {
		if _, err := os.Stat(path + suffix); err == nil {
			alone = false
		}
	}
	r, err := openReadOnly(ctx, path, alone)
	if err != nil {
		return preflightResult{}, refuse(path, "cannot be read: %v", err)
	}
	defer r.Close()
	fresh, err := checkSchema(ctx, r)
	if err != nil {
		return preflightResult{}, refuse(path, "%v", err)
	}
	if fresh || startCheckBytes < 0 || fi.Size() > startCheckBytes {
		return preflightResult{fresh: fresh}, nil
	}
	if findings, err := quickCheck(ctx, r); err != nil {
		return preflightResult{}, refuse(path, "damaged (%v): see `collector check`; restore it from a copy, or move it away to start a new buffer", err)
	} else if findings != "" {
		return preflightResult{}, refuse(path, "damaged: %s; see `collector check`; restore it from a copy, or move it away to start a new buffer", findings)
	}
	return preflightResult{checked: true}, nil
}

// checkPath refuses what is not a path to a file in a writable directory.
func checkPath(path string) error {
	switch {
	case path == "":
		return refuse(`""`, "no database path")
	case path == ":memory:" || strings.HasPrefix(path, ":"):
		return refuse(path, "an in-memory database loses every acknowledged event: give a file path")
	case len(path) >= 5 && strings.EqualFold(path[:5], "file:"):
		return refuse(path, "a URI, not a file path: give the path alone")
	case strings.ContainsRune(path, 0):
		return refuse(path, "the path holds a NUL byte")
	}
	dir := filepath.Dir(path)
	if fi, err := os.Stat(dir); err != nil {
		return refuse(path, "its directory: %v", err)
	} else if !fi.IsDir() {
		return refuse(path, "%s is not a directory", dir)
	}
	// The WAL and its index live beside the file, so the directory must be
	// writable as well as the file.
	if err := writable(dir); err != nil {
		return refuse(path, "directory %s is not writable (the WAL lives beside the file): %v", dir, err)
	}
	return nil
}

// maxReplayCopyBytes bounds what preflightCopy copies. Our buffers are in
// WAL mode from their first commit, so only a tiny file interrupted in its
// first start, or a foreign database, carries a rollback journal.
const maxReplayCopyBytes = 64 << 20

// preflightCopy runs the checks on a copy of path and its rollback journal,
// rolled back by SQLite, the way the read-write open will find the file.
func preflightCopy(ctx context.Context, path string, size, startCheckBytes int64) (preflightResult, error) {
	if size > maxReplayCopyBytes {
		return preflightResult{}, refuse(path, "a rollback journal (%s-journal) waits to be replayed, and the file is too large (%d bytes) to check on a copy: roll it back with `sqlite3 %s 'PRAGMA user_version'` and start again", path, size, path)
	}
	dir, err := os.MkdirTemp("", "collector-preflight-")
	if err != nil {
		return preflightResult{}, refuse(path, "copy it to replay its rollback journal: %v", err)
	}
	defer os.RemoveAll(dir)
	cp := filepath.Join(dir, "copy.db")
	for _, suffix := range []string{"", "-journal"} {
		if err := copyFile(path+suffix, cp+suffix); err != nil {
			return preflightResult{}, refuse(path, "copy it to replay its rollback journal: %v", err)
		}
	}
	db, err := sql.Open(SQLite.Driver, cp)
	if err == nil {
		_, err = db.ExecContext(ctx, `SELECT count(*) FROM sqlite_master`) // the first read rolls back
		db.Close()
	}
	if err != nil {
		return preflightResult{}, refuse(path, "its rollback journal cannot be replayed: %v", err)
	}
	r, err := preflight(ctx, cp, startCheckBytes)
	if err != nil {
		// Name the operator's file, not the copy.
		msg := strings.TrimPrefix(err.Error(), fmt.Sprintf("%v %s: ", ErrRefusedFile, cp))
		return preflightResult{}, refuse(path, "%s", strings.ReplaceAll(msg, cp, path))
	}
	return r, nil
}

func copyFile(from, to string) error {
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return err
	}
	return dst.Close()
}

// checkHeader reads the 100-byte database header: the magic string, a page
// size SQLite can have, and a size that is a whole number of pages and holds
// the pages the header claims.
func checkHeader(path string, size int64, hasWAL bool) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	h := make([]byte, 100)
	if n, err := io.ReadFull(f, h); err != nil {
		if n < len(sqliteMagic) || string(h[:len(sqliteMagic)]) != sqliteMagic {
			return errors.New("not a SQLite database")
		}
		return fmt.Errorf("damaged: %d bytes, shorter than a database header", n)
	}
	if string(h[:len(sqliteMagic)]) != sqliteMagic {
		return errors.New("not a SQLite database (no SQLite header)")
	}
	pageSize := int64(binary.BigEndian.Uint16(h[16:18]))
	if pageSize == 1 {
		pageSize = 65536
	}
	if pageSize < 512 || pageSize&(pageSize-1) != 0 {
		return fmt.Errorf("damaged: page size %d in the header", pageSize)
	}
	// A checkpoint cut short by a power cut can leave part of a page past
	// the end: the WAL still holds every frame (it is reset only once the
	// file is fsync'd), so SQLite redoes the checkpoint and trims the file.
	// Without a WAL a part page is damage.
	if size%pageSize != 0 && !hasWAL {
		return fmt.Errorf("damaged: %d bytes is not a whole number of %d-byte pages", size, pageSize)
	}
	// The header's page count is valid when the change counter matches
	// version-valid-for; a WAL may hold pages the file does not have yet.
	pages := int64(binary.BigEndian.Uint32(h[28:32]))
	if !hasWAL && pages > 0 && binary.BigEndian.Uint32(h[24:28]) == binary.BigEndian.Uint32(h[92:96]) && pages*pageSize > size {
		return fmt.Errorf("damaged: the header counts %d pages, the file holds %d (truncated?)", pages, size/pageSize)
	}
	return nil
}

// checkSchema compares the file's schema with this collector's at the
// file's version. It reports fresh when the file is an empty database.
func checkSchema(ctx context.Context, r *ReadOnly) (fresh bool, err error) {
	var version int
	if err := r.QueryRow(ctx, `PRAGMA user_version`, nil, &version); err != nil {
		return false, fmt.Errorf("not a usable SQLite database: %w", err)
	}
	if version > schemaVersion {
		return false, fmt.Errorf("schema version %d is newer than this collector supports (%d): run the newer collector", version, schemaVersion)
	}
	if version < 0 {
		return false, fmt.Errorf("schema version %d: not a collector buffer", version)
	}
	got, err := schemaObjects(ctx, func(q string) (*sql.Rows, error) { return r.Query(ctx, q) })
	if err != nil {
		return false, fmt.Errorf("not a usable SQLite database: %w", err)
	}
	if version == 0 && len(got) == 0 {
		return true, nil
	}
	want, err := expectedSchema(ctx, version)
	if err != nil {
		return false, err
	}
	var extra, differs []string
	for name, sql := range got {
		w, ok := want[name]
		switch {
		case ok && w != sql:
			differs = append(differs, name)
		case !ok && !optionalObject(name, sql):
			extra = append(extra, name)
		}
	}
	var missing []string
	for name := range want {
		if _, ok := got[name]; !ok {
			missing = append(missing, name)
		}
	}
	slices.Sort(extra)
	slices.Sort(differs)
	slices.Sort(missing)
	switch {
	case version == 0:
		return false, fmt.Errorf("not a collector buffer: a database with other tables (%s)", strings.Join(first(extra, 5), ", "))
	case len(differs) > 0:
		return false, fmt.Errorf("not a collector buffer: %s differs from this collector's schema version %d", strings.Join(first(differs, 5), ", "), version)
	case len(missing) > 0:
		return false, fmt.Errorf("not a collector buffer: %s missing from schema version %d", strings.Join(first(missing, 5), ", "), version)
	case len(extra) > 0:
		return false, fmt.Errorf("not a collector buffer: it holds objects this collector never made (%s)", strings.Join(first(extra, 5), ", "))
	}
	return false, nil
}

func first(s []string, n int) []string { return s[:min(n, len(s))] }

// optionalObject: what a buffer may hold beyond its migrations: the
// -indexed device index, and the statistics ANALYZE leaves.
func optionalObject(name, sql string) bool {
	return name == "index events_device" && sql == "CREATE INDEX events_device ON events(device_id)" ||
		strings.HasPrefix(name, "table sqlite_stat")
}

// schemaObjects lists a database's schema as "type name" → SQL.
func schemaObjects(ctx context.Context, query func(string) (*sql.Rows, error)) (map[string]string, error) {
	rows, err := query(`SELECT type, name, coalesce(sql, '') FROM sqlite_master`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	objs := map[string]string{}
	for rows.Next() {
		var typ, name, sql string
		if err := rows.Scan(&typ, &name, &sql); err != nil {
			return nil, err
		}
		objs[typ+" "+name] = sql
	}
	return objs, rows.Err()
}

// expectedSchema is this collector's schema at version v, as SQLite stores
// it: the migrations up to v run in a database in memory.
func expectedSchema(ctx context.Context, v int) (map[string]string, error) {
	db, err := sql.Open(SQLite.Driver, ":memory:")
	if err != nil {
		return nil, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	for _, m := range migrations[:v] {
		if _, err := db.ExecContext(ctx, m); err != nil {
			return nil, fmt.Errorf("build the reference schema: %w", err)
		}
	}
	return schemaObjects(ctx, func(q string) (*sql.Rows, error) { return db.QueryContext(ctx, q) })
}

// quickCheck runs PRAGMA quick_check and returns its findings, "" when the
// file is sound. A file too damaged to check fails with the engine's error.
func quickCheck(ctx context.Context, r *ReadOnly) (string, error) {
	rows, err := r.Query(ctx, `PRAGMA quick_check(5)`)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	var found []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return "", err
		}
		if s != "ok" {
			found = append(found, s)
		}
	}
	if err := rows.Err(); err != nil {
		return "", err
	}
	return strings.Join(found, "; "), nil
}
