package store

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Engine is the seam between the store and a database/sql engine: the few
// things that differ from one engine to the next. Everything else in this
// package is plain database/sql and portable SQL (upserts, partial indexes,
// RETURNING-free inserts, json_each), so another engine plugs in here.
type Engine struct {
	// Driver is the database/sql driver name.
	Driver string
	// DSN builds the data source name that opens path with c applied to
	// every pooled connection.
	DSN func(path string, c ConnConfig) string
	// classify reports what kind of failure err is, so the store can retry
	// busy and conflict errors and map the rest to collector sentinels.
	classify func(err error) errorClass
}

// ReadOnly reports whether err is the engine refusing a write because the
// connection or the file is read-only (as diagnostics open the buffer).
func (e *Engine) ReadOnly(err error) bool { return e.classify(err) == classReadOnly }

// ConnConfig is what every connection of the pool is opened with.
type ConnConfig struct {
	BusyTimeout time.Duration // how long the engine itself waits for a lock
	Synchronous string        // FULL (durable) or NORMAL (measurement only)
	ReadOnly    bool          // open read-only and refuse writes
	WALLimit    int64         // bytes the WAL is truncated back to when it starts over (0: no limit)
}

// errorClass is an engine error's category.
type errorClass int

const (
	classOther      errorClass = iota
	classBusy                  // lock held elsewhere or snapshot conflict: retry the transaction
	classFull                  // no room on the filesystem (or the engine's size cap)
	classNotDB                 // the file is not a database, or is corrupt
	classReadOnly              // the connection or file refuses writes
	classConstraint            // a constraint refused this statement; the transaction is intact
	classIO                    // an I/O error (a failed read, write or fsync): what is on disk is unknown
)

// SQLite is the default engine: SQLite through modernc.org/sqlite, pure Go,
// so the collector builds with CGO_ENABLED=0 and cross-compiles.
//
// WAL lets the uploader and diagnostic readers share the file with the
// writer; synchronous=FULL fsyncs the WAL on every commit, which is what a
// durable acknowledgement needs. Transactions begin IMMEDIATE so a writer
// takes the write lock up front: a conflict shows up as SQLITE_BUSY at BEGIN,
// where retrying is always safe, never halfway through a transaction.
var SQLite = Engine{
	Driver: "sqlite",
	DSN: func(path string, c ConnConfig) string {
		q := url.Values{}
		q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", c.BusyTimeout.Milliseconds()))
		q.Set("_txlock", "immediate")
		if c.ReadOnly {
			q.Set("mode", "ro")
			q.Add("_pragma", "query_only(1)")
		} else {
			q.Add("_pragma", "journal_mode(WAL)")
			q.Add("_pragma", "synchronous("+c.Synchronous+")")
			if c.WALLimit > 0 {
				q.Add("_pragma", fmt.Sprintf("journal_size_limit(%d)", c.WALLimit))
				// The engine's own checkpoint after a commit, in pages (of 4 KiB,
				// the default): SQLite's 1,000, or fewer under a smaller bound.
				q.Add("_pragma", fmt.Sprintf("wal_autocheckpoint(%d)", max(16, min(1000, c.WALLimit/4096))))
			}
		}
		return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
	},
	classify: func(err error) errorClass {
		var e *sqlite.Error
		if !errors.As(err, &e) {
			return classOther
		}
		switch e.Code() & 0xff { // primary result code; extended codes carry detail only
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
			return classBusy
		case sqlite3.SQLITE_FULL:
			return classFull
		case sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT:
			return classNotDB
		case sqlite3.SQLITE_READONLY:
			return classReadOnly
		case sqlite3.SQLITE_CONSTRAINT:
			return classConstraint
		case sqlite3.SQLITE_IOERR:
			return classIO
		}
		return classOther
	},
}
