package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"modernc.org/libc"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// This file is the read-only way into a buffer file: the connection the
// operator's diagnostics (collector query, stats, check, mcp) and the
// start-up checks (preflight.go) use. It cannot change the file, whatever
// SQL it is handed, and the engine is what says so, not a parse of the SQL:
//
//   - the file is opened read-only (mode=ro) with query_only on, so the
//     engine refuses to write it;
//   - an authorizer allows only what reads: SELECT, reading columns,
//     recursive CTEs, functions other than those that load code, and a list
//     of pragmas that report. ATTACH, DETACH, every write and DDL statement,
//     transactions and any other pragma (query_only=0 among them) are
//     refused while the statement compiles, before it runs;
//   - at most 0 databases may be attached: VACUUM INTO attaches its output
//     file behind the scenes, and is refused before any file is created;
//   - untrusted SQL runs one statement per call, split by SQLite's own
//     tokenizer (sqlite3_incomplete), so a script cannot run a second
//     statement after a first one changed the connection.

// ErrRefused: the read-only connection refused a statement.
var ErrRefused = errors.New("read-only")

// MaxUntrustedSQL bounds the SQL Untrusted accepts, in bytes.
// (Splitting is quadratic in the worst case, a ';' in a long string.)
const MaxUntrustedSQL = 16 << 10

// ReadOnly is one read-only connection to a buffer file. Its methods are
// safe for concurrent use; calls take turns.
type ReadOnly struct {
	db   *sql.DB
	conn *sql.Conn

	mu     sync.Mutex             // one call at a time, so denied is this call's
	denied atomic.Pointer[string] // what the authorizer refused last, for the error
}

// OpenReadOnly opens the existing file at path read-only. It never creates
// the file. (A reader of a WAL file creates its -shm index, and a -wal if
// there is none, as any SQLite reader does.)
func OpenReadOnly(ctx context.Context, path string) (*ReadOnly, error) {
	return openReadOnly(ctx, path, false)
}

// openReadOnly with immutable tells SQLite that nothing else writes the
// file: it then reads the file alone, takes no locks and creates nothing
// beside it, not even a WAL index. Only for a file with no -wal beside it.
func openReadOnly(ctx context.Context, path string, immutable bool) (*ReadOnly, error) {
	dsn := SQLite.DSN(path, ConnConfig{BusyTimeout: 5 * time.Second, ReadOnly: true})
	if immutable {
		dsn += "&immutable=1"
	}
	db, err := sql.Open(SQLite.Driver, dsn)
	if err != nil {
		return nil, err
	}
	// One connection, kept for good: the guards below are set on it, and no
	// other connection exists that could lack them.
	db.SetMaxOpenConns(1)
	conn, err := db.Conn(ctx)
	if err != nil {
		db.Close()
		return nil, err
	}
	r := &ReadOnly{db: db, conn: conn}
	if err := r.guard(); err != nil {
		conn.Close()
		db.Close()
		return nil, err
	}
	return r, nil
}

func (r *ReadOnly) guard() error {
	if _, err := sqlite.Limit(r.conn, sqlite3.SQLITE_LIMIT_ATTACHED, 0); err != nil {
		return fmt.Errorf("limit attached databases: %w", err)
	}
	return r.conn.Raw(func(dc any) error {
		reg, ok := dc.(sqlite.AuthorizerRegisterer)
		if !ok {
			return fmt.Errorf("the driver's connection (%T) takes no authorizer", dc)
		}
		return reg.RegisterAuthorizer(r.authorize)
	})
}

// Pragmas the authorizer lets through. reportPragmas only report when given
// no value; their setters either do nothing to an existing file (page_size)
// or write it, which the read-only file refuses. SQLite hands the
// authorizer the same empty string for "no value" and for an empty SQL
// string value, so a pragma that an empty value would change
// (query_only, writable_schema, journal_mode) is not on the list at all.
// namePragmas take a table or index name (or a count) and report whatever
// it is.
var (
	reportPragmas = map[string]bool{
		"page_size": true, "page_count": true, "freelist_count": true, "user_version": true,
		"schema_version": true, "application_id": true, "data_version": true, "encoding": true,
		"compile_options": true, "database_list": true, "collation_list": true,
		"function_list": true, "module_list": true, "pragma_list": true,
	}
	namePragmas = map[string]bool{
		"table_info": true, "table_xinfo": true, "table_list": true, "index_info": true,
		"index_xinfo": true, "index_list": true, "foreign_key_list": true,
		"foreign_key_check": true, "integrity_check": true, "quick_check": true,
	}
	// codeFunctions load code or change the engine: never from diagnostics.
	codeFunctions = map[string]bool{"load_extension": true, "fts3_tokenizer": true}
)

