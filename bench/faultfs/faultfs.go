// Package faultfs is a fault-injecting FUSE filesystem for the harness's
// power-cut experiments: the equivalent, in Go, of LazyFS ("When Amnesia
// Strikes", VLDB 2024). A SIGKILL never tests a durability promise, because
// the page cache outlives the process; faultfs keeps its own page cache and
// forgets, at a cut, everything that was not fsync'd.
//
// It is a loopback over a backing directory (dir/data) that holds exactly
// what is durable:
//
//   - File data and size changes (write, truncate, O_TRUNC) stay in the
//     cache, a map of 4 KiB pages per inode. fsync or fdatasync of the
//     file writes them to the backing file and flushes it; close and flush
//     persist nothing.
//   - Names: create, mkdir, unlink, rmdir and rename reach the backing
//     directory at once and are journalled; each is durable only once
//     every directory it touches has been fsync'd after it (the POSIX worst
//     case; an fsync of a file never makes its name durable).
//   - Cut: the filesystem is unmounted (the processes using it must be dead
//     by then), the cache is dropped, every journalled operation that is
//     not durable is undone, newest first, and it is mounted again:
//     a file created since its directory's last fsync is gone (with any
//     data fsync'd into it); an unlinked file comes back with its durable
//     content (the unlink keeps a hard link in dir/attic); a rename is
//     undone as a whole (the old name back, and the file it replaced). A
//     rename is kept only when both its directories were fsync'd after it.
//   - Torn writes (Options.Torn): at a cut each 512-byte sector written
//     since the last fsync reaches the backing file whole, with its latest
//     content, or not at all, seeded, in no particular order; a file grows
//     to the end of the last sector that landed past its old size.
//     Pending truncations never land.
//   - Faults: fsync latency (Options.FsyncLatency, FsyncJitter) emulates a
//     storage class; FailFsync makes the next fsync of a file fail once
//     with EIO and, as Linux does after a writeback error, drops the dirty
//     pages from what an fsync will write (they stay visible until a cut);
//     SetSpaceBudget makes writes past a byte budget fail with ENOSPC.
//
// What it does not model: renaming a directory (refused with EXDEV, so mv
// falls back to a copy), hard links, symlinks, device nodes and O_TMPFILE
// (refused), fallocate (EOPNOTSUPP: posix_fallocate falls back to writes),
// xattrs, and metadata (mode, owner, times pass through, durable at once).
//
// Every path that would bypass the cache is closed: files are served
// without a kernel passthrough fd, reads and writes (and Writev) go through
// the cache, getattr and statx report the cached size, copy_file_range
// falls back to reads and writes, directory fsync goes through the journal.
// Files are not opened with direct I/O, so SQLite's WAL index (-shm, a
// shared mmap) works; the kernel's page cache of the mount is dropped by
// the unmount of every cut.
//
// The process that mounts a faultfs must not mmap files on it (SQLite's
// WAL index does): a page fault on a FUSE file served by the faulting
// process itself can deadlock it. Run databases in child processes, and
// inspect what a cut left through a copy of DataDir.
//
// Mounting needs root and /dev/fuse (a direct mount, no fusermount):
// Usable says whether this machine can.
package faultfs

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Options configure a filesystem.
type Options struct {
	// FsyncLatency, when positive, emulates a storage device whose flush
	// takes that long (plus up to FsyncJitter, seeded): an fsync writes the
	// cache back to the backing file, then sleeps instead of flushing the
	// backing disk; the device does one flush at a time. Zero passes each
	// fsync through to the backing disk.
	FsyncLatency time.Duration
	FsyncJitter  time.Duration
	// Torn makes each cut keep a seeded random subset of the 512-byte
	// sectors written since the last fsync.
	Torn bool
	// Seed seeds torn writes and latency jitter.
	Seed uint64
	// SpaceBudget, when positive, is the most bytes the files may hold
	// (their sizes summed); a write or truncate past it fails with ENOSPC.
	SpaceBudget int64
	// Debug logs every FUSE request to stderr.
	Debug bool
}

// CutStats says what a cut forgot.
type CutStats struct {
	Files        int   // files with data or a size change not fsync'd
	DirtyPages   int64 // cached pages (4 KiB) not fsync'd
	TornSectors  int   // sectors that landed anyway (Options.Torn)
	UndoneOps    int   // creates, removes and renames undone
	UnmountLazy  bool  // the unmount had to detach the mount lazily
	UnmountTaken time.Duration
}

// Stats counts what the filesystem did since it was mounted first.
type Stats struct {
	Fsyncs       int64 // file fsyncs and fdatasyncs that succeeded
	DirFsyncs    int64 // directory fsyncs
	FailedFsyncs int64 // fsyncs failed on purpose (FailFsync)
	WrittenBack  int64 // bytes fsync wrote to backing files
	NoSpace      int64 // writes and truncates refused with ENOSPC
	Cuts         int64
}

// ErrUnusable is returned by Mount where FUSE cannot be used; Usable
// says why.
var ErrUnusable = errors.New("faultfs: FUSE is not usable here")

// SyncTree fsyncs every regular file and directory under dir, and dir: what
// a sync after an installation does. The harness makes a system's installed
// state durable with it before it cuts the power under the system.
func SyncTree(dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !(d.IsDir() || d.Type().IsRegular()) {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		return f.Sync()
	})
}
