package store_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"edgecollector/collector"
	"edgecollector/collector/store"
	"edgecollector/internal/storetest"
)

// What an operator can do to the buffer's path while the collector runs.
var replacements = []struct {
	name string
	// link: the store opens dir/events.db as a symlink to dir/a.db.
	link bool
	// do replaces the path; other is a second buffer with events of its own.
	do func(t *testing.T, dir, other string)
	// after is where other's file is once do ran ("" when untouched), or
	// "gone" when the path must name no file at all.
	after string
}{
	{"rm db and wal", false, func(t *testing.T, dir, _ string) {
		p := filepath.Join(dir, "events.db")
		mustRemove(t, p, p+"-wal")
	}, "gone"},
	{"rm db wal and shm", false, func(t *testing.T, dir, _ string) {
		p := filepath.Join(dir, "events.db")
		mustRemove(t, p, p+"-wal", p+"-shm")
	}, "gone"},
	{"rm wal only", false, func(t *testing.T, dir, _ string) {
		mustRemove(t, filepath.Join(dir, "events.db-wal"))
	}, ""},
	{"rename another file over it", false, func(t *testing.T, dir, other string) {
		p := filepath.Join(dir, "events.db")
		for _, suffix := range []string{"", "-wal", "-shm"} {
			if err := os.Rename(other+suffix, p+suffix); err != nil && suffix == "" {
				t.Fatal(err)
			}
		}
	}, "events.db"},
	{"swap the symlink", true, func(t *testing.T, dir, other string) {
		p := filepath.Join(dir, "events.db")
		tmp := p + ".new"
		if err := os.Symlink(other, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, p); err != nil { // atomic, as deploy tools swap links
			t.Fatal(err)
		}
	}, "other.db"},
}

func mustRemove(t *testing.T, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
}

// otherBuffer is a second, closed buffer with n events of its own.
func otherBuffer(t *testing.T, dir string, n int) string {
	t.Helper()
	path := filepath.Join(dir, "other.db")
	o, err := store.Open(context.Background(), store.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := o.Insert(context.Background(), storetest.Events("other", n)); err != nil {
		t.Fatal(err)
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// The buffer deleted or swapped underneath the store, in every mode: new
// events are refused (ErrBufferReplaced) and Health says so, naming the
// file; nothing reaches another file; what the open file holds can still
// be fetched and marked, so acknowledged events still leave; and at Close
// a backlog that would die with a deleted file is saved beside it.
func TestReplacedBufferStopsAcknowledging(t *testing.T) {
	for _, r := range replacements {
		t.Run(r.name, func(t *testing.T) {
			storetest.ForModes(t, func(t *testing.T, mode store.Mode) {
				dir := t.TempDir()
				other := otherBuffer(t, dir, 9)
				path := filepath.Join(dir, "events.db")
				if r.link {
					if err := os.Symlink(filepath.Join(dir, "a.db"), path); err != nil {
						t.Fatal(err)
					}
				}
				s, err := store.Open(context.Background(), store.Options{Path: path, Mode: mode, WatchEvery: time.Hour})
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				acked, err := s.Insert(context.Background(), storetest.Events("d", 5))
				if err != nil {
					t.Fatal(err)
				}

				before, err := os.ReadFile(other)
				if err != nil {
					t.Fatal(err)
				}
				r.do(t, dir, other)

				// Many requests at once: concurrent mode opens new connections.
				errs := make(chan error, 8)
				for range cap(errs) {
					go func() {
						_, err := s.Insert(context.Background(), storetest.Events("late", 3))
						errs <- err
					}()
				}
				for range cap(errs) {
					if err := <-errs; !errors.Is(err, collector.ErrBufferReplaced) {
						t.Fatalf("insert after the replacement: err = %v, want ErrBufferReplaced", err)
					}
				}
				h := s.Health()
				if h.OK || len(h.Problems) != 1 || !strings.Contains(h.Problems[0], dir) {
					t.Errorf("health = %+v, want a problem naming the file", h)
				}
				if got := s.Stats().Written; got != 5 {
					t.Errorf("events written = %d, want 5 (the refusals stored nothing)", got)
				}

				// The open file still ships: its backlog is exactly what was acknowledged.
				evs, err := s.FetchBacklog(context.Background(), 0, 100)
				if err != nil {
					t.Fatalf("fetch backlog after the replacement: %v", err)
				}
				got := make([]int64, len(evs))
				for i, e := range evs {
					got[i] = e.ID
				}
				if !slices.Equal(got, acked) {
					t.Errorf("backlog after the replacement = %v, want the acknowledged %v", got, acked)
				}
				if err := s.Checkpoint(context.Background(), evs[:2], time.Now(), nil); err != nil {
					t.Errorf("mark after the replacement: %v", err)
				}

				// Nothing reached whatever the path names now. (Its bytes,
				// not its rows: beside the path still lie our WAL and index,
				// and a reader would mix them with the new file's pages.)
				switch r.after {
				case "gone":
					if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
						t.Errorf("the deleted path names a file again (%v): a connection created it", err)
					}
				case "":
				default:
					if now, err := os.ReadFile(filepath.Join(dir, r.after)); err != nil || !bytes.Equal(now, before) {
						t.Errorf("the other buffer's file changed underneath it (%v)", err)
					}
				}

				// Closing saves a deleted file's backlog beside it.
				s.Close()
				saved, _ := filepath.Glob(path + ".rescued-*")
				if len(saved) != 1 {
					t.Fatalf("rescued files: %v, want one", saved)
				}
				if n := countIn(t, saved[0], `SELECT count(*) FROM backlog`); n != 3 {
					t.Errorf("rescued backlog = %d events, want 3", n)
				}
			})
		})
	}
}

func countIn(t *testing.T, path, query string) int64 {
	t.Helper()
	db, err := sql.Open(store.SQLite.Driver, store.SQLite.DSN(path, store.ConnConfig{BusyTimeout: time.Second, ReadOnly: true}))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	return storetest.Count(t, db, query)
}

// The keeper notices a replacement on its own, with no write to tell it.
func TestKeeperNoticesReplacementWhileIdle(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.db")
	s := storetest.MustOpen(t, store.Options{Path: path, WatchEvery: 10 * time.Millisecond})
	if !s.Health().OK {
		t.Fatalf("health before = %+v", s.Health())
	}
	mustRemove(t, path, path+"-wal")
	waitFor(t, func() bool { return !s.Health().OK })
	if h := s.Health(); !strings.Contains(h.Problems[0], path) {
		t.Errorf("health = %+v, want the file named", h)
	}
}

// BenchmarkCheckFile is the cost the identity check adds to each commit
// (three stat calls), to set against the commit's fsync.
func BenchmarkCheckFile(b *testing.B) {
	s := storetest.MustOpen(b, store.Options{})
	b.ReportAllocs()
	for b.Loop() {
		if err := store.CheckFile(s); err != nil {
			b.Fatal(err)
		}
	}
}
