package store_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"edgecollector/collector"
	"edgecollector/collector/store"
	"edgecollector/internal/storetest"
)

func TestOpenSetsDurablePragmas(t *testing.T) {
	s := storetest.MustOpen(t, store.Options{Mode: store.Concurrent})
	var journal string
	var sync int
	if err := s.DB().QueryRow(`PRAGMA journal_mode`).Scan(&journal); err != nil {
		t.Fatal(err)
	}
	if err := s.DB().QueryRow(`PRAGMA synchronous`).Scan(&sync); err != nil {
		t.Fatal(err)
	}
	if got, want := journal, "wal"; got != want {
		t.Errorf("journal_mode = %q, want %q", got, want)
	}
	if got, want := sync, 2; got != want { // 2 = FULL: fsync on every commit
		t.Errorf("synchronous = %d, want %d", got, want)
	}
}

func TestInsertReopenNeverReusesIDs(t *testing.T) {
	storetest.ForModes(t, func(t *testing.T, mode store.Mode) {
		path := storetest.Path(t)
		s := storetest.MustOpen(t, store.Options{Path: path, Mode: mode})
		ids, err := s.Insert(context.Background(), storetest.Events("d1", 5))
		if err != nil {
			t.Fatal(err)
		}
		if got, want := len(ids), 5; got != want {
			t.Fatalf("ids = %d, want %d", got, want)
		}
		// Upload and purge every event, the newest included: a plain rowid
		// table would hand the same ids out again.
		evs, _ := s.FetchBacklog(context.Background(), 0, 100)
		if err := s.Checkpoint(context.Background(), evs, time.Now().Add(-time.Hour), nil); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Purge(context.Background(), time.Now()); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Insert(context.Background(), storetest.Events("d1", 2)); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}

		s2 := storetest.MustOpen(t, store.Options{Path: path, Mode: mode})
		if got, want := s2.Backlog(), int64(2); got != want {
			t.Errorf("backlog after reopen = %d, want %d", got, want)
		}
		ids2, err := s2.Insert(context.Background(), storetest.Events("d2", 1))
		if err != nil {
			t.Fatal(err)
		}
		if got, want := ids2[0], ids[4]+3; got != want {
			t.Errorf("id after purge and reopen = %d, want %d (never reused)", got, want)
		}
		// d1 was last shipped before the purge's cut: it went with its events.
		if got, want := s2.Stats().Devices, int64(0); got != want {
			t.Errorf("devices seen after reopen = %d, want %d", got, want)
		}
	})
}

