//go:build unix && !linux

package store

import "os"

// openLockFile opens a sibling lock file: where flock and fcntl locks
// interact (the BSDs, macOS), a flock on the database file itself would
// block other processes' SQLite locks, so the diagnostics beside a running
// collector. Deleting the sibling while a collector runs defeats the lock.
func openLockFile(path string) (*os.File, error) {
	return os.OpenFile(path+".lock", os.O_RDWR|os.O_CREATE, 0o644)
}

// lockHolder cannot tell the holder here.
func lockHolder(*os.File) int { return 0 }
