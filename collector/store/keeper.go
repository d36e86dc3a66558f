package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"edgecollector/collector"
)

// DefaultWatchEvery is how often the keeper looks at the buffer's files.
const DefaultWatchEvery = time.Second

// keeper is the store's housekeeping: one connection of its own, held for
// the store's life, and a loop that looks at the files every WatchEvery.
// The connection keeps the WAL and its index open, so their identity holds
// even in concurrent mode when the pool has no other connection (SQLite
// deletes both when the last connection closes), and it runs the WAL
// checkpoints (wal.go) and the final one at Close.
type keeper struct {
	mu   sync.Mutex // one user of conn at a time
	conn *sql.Conn
	stop chan struct{}
	done chan struct{}
}

// querier is what reading the backlog needs: the pool, or one connection.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// reader is where the uploader reads: the pool; once the path names
// another file, the keeper's connection, since the pool opens no new
// connection then and the open file's backlog must still leave. done
// ends the use.
func (s *Store) reader() (q querier, done func()) {
	if s.fileLost() == nil || s.keeper == nil {
		return s.db, func() {}
	}
	s.keeper.mu.Lock()
	return s.keeper.conn, s.keeper.mu.Unlock
}

// startKeeper takes the keeper's connection, records the files' identity
// (identity.go) and starts the loop. Open calls it last.
func (s *Store) startKeeper(ctx context.Context) error {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("keeper connection: %w", err)
	}
	// The keeper's checkpoints wait for no lock: they never hold writers back.
	if _, err := conn.ExecContext(ctx, `PRAGMA busy_timeout = 0`); err != nil {
		conn.Close()
		return fmt.Errorf("keeper connection: %w", err)
	}
	id, err := recordIdentity(s.opts.Path)
	if err != nil {
		conn.Close()
		return err
	}
	s.guard.id.Store(&id)
	s.keeper = &keeper{conn: conn, stop: make(chan struct{}), done: make(chan struct{})}
	go s.keep()
	return nil
}

func (s *Store) keep() {
	k := s.keeper
	defer close(k.done)
	t := time.NewTicker(s.opts.WatchEvery)
	defer t.Stop()
	ctx := context.Background()
	for {
		select {
		case <-k.stop:
			return
		case <-t.C:
		}
		s.checkFile()
		if s.FailErr() != nil {
			continue // fail-stop: nothing more is written, checkpoints included
		}
		k.mu.Lock()
		s.walLook(ctx, k.conn, s.walBytes())
		k.mu.Unlock()
	}
}

// stopKeeper ends the loop; the connection stays for Close's last work.
func (s *Store) stopKeeper() {
	if s.keeper == nil {
		return
	}
	close(s.keeper.stop)
	<-s.keeper.done
}

// closeKeeper folds the WAL back into the file (so it is self-contained
// for copies and tools), rescues a replaced buffer's backlog, and closes
// the keeper's connection.
func (s *Store) closeKeeper() error {
	if s.keeper == nil {
		return nil
	}
	ctx := context.Background()
	s.keeper.mu.Lock()
	defer s.keeper.mu.Unlock()
	var err error
	if _, cerr := s.keeper.conn.ExecContext(ctx, `PRAGMA busy_timeout = 5000`); cerr == nil {
		if _, cerr := s.keeper.conn.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); cerr != nil {
			err = fmt.Errorf("checkpoint wal: %w", cerr)
		}
	}
	if lost := s.fileLost(); lost != nil && s.Backlog() > 0 {
		if rerr := s.rescue(ctx); rerr != nil {
			err = errors.Join(err, rerr)
		}
	}
	if cerr := s.keeper.conn.Close(); cerr != nil && err == nil {
		err = cerr
	}
	return err
}

// rescue copies a replaced buffer, whose path names it no more, to a new
// file beside the path before the last descriptor goes: its backlog holds
// acknowledged events that would vanish with it.
func (s *Store) rescue(ctx context.Context) error {
	dst := fmt.Sprintf("%s.rescued-%d", s.opts.Path, time.Now().UnixMilli())
	if _, err := s.keeper.conn.ExecContext(ctx, `VACUUM INTO ?`, dst); err != nil {
		s.log.Error("the replaced buffer's backlog could not be saved: it is lost with the file",
			"db", s.opts.Path, "backlog", s.Backlog(), "err", err)
		return fmt.Errorf("rescue %d events of the replaced buffer: %w", s.Backlog(), err)
	}
	abs, _ := filepath.Abs(dst)
	s.log.Error("the replaced buffer still held a backlog: saved beside it; move it back to -db to ship it",
		"db", s.opts.Path, "saved_to", abs, "backlog", s.Backlog())
	return fmt.Errorf("%w: %d events of the backlog saved to %s", collector.ErrBufferReplaced, s.Backlog(), abs)
}
