//go:build linux

package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"edgecollector/collector"
	"edgecollector/collector/store"
	"edgecollector/internal/storetest"
)

// TestDiskFullRefusesThenRecovers fills a real, small filesystem (a 2 MiB
// tmpfs) until SQLite reports it full: the write fails with ErrDiskFull,
// everything acknowledged before is intact, and once space returns ingest
// resumes on the same store without a restart.
func TestDiskFullRefusesThenRecovers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a size-limited tmpfs needs root")
	}
	for _, mode := range store.Modes {
		t.Run(string(mode), func(t *testing.T) { diskFull(t, mode) })
	}
}

func diskFull(t *testing.T, mode store.Mode) {
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=2m"); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v): disk-full is not testable on this machine", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	filler := filepath.Join(dir, "filler")
	if err := os.WriteFile(filler, make([]byte, 512<<10), 0o644); err != nil {
		t.Fatal(err)
	}

	s, err := store.Open(context.Background(), store.Options{Path: filepath.Join(dir, "events.db"), Mode: mode})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	batch := func(i int) []collector.Event {
		evs := storetest.Events(fmt.Sprintf("d%d", i), 10)
		for j := range evs {
			evs[j].Payload = json.RawMessage(`{"pad":"` + strings.Repeat("x", 1000) + `"}`)
		}
		return evs
	}
	var acked int64
	var full error
	for i := 0; i < 1000 && full == nil; i++ {
		if _, err := s.Insert(context.Background(), batch(i)); err != nil {
			full = err
			break
		}
		acked += 10
	}
	if !errors.Is(full, collector.ErrDiskFull) {
		t.Fatalf("after %d events: err = %v, want ErrDiskFull", acked, full)
	}
	if got := storetest.Count(t, s.DB(), `SELECT count(*) FROM events`); got != acked {
		t.Errorf("rows = %d, acknowledged = %d", got, acked)
	}
	if got := s.Backlog(); got != acked {
		t.Errorf("backlog gauge = %d, want %d", got, acked)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Insert(context.Background(), batch(-1)); err != nil {
		t.Fatalf("insert after space returned: %v", err)
	}
	if got := storetest.Count(t, s.DB(), `SELECT count(*) FROM events`); got != acked+10 {
		t.Errorf("rows = %d, want %d", got, acked+10)
	}
}
