// Package store is the collector's durable buffer: events committed to a
// local SQLite file (WAL, synchronous=FULL) before they are acknowledged,
// a backlog the uploader drains, and the audit trail of its cycles.
//
// How concurrent requests reach the file is the write mode (see Mode):
// write.go is the path every write takes, tx.go the transaction toolkit the
// modes share, and each mode has its file (serialized.go, concurrent.go,
// group.go). backlog.go, audit.go and retention.go are what the uploader
// does with the file; the engine specifics live in engine.go.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"edgecollector/collector"
)

// Mode is how concurrent write requests reach the database.
type Mode string

const (
	// Serialized: one connection under a Go mutex, one transaction per request.
	Serialized Mode = "serialized"
	// Concurrent: each request runs its own transaction on a pooled
	// connection; the engine arbitrates and busy errors are retried.
	Concurrent Mode = "concurrent"
	// Group: group commit. One committer takes whatever requests are queued
	// and commits them in one transaction and one fsync, then acks each.
	Group Mode = "group"
)

// Modes lists the write modes in a stable order.
var Modes = []Mode{Serialized, Concurrent, Group}

// ParseMode returns the Mode named s.
func ParseMode(s string) (Mode, error) {
	for _, m := range Modes {
		if string(m) == s {
			return m, nil
		}
	}
	return "", fmt.Errorf("unknown write mode %q (want serialized, concurrent or group)", s)
}

// DefaultMaxConns is the pool ceiling unless Options says otherwise (the
// collector command shows it as its default).
const DefaultMaxConns = 8

// Defaults for the other Options fields left zero.
const (
	defaultBusyTimeout    = 200 * time.Millisecond
	defaultMaxRetries     = 10
	defaultGroupMaxEvents = 4096
	defaultGroupQueue     = 4096
)

// Options configure Open.
type Options struct {
	Path    string
	Mode    Mode // default Group
	Indexed bool // add an index on events(device_id) for per-device queries

	// FirstID is the id a new buffer file gives its first event; zero
	// means firstEventID's choice. An existing file keeps its own sequence.
	FirstID int64

	MaxConns int // database/sql pool ceiling (serialized, group: plus the writer's)

	// MaxCommitBytes caps a transaction's estimated write set (see RowBytes);
	// 0 means no cap. A write over the cap fails with ErrCommitTooLarge before
	// it commits.
	MaxCommitBytes int

	// BusyTimeout is how long the engine waits for a lock before it reports
	// busy; MaxRetries is how many times the store then retries the whole
	// transaction (with backoff) before it gives up with ErrBusy.
	BusyTimeout time.Duration
	MaxRetries  int

	// GroupMaxEvents bounds one group commit; GroupQueue bounds the requests
	// waiting for the committer.
	GroupMaxEvents int
	GroupQueue     int

	// Synchronous is the engine's sync level: "FULL" (default, durable
	// acknowledgements) or "NORMAL" (only to measure what durability costs).
	Synchronous string

	// MaxWALBytes bounds the WAL in normal operation (wal.go); WatchEvery is
	// how often the keeper checks the files' identity and the WAL's size
	// (keeper.go).
	MaxWALBytes int64
	WatchEvery  time.Duration

	Logger *slog.Logger

	// StartCheckBytes: an existing file up to this size is checked for
	// damage in full before Open returns; a larger one in the background
	// (preflight.go). Negative: always in the background.
	StartCheckBytes int64
}

