//go:build linux

package faultfs

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// mount is one mounting of the filesystem: its own node tree, so requests
// of a mount already taken down (a lazy detach) can be refused.
type mount struct {
	fs     *FS
	server *fuse.Server
	dev    uint64
	dead   atomic.Bool
}

// node is a file or directory of a mount. It keeps no state of its own:
// the path comes from the tree, the data from FS.files.
type node struct {
	gofs.Inode
	m *mount
}

// handle is what an open file gets: a token, not a file descriptor, so the
// kernel is never handed a passthrough fd that would bypass the cache.
type handle struct{}

var (
	_ gofs.NodeLookuper  = (*node)(nil)
	_ gofs.NodeGetattrer = (*node)(nil)
	_ gofs.NodeSetattrer = (*node)(nil)
	_ gofs.NodeOpener    = (*node)(nil)
	_ gofs.NodeCreater   = (*node)(nil)
	_ gofs.NodeReader    = (*node)(nil)
	_ gofs.NodeWriter    = (*node)(nil)
	_ gofs.NodeWritever  = (*node)(nil)
	_ gofs.NodeFsyncer   = (*node)(nil)
	_ gofs.NodeFlusher   = (*node)(nil)
	_ gofs.NodeAllocater = (*node)(nil)
	_ gofs.NodeStatxer   = (*node)(nil)
	_ gofs.NodeMkdirer   = (*node)(nil)
	_ gofs.NodeUnlinker  = (*node)(nil)
	_ gofs.NodeRmdirer   = (*node)(nil)
	_ gofs.NodeRenamer   = (*node)(nil)
	_ gofs.NodeReaddirer = (*node)(nil)
	_ gofs.NodeStatfser  = (*node)(nil)
	_ gofs.NodeTmpfiler  = (*node)(nil)
)

func (n *node) fsys() *FS { return n.m.fs }

// rel is the node's path under the data directory.
func (n *node) rel() string { return n.Path(n.Root()) }

// path is the node's backing path.
func (n *node) path() string { return filepath.Join(n.m.fs.data, n.rel()) }

// ino is the backing inode number.
func (n *node) ino() uint64 {
	if n.Root() == &n.Inode {
		return n.m.fs.rootIno
	}
	return n.StableAttr().Ino
}

func (n *node) dirRef() dirRef { return dirRef{rel: n.rel(), ino: n.ino()} }

// down is the answer of a mount taken down by a cut: every request fails.
func (n *node) down() bool { return n.m.dead.Load() }

// lstat stats a backing path; the generation comes from the birth time,
// so a reused inode number is another node.
func lstat(p string) (syscall.Stat_t, uint64, error) {
	var sx unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, p, unix.AT_SYMLINK_NOFOLLOW, unix.STATX_BASIC_STATS|unix.STATX_BTIME, &sx); err != nil {
		return syscall.Stat_t{}, 0, err
	}
	st := syscall.Stat_t{
		Dev: unix.Mkdev(sx.Dev_major, sx.Dev_minor), Ino: sx.Ino, Nlink: uint64(sx.Nlink),
		Mode: uint32(sx.Mode), Uid: sx.Uid, Gid: sx.Gid, Size: int64(sx.Size),
		Blksize: int64(sx.Blksize), Blocks: int64(sx.Blocks),
		Atim: syscall.Timespec{Sec: sx.Atime.Sec, Nsec: int64(sx.Atime.Nsec)},
		Mtim: syscall.Timespec{Sec: sx.Mtime.Sec, Nsec: int64(sx.Mtime.Nsec)},
		Ctim: syscall.Timespec{Sec: sx.Ctime.Sec, Nsec: int64(sx.Ctime.Nsec)},
	}
	gen := uint64(sx.Btime.Sec)*1e9 + uint64(sx.Btime.Nsec)
	return st, max(gen, 1), nil
}

