package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/diff"

	"edgecollector/collector"
	"edgecollector/collector/diag"
	"edgecollector/collector/store"
	"edgecollector/internal/storetest"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/ with what the code prints now")

// collector stats, as a table and as JSON, for an empty buffer and a busy
// one, against testdata/stats-*.golden. The buffer is real and read with
// diag.Stats at a fixed time; only the file's size is fixed by hand, since
// it depends on the engine's version and on when the WAL was checkpointed.
func TestStatsGolden(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		fill func(t *testing.T, st *store.Store, now time.Time)
	}{
		{"empty", func(*testing.T, *store.Store, time.Time) {}},
		{"busy", fillBusy},
	} {
		path := storetest.Path(t)
		st := storetest.MustOpen(t, store.Options{Path: path})
		tc.fill(t, st, now)
		d, err := diag.Open(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		s, err := d.Stats(context.Background(), now)
		d.Close()
		if err != nil {
			t.Fatal(err)
		}
		if s.File.Bytes == 0 || s.File.PageSize == 0 {
			t.Errorf("%s: file %+v, want its size", tc.name, s.File)
		}
		s.File = diag.FileStat{Bytes: 32768, WALBytes: 4152, PageSize: 4096, Pages: 8, FreePages: 1}
		for _, format := range []string{"table", "json"} {
			var got bytes.Buffer
			if err := writeStats(&got, s, format); err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join("testdata", "stats-"+tc.name+"."+format+".golden"), got.Bytes())
		}
	}
}

// fillBusy leaves two devices in the buffer: one silent for three hours
// with its events uploaded, one live with a backlog two hours deep, and
// the audit rows of an upload that worked and one that failed.
func fillBusy(t *testing.T, st *store.Store, now time.Time) {
	ctx := context.Background()
	silent := storetest.Repeat(collector.Event{DeviceID: "pump-7", Kind: "telemetry", TS: now.Add(-3 * time.Hour).UnixMilli()}, 3)
	storetest.MustInsert(t, st, silent)
	ok := collector.UploadRun{StartedAt: now.Add(-150 * time.Minute), FinishedAt: now.Add(-150 * time.Minute), EventCount: 3,
		FirstID: silent[0].ID, LastID: silent[2].ID, Status: collector.RunOK}
	if err := st.Checkpoint(ctx, silent, ok.FinishedAt, []collector.UploadRun{ok}); err != nil {
		t.Fatal(err)
	}
	live := storetest.Events("sensor-001", 4)
	for i := range live {
		live[i].TS = now.Add(-2*time.Hour + time.Duration(i)*time.Hour/2).UnixMilli()
	}
	storetest.MustInsert(t, st, live)
	failed := collector.UploadRun{StartedAt: now.Add(-10 * time.Minute), FinishedAt: now.Add(-10 * time.Minute), EventCount: 4,
		FirstID: live[0].ID, LastID: live[3].ID, Status: collector.RunFailed, Error: "webhook: 503 Service Unavailable"}
	if err := st.RecordRun(ctx, failed); err != nil {
		t.Fatal(err)
	}
	// Silence and backlog age are on the collector's clock: received when stamped.
	if _, err := st.DB().Exec(`UPDATE events SET received_at = ts`); err != nil {
		t.Fatal(err)
	}
}

// golden compares got with the file at path, or rewrites the file under
// -update. A mismatch prints a unified diff, want before got.
func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test ./collector/cmd/collector -run Golden -update writes it)", err)
	}
	if d := diff.Diff(path, want, "got", got); d != nil {
		t.Errorf("output differs from %s (go test ./collector/cmd/collector -run Golden -update rewrites it):\n%s", path, d)
	}
}