func (o Options) withDefaults() Options {
	if o.Mode == "" {
		o.Mode = Group
	}
	if o.MaxConns <= 0 {
		o.MaxConns = DefaultMaxConns
	}
	if o.BusyTimeout <= 0 {
		o.BusyTimeout = defaultBusyTimeout
	}
	if o.MaxRetries <= 0 {
		o.MaxRetries = defaultMaxRetries
	}
	if o.GroupMaxEvents <= 0 {
		o.GroupMaxEvents = defaultGroupMaxEvents
	}
	if o.GroupQueue <= 0 {
		o.GroupQueue = defaultGroupQueue
	}
	if o.Synchronous == "" {
		o.Synchronous = "FULL"
	}
	if o.MaxWALBytes <= 0 {
		o.MaxWALBytes = DefaultMaxWALBytes
	}
	if o.WatchEvery <= 0 {
		o.WatchEvery = DefaultWatchEvery
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.StartCheckBytes == 0 {
		o.StartCheckBytes = DefaultStartCheckBytes
	}
	return o
}

// Store is the durable event buffer. Its methods are safe for concurrent use.
type Store struct {
	opts   Options
	engine *Engine
	db     *sql.DB
	w      writer
	lock   *bufferLock // one collector per file (lock.go); released after db closes
	log    *slog.Logger

	guard  guard    // the files' identity (identity.go)
	wal    walState // the WAL's bound (wal.go)
	keeper *keeper  // watches both (keeper.go)

	// insert[i] inserts insertRows[i] events in one statement; a failure
	// undoes that statement only. insertOrRollback[i] is the same insert
	// whose failure undoes the whole transaction, which spares SQLite the
	// statement journal: for transactions that fail as a whole anyway, and
	// the group commit's first try (group.go).
	insert, insertOrRollback insertStmts

	// closeMu makes Close wait for writes in flight: writers hold it shared.
	closeMu sync.RWMutex
	closed  bool

	// failErr is set, and failed closed, once the storage failed a write
	// (ErrStorageFailed): from then on the store is fail-stop.
	failOnce sync.Once
	failed   chan struct{}
	failErr  atomic.Pointer[error]

	integ integrity // the damage check (preflight.go, integrity.go)
	stats counters

	// low is the first id not yet shipped (backlog.go): every event below
	// it has left the backlog. Seeded on Open, raised by each checkpoint.
	low atomic.Int64
}

// counters are the store's gauges. Backlog is seeded from disk on Open; the
// others count since Open.
type counters struct {
	written, uploaded, backlog atomic.Int64
	commits                    atomic.Int64 // ingest commits (group: one per batch)
	conflicts, retries, gaveUp atomic.Int64
	splits, purged, devices    atomic.Int64
}

// Stats is a snapshot of the store's gauges.
type Stats struct {
	Mode             string   `json:"mode"`
	Written          int64    `json:"events_written"`
	Uploaded         int64    `json:"events_uploaded"`
	Backlog          int64    `json:"backlog"`
	Commits          int64    `json:"commits"`
	EventsPerCommit  float64  `json:"events_per_commit"`
	Conflicts        int64    `json:"commit_conflicts"`
	Retries          int64    `json:"retries"`
	RetriesExhausted int64    `json:"retries_exhausted"`
	ChunkSplits      int64    `json:"chunk_splits"`
	Purged           int64    `json:"events_purged"`
	Devices          int64    `json:"devices_seen"`
	WAL              WALStats `json:"wal"`
}

// harnessSynchronous overrides Options.Synchronous in a binary built with
// -tags harness_syncoff (syncoff_harness.go), the powercut experiment's
// negative control. A build tag, not a flag or an environment variable:
// no setting of a release binary can turn its durability off.
var harnessSynchronous string

// HarnessDurabilityOff reports whether this binary is the powercut
// experiment's negative control, whose acknowledgements are not durable.
func HarnessDurabilityOff() bool { return harnessSynchronous != "" }

// Open opens (creating if needed) the buffer at o.Path, migrates its schema
// and starts the write mode's machinery. Close releases it.
func Open(ctx context.Context, o Options) (*Store, error) {
	o = o.withDefaults()
	if o.Synchronous != "FULL" && o.Synchronous != "NORMAL" {
		return nil, fmt.Errorf("open buffer: synchronous must be FULL or NORMAL, not %q", o.Synchronous)
	}
	if _, err := ParseMode(string(o.Mode)); err != nil {
		return nil, fmt.Errorf("open buffer: %w", err)
	}
	if harnessSynchronous != "" {
		o.Synchronous = harnessSynchronous
	}
	// One collector per file (lock.go): an existing file is locked before
	// the start-up checks read it, a new one once they let it be created.
	lock, err := lockBuffer(o.Path, false)
	if err != nil {
		return nil, fmt.Errorf("open buffer: %w", err)
	}
	// Before anything may change the file: refuse what must not be opened.
	pf, err := preflight(ctx, o.Path, o.StartCheckBytes)
	if err == nil && lock == nil {
		lock, err = lockBuffer(o.Path, true)
	}
	if err != nil {
		lock.release()
		return nil, fmt.Errorf("open buffer: %w", err)
	}
	engine := &SQLite
	s := &Store{opts: o, engine: engine, lock: lock, log: o.Logger, failed: make(chan struct{})}
	db, err := openGuarded(engine.Driver, engine.DSN(o.Path, ConnConfig{
		BusyTimeout: o.BusyTimeout,
		Synchronous: o.Synchronous,
		WALLimit:    o.MaxWALBytes,
	}), s)
	if err != nil {
		lock.release()
		return nil, fmt.Errorf("open buffer %s: %w", o.Path, err)
	}
	s.db = db
	// In serialized and group modes one connection is the writer's for good;
	// it comes on top of MaxConns so readers (the uploader, /stats) always
	// have one. The keeper's is on top of that.
	conns := o.MaxConns + 1
	if o.Mode != Concurrent {
		conns++
	}
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	db.SetConnMaxIdleTime(0)

	if err := s.init(ctx); err != nil {
		s.stopKeeper()
		if s.keeper != nil {
			s.keeper.conn.Close()
		}
		db.Close()
		lock.release() // after the engine closed the file
		return nil, fmt.Errorf("open buffer %s: %w", o.Path, err)
	}
	switch {
	case pf.fresh:
		s.integ.set(Integrity{State: "new"})
	case pf.checked:
		s.integ.set(Integrity{State: "checked at start"})
	default:
		s.integ.start(o.Path)
	}
	return s, nil
}

func (s *Store) init(ctx context.Context) error {
	first := s.opts.FirstID
	if first <= 0 {
		first = firstEventID(time.Now())
	}
	if err := migrate(ctx, s.db, s.opts.Indexed, first); err != nil {
		return s.classify(err)
	}
	if err := checkRuns(ctx, s.db); err != nil {
		return err
	}
	var backlog, devices int64
	var low int64
	// The view finds the backlog's start from the runs' ends in one
	// statement, however many runs retention keeps.
	if err := s.db.QueryRowContext(ctx, `SELECT count(*), coalesce(min(id), (SELECT coalesce(max(id), 0) + 1 FROM events)) FROM backlog`).Scan(&backlog, &low); err != nil {
		return fmt.Errorf("count backlog: %w", err)
	}
	s.low.Store(low)
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM devices`).Scan(&devices); err != nil {
		return fmt.Errorf("count devices: %w", err)
	}
	s.stats.backlog.Store(backlog)
	s.stats.devices.Store(devices)
	if err := s.startKeeper(ctx); err != nil {
		return err
	}

	for i, rows := range insertRows {
		var err error
		if s.insert[i], err = s.db.PrepareContext(ctx, insertSQL(rows, "")); err != nil {
			return fmt.Errorf("prepare insert: %w", err)
		}
		if s.insertOrRollback[i], err = s.db.PrepareContext(ctx, insertSQL(rows, "OR ROLLBACK ")); err != nil {
			return fmt.Errorf("prepare insert: %w", err)
		}
	}
	switch s.opts.Mode {
	case Concurrent:
		s.w = &poolWriter{s: s}
	case Serialized, Group:
		conn, err := s.db.Conn(ctx)
		if err != nil {
			return fmt.Errorf("writer connection: %w", err)
		}
		if s.opts.Mode == Serialized {
			s.w = &mutexWriter{s: s, conn: conn}
		} else {
			s.w = newCommitter(s, conn)
		}
	}
	return nil
}

// Mode reports the store's write mode.
func (s *Store) Mode() Mode { return s.opts.Mode }

// DB returns the underlying pool for read-only diagnostics. Writes through it
// bypass the write mode and its counters.
func (s *Store) DB() *sql.DB { return s.db }

// Stats returns a snapshot of the gauges.
func (s *Store) Stats() Stats {
	st := Stats{
		Mode:             string(s.opts.Mode),
		Written:          s.stats.written.Load(),
		Uploaded:         s.stats.uploaded.Load(),
		Backlog:          s.stats.backlog.Load(),
		Commits:          s.stats.commits.Load(),
		Conflicts:        s.stats.conflicts.Load(),
		Retries:          s.stats.retries.Load(),
		RetriesExhausted: s.stats.gaveUp.Load(),
		ChunkSplits:      s.stats.splits.Load(),
		Purged:           s.stats.purged.Load(),
		Devices:          s.stats.devices.Load(),
		WAL:              s.WALStats(),
	}
	if st.Commits > 0 {
		st.EventsPerCommit = float64(st.Written) / float64(st.Commits)
	}
	return st
}

// Close stops accepting writes, waits for those in flight (a group commit
// under way finishes and acks), checkpoints the WAL into the main file and
// closes the database.
func (s *Store) Close() error {
	s.closeMu.Lock()
	if s.closed {
		s.closeMu.Unlock()
		return nil
	}
	s.closed = true
	s.closeMu.Unlock()

	s.integ.stop()
	s.stopKeeper()
	err := s.w.close()
	if ferr := s.FailErr(); ferr != nil {
		// Fail-stop: no checkpoint and no close, which would checkpoint
		// too. Nothing more is written; the next start recovers from what
		// is on disk.
		return errors.Join(err, ferr)
	}
	// Fold the WAL back so the file is self-contained for copies and tools.
	if cerr := s.closeKeeper(); cerr != nil && err == nil {
		err = cerr
	}
	for _, stmt := range append(s.insert[:], s.insertOrRollback[:]...) {
		if stmt == nil {
			continue
		}
		if cerr := stmt.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}
	if cerr := s.db.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("close database: %w", cerr)
	}
	if cerr := s.lock.release(); cerr != nil && err == nil {
		err = fmt.Errorf("release lock: %w", cerr)
	}
	return err
}

// enter admits a write unless Close has started: every write path calls it
// and, when it returned nil, defers leave, so Close waits for writes in flight.
func (s *Store) enter() error {
	s.closeMu.RLock()
	if s.closed {
		s.closeMu.RUnlock()
		return collector.ErrClosed
	}
	if err := s.FailErr(); err != nil {
		s.closeMu.RUnlock()
		return err
	}
	return nil
}

// Failed is closed once the store is fail-stop (see FailErr).
func (s *Store) Failed() <-chan struct{} { return s.failed }

// FailErr is nil, or, once the storage failed a write, the error that made
// the store fail-stop (it wraps ErrStorageFailed). After a failed fsync the
// kernel may have dropped the pages it could not write and report the next
// fsync as a success (PostgreSQL's "fsyncgate"): nothing this process writes
// afterwards can be trusted to be durable, so it writes nothing more. Every
// later write fails with this error; the collector exits, and the restart
// recovers from what is really on disk.
func (s *Store) FailErr() error {
	if p := s.failErr.Load(); p != nil {
		return *p
	}
	return nil
}

// failStop makes the store fail-stop with cause; the first cause stays.
func (s *Store) failStop(cause error) error {
	s.failOnce.Do(func() {
		err := fmt.Errorf("%w (the store stopped writing; restart the collector): %w", collector.ErrStorageFailed, cause)
		s.failErr.Store(&err)
		close(s.failed)
	})
	return s.FailErr()
}

// leave ends what enter admitted.
func (s *Store) leave() { s.closeMu.RUnlock() }

// classify wraps an engine error with the collector sentinel it stands for,
// keeping the engine's message.
func (s *Store) classify(err error) error {
	if err == nil {
		return nil
	}
	switch s.engine.classify(err) {
	case classBusy:
		return fmt.Errorf("%w: %w", collector.ErrBusy, err)
	case classFull:
		return fmt.Errorf("%w: %w", collector.ErrDiskFull, err)
	case classNotDB:
		return fmt.Errorf("not a usable SQLite database (refusing to touch it): %w", err)
	case classIO:
		return s.failStop(err)
	}
	return err
}

// Backlog reports the number of events not yet uploaded (the gauge, not a query).
func (s *Store) Backlog() int64 { return s.stats.backlog.Load() }
