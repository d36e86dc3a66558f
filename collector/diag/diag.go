// Package diag reads a collector's buffer for operators: ad-hoc SQL, a
// summary of its state, and an integrity check. It opens the file
// read-only (the engine refuses writes) and works on the live file while a
// collector writes to it, since WAL lets readers share it.
package diag

import (
	"context"
	"database/sql"
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
	path string
	db   *sql.DB
}

// Open opens path read-only. It never creates the file.
func Open(ctx context.Context, path string) (*DB, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	e := store.SQLite
	db, err := sql.Open(e.Driver, e.DSN(path, store.ConnConfig{BusyTimeout: 5 * time.Second, ReadOnly: true}))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	db.SetMaxOpenConns(2)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	var tables int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'events'`).Scan(&tables); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: not a usable SQLite database: %w", path, err)
	}
	if tables == 0 {
		db.Close()
		return nil, fmt.Errorf("open %s: no events table: not a collector buffer", path)
	}
	return &DB{path: path, db: db}, nil
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

// Query runs one read-only SQL statement and returns up to limit rows.
func (d *DB) Query(ctx context.Context, query string, limit int) (*Result, error) {
	if strings.TrimSpace(query) == "" {
		return nil, errors.New("query: empty SQL")
	}
	if limit <= 0 {
		limit = DefaultLimit
	}
	rows, err := d.db.QueryContext(ctx, query)
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
	if store.SQLite.ReadOnly(err) {
		return fmt.Errorf("%w: %v", ErrReadOnly, err)
	}
	return fmt.Errorf("query: %w", err)
}

// Schema returns the buffer's CREATE statements.
func (d *DB) Schema(ctx context.Context) (string, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' ORDER BY type DESC, name`)
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
	rows, err := d.db.QueryContext(ctx, `PRAGMA integrity_check`)
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
