// Package diag reads a collector's buffer for operators: ad-hoc SQL, a
// summary of its state, and an integrity check. It opens the file through
// store.ReadOnly (the engine refuses every write, ATTACH, and any pragma that
// could undo that; see collector/store/readonly.go) and works on the live
// file while a collector writes to it, since WAL lets readers share it.
package diag

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"edgecollector/collector/store"
)

// DefaultLimit is how many rows Query returns unless told otherwise.
const DefaultLimit = 1000

// DB is a read-only view of a buffer file.
type DB struct {
	path  string
	db    *store.ReadOnly
	limit time.Duration // per call (limit.go)
}

// Open opens path read-only. It never creates the file, nor any other.
func Open(ctx context.Context, path string) (*DB, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("open %s: not a regular file (%s)", path, fi.Mode().Type())
	}
	db, err := store.OpenReadOnly(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	var tables int
	if err := db.QueryRow(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'events'`, nil, &tables); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: not a usable SQLite database: %w", path, err)
	}
	if tables == 0 {
		db.Close()
		return nil, fmt.Errorf("open %s: no events table: not a collector buffer", path)
	}
	return &DB{path: path, db: db, limit: DefaultTimeLimit}, nil
}

// Close releases the file.
func (d *DB) Close() error { return d.db.Close() }

// Result is a query's answer: column names and at most limit rows of
// values (int64, float64, string or nil).
type Result struct {
	Columns   []string `json:"columns"`
	Rows      [][]any  `json:"rows"`
	Truncated bool     `json:"truncated"` // more rows existed than the limit
}

// ErrReadOnly: a statement tried to change the buffer.
var ErrReadOnly = errors.New("read-only: diagnostics never change the buffer")

// Query runs one SQL statement, which the engine must find read-only, and
// returns up to limit rows.
func (d *DB) Query(ctx context.Context, query string, limit int) (*Result, error) {
	ctx, cancel := d.bound(ctx)
	defer cancel()
	res, err := d.query(ctx, query, limit)
	return res, d.limited(ctx, err)
}

func (d *DB) query(ctx context.Context, query string, limit int) (*Result, error) {
	if strings.TrimSpace(query) == "" {
		return nil, errors.New("query: empty SQL")
	}
	if limit <= 0 {
		limit = DefaultLimit
	}
	rows, err := d.db.Untrusted(ctx, query)
	if err != nil {
		return nil, queryError(err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, queryError(err)
	}
	res := &Result{Columns: cols, Rows: [][]any{}}
	for rows.Next() {
		if len(res.Rows) == limit {
			res.Truncated = true
			break
		}
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, queryError(err)
		}
		for i, v := range vals {
			if b, ok := v.([]byte); ok {
				vals[i] = string(b)
			}
			if t, ok := v.(time.Time); ok {
				vals[i] = t.UTC().Format(time.RFC3339Nano)
			}
		}
		res.Rows = append(res.Rows, vals)
	}
	if err := rows.Err(); err != nil {
		return nil, queryError(err)
	}
	return res, nil
}

func queryError(err error) error {
	if errors.Is(err, store.ErrRefused) || store.SQLite.ReadOnly(err) {
		return fmt.Errorf("%w: %v", ErrReadOnly, err)
	}
	return fmt.Errorf("query: %w", err)
}

// Schema returns the buffer's CREATE statements.
func (d *DB) Schema(ctx context.Context) (string, error) {
	ctx, cancel := d.bound(ctx)
	defer cancel()
	s, err := d.schema(ctx)
	return s, d.limited(ctx, err)
}

func (d *DB) schema(ctx context.Context) (string, error) {
	rows, err := d.db.Query(ctx, `SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' ORDER BY type DESC, name`)
	if err != nil {
		return "", fmt.Errorf("schema: %w", err)
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return "", fmt.Errorf("schema: %w", err)
		}
		b.WriteString(s + ";\n")
	}
	return b.String(), rows.Err()
}

// Check runs SQLite's integrity check and returns its findings ("ok" when
// the file is sound).
func (d *DB) Check(ctx context.Context) ([]string, error) {
	ctx, cancel := d.bound(ctx)
	defer cancel()
	found, err := d.check(ctx)
	return found, d.limited(ctx, err)
}

func (d *DB) check(ctx context.Context) ([]string, error) {
	rows, err := d.db.Query(ctx, `PRAGMA integrity_check`)
	if err != nil {
		return nil, fmt.Errorf("integrity check: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, fmt.Errorf("integrity check: %w", err)
		}
		out = append(out, s)
	}
	return out, rows.Err()
}
