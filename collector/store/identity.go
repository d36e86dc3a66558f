package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"time"

	"edgecollector/collector"
)

// The buffer's identity. An operator who deletes events.db and its WAL, or
// swaps a symlink, leaves the collector writing to files no path names: it
// would acknowledge events that vanish at the next start, and pooled
// connections opened afterwards would reach the new file (an empty one, or
// another buffer whose ids the uploader would ship a second time). So the
// store records which files it opened and, before it acknowledges a
// commit, that the paths still name them (device and inode: os.SameFile).
// Once they do not, it refuses new events for good (ErrBufferReplaced,
// 503), opens no new connection, logs an error naming the file, and
// reports it in Health; the uploader goes on shipping what the open file
// holds, so what was acknowledged still leaves.

// fileIdentity is what the buffer's paths named when the store opened them.
type fileIdentity struct {
	// paths: the -db path as given (what a restart opens), and the WAL and
	// shared-memory index beside the file it resolves to (SQLite follows a
	// symlink and puts them beside the target).
	paths [3]statPath
	ids   [3]fileID
}

func recordIdentity(path string) (fileIdentity, error) {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return fileIdentity{}, fmt.Errorf("resolve %s: %w", path, err)
	}
	var id fileIdentity
	for i, p := range []string{path, real + "-wal", real + "-shm"} {
		id.paths[i] = newStatPath(p)
		if id.ids[i], err = id.paths[i].stat(); err != nil {
			return fileIdentity{}, fmt.Errorf("identity of the buffer: %s: %w", p, err)
		}
	}
	return id, nil
}

// changed says which path no longer names the file it named at open, or
// "". It allocates nothing while they do (fileid_*.go): it runs before
// every acknowledged commit.
func (id *fileIdentity) changed() string {
	for i := range id.paths {
		now, err := id.paths[i].stat()
		switch {
		case err != nil:
			return fmt.Sprintf("%s: %v", id.paths[i].name, err)
		case !now.equal(id.ids[i]):
			return fmt.Sprintf("%s names another file than the one open (replaced)", id.paths[i].name)
		}
	}
	return ""
}

// guard holds the identity and, once a check failed, the sticky error.
type guard struct {
	id   atomic.Pointer[fileIdentity] // nil until recorded at the end of Open
	lost atomic.Pointer[lostFile]
}

type lostFile struct {
	err error
	at  time.Time
}

// checkFile reports ErrBufferReplaced once a path no longer names its
// file. The first failure sticks, and is logged once.
func (s *Store) checkFile() error {
	if err := s.fileLost(); err != nil {
		return err
	}
	id := s.guard.id.Load()
	if id == nil {
		return nil
	}
	what := id.changed()
	if what == "" {
		return nil
	}
	l := &lostFile{at: time.Now(), err: fmt.Errorf(
		"%w: %s: refusing new events; the open file is still shipped from (restart the collector once the file is back)",
		collector.ErrBufferReplaced, what)}
	if s.guard.lost.CompareAndSwap(nil, l) {
		s.log.Error("buffer file deleted or replaced underneath the collector: new events refused",
			"db", s.opts.Path, "err", l.err)
	}
	return s.fileLost()
}

// fileLost is the sticky error, without a new look.
func (s *Store) fileLost() error {
	if l := s.guard.lost.Load(); l != nil {
		return l.err
	}
	return nil
}

// guardedConnector opens the pool's connections, but none once the path
// names another file: a new connection would open that one.
type guardedConnector struct {
	driver.Connector
	s *Store
}

func (c *guardedConnector) Connect(ctx context.Context) (driver.Conn, error) {
	if err := c.s.checkFile(); err != nil {
		return nil, err
	}
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	if err := c.s.checkFile(); err != nil { // replaced while it opened
		conn.Close()
		return nil, err
	}
	return conn, nil
}

// dsnConnector is database/sql's own adapter for a driver without one.
type dsnConnector struct {
	dsn string
	drv driver.Driver
}

func (c dsnConnector) Connect(context.Context) (driver.Conn, error) { return c.drv.Open(c.dsn) }
func (c dsnConnector) Driver() driver.Driver                        { return c.drv }

// openGuarded opens the engine's pool on dsn through a guardedConnector.
func openGuarded(driverName, dsn string, s *Store) (*sql.DB, error) {
	probe, err := sql.Open(driverName, dsn) // only to reach the registered driver
	if err != nil {
		return nil, err
	}
	drv := probe.Driver()
	probe.Close()
	var base driver.Connector = dsnConnector{dsn: dsn, drv: drv}
	if dc, ok := drv.(driver.DriverContext); ok {
		if base, err = dc.OpenConnector(dsn); err != nil {
			return nil, err
		}
	}
	return sql.OpenDB(&guardedConnector{Connector: base, s: s}), nil
}