// child makes the node for a backing entry.
func (n *node) child(ctx context.Context, st *syscall.Stat_t, gen uint64) *gofs.Inode {
	return n.NewInode(ctx, &node{m: n.m}, gofs.StableAttr{Mode: st.Mode & syscall.S_IFMT, Ino: st.Ino, Gen: gen})
}

// attr fills out from st, with the cached size of a regular file.
func (n *node) attr(st *syscall.Stat_t, out *fuse.Attr) {
	out.FromStat(st)
	if st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		return
	}
	if fl := n.fsys().cached(st.Ino); fl != nil {
		fl.mu.Lock()
		out.Size = uint64(fl.size)
		fl.mu.Unlock()
		out.Blocks = (out.Size + 511) / 512
	}
}

// stat stats the node: through the cache's descriptor when it has one (an
// unlinked file still open has no path), else its backing path.
func (n *node) stat() (syscall.Stat_t, error) {
	if fl := n.fsys().cached(n.ino()); fl != nil {
		var st syscall.Stat_t
		err := syscall.Fstat(int(fl.backing.Fd()), &st)
		return st, err
	}
	st, _, err := lstat(n.path())
	return st, err
}

func (n *node) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if n.down() {
		return nil, syscall.EIO
	}
	st, gen, err := lstat(filepath.Join(n.path(), name))
	if err != nil {
		return nil, gofs.ToErrno(err)
	}
	ch := n.child(ctx, &st, gen)
	ch.Operations().(*node).attr(&st, &out.Attr)
	return ch, 0
}

func (n *node) Getattr(ctx context.Context, _ gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	if n.down() {
		return syscall.EIO
	}
	st, err := n.stat()
	if err != nil {
		return gofs.ToErrno(err)
	}
	n.attr(&st, &out.Attr)
	return 0
}

// Statx is answered from Getattr: the backing file's statx would report
// its durable size.
func (n *node) Statx(ctx context.Context, _ gofs.FileHandle, flags, mask uint32, out *fuse.StatxOut) syscall.Errno {
	var a fuse.AttrOut
	if e := n.Getattr(ctx, nil, &a); e != 0 {
		return e
	}
	s := &out.Statx
	s.Mask = unix.STATX_BASIC_STATS
	s.Blksize, s.Nlink, s.Uid, s.Gid = a.Blksize, a.Nlink, a.Owner.Uid, a.Owner.Gid
	s.Mode, s.Ino, s.Size, s.Blocks = uint16(a.Mode), a.Ino, a.Size, a.Blocks
	s.Atime = fuse.SxTime{Sec: a.Atime, Nsec: a.Atimensec}
	s.Mtime = fuse.SxTime{Sec: a.Mtime, Nsec: a.Mtimensec}
	s.Ctime = fuse.SxTime{Sec: a.Ctime, Nsec: a.Ctimensec}
	return 0
}

func (n *node) Setattr(ctx context.Context, _ gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if n.down() {
		return syscall.EIO
	}
	if size, ok := in.GetSize(); ok {
		if e := n.truncate(int64(size)); e != 0 {
			return e
		}
	}
	// Metadata is not modelled: it reaches the backing inode at once.
	p := n.path()
	if fl := n.fsys().cached(n.ino()); fl != nil {
		p = "/proc/self/fd/" + strconv.Itoa(int(fl.backing.Fd()))
	}
	if mode, ok := in.GetMode(); ok {
		if err := syscall.Chmod(p, mode&07777); err != nil {
			return gofs.ToErrno(err)
		}
	}
	uid, uok := in.GetUID()
	gid, gok := in.GetGID()
	if uok || gok {
		u, g := -1, -1
		if uok {
			u = int(uid)
		}
		if gok {
			g = int(gid)
		}
		if err := syscall.Chown(p, u, g); err != nil {
			return gofs.ToErrno(err)
		}
	}
	atime, aok := in.GetATime()
	mtime, mok := in.GetMTime()
	if aok || mok {
		ts := []unix.Timespec{{Nsec: unix.UTIME_OMIT}, {Nsec: unix.UTIME_OMIT}}
		if aok {
			ts[0] = unix.NsecToTimespec(atime.UnixNano())
		}
		if mok {
			ts[1] = unix.NsecToTimespec(mtime.UnixNano())
		}
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, 0); err != nil {
			return gofs.ToErrno(err)
		}
	}
	return n.Getattr(ctx, nil, out)
}

