//go:build linux

package faultfs

import (
	"math/rand/v2"
	"os"
	"slices"
	"sync"
)

const (
	pageSize   = 4096
	sectorSize = 512 // the unit a torn write keeps or loses whole
	sectorsPer = pageSize / sectorSize
)

// page is a cached page of a file: its current content, and which of its
// sectors were written since the last fsync.
type page struct {
	data  [pageSize]byte
	dirty uint8 // bit i: sector i written since the last fsync
	// lost marks a page that was dirty when an fsync failed. As Linux does
	// after a writeback error, its content stays visible, but it is no
	// longer dirty: a later fsync does not write it (and succeeds), and a
	// cut forgets it. Writing to it again makes it dirty again.
	lost bool
}

// file is the cache of one backing inode. The backing file holds what is
// durable; everything written since the last fsync lives in pages.
//
// Invariants: every byte of a page at or past size is zero; backing bytes
// at or past low are not visible (a truncation not yet fsync'd); low <=
// durable, low <= size.
type file struct {
	mu      sync.Mutex
	ino     uint64
	backing *os.File // read-write on the backing inode, for the cache's lifetime
	durable int64    // the backing file's size
	size    int64    // the size readers see
	low     int64    // backing bytes at or past low read as zeros
	pages   map[int64]*page
}

func openFile(path string, ino uint64) (*file, error) {
	b, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	st, err := b.Stat()
	if err != nil {
		b.Close()
		return nil, err
	}
	n := st.Size()
	return &file{ino: ino, backing: b, durable: n, size: n, low: n, pages: make(map[int64]*page)}, nil
}

// visible is how much of the backing file readers may see.
func (f *file) visible() int64 { return min(f.low, f.durable) }

// base fills p with the backing content of page idx, zeros past what is visible.
func (f *file) base(idx int64, p *page) error {
	off := idx * pageSize
	n := min(int64(pageSize), max(0, f.visible()-off))
	if n > 0 {
		if _, err := f.backing.ReadAt(p.data[:n], off); err != nil {
			return err
		}
	}
	clear(p.data[n:])
	return nil
}

// page returns page idx, creating it from the backing content.
func (f *file) page(idx int64) (*page, error) {
	if p := f.pages[idx]; p != nil {
		return p, nil
	}
	p := new(page)
	if err := f.base(idx, p); err != nil {
		return nil, err
	}
	f.pages[idx] = p
	return p, nil
}

// read copies the file's content at off into dest, returning how much.
func (f *file) read(dest []byte, off int64) (int, error) {
	if off >= f.size {
		return 0, nil
	}
	n := int(min(int64(len(dest)), f.size-off))
	dest = dest[:n]
	// The backing content first, in one read, then the cached pages over it.
	vis := int(max(0, min(int64(n), f.visible()-off)))
	if vis > 0 {
		if _, err := f.backing.ReadAt(dest[:vis], off); err != nil {
			return 0, err
		}
	}
	clear(dest[vis:])
	for idx := off / pageSize; idx*pageSize < off+int64(n); idx++ {
		p := f.pages[idx]
		if p == nil {
			continue
		}
		start := max(off, idx*pageSize)
		end := min(off+int64(n), (idx+1)*pageSize)
		copy(dest[start-off:end-off], p.data[start-idx*pageSize:end-idx*pageSize])
	}
	return n, nil
}

// write puts data at off into the cache.
func (f *file) write(data []byte, off int64) error {
	end := off + int64(len(data))
	for idx := off / pageSize; idx*pageSize < end; idx++ {
		p, err := f.page(idx)
		if err != nil {
			return err
		}
		start := max(off, idx*pageSize)
		stop := min(end, (idx+1)*pageSize)
		copy(p.data[start-idx*pageSize:stop-idx*pageSize], data[start-off:stop-off])
		p.markDirty(start-idx*pageSize, stop-idx*pageSize)
	}
	f.size = max(f.size, end)
	return nil
}

