//go:build linux

package faultfs

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// mustMount mounts a faultfs for the test and unmounts it when the test
// ends, failed or not. Without FUSE the test is skipped with the reason.
func mustMount(t *testing.T, o Options) *FS {
	t.Helper()
	if err := Usable(); err != nil {
		t.Skipf("skipped: %v", err)
	}
	f, err := Mount(t.TempDir(), t.TempDir(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := f.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return f
}

func mustCut(t *testing.T, f *FS) CutStats {
	t.Helper()
	cs, err := f.Cut()
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// writeFile writes data to name under the mount; fsync says whether the
// file, and then its directory, are fsync'd.
func writeFile(t *testing.T, f *FS, name string, data []byte, fsyncFile, fsyncDir bool) {
	t.Helper()
	p := filepath.Join(f.Mountpoint(), name)
	w, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if fsyncFile {
		if err := w.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if fsyncDir {
		syncDir(t, filepath.Dir(p))
	}
}

func syncDir(t *testing.T, dir string) {
	t.Helper()
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		t.Fatal(err)
	}
}

// writeAt writes data at off of an existing file, fsync'd or not.
func writeAt(t *testing.T, f *FS, name string, data []byte, off int64, fsync bool) {
	t.Helper()
	w, err := os.OpenFile(filepath.Join(f.Mountpoint(), name), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.WriteAt(data, off); err != nil {
		t.Fatal(err)
	}
	if fsync {
		if err := w.Sync(); err != nil {
			t.Fatal(err)
		}
	}
}

func readFile(t *testing.T, f *FS, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(f.Mountpoint(), name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func exists(f *FS, name string) bool {
	_, err := os.Lstat(filepath.Join(f.Mountpoint(), name))
	return err == nil
}

// TestFsyncedSurvivesCut: what was fsync'd (file and directory) is there
// after a cut; what was appended after the fsync is not.
func TestFsyncedSurvivesCut(t *testing.T) {
	f := mustMount(t, Options{})
	writeFile(t, f, "a", []byte("durable"), true, true)
	writeAt(t, f, "a", []byte(" and volatile"), 7, false)
	if got, want := string(readFile(t, f, "a")), "durable and volatile"; got != want {
		t.Fatalf("before the cut: %q, want %q", got, want)
	}
	cs := mustCut(t, f)
	if got, want := string(readFile(t, f, "a")), "durable"; got != want {
		t.Errorf("after the cut: %q, want %q", got, want)
	}
	if cs.Files != 1 {
		t.Errorf("cut stats %+v: want one file forgotten", cs)
	}
}

// TestUnsyncedWriteGone: an overwrite, a truncation and an extension, none
// fsync'd, are all visible before a cut and all gone after it; the backing
// file never saw them.
func TestUnsyncedWriteGone(t *testing.T) {
	f := mustMount(t, Options{})
	old := bytes.Repeat([]byte("0123456789abcdef"), 1000) // 16,000 bytes, not page aligned
	writeFile(t, f, "a", old, true, true)
	writeFile(t, f, "b", old, true, true)
	writeFile(t, f, "c", old, true, true)

	writeAt(t, f, "a", bytes.Repeat([]byte("X"), 5000), 3000, false)
	if err := os.Truncate(filepath.Join(f.Mountpoint(), "b"), 100); err != nil {
		t.Fatal(err)
	}
	writeAt(t, f, "c", []byte("tail"), 20000, false)

	if got := readFile(t, f, "a"); bytes.Equal(got, old) || len(got) != len(old) {
		t.Fatalf("a before the cut: the overwrite is not visible")
	}
	if got := readFile(t, f, "b"); len(got) != 100 {
		t.Fatalf("b before the cut: %d bytes, want 100", len(got))
	}
	c := readFile(t, f, "c")
	if len(c) != 20004 || !bytes.Equal(c[:len(old)], old) || !bytes.Equal(c[len(old):20000], make([]byte, 20000-len(old))) {
		t.Fatalf("c before the cut: want the old content, a hole of zeros and the tail; got %d bytes", len(c))
	}
	for _, n := range []string{"a", "b", "c"} {
		if b, err := os.ReadFile(filepath.Join(f.DataDir(), n)); err != nil || !bytes.Equal(b, old) {
			t.Errorf("backing %s changed before any fsync (%v)", n, err)
		}
	}
	mustCut(t, f)
	for _, n := range []string{"a", "b", "c"} {
		if got := readFile(t, f, n); !bytes.Equal(got, old) {
			t.Errorf("%s after the cut: %d bytes, not the durable content", n, len(got))
		}
	}
}

// TestCreateNeedsDirFsync: a file created and fsync'd, but its directory
// not, is gone after a cut, data and all; with the directory fsync'd it
// stays. The same for a directory.
func TestCreateNeedsDirFsync(t *testing.T) {
	f := mustMount(t, Options{})
	mnt := f.Mountpoint()
	for _, d := range []string{"a", "b"} {
		if err := os.Mkdir(filepath.Join(mnt, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	syncDir(t, mnt)
	writeFile(t, f, "a/nodirsync", []byte("fsync'd data"), true, false)
	writeFile(t, f, "b/dirsync", []byte("fsync'd data"), true, true)
	if err := os.Mkdir(filepath.Join(mnt, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, f, "sub/inner", []byte("in a directory never made durable"), true, true)
	cs := mustCut(t, f)
	if exists(f, "a/nodirsync") {
		t.Error("a file whose directory was never fsync'd survived the cut")
	}
	if got := string(readFile(t, f, "b/dirsync")); got != "fsync'd data" {
		t.Errorf("b/dirsync: %q", got)
	}
	if exists(f, "sub") {
		t.Error("a directory whose parent was never fsync'd survived the cut")
	}
	// a/nodirsync and sub; sub/inner was durable in sub, unreachable now.
	if cs.UndoneOps != 2 {
		t.Errorf("cut stats %+v: want 2 operations undone", cs)
	}
}

// TestUnlinkAndRenameAtCut pins the namespace semantics the package doc
// states: an unlink or rename is undone by a cut unless every directory it
// touches was fsync'd after it; undone, the old names come back with their
// durable content (never with what was written and not fsync'd).
func TestUnlinkAndRenameAtCut(t *testing.T) {
	f := mustMount(t, Options{})
	mnt := f.Mountpoint()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"lose", "keep", "keep2"} {
		must(os.Mkdir(filepath.Join(mnt, d), 0o755))
		for _, n := range []string{"u", "r1", "r2", "m", "n"} {
			writeFile(t, f, d+"/"+n, []byte("durable "+d+"/"+n), true, false)
		}
		syncDir(t, filepath.Join(mnt, d))
	}
	syncDir(t, mnt)
	writeAt(t, f, "lose/u", []byte("VOLATILE"), 0, false)
	mv := func(a, b string) { t.Helper(); must(os.Rename(filepath.Join(mnt, a), filepath.Join(mnt, b))) }

	must(os.Remove(filepath.Join(mnt, "lose/u"))) // its directory never fsync'd again
	must(os.Remove(filepath.Join(mnt, "keep/u")))
	mv("lose/r1", "lose/r2") // replaces r2
	mv("keep/r1", "keep/r2")
	mv("keep/m", "lose/m2")  // only one of its directories fsync'd
	mv("keep/n", "keep2/n2") // both fsync'd
	syncDir(t, filepath.Join(mnt, "keep"))
	syncDir(t, filepath.Join(mnt, "keep2"))
	mustCut(t, f)

	want := map[string]string{ // "" : must not exist
		"lose/u": "durable lose/u", "keep/u": "",
		"lose/r1": "durable lose/r1", "lose/r2": "durable lose/r2",
		"keep/r1": "", "keep/r2": "durable keep/r1",
		"keep/m": "durable keep/m", "lose/m2": "",
		"keep/n": "", "keep2/n2": "durable keep/n", "keep2/n": "durable keep2/n",
	}
	for name, w := range want {
		switch b, err := os.ReadFile(filepath.Join(mnt, name)); {
		case w == "" && err == nil:
			t.Errorf("%s exists after the cut (%q), want it gone", name, b)
		case w == "" && !errors.Is(err, fs.ErrNotExist):
			t.Errorf("%s: %v", name, err)
		case w != "" && err != nil:
			t.Errorf("%s: %v, want %q", name, err, w)
		case w != "" && string(b) != w:
			t.Errorf("%s = %q, want %q", name, b, w)
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(f.dir, "attic")); len(ents) != 0 {
		t.Errorf("the attic keeps %d entries after the cut", len(ents))
	}
}

// TestTornWriteKeepsWholeSectors: with torn writes on, a cut keeps some of
// the sectors written since the last fsync and loses others, each whole:
// every 512-byte sector reads entirely old or entirely new. An extension
// keeps whole sectors too, and zeros where a sector did not land.
func TestTornWriteKeepsWholeSectors(t *testing.T) {
	f := mustMount(t, Options{Torn: true, Seed: 42})
	const sectors = 16
	pattern := func(tag byte) []byte {
		b := make([]byte, sectors*sectorSize)
		for s := range sectors {
			for i := range sectorSize {
				b[s*sectorSize+i] = tag + byte(s) // distinct per sector
			}
		}
		return b
	}
	old, upd := pattern('a'), pattern('A')
	var kept, lost, mixed int
	for round := range 8 {
		writeFile(t, f, "t", old, true, true)
		// Two writes, one straddling a page boundary off sector alignment
		// would tear inside a sector; these are whole sectors, in one
		// write past the end too.
		writeAt(t, f, "t", upd, 0, false)
		writeAt(t, f, "t", pattern('k'), int64(len(old)), false)
		mustCut(t, f)
		got := readFile(t, f, "t")
		if len(got)%sectorSize != 0 || len(got) < len(old) || len(got) > 2*len(old) {
			t.Fatalf("round %d: %d bytes after the cut", round, len(got))
		}
		k := 0
		for s := range len(got) / sectorSize {
			sec := got[s*sectorSize : (s+1)*sectorSize]
			var oldSec, newSec []byte
			if s < sectors {
				oldSec, newSec = old[s*sectorSize:(s+1)*sectorSize], upd[s*sectorSize:(s+1)*sectorSize]
			} else {
				oldSec, newSec = make([]byte, sectorSize), pattern('k')[(s-sectors)*sectorSize:(s-sectors+1)*sectorSize]
			}
			switch {
			case bytes.Equal(sec, newSec):
				kept++
				k++
			case bytes.Equal(sec, oldSec):
				lost++
			default:
				t.Fatalf("round %d: sector %d is neither old nor new: torn inside a sector", round, s)
			}
		}
		if k > 0 && k < len(got)/sectorSize {
			mixed++
		}
	}
	if kept == 0 || lost == 0 || mixed == 0 {
		t.Errorf("kept %d sectors, lost %d, %d rounds mixed: torn writes should keep some and lose some", kept, lost, mixed)
	}
	// Without Torn the same cut keeps nothing: the control.
	g := mustMount(t, Options{})
	writeFile(t, g, "t", old, true, true)
	writeAt(t, g, "t", upd, 0, false)
	if cs := mustCut(t, g); cs.TornSectors != 0 {
		t.Errorf("torn sectors without Options.Torn: %d", cs.TornSectors)
	}
	if !bytes.Equal(readFile(t, g, "t"), old) {
		t.Error("without torn writes a cut kept part of an un-fsync'd write")
	}
}

// TestFailedFsync: an fsync made to fail returns EIO; as on Linux, the
// data stays visible and a second fsync succeeds, yet the data is not
// durable (fsyncgate): the cut shows it. A later write and fsync are.
func TestFailedFsync(t *testing.T) {
	f := mustMount(t, Options{})
	writeFile(t, f, "f.db-wal", []byte("committed"), true, true)
	w, err := os.OpenFile(filepath.Join(f.Mountpoint(), "f.db-wal"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.WriteAt([]byte("LOSTLOST!"), 0); err != nil {
		t.Fatal(err)
	}
	f.FailFsync("*-wal", 0)
	if err := w.Sync(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("fsync = %v, want EIO", err)
	}
	if got := string(readFile(t, f, "f.db-wal")); got != "LOSTLOST!" {
		t.Errorf("after the failed fsync the cache shows %q", got)
	}
	if err := w.Sync(); err != nil {
		t.Fatalf("second fsync: %v (it fails once)", err)
	}
	// Another page: writing the lost page again would make it dirty
	// again, whole, as on Linux.
	if _, err := w.WriteAt([]byte("later"), 8192); err != nil {
		t.Fatal(err)
	}
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if got := f.Stats().FailedFsyncs; got != 1 {
		t.Errorf("FailedFsyncs = %d", got)
	}
	mustCut(t, f)
	got := readFile(t, f, "f.db-wal")
	if string(got[:9]) != "committed" {
		t.Errorf("the failed fsync's data survived the cut: %q", got[:9])
	}
	if string(got[8192:]) != "later" {
		t.Errorf("the write fsync'd after the failure is missing: %q", got[8192:])
	}
}

// TestSpaceBudget: past the budget a write fails with ENOSPC and changes
// nothing; space freed by a truncation is usable again.
func TestSpaceBudget(t *testing.T) {
	f := mustMount(t, Options{SpaceBudget: 64 << 10})
	writeFile(t, f, "a", make([]byte, 48<<10), true, true)
	w, err := os.OpenFile(filepath.Join(f.Mountpoint(), "a"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.WriteAt(make([]byte, 32<<10), 48<<10); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("write past the budget = %v, want ENOSPC", err)
	}
	if st, _ := w.Stat(); st.Size() != 48<<10 {
		t.Errorf("size after the refused write: %d", st.Size())
	}
	if err := w.Truncate(8 << 10); err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteAt(make([]byte, 32<<10), 8<<10); err != nil {
		t.Errorf("write after freeing space: %v", err)
	}
	if f.Stats().NoSpace != 1 {
		t.Errorf("NoSpace = %d", f.Stats().NoSpace)
	}
}

// TestFsyncLatency: an emulated device's fsync takes at least its latency.
func TestFsyncLatency(t *testing.T) {
	const lat = 25 * time.Millisecond
	f := mustMount(t, Options{FsyncLatency: lat})
	w, err := os.Create(filepath.Join(f.Mountpoint(), "a"))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.Write([]byte("x"))
	start := time.Now()
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < lat {
		t.Errorf("fsync took %s, less than the emulated %s", d, lat)
	}
}

// TestNoBypass: the paths that would read or write the backing file
// directly all see the cache: statx reports the cached size,
// copy_file_range copies cached data (and what it writes is not durable),
// O_TMPFILE is refused. (Shared mmap, which must not be tried in the
// serving process, is covered by the SQLite tests' WAL index.)
func TestNoBypass(t *testing.T) {
	f := mustMount(t, Options{})
	mnt := f.Mountpoint()
	writeFile(t, f, "src", nil, true, true)
	writeFile(t, f, "dst", nil, true, true)
	data := bytes.Repeat([]byte("cached "), 3000)
	writeAt(t, f, "src", data, 0, false)

	var sx unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, filepath.Join(mnt, "src"), 0, unix.STATX_SIZE, &sx); err != nil {
		t.Fatal(err)
	}
	if sx.Size != uint64(len(data)) {
		t.Errorf("statx size %d, want the cached %d", sx.Size, len(data))
	}
	src, err := os.Open(filepath.Join(mnt, "src"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(filepath.Join(mnt, "dst"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	n, err := unix.CopyFileRange(int(src.Fd()), nil, int(dst.Fd()), nil, len(data), 0)
	if err != nil || n != len(data) {
		t.Fatalf("copy_file_range: %d, %v", n, err)
	}
	if got := readFile(t, f, "dst"); !bytes.Equal(got, data) {
		t.Errorf("copy_file_range copied %d bytes, not the cached data", len(got))
	}
	if _, err := unix.Open(mnt, unix.O_TMPFILE|unix.O_RDWR, 0o644); err == nil {
		t.Error("O_TMPFILE was allowed")
	}
	for _, n := range []string{"src", "dst"} {
		if st, err := os.Stat(filepath.Join(f.DataDir(), n)); err != nil || st.Size() != 0 {
			t.Errorf("backing %s: %v, size %d: written before any fsync", n, err, st.Size())
		}
	}
	src.Close()
	dst.Close()
	mustCut(t, f)
	if got := readFile(t, f, "dst"); len(got) != 0 {
		t.Errorf("dst after the cut: %d bytes, want 0", len(got))
	}
}

// TestCutWithFileOpen: a cut while a file is still open (a process that
// outlived the power) detaches the mount lazily, and the filesystem comes
// back mounted and usable; the stale descriptor no longer reaches it.
func TestCutWithFileOpen(t *testing.T) {
	f := mustMount(t, Options{})
	writeFile(t, f, "a", []byte("durable"), true, true)
	w, err := os.OpenFile(filepath.Join(f.Mountpoint(), "a"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	cs := mustCut(t, f)
	if !cs.UnmountLazy {
		t.Errorf("cut stats %+v: want a lazy unmount", cs)
	}
	if _, err := w.WriteAt([]byte("stale"), 0); err == nil {
		if err := w.Sync(); err == nil {
			t.Error("a descriptor from before the cut still writes and fsyncs")
		}
	}
	if got := string(readFile(t, f, "a")); got != "durable" {
		t.Errorf("after the cut: %q", got)
	}
}

// TestRemote drives a faultfs served by a child process: a cut forgets
// what was not fsync'd, a failed fsync is injected, and Close leaves the
// durable state in DataDir and no mount behind.
func TestRemote(t *testing.T) {
	if err := Usable(); err != nil {
		t.Skipf("skipped: %v", err)
	}
	mnt := t.TempDir()
	r, err := StartRemote(t.TempDir(), mnt, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	p := filepath.Join(mnt, "a")
	w, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("durable"))
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	d, _ := os.Open(mnt)
	d.Sync()
	d.Close()
	if err := os.WriteFile(p, []byte("volatile"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Cut(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "durable" {
		t.Errorf("after the cut: %q", b)
	}
	if err := r.FailFsync("a", 0); err != nil {
		t.Fatal(err)
	}
	w, err = os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Sync(); !errors.Is(err, syscall.EIO) {
		t.Errorf("fsync = %v, want EIO", err)
	}
	w.Close()
	st, err := r.Stats()
	if err != nil || st.Cuts != 1 || st.FailedFsyncs != 1 {
		t.Errorf("stats %+v, %v", st, err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(r.DataDir(), "a")); string(b) != "durable" {
		t.Errorf("data directory after close: %q", b)
	}
	var sfs unix.Statfs_t
	if err := unix.Statfs(mnt, &sfs); err == nil && sfs.Type == unix.FUSE_SUPER_MAGIC {
		t.Error("still mounted after Close")
	}
}