// truncate sets the size of the regular file in the cache.
func (n *node) truncate(size int64) syscall.Errno {
	fl, err := n.fsys().fileOf(n.path(), n.ino())
	if err != nil {
		return gofs.ToErrno(err)
	}
	fl.mu.Lock()
	defer fl.mu.Unlock()
	if e := n.fsys().reserve(size - fl.size); e != 0 {
		return e
	}
	if err := fl.truncate(size); err != nil {
		n.fsys().reserve(fl.size - size) // give it back: the size did not change
		return gofs.ToErrno(err)
	}
	return 0
}

func (n *node) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	if n.down() {
		return nil, 0, syscall.EIO
	}
	if _, err := n.fsys().fileOf(n.path(), n.ino()); err != nil {
		return nil, 0, gofs.ToErrno(err)
	}
	if flags&syscall.O_TRUNC != 0 {
		if e := n.truncate(0); e != 0 {
			return nil, 0, e
		}
	}
	return &handle{}, 0, 0
}

func (n *node) Create(ctx context.Context, name string, flags, mode uint32, out *fuse.EntryOut) (*gofs.Inode, gofs.FileHandle, uint32, syscall.Errno) {
	if n.down() {
		return nil, nil, 0, syscall.EIO
	}
	f := n.fsys()
	p := filepath.Join(n.path(), name)
	f.mu.Lock()
	fd, err := syscall.Open(p, syscall.O_CREAT|syscall.O_EXCL|syscall.O_RDWR|syscall.O_CLOEXEC, mode&07777)
	created := err == nil
	if created {
		syscall.Close(fd)
		f.record(&nsOp{kind: opCreate, dirs: [2]dirRef{n.dirRef()}, name: name})
	}
	f.mu.Unlock()
	if !created && !(err == syscall.EEXIST && flags&syscall.O_EXCL == 0) {
		return nil, nil, 0, gofs.ToErrno(err)
	}
	st, gen, err := lstat(p)
	if err != nil {
		return nil, nil, 0, gofs.ToErrno(err)
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		return nil, nil, 0, syscall.EISDIR
	}
	ch := n.child(ctx, &st, gen)
	c := ch.Operations().(*node)
	if _, err := f.fileOf(p, st.Ino); err != nil {
		return nil, nil, 0, gofs.ToErrno(err)
	}
	if !created && flags&syscall.O_TRUNC != 0 {
		if e := c.truncate(0); e != 0 {
			return nil, nil, 0, e
		}
	}
	c.attr(&st, &out.Attr)
	return ch, &handle{}, 0, 0
}

// Tmpfile refuses O_TMPFILE: an unnamed file linked in later would need
// a LINK the model does not have.
func (n *node) Tmpfile(context.Context, uint32, uint32, *fuse.EntryOut) (*gofs.Inode, gofs.FileHandle, uint32, syscall.Errno) {
	return nil, nil, 0, syscall.EOPNOTSUPP
}

func (n *node) Read(ctx context.Context, _ gofs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if n.down() {
		return nil, syscall.EIO
	}
	fl, err := n.fsys().fileOf(n.path(), n.ino())
	if err != nil {
		return nil, gofs.ToErrno(err)
	}
	fl.mu.Lock()
	defer fl.mu.Unlock()
	k, err := fl.read(dest, off)
	if err != nil {
		return nil, gofs.ToErrno(err)
	}
	return fuse.ReadResultData(dest[:k]), 0
}

