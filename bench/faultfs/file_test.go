//go:build linux

package faultfs

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// TestFileCacheAgainstModel drives one file's cache (no FUSE needed) with
// seeded random writes, truncations and fsyncs, and checks it against two
// plain byte slices: what readers must see, and what must be durable. After
// every step a read returns the first; the backing file always holds the
// second; dropping the cache (a cut without torn writes) leaves exactly it.
func TestFileCacheAgainstModel(t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 7))
		p := filepath.Join(t.TempDir(), "f")
		initial := make([]byte, rng.IntN(3*pageSize))
		for i := range initial {
			initial[i] = byte(rng.IntN(256))
		}
		if err := os.WriteFile(p, initial, 0o644); err != nil {
			t.Fatal(err)
		}
		f, err := openFile(p, 1)
		if err != nil {
			t.Fatal(err)
		}
		current, durable := bytes.Clone(initial), bytes.Clone(initial)
		for step := range 60 {
			switch op := rng.IntN(10); {
			case op < 6: // write somewhere, maybe past the end
				off := int64(rng.IntN(4 * pageSize))
				data := make([]byte, 1+rng.IntN(2*pageSize))
				for i := range data {
					data[i] = byte(rng.IntN(256))
				}
				if err := f.write(data, off); err != nil {
					t.Fatal(err)
				}
				if end := off + int64(len(data)); end > int64(len(current)) {
					current = append(current, make([]byte, end-int64(len(current)))...)
				}
				copy(current[off:], data)
			case op < 8: // truncate, shorter or longer
				size := int64(rng.IntN(4 * pageSize))
				if err := f.truncate(size); err != nil {
					t.Fatal(err)
				}
				if size < int64(len(current)) {
					current = current[:size]
				} else {
					current = append(current, make([]byte, size-int64(len(current)))...)
				}
			default: // fsync
				if _, err := f.writeBack(); err != nil {
					t.Fatal(err)
				}
				durable = bytes.Clone(current)
			}
			got := make([]byte, len(current)+pageSize)
			n, err := f.read(got, 0)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got[:n], current) {
				t.Fatalf("seed %d step %d: read %d bytes, want the %d the writes made", seed, step, n, len(current))
			}
			if b, _ := os.ReadFile(p); !bytes.Equal(b, durable) {
				t.Fatalf("seed %d step %d: the backing file holds %d bytes, not the %d durable ones", seed, step, len(b), len(durable))
			}
		}
		f.close()
		// A cut without torn writes: the cache is dropped, the backing file
		// is what remains.
		if b, _ := os.ReadFile(p); !bytes.Equal(b, durable) {
			t.Fatalf("seed %d: after the cut %d bytes, want the %d durable ones", seed, len(b), len(durable))
		}
	}
}

// TestTearKeepsWholeSectors: a torn cut of the cache leaves every sector
// either as it was durable or as it was last written, never a mix, and no
// byte outside the sectors written changes.
func TestTearKeepsWholeSectors(t *testing.T) {
	kept, lost := 0, 0
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 9))
		p := filepath.Join(t.TempDir(), "f")
		old := bytes.Repeat([]byte{'o'}, 4*pageSize)
		if err := os.WriteFile(p, old, 0o644); err != nil {
			t.Fatal(err)
		}
		f, err := openFile(p, 1)
		if err != nil {
			t.Fatal(err)
		}
		// Unaligned writes: a sector is kept or lost whole even when only
		// part of it was written.
		written := make([]bool, len(old)/sectorSize)
		for range 5 {
			off := rng.IntN(len(old) - 700)
			n := 1 + rng.IntN(700)
			if err := f.write(bytes.Repeat([]byte{'N'}, n), int64(off)); err != nil {
				t.Fatal(err)
			}
			for s := off / sectorSize; s*sectorSize < off+n; s++ {
				written[s] = true
			}
		}
		want := make([]byte, len(old))
		if _, err := f.read(want, 0); err != nil {
			t.Fatal(err)
		}
		if _, err := f.tear(rng); err != nil {
			t.Fatal(err)
		}
		f.close()
		got, _ := os.ReadFile(p)
		for s := range written {
			sec := got[s*sectorSize : (s+1)*sectorSize]
			switch {
			case bytes.Equal(sec, old[s*sectorSize:(s+1)*sectorSize]):
				if written[s] {
					lost++
				}
			case bytes.Equal(sec, want[s*sectorSize:(s+1)*sectorSize]) && written[s]:
				kept++
			default:
				t.Fatalf("seed %d: sector %d is neither its durable nor its last written content", seed, s)
			}
		}
	}
	if kept == 0 || lost == 0 {
		t.Errorf("kept %d written sectors and lost %d: a torn cut should do both", kept, lost)
	}
}
