//go:build linux

package faultfs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// The namespace journal: every create, remove and rename is applied to the
// backing directory at once (so lookups and listings are plain loopback)
// and recorded here until it is durable. A cut undoes, newest first, each
// operation that is not.
//
// An operation is durable once every directory it touches has been
// fsync'd after it: the POSIX worst case, where only fsync of the
// directory itself makes an entry in it survive. An fsync of a file makes
// its data and size durable, never its name.

type opKind int

const (
	opCreate opKind = iota // a file or directory made in dirs[0]
	opRemove               // a file (kept in the attic) or empty directory removed from dirs[0]
	opRename               // a file moved from dirs[0]/name to dirs[1]/newName
)

// dirRef names a directory: its path under the data directory (for the
// undo) and its backing inode (to match an fsync, which names a node; a
// directory removed and made again under the same name is another one).
type dirRef struct {
	rel string
	ino uint64
}

type nsOp struct {
	kind    opKind
	dirs    [2]dirRef
	ndirs   int
	synced  [2]bool
	name    string
	newName string      // opRename
	isDir   bool        // opCreate, opRemove
	mode    fs.FileMode // opRemove of a directory: its permissions
	// attic holds what the operation took away: the removed file (opRemove)
	// or the file a rename replaced (opRename), as a hard link, so the undo
	// brings back the same inode with its durable content. Empty when
	// nothing was replaced.
	attic string
}

func (op *nsOp) String() string {
	switch op.kind {
	case opCreate:
		return "create " + filepath.Join(op.dirs[0].rel, op.name)
	case opRemove:
		return "remove " + filepath.Join(op.dirs[0].rel, op.name)
	default:
		return fmt.Sprintf("rename %s to %s", filepath.Join(op.dirs[0].rel, op.name), filepath.Join(op.dirs[op.ndirs-1].rel, op.newName))
	}
}

// record appends op to the journal; f.mu held.
func (f *FS) record(op *nsOp) {
	if op.ndirs == 0 {
		op.ndirs = 1
	}
	if op.ndirs == 2 && op.dirs[0].ino == op.dirs[1].ino {
		op.ndirs = 1
	}
	f.journal = append(f.journal, op)
}

// atticPath is a fresh name in the attic; f.mu held.
func (f *FS) atticPath() string {
	f.atticSeq++
	return filepath.Join(f.attic, fmt.Sprint(f.atticSeq))
}

// syncDir makes durable every operation on the directory ino whose other
// directory (for a rename across two) is already synced; f.mu held.
func (f *FS) syncDir(ino uint64) {
	kept := f.journal[:0]
	for _, op := range f.journal {
		done := true
		for i := range op.ndirs {
			if op.dirs[i].ino == ino {
				op.synced[i] = true
			}
			done = done && op.synced[i]
		}
		if !done {
			kept = append(kept, op)
			continue
		}
		if op.attic != "" {
			// Durable: what it took away is gone for good.
			os.Remove(op.attic)
		}
	}
	clear(f.journal[len(kept):])
	f.journal = kept
}

// undo reverts every operation left in the journal, newest first; f.mu
// held, nothing mounted. An entry whose directory no longer exists is
// unreachable after the cut anyway: ENOENT is not an error.
func (f *FS) undo() (n int, err error) {
	var errs []error
	for i := len(f.journal) - 1; i >= 0; i-- {
		op := f.journal[i]
		p := filepath.Join(f.data, op.dirs[0].rel, op.name)
		var e error
		switch op.kind {
		case opCreate:
			if op.isDir {
				e = os.RemoveAll(p)
			} else {
				e = os.Remove(p)
			}
		case opRemove:
			if op.isDir {
				if e = os.Mkdir(p, op.mode); errors.Is(e, fs.ErrExist) {
					e = nil
				}
			} else {
				e = os.Rename(op.attic, p)
			}
		case opRename:
			q := filepath.Join(f.data, op.dirs[op.ndirs-1].rel, op.newName)
			e = os.Rename(q, p)
			if e == nil && op.attic != "" {
				e = os.Rename(op.attic, q)
			}
		}
		if e != nil && !errors.Is(e, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("undo %s: %w", op, e))
		}
		n++
	}
	f.journal = nil
	return n, errors.Join(errs...)
}