func (n *node) Write(ctx context.Context, _ gofs.FileHandle, data []byte, off int64) (uint32, syscall.Errno) {
	return n.Writev(ctx, nil, [][]byte{data}, off)
}

func (n *node) Writev(ctx context.Context, _ gofs.FileHandle, data [][]byte, off int64) (uint32, syscall.Errno) {
	if n.down() {
		return 0, syscall.EIO
	}
	fl, err := n.fsys().fileOf(n.path(), n.ino())
	if err != nil {
		return 0, gofs.ToErrno(err)
	}
	total := 0
	for _, d := range data {
		total += len(d)
	}
	fl.mu.Lock()
	defer fl.mu.Unlock()
	if grow := off + int64(total) - fl.size; grow > 0 {
		if e := n.fsys().reserve(grow); e != 0 {
			return 0, e
		}
	}
	for _, d := range data {
		if err := fl.write(d, off); err != nil {
			return 0, gofs.ToErrno(err)
		}
		off += int64(len(d))
	}
	return uint32(total), 0
}

// Fsync is fsync and fdatasync of a file, and fsync of a directory (the
// bridge sends FSYNCDIR here).
func (n *node) Fsync(ctx context.Context, _ gofs.FileHandle, flags uint32) syscall.Errno {
	if n.down() {
		return syscall.EIO
	}
	if n.IsDir() {
		return n.fsys().fsyncDir(n.path(), n.ino())
	}
	fl, err := n.fsys().fileOf(n.path(), n.ino())
	if err != nil {
		return gofs.ToErrno(err)
	}
	name, _ := n.Parent()
	return n.fsys().fsyncFile(fl, name, flags&1 != 0)
}

// Flush is close(2): it persists nothing.
func (n *node) Flush(context.Context, gofs.FileHandle) syscall.Errno { return 0 }

// Allocate refuses fallocate; posix_fallocate falls back to writes.
func (n *node) Allocate(context.Context, gofs.FileHandle, uint64, uint64, uint32) syscall.Errno {
	return syscall.EOPNOTSUPP
}

func (n *node) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if n.down() {
		return nil, syscall.EIO
	}
	f := n.fsys()
	p := filepath.Join(n.path(), name)
	f.mu.Lock()
	err := os.Mkdir(p, os.FileMode(mode&07777))
	if err == nil {
		f.record(&nsOp{kind: opCreate, dirs: [2]dirRef{n.dirRef()}, name: name, isDir: true})
	}
	f.mu.Unlock()
	if err != nil {
		return nil, gofs.ToErrno(err)
	}
	st, gen, err := lstat(p)
	if err != nil {
		return nil, gofs.ToErrno(err)
	}
	out.Attr.FromStat(&st)
	return n.child(ctx, &st, gen), 0
}

