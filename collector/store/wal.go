package store

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"sync"
	"time"
)

// The WAL's bound. SQLite checkpoints the WAL into the database by itself
// (every 1,000 pages, passively: it never waits), but it can copy back only
// what no reader still needs, and it reuses the WAL from its start only
// when no reader is in it. A read transaction held open for minutes (a
// diagnostic query, sqlite3 -readonly) pins it: under load the WAL grew to
// hundreds of megabytes, and without a size limit it kept that size after
// the reader left. So:
//
//   - every connection has journal_size_limit = MaxWALBytes: when the WAL
//     starts over, it is truncated back to that size;
//   - the engine's own checkpoint after a commit runs at the bound
//     (wal_autocheckpoint), so under load the WAL cycles there by itself;
//   - the keeper (keeper.go) looks at the WAL's size every WatchEvery and,
//     over MaxWALBytes at two looks in a row (it did not come back by
//     itself: no writer to start it over, or a reader holding it), runs a
//     checkpoint itself: PASSIVE (it copies what
//     no reader needs, without stopping writers), then, if that copied
//     everything, TRUNCATE without waiting (it empties the file at once if
//     no writer and no reader is in it; under load the next commit starts
//     the WAL over and truncates it to the bound anyway, so nobody is held
//     back for it);
//   - the outcome is kept for /stats and /metrics, and Health turns bad
//     when the WAL is far over its bound (walFarOver times) and the last
//     checkpoint could not copy it: that is a reader holding a transaction
//     open, and Health names it.

// DefaultMaxWALBytes bounds the WAL in normal operation.
const DefaultMaxWALBytes = 64 << 20

// walFarOver: Health fails once the WAL is this many times its bound.
const walFarOver = 4

// WALStats are the WAL's size and the keeper's checkpoints, in /stats.
type WALStats struct {
	Bytes      int64 `json:"bytes"`       // the WAL file's size at the last look
	LimitBytes int64 `json:"limit_bytes"` // MaxWALBytes
	// Checkpoints the keeper ran because the WAL was over its bound, and how
	// many of them a reader kept from emptying it.
	Checkpoints int64          `json:"checkpoints"`
	Blocked     int64          `json:"checkpoints_blocked"`
	Last        *CheckpointRun `json:"last_checkpoint,omitempty"`
	BlockedFor  float64        `json:"blocked_for_s,omitempty"` // since the first blocked one of a row
	blockedAt   time.Time
}

// CheckpointRun is the outcome of one checkpoint the keeper ran.
type CheckpointRun struct {
	At time.Time `json:"at"`
	// Outcome: "truncated" (the WAL is empty), "copied" (every frame is in
	// the database; writers were busy, the next commit starts the WAL over),
	// "busy" (another checkpoint was running), "blocked" (a reader still
	// needs frames: they stay), or "error".
	Outcome      string  `json:"outcome"`
	Error        string  `json:"error,omitempty"`
	WALFrames    int64   `json:"wal_frames"`   // frames in the WAL when it ran
	Checkpointed int64   `json:"checkpointed"` // frames copied into the database
	BytesBefore  int64   `json:"bytes_before"`
	TookMS       float64 `json:"took_ms"`
}

type walState struct {
	mu   sync.Mutex
	st   WALStats
	over int // looks in a row that found the WAL over its bound
}

// walLook records the WAL's size (from the keeper's identity check, or a
// stat) and, over the bound, checkpoints on conn.
func (s *Store) walLook(ctx context.Context, conn *sql.Conn, size int64) {
	w := &s.wal
	w.mu.Lock()
	if size <= s.opts.MaxWALBytes {
		w.over = 0
		w.st.blockedAt = time.Time{}
		w.mu.Unlock()
		return
	}
	w.over++
	act := w.over >= 2 // once, it may be the engine's own cycle under way
	w.mu.Unlock()
	if !act {
		return
	}
	run := s.checkpoint(ctx, conn, size)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.st.Checkpoints++
	w.st.Last = &run
	switch run.Outcome {
	case "truncated", "copied":
		w.st.blockedAt = time.Time{}
	case "blocked":
		w.st.Blocked++
		if w.st.blockedAt.IsZero() {
			w.st.blockedAt = run.At
		}
	}
}

// checkpoint runs PASSIVE, then TRUNCATE when PASSIVE copied everything.
func (s *Store) checkpoint(ctx context.Context, conn *sql.Conn, size int64) CheckpointRun {
	start := time.Now()
	run := CheckpointRun{At: start, BytesBefore: size}
	done := func(outcome string, err error) CheckpointRun {
		run.Outcome = outcome
		if err != nil {
			run.Error = err.Error()
		}
		run.TookMS = float64(time.Since(start).Microseconds()) / 1000
		return run
	}
	var busy int
	if err := conn.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &run.WALFrames, &run.Checkpointed); err != nil {
		return done("error", fmt.Errorf("passive checkpoint: %w", s.classify(err))) // an I/O error fail-stops the store
	}
	switch {
	case busy != 0:
		return done("busy", nil) // a commit's own autocheckpoint had the lock
	case run.Checkpointed < run.WALFrames:
		return done("blocked", nil) // a reader's snapshot needs the rest
	}
	// The keeper's connection waits for no lock (busy_timeout 0): this
	// never holds a writer back.
	var frames, copied int64
	if err := conn.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &frames, &copied); err != nil {
		return done("error", fmt.Errorf("truncate checkpoint: %w", s.classify(err)))
	}
	if busy != 0 {
		return done("copied", nil)
	}
	return done("truncated", nil)
}

// WALStats reports the WAL's size (now) and the keeper's checkpoints.
func (s *Store) WALStats() WALStats {
	s.wal.mu.Lock()
	st := s.wal.st
	s.wal.mu.Unlock()
	st.Bytes = s.walBytes()
	st.LimitBytes = s.opts.MaxWALBytes
	if !st.blockedAt.IsZero() {
		st.BlockedFor = time.Since(st.blockedAt).Seconds()
	}
	return st
}

// walBytes is the WAL file's size on disk now.
func (s *Store) walBytes() int64 {
	id := s.guard.id.Load()
	if id == nil {
		return 0
	}
	fi, err := os.Stat(id.paths[1].name)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// walProblem says why the WAL is unhealthy, or "": far over its bound, and
// the last checkpoint could not bring it back.
func (s *Store) walProblem() string {
	st := s.WALStats()
	if st.Bytes < walFarOver*st.LimitBytes || st.Last == nil {
		return ""
	}
	msg := fmt.Sprintf("the WAL is %s, over %d times its %s bound (-max-wal-bytes)",
		byteSize(st.Bytes), walFarOver, byteSize(st.LimitBytes))
	switch st.Last.Outcome {
	case "blocked":
		return msg + fmt.Sprintf(": checkpoints blocked for %.0fs by a read transaction held open"+
			" (a long collector query, MCP query or sqlite3 session, or the background damage check of a large file?);"+
			" once it ends the WAL is emptied", st.BlockedFor)
	case "error":
		return msg + ": the last checkpoint failed: " + st.Last.Error
	}
	return "" // copied or truncated: it comes back down by itself
}

// byteSize formats n bytes for people.
func byteSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}