// authorize is the connection's authorizer. SQLite calls it while a
// statement compiles; a denial fails the compile, so nothing runs.
func (r *ReadOnly) authorize(action sqlite.AuthorizerActionCode, arg1, arg2, _, _ string) sqlite.AuthorizerReturnCode {
	var denied string
	switch action {
	case sqlite.AuthSelect, sqlite.AuthRead, sqlite.AuthRecursive:
		return sqlite.AuthorizerOK
	case sqlite.AuthFunction:
		if !codeFunctions[strings.ToLower(arg2)] {
			return sqlite.AuthorizerOK
		}
		denied = "function " + arg2
	case sqlite.AuthPragma:
		name := strings.ToLower(arg1)
		if namePragmas[name] || (reportPragmas[name] && arg2 == "") {
			return sqlite.AuthorizerOK
		}
		denied = "PRAGMA " + arg1
		if arg2 != "" {
			denied += " = " + arg2
		}
	case sqlite.AuthAttach:
		denied = "ATTACH"
	case sqlite.AuthDetach:
		denied = "DETACH"
	case sqlite.AuthTransaction, sqlite.AuthSavepoint:
		denied = "a transaction"
	default:
		denied = fmt.Sprintf("a write or schema change (authorizer action %d on %q)", action, arg1)
	}
	r.denied.Store(&denied)
	return sqlite.AuthorizerDeny
}

// Query runs our own SQL (no untrusted text) on the connection.
func (r *ReadOnly) Query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rows, err := r.conn.QueryContext(ctx, query, args...)
	return rows, r.refused(err)
}

// QueryRow runs our own single-row SQL with args and scans it into dest.
func (r *ReadOnly) QueryRow(ctx context.Context, query string, args []any, dest ...any) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.refused(r.conn.QueryRowContext(ctx, query, args...).Scan(dest...))
}

// Untrusted runs SQL someone else wrote: exactly one statement, which the
// engine must find read-only. A refusal wraps ErrRefused.
func (r *ReadOnly) Untrusted(ctx context.Context, query string) (*sql.Rows, error) {
	stmt, err := oneStatement(query)
	if err != nil {
		return nil, err
	}
	return r.Query(ctx, stmt)
}

// refused says what the guards refused, when they did. Call with mu held.
func (r *ReadOnly) refused(err error) error {
	var denied string
	if p := r.denied.Swap(nil); p != nil {
		denied = *p
	}
	if err == nil {
		return nil
	}
	if denied != "" {
		// The authorizer's denials surface as SQLITE_AUTH or, for a function,
		// as a plain error that says "not authorized".
		return fmt.Errorf("%w: %s is not allowed on a read-only connection: %v", ErrRefused, denied, err)
	}
	if SQLite.ReadOnly(err) {
		return fmt.Errorf("%w: %v", ErrRefused, err)
	}
	if strings.Contains(err.Error(), "too many attached databases") {
		return fmt.Errorf("%w: nothing may be attached (VACUUM INTO and ATTACH create files): %v", ErrRefused, err)
	}
	return err
}

// Close releases the connection.
func (r *ReadOnly) Close() error {
	return errors.Join(r.conn.Close(), r.db.Close())
}

// oneStatement returns the one SQL statement in query, or an error when
// there is none or more than one. The statements are found by SQLite's own
// tokenizer: quotes, comments and trigger bodies are its to judge.
func oneStatement(query string) (string, error) {
	if len(query) > MaxUntrustedSQL {
		return "", fmt.Errorf("SQL is %d bytes, over the %d-byte limit", len(query), MaxUntrustedSQL)
	}
	if strings.IndexByte(query, 0) >= 0 {
		return "", errors.New("SQL holds a NUL byte")
	}
	tls := libc.NewTLS()
	defer tls.Close()
	// incomplete reports how SQLite's tokenizer ends s: SQLITE_EMPTY when s
	// holds only white space and comments, 0 when it ends a statement with
	// its ';', something else when a statement is left unfinished. A
	// newline ends a "--" comment: the emptiness checks add one.
	incomplete := func(s string) (int64, error) {
		p, err := libc.CString(s)
		if err != nil {
			return 0, err
		}
		defer libc.Xfree(tls, p)
		return sqlite3.Xsqlite3_incomplete(tls, p), nil
	}
	var stmts []string
	start := 0
	for i := 0; i < len(query) && len(stmts) < 2; i++ {
		if query[i] != ';' {
			continue
		}
		rc, err := incomplete(query[start : i+1])
		if err != nil {
			return "", err
		}
		if rc != 0 {
			continue // the ';' is inside a string, a comment or a trigger body
		}
		if rc, err = incomplete(query[start:i] + "\n"); err != nil {
			return "", err
		} else if rc != sqlite3.SQLITE_EMPTY {
			stmts = append(stmts, query[start:i+1])
		}
		start = i + 1
	}
	if len(stmts) < 2 {
		rc, err := incomplete(query[start:] + "\n")
		if err != nil {
			return "", err
		}
		if rc != sqlite3.SQLITE_EMPTY {
			stmts = append(stmts, query[start:])
		}
	}
	switch len(stmts) {
	case 0:
		return "", errors.New("no SQL statement")
	case 1:
		return stmts[0], nil
	}
	return "", fmt.Errorf("%w: one SQL statement per call, got more (the second starts %q)", ErrRefused, clip(strings.TrimSpace(stmts[1]), 40))
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