func (n *node) Unlink(ctx context.Context, name string) syscall.Errno {
	if n.down() {
		return syscall.EIO
	}
	f := n.fsys()
	p := filepath.Join(n.path(), name)
	st, _, err := lstat(p)
	if err != nil {
		return gofs.ToErrno(err)
	}
	if st.Mode&syscall.S_IFMT == syscall.S_IFDIR {
		return syscall.EISDIR
	}
	size := st.Size
	if fl := f.cached(st.Ino); fl != nil {
		fl.mu.Lock()
		size = fl.size
		fl.mu.Unlock()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	attic := f.atticPath()
	if err := syscall.Link(p, attic); err != nil {
		return gofs.ToErrno(err)
	}
	if err := syscall.Unlink(p); err != nil {
		syscall.Unlink(attic)
		return gofs.ToErrno(err)
	}
	f.record(&nsOp{kind: opRemove, dirs: [2]dirRef{n.dirRef()}, name: name, attic: attic})
	f.used.Add(-size)
	return 0
}

func (n *node) Rmdir(ctx context.Context, name string) syscall.Errno {
	if n.down() {
		return syscall.EIO
	}
	f := n.fsys()
	p := filepath.Join(n.path(), name)
	st, _, err := lstat(p)
	if err != nil {
		return gofs.ToErrno(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := syscall.Rmdir(p); err != nil {
		return gofs.ToErrno(err)
	}
	f.record(&nsOp{kind: opRemove, dirs: [2]dirRef{n.dirRef()}, name: name, isDir: true, mode: os.FileMode(st.Mode & 07777)})
	return 0
}

// Rename moves a file, replacing what the new name held (kept in the attic
// until the rename is durable). Directories are not renamed: EXDEV makes
// mv copy them instead.
func (n *node) Rename(ctx context.Context, name string, newParent gofs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	if n.down() {
		return syscall.EIO
	}
	np, ok := newParent.(*node)
	if !ok || np.m != n.m {
		return syscall.EXDEV
	}
	if flags&^unix.RENAME_NOREPLACE != 0 {
		return syscall.EINVAL // RENAME_EXCHANGE, RENAME_WHITEOUT
	}
	f := n.fsys()
	from := filepath.Join(n.path(), name)
	to := filepath.Join(np.path(), newName)
	st, _, err := lstat(from)
	if err != nil {
		return gofs.ToErrno(err)
	}
	if st.Mode&syscall.S_IFMT == syscall.S_IFDIR {
		return syscall.EXDEV
	}
	// The size the new name's file gives back to the space budget, read
	// before f.mu (a file's lock is never taken under it but at a cut).
	var replaced int64
	if old, _, err := lstat(to); err == nil {
		replaced = old.Size
		if fl := f.cached(old.Ino); fl != nil {
			fl.mu.Lock()
			replaced = fl.size
			fl.mu.Unlock()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	op := &nsOp{kind: opRename, dirs: [2]dirRef{n.dirRef(), np.dirRef()}, ndirs: 2, name: name, newName: newName}
	if old, _, err := lstat(to); err == nil {
		switch {
		case flags&unix.RENAME_NOREPLACE != 0:
			return syscall.EEXIST
		case old.Mode&syscall.S_IFMT == syscall.S_IFDIR:
			return syscall.EISDIR
		case old.Ino == st.Ino:
			return 0 // two names of one file: rename does nothing
		}
		op.attic = f.atticPath()
		if err := syscall.Link(to, op.attic); err != nil {
			return gofs.ToErrno(err)
		}
	} else {
		replaced = 0
	}
	if err := syscall.Rename(from, to); err != nil {
		if op.attic != "" {
			syscall.Unlink(op.attic)
		}
		return gofs.ToErrno(err)
	}
	f.record(op)
	f.used.Add(-replaced)
	return 0
}

func (n *node) Readdir(ctx context.Context) (gofs.DirStream, syscall.Errno) {
	if n.down() {
		return nil, syscall.EIO
	}
	p := n.path()
	ents, err := os.ReadDir(p)
	if err != nil {
		return nil, gofs.ToErrno(err)
	}
	list := make([]fuse.DirEntry, 0, len(ents))
	for _, e := range ents {
		st, _, err := lstat(filepath.Join(p, e.Name()))
		if err != nil {
			continue // gone since the listing
		}
		list = append(list, fuse.DirEntry{Name: e.Name(), Mode: st.Mode, Ino: st.Ino})
	}
	return gofs.NewListDirStream(list), 0
}

func (n *node) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	var s syscall.Statfs_t
	if err := syscall.Statfs(n.fsys().data, &s); err != nil {
		return gofs.ToErrno(err)
	}
	out.FromStatfsT(&s)
	f := n.fsys()
	if budget := f.budget.Load(); budget > 0 && out.Bsize > 0 {
		free := uint64(max(0, budget-f.used.Load())) / uint64(out.Bsize)
		out.Bfree, out.Bavail = min(out.Bfree, free), min(out.Bavail, free)
	}
	return 0
}
