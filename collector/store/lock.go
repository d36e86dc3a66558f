package store

import (
	"errors"
	"fmt"
	"os"
	"sync"
)

// One collector per buffer file. Two collectors on one file each ship the
// other's events under their own collector id (so receivers cannot
// deduplicate them) and keep backlog gauges that drift apart. Open takes an
// exclusive lock for the store's life and refuses a file another process
// holds; the read-only diagnostics never take it, so they run beside.
//
// The lock is flock(2), held on a descriptor that stays open until the
// database is closed (lock_linux.go: the database file itself;
// lock_other.go: a sibling file). Never close another descriptor of the
// database file while SQLite has it open: POSIX drops every fcntl lock a
// process holds on a file when it closes any descriptor of that file, and
// SQLite's own locks are fcntl locks.

// ErrLocked: another process holds the buffer file.
var ErrLocked = errors.New("buffer file in use by another collector (one collector per file)")

// bufferLock is the held lock; release drops it.
type bufferLock struct {
	f *os.File
}

// parked keeps the descriptors of refused lock attempts open for the
// process's life: closing one would drop the fcntl locks SQLite may hold
// on the same file in this process (a test, or an embedding program, that
// opens the store twice). A refused start exits anyway.
var (
	parkMu sync.Mutex
	parked []*os.File
)

// lockBuffer takes the buffer's exclusive lock, or says who holds it.
// Without create it locks only a regular file that exists and opens, and
// otherwise returns no lock and no error: the start-up checks (preflight.go)
// then say what is wrong with the path, or let Open create the file, and
// Open locks it with create. An existing file is locked before those checks
// read it, so a second collector is refused as such, and its checks never
// open and close a descriptor of a file this process may have open.
func lockBuffer(path string, create bool) (*bufferLock, error) {
	if !create {
		if fi, err := os.Stat(path); err != nil || !fi.Mode().IsRegular() {
			return nil, nil
		}
	}
	f, err := openLockFile(path)
	if err != nil {
		if !create {
			return nil, nil
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := flock(f); err != nil {
		parkMu.Lock()
		parked = append(parked, f)
		parkMu.Unlock()
		if !errors.Is(err, errWouldBlock) {
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		who := "another process"
		if pid := lockHolder(f); pid > 0 {
			who = fmt.Sprintf("process %d", pid)
		}
		return nil, fmt.Errorf("%w: %s is held by %s", ErrLocked, path, who)
	}
	return &bufferLock{f: f}, nil
}

// release drops the lock. Call it only after the database is closed.
func (l *bufferLock) release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}
