//go:build linux

package faultfs

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// Usable reports whether this process can mount a faultfs: it needs Linux,
// root (the mount is direct, without fusermount) and a usable /dev/fuse.
func Usable() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: mounting needs root (uid %d)", ErrUnusable, os.Geteuid())
	}
	d, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnusable, err)
	}
	d.Close()
	return nil
}

// FS is a mounted faultfs. Its methods may be called from several
// goroutines.
type FS struct {
	dir, data, attic, mountpoint string
	opts                         Options
	rootIno                      uint64

	life sync.Mutex // one Cut or Close at a time
	cur  *mount     // nil while unmounted; under life

	// mu guards the model below. Lock order: mu, then a file's mu; never
	// mu while holding a file's (the space budget is atomic for that).
	mu       sync.Mutex
	files    map[uint64]*file
	journal  []*nsOp
	atticSeq int
	faults   []fault
	rng      *rand.Rand
	latency  time.Duration
	jitter   time.Duration
	stats    Stats

	used    atomic.Int64 // bytes the files hold, for the space budget
	budget  atomic.Int64
	noSpace atomic.Int64
	device  sync.Mutex // an emulated device flushes one fsync at a time
}

type fault struct {
	pattern string // path.Match against the file's name
	errno   syscall.Errno
}

// Mount mounts a faultfs at mountpoint over dir/data (made if missing;
// what it holds is taken as durable). dir/attic keeps what unlinks and
// renames took away until they are durable.
func Mount(dir, mountpoint string, o Options) (*FS, error) {
	if err := Usable(); err != nil {
		return nil, err
	}
	f := &FS{
		dir: dir, data: filepath.Join(dir, "data"), attic: filepath.Join(dir, "attic"), mountpoint: mountpoint,
		opts: o, files: make(map[uint64]*file),
		rng:     rand.New(rand.NewPCG(o.Seed, 0x6661756c74667321)),
		latency: o.FsyncLatency, jitter: o.FsyncJitter,
	}
	f.budget.Store(o.SpaceBudget)
	if err := os.MkdirAll(f.data, 0o755); err != nil {
		return nil, fmt.Errorf("faultfs: %w", err)
	}
	// A harness that died mid-run left an attic: its entries belong to a
	// model that is gone.
	if err := resetDir(f.attic); err != nil {
		return nil, fmt.Errorf("faultfs: %w", err)
	}
	var st syscall.Stat_t
	if err := syscall.Lstat(f.data, &st); err != nil {
		return nil, fmt.Errorf("faultfs: %w", err)
	}
	f.rootIno = st.Ino
	f.used.Store(du(f.data))
	if err := f.mount(); err != nil {
		return nil, err
	}
	return f, nil
}

// Mountpoint is where the filesystem is mounted.
func (f *FS) Mountpoint() string { return f.mountpoint }

// DataDir is the backing directory: what is durable, and, once Close has
// returned, what a cut left.
func (f *FS) DataDir() string { return f.data }

// Cut is a power cut: it unmounts the filesystem (the processes using it
// must be dead: a file still open makes the unmount lazy and the
// connection aborted), forgets everything not durable, and mounts it again.
// The unmount comes first so that what the kernel still writes back on its
// way out (dirty pages of a shared mmap) is forgotten too.
func (f *FS) Cut() (CutStats, error) {
	f.life.Lock()
	defer f.life.Unlock()
	if f.cur == nil {
		return CutStats{}, errors.New("faultfs: cut: not mounted")
	}
	start := time.Now()
	lazy, err := f.unmount()
	if err != nil {
		return CutStats{}, err
	}
	cs, err := f.forget()
	cs.UnmountLazy, cs.UnmountTaken = lazy, time.Since(start)
	if err != nil {
		return cs, err
	}
	return cs, f.mount()
}

// Close unmounts the filesystem and forgets what was not durable, as a
// cut would: DataDir then holds what a power cut at this moment leaves.
// It is safe to call more than once.
func (f *FS) Close() error {
	f.life.Lock()
	defer f.life.Unlock()
	if f.cur == nil {
		return nil
	}
	_, err := f.unmount()
	if _, ferr := f.forget(); err == nil {
		err = ferr
	}
	return err
}

