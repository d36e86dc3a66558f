//go:build linux && (amd64 || arm64)

package store

import (
	"runtime"
	"syscall"
	"unsafe"
)

// A fileID is what a path named: device and inode.
type fileID struct{ dev, ino uint64 }

// statPath is a path kept NUL-terminated, so that statting it allocates
// nothing: the identity check runs before every acknowledged commit, and
// syscall.Stat would copy the path each time.
type statPath struct {
	name string
	c    []byte
}

func newStatPath(name string) statPath {
	c, err := syscall.ByteSliceFromString(name)
	if err != nil { // a NUL in the path: the start-up checks refuse it first
		c = []byte{0}
	}
	return statPath{name: name, c: c}
}

// stat returns the identity of the file p names now (following symlinks).
func (p statPath) stat() (fileID, error) {
	var st syscall.Stat_t
	dirfd := atFDCWD
	_, _, e := syscall.Syscall6(sysFstatat, uintptr(dirfd), uintptr(unsafe.Pointer(&p.c[0])), uintptr(unsafe.Pointer(&st)), 0, 0, 0)
	runtime.KeepAlive(p.c)
	if e != 0 {
		return fileID{}, e
	}
	return fileID{dev: uint64(st.Dev), ino: st.Ino}, nil
}

const atFDCWD = -0x64 // AT_FDCWD

func (a fileID) equal(b fileID) bool { return a == b }