// A buffer removed and started anew under the same collector id must not
// hand out an id a receiver has seen: receivers drop (collector_id, id)
// pairs they know as duplicates, for good.
func TestBufferStartedAnewNeverReusesIDs(t *testing.T) {
	path := storetest.Path(t)
	before := time.Now().UnixMicro()
	s := storetest.MustOpen(t, store.Options{Path: path})
	old := storetest.MustInsert(t, s, storetest.Events("d1", 3))
	if old[0] < before || old[0] > time.Now().UnixMicro() {
		t.Fatalf("first id %d, want the clock's microseconds at open (from %d)", old[0], before)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, suffix := range []string{"", "-wal", "-shm"} {
		os.Remove(path + suffix)
	}
	s2 := storetest.MustOpen(t, store.Options{Path: path})
	ids := storetest.MustInsert(t, s2, storetest.Events("d1", 1))
	if ids[0] <= old[len(old)-1] {
		t.Fatalf("new buffer's first id %d, want above the old buffer's last %d", ids[0], old[len(old)-1])
	}
}

// A clock that was never set (an edge box without a real-time clock boots
// in 1970) says nothing about ids given before: the seed is random, above
// every clock seed and exact in JSON readers.
func TestFirstEventIDWithUnsetClock(t *testing.T) {
	set := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	if got := store.FirstEventID(set); got != set.UnixMicro() {
		t.Errorf("set clock: %d, want %d", got, set.UnixMicro())
	}
	seen := map[int64]bool{}
	for range 100 {
		got := store.FirstEventID(time.Unix(42, 0))
		if got < 1<<52 || got >= 1<<53-1<<44 {
			t.Fatalf("unset clock: %d, want in [2^52, 2^53-2^44)", got)
		}
		seen[got] = true
	}
	if len(seen) < 99 {
		t.Errorf("unset clock: %d distinct seeds in 100, want random ones", len(seen))
	}
}

func TestBoundParametersStoreHostileTextVerbatim(t *testing.T) {
	s := storetest.MustOpen(t, store.Options{})
	hostile := `'); DROP TABLE events; --`
	e := collector.Event{DeviceID: hostile, Kind: `it's "quoted"`, TS: 1,
		Payload: json.RawMessage(`{"sql":"'); DROP TABLE events; --","u":"\u00e9 ☃ 💥"}`)}
	if _, err := s.Insert(context.Background(), []collector.Event{e}); err != nil {
		t.Fatal(err)
	}
	got, err := s.FetchBacklog(context.Background(), 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].DeviceID != e.DeviceID || got[0].Kind != e.Kind || string(got[0].Payload) != string(e.Payload) {
		t.Fatalf("stored %+v, want %+v verbatim", got, e)
	}
}

func TestIndexedAddsDeviceIndex(t *testing.T) {
	s := storetest.MustOpen(t, store.Options{Indexed: true})
	if got := storetest.Count(t, s.DB(), `SELECT count(*) FROM sqlite_master WHERE type='index' AND name='events_device'`); got != 1 {
		t.Errorf("events_device index count = %d, want 1", got)
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	path := storetest.Path(t)
	s := storetest.MustOpen(t, store.Options{Path: path})
	if _, err := s.DB().Exec(`PRAGMA user_version = 99`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err := store.Open(context.Background(), store.Options{Path: path})
	if err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("open of a newer schema: err = %v, want a refusal", err)
	}
}

func TestCommitCapRefusesOversizedRequest(t *testing.T) {
	storetest.ForModes(t, func(t *testing.T, mode store.Mode) {
		s := storetest.MustOpen(t, store.Options{Mode: mode, MaxCommitBytes: 4096})
		_, err := s.Insert(context.Background(), storetest.Events("d", 200)) // ~60 bytes each
		if !errors.Is(err, collector.ErrCommitTooLarge) {
			t.Fatalf("err = %v, want ErrCommitTooLarge", err)
		}
		if got := storetest.Count(t, s.DB(), `SELECT count(*) FROM events`); got != 0 {
			t.Errorf("events stored after refused request = %d, want 0", got)
		}
		if _, err := s.Insert(context.Background(), storetest.Events("d", 10)); err != nil {
			t.Errorf("request under the cap: %v", err)
		}
	})
}

// TestCheckpointUnderCap: a mark writes a run of ids, not every row, so a
// checkpoint of one device's events fits a 4 KiB commit whatever its size;
// one whose device rows do not fit is split until they do. Either way every
// event is marked exactly once.
func TestCheckpointUnderCap(t *testing.T) {
	storetest.ForModes(t, func(t *testing.T, mode store.Mode) {
		for _, tc := range []struct {
			name    string
			devices int
			split   bool
		}{{"one device", 1, false}, {"200 devices", 200, true}} {
			t.Run(tc.name, func(t *testing.T) {
				s := storetest.MustOpen(t, store.Options{Mode: mode, MaxCommitBytes: 4096})
				ctx := context.Background()
				evs := storetest.Fleet(tc.devices, 200)
				for i := 0; i < len(evs); i += 10 {
					if _, err := s.Insert(ctx, evs[i:i+10]); err != nil {
						t.Fatal(err)
					}
				}
				evs, err := s.FetchBacklog(ctx, 0, 200)
				if err != nil {
					t.Fatal(err)
				}
				if err := s.Checkpoint(ctx, evs, time.Now(), nil); err != nil {
					t.Fatalf("checkpoint: %v", err)
				}
				st := s.Stats()
				if split := st.ChunkSplits > 0; split != tc.split {
					t.Errorf("chunk splits = %d, want splits %v", st.ChunkSplits, tc.split)
				}
				if got, want := st.Uploaded, int64(200); got != want {
					t.Errorf("uploaded = %d, want %d", got, want)
				}
				if got := storetest.Count(t, s.DB(), `SELECT count(*) FROM backlog`); got != 0 {
					t.Errorf("unmarked after checkpoint = %d, want 0", got)
				}
				if got, want := st.Devices, int64(tc.devices); got != want {
					t.Errorf("devices = %d, want %d", got, want)
				}
				// Marking again changes nothing: every event is marked exactly once.
				if err := s.Checkpoint(ctx, evs, time.Now(), nil); err != nil {
					t.Fatal(err)
				}
				if got, want := s.Stats().Uploaded, int64(200); got != want {
					t.Errorf("uploaded after a repeated checkpoint = %d, want %d", got, want)
				}
			})
		}
	})
}

func TestConflictIsRetried(t *testing.T) {
	storetest.ForModes(t, func(t *testing.T, mode store.Mode) {
		path := storetest.Path(t)
		s := storetest.MustOpen(t, store.Options{Path: path, Mode: mode, BusyTimeout: 20 * time.Millisecond, MaxRetries: 50})
		release := storetest.HoldWriteLock(t, path)
		done := make(chan error, 1)
		go func() {
			_, err := s.Insert(context.Background(), storetest.Events("d", 3))
			done <- err
		}()
		// The lock is held for longer than the engine waits: the store must
		// see busy and retry, every run.
		deadline := time.Now().Add(5 * time.Second)
		for s.Stats().Retries < 2 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		release()
		if err := <-done; err != nil {
			t.Fatalf("insert after the lock was released: %v", err)
		}
		st := s.Stats()
		if st.Retries < 2 || st.Conflicts < st.Retries {
			t.Errorf("retries = %d, conflicts = %d; want >= 2 and conflicts >= retries", st.Retries, st.Conflicts)
		}
		if got := storetest.Count(t, s.DB(), `SELECT count(*) FROM events`); got != 3 {
			t.Errorf("events = %d, want 3", got)
		}
	})
}

func TestRetryBudgetExhausted(t *testing.T) {
	storetest.ForModes(t, func(t *testing.T, mode store.Mode) {
		path := storetest.Path(t)
		s := storetest.MustOpen(t, store.Options{Path: path, Mode: mode, BusyTimeout: 5 * time.Millisecond, MaxRetries: 3})
		release := storetest.HoldWriteLock(t, path)
		_, err := s.Insert(context.Background(), storetest.Events("d", 2))
		release()
		if !errors.Is(err, collector.ErrBusy) {
			t.Fatalf("err = %v, want ErrBusy", err)
		}
		if got, want := s.Stats().RetriesExhausted, int64(1); got != want {
			t.Errorf("retries exhausted = %d, want %d", got, want)
		}
		if got := storetest.Count(t, s.DB(), `SELECT count(*) FROM events`); got != 0 {
			t.Errorf("events stored by a failed request = %d, want 0", got)
		}
		if got := s.Backlog(); got != 0 {
			t.Errorf("backlog gauge = %d, want 0", got)
		}
	})
}

func TestManyWritersNothingDropped(t *testing.T) {
	storetest.ForModes(t, func(t *testing.T, mode store.Mode) {
		s := storetest.MustOpen(t, store.Options{Mode: mode})
		const writers, requests = 16, 25
		var mu sync.Mutex
		acked := map[int64]string{} // id -> payload

		var wg sync.WaitGroup
		errc := make(chan error, writers)
		for w := 0; w < writers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for r := 0; r < requests; r++ {
					evs := storetest.Events(fmt.Sprintf("w%d", w), 1+r%4)
					for i := range evs {
						evs[i].Payload = json.RawMessage(fmt.Sprintf(`{"w":%d,"r":%d,"i":%d}`, w, r, i))
					}
					ids, err := s.Insert(context.Background(), evs)
					if err != nil {
						errc <- err
						return
					}
					mu.Lock()
					for i, id := range ids {
						if _, dup := acked[id]; dup {
							errc <- fmt.Errorf("id %d acknowledged twice", id)
						}
						acked[id] = string(evs[i].Payload)
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		close(errc)
		for err := range errc {
			t.Fatal(err)
		}
		want := int64(len(acked))
		if got := storetest.Count(t, s.DB(), `SELECT count(*) FROM events`); got != want {
			t.Errorf("rows = %d, acknowledged = %d", got, want)
		}
		// Each acknowledged id holds exactly the event it was acknowledged for.
		for id, payload := range acked {
			var got string
			if err := s.DB().QueryRow(`SELECT payload_json FROM events WHERE id = ?`, id).Scan(&got); err != nil || got != payload {
				t.Fatalf("event %d = %q (%v), acknowledged as %q", id, got, err, payload)
			}
		}
		st := s.Stats()
		if st.Written != want || st.Backlog != want {
			t.Errorf("written = %d, backlog = %d; want %d", st.Written, st.Backlog, want)
		}
	})
}

func TestGroupBadRequestFailsAlone(t *testing.T) {
	path := storetest.Path(t)
	s := storetest.MustOpen(t, store.Options{Path: path, Mode: store.Group})
	ctx := context.Background()

	// Hold the lock so the committer is stuck on a first request while the
	// next three queue up; they then commit as one group.
	release := storetest.HoldWriteLock(t, path)
	results := make(chan error, 4)
	insert := func(evs []collector.Event) { _, err := s.Insert(ctx, evs); results <- err }
	go insert(storetest.Events("first", 1))
	waitFor(t, func() bool { return s.Stats().Conflicts > 0 })
	bad := storetest.Events("bad", 3)
	bad[1].Payload = json.RawMessage(`{not json`) // the schema's CHECK refuses it
	go insert(storetest.Events("good-a", 2))
	go insert(bad)
	go insert(storetest.Events("good-b", 1))
	waitFor(t, func() bool { return store.Queued(s) == 3 })
	release()

	var failed int
	for i := 0; i < 4; i++ {
		if err := <-results; err != nil {
			failed++
		}
	}
	if failed != 1 {
		t.Errorf("failed requests = %d, want exactly 1 (the bad one)", failed)
	}
	if got := storetest.Count(t, s.DB(), `SELECT count(*) FROM events WHERE device_id = 'bad'`); got != 0 {
		t.Errorf("events of the failed request stored = %d, want 0 (all or nothing)", got)
	}
	if got := storetest.Count(t, s.DB(), `SELECT count(*) FROM events`); got != 4 {
		t.Errorf("events stored = %d, want 4", got)
	}
	if got := s.Stats().Commits; got != 2 {
		t.Errorf("commits = %d, want 2 (the first request, then one group)", got)
	}
}

func TestSerializedAndConcurrentRequestIsAtomic(t *testing.T) {
	for _, mode := range []store.Mode{store.Serialized, store.Concurrent} {
		t.Run(string(mode), func(t *testing.T) {
			s := storetest.MustOpen(t, store.Options{Mode: mode})
			bad := storetest.Events("bad", 3)
			bad[2].Payload = json.RawMessage(`{not json`)
			if _, err := s.Insert(context.Background(), bad); err == nil {
				t.Fatal("insert of a request with an invalid payload succeeded")
			}
			if got := storetest.Count(t, s.DB(), `SELECT count(*) FROM events`); got != 0 {
				t.Errorf("events stored = %d, want 0", got)
			}
		})
	}
}

func TestPurgeKeepsBacklogAndRecent(t *testing.T) {
	s := storetest.MustOpen(t, store.Options{})
	ctx := context.Background()
	if _, err := s.Insert(ctx, storetest.Events("d", 1200)[:1000]); err != nil {
		t.Fatal(err)
	}
	old, _ := s.FetchBacklog(ctx, 0, 700)
	if err := s.Checkpoint(ctx, old[:600], time.Now().Add(-48*time.Hour), nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Checkpoint(ctx, old[600:], time.Now(), nil); err != nil {
		t.Fatal(err)
	}
	n, err := s.Purge(ctx, time.Now().Add(-24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if n != 600 {
		t.Errorf("purged = %d, want 600 (only old uploaded events, in several transactions)", n)
	}
	if got := storetest.Count(t, s.DB(), `SELECT count(*) FROM events`); got != 400 {
		t.Errorf("left = %d, want 400 (100 recent uploaded + 300 backlog)", got)
	}
	if got := s.Backlog(); got != 300 {
		t.Errorf("backlog = %d, want 300", got)
	}
}

func TestClosedStoreRefusesWrites(t *testing.T) {
	storetest.ForModes(t, func(t *testing.T, mode store.Mode) {
		s := storetest.MustOpen(t, store.Options{Mode: mode})
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Insert(context.Background(), storetest.Events("d", 1)); !errors.Is(err, collector.ErrClosed) {
			t.Errorf("insert after close: err = %v, want ErrClosed", err)
		}
	})
}

func TestRecordRun(t *testing.T) {
	s := storetest.MustOpen(t, store.Options{MaxCommitBytes: 4096})
	long := strings.Repeat("x", 10_000) // truncated so the row fits the cap
	for _, status := range []string{collector.RunOK, collector.RunFailed, collector.RunRejected} {
		if err := s.RecordRun(context.Background(), collector.UploadRun{
			StartedAt: time.Now(), FinishedAt: time.Now(), EventCount: 3, FirstID: 1, LastID: 3, Status: status, Error: long,
		}); err != nil {
			t.Fatalf("record %s run: %v", status, err)
		}
	}
	if got := storetest.Count(t, s.DB(), `SELECT count(*) FROM upload_runs WHERE length(error) <= 1024`); got != 3 {
		t.Errorf("audit rows = %d, want 3", got)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 5s")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestOneConnStillReads(t *testing.T) {
	storetest.ForModes(t, func(t *testing.T, mode store.Mode) {
		s := storetest.MustOpen(t, store.Options{Mode: mode, MaxConns: 1})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := s.Insert(ctx, storetest.Events("d", 2)); err != nil {
			t.Fatal(err)
		}
		evs, err := s.FetchBacklog(ctx, 0, 10)
		if err != nil || len(evs) != 2 {
			t.Fatalf("backlog with -max-conns 1: %d events, %v", len(evs), err)
		}
		if err := s.Checkpoint(ctx, evs, time.Now(), nil); err != nil {
			t.Fatal(err)
		}
	})
}

func TestOpenRefusesNonDatabaseAndLeavesItAlone(t *testing.T) {
	path := storetest.Path(t)
	junk := []byte("not a database, only text that is long enough to fill a header of sorts....")
	if err := os.WriteFile(path, junk, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := store.Open(context.Background(), store.Options{Path: path})
	if err == nil || !strings.Contains(err.Error(), "not a SQLite database") {
		t.Fatalf("open of a text file: err = %v", err)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, junk) {
		t.Error("the refused file was modified")
	}
}

func TestLargeRequestIDsMatchRows(t *testing.T) {
	storetest.ForModes(t, func(t *testing.T, mode store.Mode) {
		s := storetest.MustOpen(t, store.Options{Mode: mode})
		s.Insert(context.Background(), storetest.Events("warm", 3)) // ids need not start at 1
		evs := storetest.Events("d", 64+64+8+1)                     // every statement size, and several of one
		ids, err := s.Insert(context.Background(), evs)
		if err != nil {
			t.Fatal(err)
		}
		for i, id := range ids {
			var payload string
			s.DB().QueryRow(`SELECT payload_json FROM events WHERE id = ?`, id).Scan(&payload)
			if payload != string(evs[i].Payload) {
				t.Fatalf("event %d: id %d holds %q, want %q", i, id, payload, evs[i].Payload)
			}
		}
	})
}

func TestWriteGoesThroughEveryMode(t *testing.T) {
	storetest.ForModes(t, func(t *testing.T, mode store.Mode) {
		s := storetest.MustOpen(t, store.Options{Mode: mode})
		ctx := context.Background()
		ids, _ := s.Insert(ctx, storetest.Events("d", 4))
		bump := func(id int64) func(context.Context, *sql.Tx) error {
			return func(ctx context.Context, tx *sql.Tx) error {
				_, err := tx.ExecContext(ctx, `UPDATE events SET ts = ts + 1000 WHERE id = ?`, id)
				return err
			}
		}
		var wg sync.WaitGroup
		for _, id := range ids {
			wg.Add(1)
			go func() { defer wg.Done(); s.Write(ctx, bump(id)) }()
		}
		wg.Wait()
		if got := storetest.Count(t, s.DB(), `SELECT count(*) FROM events WHERE ts >= 1700000001000`); got != 4 {
			t.Errorf("rows updated through Write = %d, want 4", got)
		}
		oops := errors.New("oops")
		err := s.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
			tx.ExecContext(ctx, `DELETE FROM events`)
			return oops
		})
		if !errors.Is(err, oops) {
			t.Errorf("Write = %v, want the fn's error", err)
		}
		if got := storetest.Count(t, s.DB(), `SELECT count(*) FROM events`); got != 4 {
			t.Errorf("rows after a failed Write = %d, want 4 (rolled back)", got)
		}
	})
}

func TestGroupCommitsWritesWithInserts(t *testing.T) {
	path := storetest.Path(t)
	s := storetest.MustOpen(t, store.Options{Path: path, Mode: store.Group})
	ctx := context.Background()
	ids, _ := s.Insert(ctx, storetest.Events("seed", 2))

	release := storetest.HoldWriteLock(t, path)
	results := make(chan error, 5)
	go func() { _, err := s.Insert(ctx, storetest.Events("first", 1)); results <- err }()
	waitFor(t, func() bool { return s.Stats().Conflicts > 0 })
	update := func(id int64) {
		results <- s.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `UPDATE events SET kind = 'updated' WHERE id = ?`, id)
			return err
		})
	}
	go update(ids[0])
	go func() {
		results <- s.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, `UPDATE events SET kind = 'lost' WHERE id = ?`, ids[1]); err != nil {
				return err
			}
			return errors.New("changed my mind")
		})
	}()
	go update(ids[1])
	go func() { _, err := s.Insert(ctx, storetest.Events("last", 2)); results <- err }()
	waitFor(t, func() bool { return store.Queued(s) == 4 })
	release()

	var failed int
	for i := 0; i < 5; i++ {
		if err := <-results; err != nil {
			failed++
		}
	}
	if failed != 1 {
		t.Errorf("failed = %d, want 1 (the write that returned an error)", failed)
	}
	if got := storetest.Count(t, s.DB(), `SELECT count(*) FROM events WHERE kind = 'updated'`); got != 2 {
		t.Errorf("updated rows = %d, want 2", got)
	}
	if got := storetest.Count(t, s.DB(), `SELECT count(*) FROM events WHERE kind = 'lost'`); got != 0 {
		t.Errorf("rows changed by the failed write = %d, want 0", got)
	}
	if got := s.Stats().Commits; got != 3 {
		t.Errorf("ingest commits = %d, want 3: the seed, the first insert, then one group with the writes", got)
	}
}

// A store may be told to retry a busy transaction many times: every
// attempt's wait stays within the bound. The shift that doubles the wait
// once overflowed at the 64th attempt, and rand.N(0) panicked the request.
func TestBackoffStaysBoundedForAnyAttempt(t *testing.T) {
	for attempt := range 200 {
		if d := store.Backoff(attempt); d <= 0 || d > 150*time.Millisecond {
			t.Fatalf("backoff(%d) = %v, want within (0, 150ms]", attempt, d)
		}
	}
}