// FailFsync makes the next fsync of a file whose name matches pattern
// (path.Match, e.g. "*-wal") fail once with errno (EIO when 0). Its dirty
// pages are dropped from what a later fsync writes: they stay visible until
// a cut, which forgets them.
func (f *FS) FailFsync(pattern string, errno syscall.Errno) {
	if errno == 0 {
		errno = syscall.EIO
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults = append(f.faults, fault{pattern, errno})
}

// SetFsyncLatency changes the emulated flush latency (see Options).
func (f *FS) SetFsyncLatency(latency, jitter time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.latency, f.jitter = latency, jitter
}

// SetSpaceBudget changes the space budget (see Options); 0 removes it.
func (f *FS) SetSpaceBudget(n int64) { f.budget.Store(n) }

// Used is how many bytes the files hold, as the space budget counts them.
func (f *FS) Used() int64 { return f.used.Load() }

// Stats returns the counters so far.
func (f *FS) Stats() Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.stats
	st.NoSpace = f.noSpace.Load()
	return st
}

// mount serves a fresh node tree at the mountpoint; under life.
func (f *FS) mount() error {
	m := &mount{fs: f}
	sec := time.Second
	opts := &gofs.Options{
		MountOptions: fuse.MountOptions{
			FsName:      "faultfs",
			Name:        "faultfs",
			DirectMount: true,
			// Without xattrs the kernel stops asking for
			// security.capability before every write.
			DisableXAttrs: true,
			Debug:         f.opts.Debug,
		},
		EntryTimeout: &sec,
		AttrTimeout:  &sec,
	}
	srv, err := gofs.Mount(f.mountpoint, &node{m: m}, opts)
	if err != nil {
		return fmt.Errorf("faultfs: mount %s: %w", f.mountpoint, err)
	}
	m.server = srv
	var st syscall.Stat_t
	if err := syscall.Stat(f.mountpoint, &st); err == nil {
		m.dev = st.Dev
	}
	f.cur = m
	return nil
}

// unmount takes the filesystem down. From the moment it starts, every
// request of the old mount fails with EIO: nothing reaches the model after
// the power is gone. A mount that stays busy is detached lazily and its
// connection aborted, so its server ends.
func (f *FS) unmount() (lazy bool, err error) {
	m := f.cur
	f.cur = nil
	m.dead.Store(true)
	if err := m.server.Unmount(); err == nil {
		return false, nil
	}
	if err := syscall.Unmount(f.mountpoint, unix.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
		return true, fmt.Errorf("faultfs: unmount %s: %w", f.mountpoint, err)
	}
	abortConnection(m.dev)
	done := make(chan struct{})
	go func() { // owned: ends when the aborted connection's loops do
		m.server.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		return true, fmt.Errorf("faultfs: %s detached, but its server did not stop", f.mountpoint)
	}
	return true, nil
}

// abortConnection aborts the FUSE connection of the device dev (best
// effort: it needs fusectl, mounted here if it is not).
func abortConnection(dev uint64) {
	const ctl = "/sys/fs/fuse/connections"
	p := filepath.Join(ctl, fmt.Sprint(unix.Minor(dev)), "abort")
	if _, err := os.Stat(p); err != nil {
		syscall.Mount("fusectl", ctl, "fusectl", 0, "")
	}
	os.WriteFile(p, []byte("1"), 0)
}