// markDirty marks the sectors of [from, to) (offsets in the page) written.
func (p *page) markDirty(from, to int64) {
	for s := from / sectorSize; s*sectorSize < to; s++ {
		p.dirty |= 1 << s
	}
	p.lost = false
}

// truncate sets the size. Shrinking drops the pages past it, zeros the tail
// of the last one and hides the backing bytes past it until an fsync.
func (f *file) truncate(size int64) error {
	if size < f.size {
		for idx := range f.pages {
			if idx*pageSize >= size {
				delete(f.pages, idx)
			}
		}
		if r := size % pageSize; r != 0 {
			idx := size / pageSize
			p, err := f.page(idx)
			if err != nil {
				return err
			}
			clear(p.data[r:])
			p.markDirty(r, pageSize)
		}
		f.low = min(f.low, size)
	}
	f.size = size
	return nil
}

// writeBack writes the dirty pages and the size to the backing file (not
// flushed: the caller flushes) and marks the cache clean. Clean pages are
// dropped: the backing file now holds them. Lost pages stay, unwritten.
func (f *file) writeBack() (int64, error) {
	if f.low < f.durable {
		if err := f.backing.Truncate(f.low); err != nil {
			return 0, err
		}
		f.durable = f.low
	}
	var written int64
	for _, idx := range f.sortedPages() {
		p := f.pages[idx]
		if p.dirty == 0 {
			continue
		}
		off := idx * pageSize
		n := min(int64(pageSize), f.size-off)
		if n > 0 {
			if _, err := f.backing.WriteAt(p.data[:n], off); err != nil {
				return written, err
			}
			written += n
			f.durable = max(f.durable, off+n)
		}
	}
	if f.durable != f.size {
		if err := f.backing.Truncate(f.size); err != nil {
			return written, err
		}
	}
	f.durable, f.low = f.size, f.size
	for idx, p := range f.pages {
		if !p.lost {
			delete(f.pages, idx)
		}
	}
	return written, nil
}

// loseDirty is what a failed fsync does to the cache: the dirty pages
// become lost (visible until a cut, never written back).
func (f *file) loseDirty() {
	for _, p := range f.pages {
		if p.dirty != 0 {
			p.dirty, p.lost = 0, true
		}
	}
}

// dirtyBytes is how much a cut would forget.
func (f *file) dirtyBytes() int64 {
	var n int64
	for _, p := range f.pages {
		if p.dirty != 0 || p.lost {
			n += pageSize
		}
	}
	if f.size != f.durable || f.low != f.durable {
		n++ // a size change alone is something to forget too
	}
	return n
}

// tear is a torn cut: each sector written since the last fsync reaches the
// backing file, whole and with its latest content, or not at all, decided
// by rng; no other change survives. The file grows to the end of the last
// sector that landed past its durable size (at most its cached size);
// sectors between that did not land read as zeros. Pending truncations and
// lost pages are dropped. It returns the sectors kept.
func (f *file) tear(rng *rand.Rand) (kept int, err error) {
	end := f.durable
	for _, idx := range f.sortedPages() {
		p := f.pages[idx]
		for s := range sectorsPer {
			if p.dirty&(1<<s) == 0 || rng.IntN(2) == 0 {
				continue
			}
			off := idx*pageSize + int64(s)*sectorSize
			n := min(int64(sectorSize), f.size-off)
			if n <= 0 {
				continue
			}
			if _, err := f.backing.WriteAt(p.data[s*sectorSize:int64(s)*sectorSize+n], off); err != nil {
				return kept, err
			}
			kept++
			end = max(end, off+n)
		}
	}
	if end != f.durable {
		// WriteAt past the end grew the file; a sector past a gap leaves
		// zeros in the gap, as a filesystem that allocated the later block
		// first would.
		f.durable = end
	}
	return kept, nil
}

func (f *file) sortedPages() []int64 {
	idx := make([]int64, 0, len(f.pages))
	for i := range f.pages {
		idx = append(idx, i)
	}
	slices.Sort(idx)
	return idx
}

func (f *file) close() error { return f.backing.Close() }