// forget drops everything not durable; nothing is mounted.
func (f *FS) forget() (CutStats, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var cs CutStats
	var errs []error
	inos := make([]uint64, 0, len(f.files))
	for ino := range f.files {
		inos = append(inos, ino)
	}
	slices.Sort(inos) // the torn sectors depend on the seed alone
	for _, ino := range inos {
		fl := f.files[ino]
		fl.mu.Lock() // a request of a detached mount may still hold it
		if fl.dirtyBytes() > 0 {
			cs.Files++
			for _, p := range fl.pages {
				if p.dirty != 0 || p.lost {
					cs.DirtyPages++
				}
			}
		}
		if f.opts.Torn {
			n, err := fl.tear(f.rng)
			cs.TornSectors += n
			if err != nil {
				errs = append(errs, fmt.Errorf("torn write of inode %d: %w", ino, err))
			}
		}
		fl.close()
		fl.mu.Unlock()
	}
	clear(f.files)
	n, err := f.undo()
	cs.UndoneOps = n
	if err != nil {
		errs = append(errs, err)
	}
	if err := resetDir(f.attic); err != nil {
		errs = append(errs, err)
	}
	f.used.Store(du(f.data))
	f.stats.Cuts++
	if err := errors.Join(errs...); err != nil {
		return cs, fmt.Errorf("faultfs: cut: %w", err)
	}
	return cs, nil
}

// fileOf returns the cache of the regular file at backing path p, inode
// ino, opening it on first use.
func (f *FS) fileOf(p string, ino uint64) (*file, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if fl := f.files[ino]; fl != nil {
		return fl, nil
	}
	fl, err := openFile(p, ino)
	if err != nil {
		return nil, err
	}
	f.files[ino] = fl
	return fl, nil
}

// cached returns the cache of inode ino, or nil.
func (f *FS) cached(ino uint64) *file {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.files[ino]
}

// reserve accounts for delta more bytes held, failing with ENOSPC past the
// budget. It takes no lock: callers hold a file's.
func (f *FS) reserve(delta int64) syscall.Errno {
	budget := f.budget.Load()
	for {
		u := f.used.Load()
		if delta > 0 && budget > 0 && u+delta > budget {
			f.noSpace.Add(1)
			return syscall.ENOSPC
		}
		if f.used.CompareAndSwap(u, u+delta) {
			return 0
		}
	}
}

// takeFault returns the errno an fsync of name must fail with, once.
func (f *FS) takeFault(name string) syscall.Errno {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, ft := range f.faults {
		if ok, _ := path.Match(ft.pattern, name); ok {
			f.faults = slices.Delete(f.faults, i, i+1)
			f.stats.FailedFsyncs++
			return ft.errno
		}
	}
	return 0
}

// flush makes what was written to a backing file durable: the backing
// disk's fsync, or the emulated device's latency.
func (f *FS) flush(sync func() error) error {
	f.mu.Lock()
	d := f.latency
	if f.jitter > 0 {
		d += time.Duration(f.rng.Int64N(int64(f.jitter)))
	}
	f.mu.Unlock()
	if d <= 0 {
		return sync()
	}
	f.device.Lock()
	defer f.device.Unlock()
	time.Sleep(d)
	return nil
}

// fsyncFile is fsync or fdatasync of a regular file.
func (f *FS) fsyncFile(fl *file, name string, datasync bool) syscall.Errno {
	if e := f.takeFault(name); e != 0 {
		fl.mu.Lock()
		fl.loseDirty()
		fl.mu.Unlock()
		return e
	}
	fl.mu.Lock()
	n, err := fl.writeBack()
	fl.mu.Unlock()
	if err != nil {
		return gofs.ToErrno(err)
	}
	err = f.flush(func() error {
		if datasync {
			return unix.Fdatasync(int(fl.backing.Fd()))
		}
		return fl.backing.Sync()
	})
	if err != nil {
		return gofs.ToErrno(err)
	}
	f.mu.Lock()
	f.stats.Fsyncs++
	f.stats.WrittenBack += n
	f.mu.Unlock()
	return 0
}

// fsyncDir is fsync of the directory at backing path p, inode ino.
func (f *FS) fsyncDir(p string, ino uint64) syscall.Errno {
	f.mu.Lock()
	f.syncDir(ino)
	f.stats.DirFsyncs++
	f.mu.Unlock()
	err := f.flush(func() error {
		d, err := os.Open(p)
		if err != nil {
			return err
		}
		defer d.Close()
		return d.Sync()
	})
	return gofs.ToErrno(err)
}

// resetDir empties dir, making it if missing.
func resetDir(dir string) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	return os.MkdirAll(dir, 0o755)
}

// du sums the sizes of the regular files under dir.
func du(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}
