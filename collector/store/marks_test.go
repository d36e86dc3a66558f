package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"edgecollector/collector"
	"edgecollector/collector/store"
	"edgecollector/internal/storetest"
)

func eventIDs(evs []collector.Event) []int64 {
	out := make([]int64, len(evs))
	for i, e := range evs {
		out[i] = e.ID
	}
	return out
}

// pick returns the events of evs with the ids [from, to] of ids.
func pick(evs []collector.Event, from, to int) []collector.Event {
	return slices.Clone(evs[from : to+1])
}

// TestMarksAreRunsOfIDs: marks in any order, overlapping, repeated, leave
// exactly the unmarked events in the backlog (the store's read and the
// view agree), count each event once, and merge into few runs.
func TestMarksAreRunsOfIDs(t *testing.T) {
	storetest.ForModes(t, func(t *testing.T, mode store.Mode) {
		path := storetest.Path(t)
		s := storetest.MustOpen(t, store.Options{Path: path, Mode: mode})
		ctx := context.Background()
		storetest.MustInsertEach(t, s, storetest.Fleet(3, 30))
		all, err := s.FetchBacklog(ctx, 0, 100)
		if err != nil || len(all) != 30 {
			t.Fatalf("backlog %d, %v; want 30", len(all), err)
		}
		now := time.Now()
		for i, step := range []struct {
			from, to int   // the events marked, by index
			uploaded int64 // the gauge after
		}{
			{10, 19, 10}, // a hole before it
			{0, 4, 15},
			{0, 9, 20},   // half marked already
			{12, 14, 20}, // all marked already
			{25, 27, 23},
			{20, 29, 30},
		} {
			if err := s.Checkpoint(ctx, pick(all, step.from, step.to), now, nil); err != nil {
				t.Fatalf("step %d: %v", i, err)
			}
			if got := s.Stats().Uploaded; got != step.uploaded {
				t.Errorf("step %d: uploaded = %d, want %d", i, got, step.uploaded)
			}
			if got := s.Backlog(); got != 30-step.uploaded {
				t.Errorf("step %d: backlog gauge = %d, want %d", i, got, 30-step.uploaded)
			}
			read, err := s.FetchBacklog(ctx, 0, 100)
			if err != nil {
				t.Fatal(err)
			}
			view := storetest.Int64s(t, s.DB(), `SELECT id FROM backlog ORDER BY id`)
			if !slices.Equal(eventIDs(read), view) || int64(len(view)) != 30-step.uploaded {
				t.Errorf("step %d: read %v, view %v; want the same %d", i, eventIDs(read), view, 30-step.uploaded)
			}
			if i == 0 {
				want := append(eventIDs(all[:10]), eventIDs(all[20:])...)
				if !slices.Equal(eventIDs(read), want) {
					t.Errorf("read past a marked run: %v, want %v", eventIDs(read), want)
				}
				if got, _ := s.FetchBacklog(ctx, all[5].ID, 3); !slices.Equal(eventIDs(got), eventIDs(all[6:9])) {
					t.Errorf("read after %d: %v", all[5].ID, eventIDs(got))
				}
				if got, _ := s.FetchBacklog(ctx, all[8].ID, 3); !slices.Equal(eventIDs(got), []int64{all[9].ID, all[20].ID, all[21].ID}) {
					t.Errorf("read across the run after %d: %v", all[8].ID, eventIDs(got))
				}
			}
		}
		// [0..4] grew to [0..9] and joined [10..19]; [25..27] joined it too.
		if n := storetest.Count(t, s.DB(), `SELECT count(*) FROM shipped`); n != 1 {
			t.Errorf("%d runs, want 1", n)
		}
		// Reopened, the backlog starts where it was.
		s.Close()
		s = storetest.MustOpen(t, store.Options{Path: path, Mode: mode})
		if got := s.Backlog(); got != 0 {
			t.Errorf("backlog after reopening = %d, want 0", got)
		}
		storetest.MustInsertEach(t, s, storetest.Fleet(3, 2))
		if got, _ := s.FetchBacklog(ctx, 0, 10); len(got) != 2 || got[0].ID != all[29].ID+1 {
			t.Errorf("after reopening, read %v, want the 2 new events", eventIDs(got))
		}
	})
}

// TestMarksSpanAMinute: a run grows for markSpan; a mark later begins
// another, and retention then deletes the older run's events and leaves the
// newer's, in purge transactions of a bounded size.
func TestMarksSpanAMinute(t *testing.T) {
	s := storetest.MustOpen(t, store.Options{})
	ctx := context.Background()
	for range 3 {
		if _, err := s.Insert(ctx, storetest.Events("d", 500)); err != nil {
			t.Fatal(err)
		}
	}
	all, err := s.FetchBacklog(ctx, 0, 2000)
	if err != nil || len(all) != 1500 {
		t.Fatalf("backlog %d, %v", len(all), err)
	}
	old := time.Now().Add(-48 * time.Hour)
	// 1,200 events marked over 50 s: one run, two days ago.
	for i := 0; i < 1200; i += 300 {
		if err := s.Checkpoint(ctx, all[i:i+300], old.Add(time.Duration(i/30)*time.Second), nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Checkpoint(ctx, all[1200:], time.Now(), nil); err != nil {
		t.Fatal(err)
	}
	if n := storetest.Count(t, s.DB(), `SELECT count(*) FROM shipped`); n != 2 {
		t.Errorf("%d runs, want 2: one grown for 40 s, one begun two days later", n)
	}
	n, err := s.Purge(ctx, time.Now().Add(-24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if n != 1200 {
		t.Errorf("purged %d, want the 1,200 shipped two days ago", n)
	}
	if got := storetest.Int64s(t, s.DB(), `SELECT id FROM events ORDER BY id`); !slices.Equal(got, eventIDs(all[1200:])) {
		t.Errorf("%d events left, want the 300 shipped now", len(got))
	}
	if got := storetest.Int64s(t, s.DB(), `SELECT first_id FROM shipped`); !slices.Equal(got, []int64{all[1200].ID}) {
		t.Errorf("runs left start at %v, want [%d]", got, all[1200].ID)
	}
}

// TestMigrateVersion2: a version 2 file's marks (uploaded_at in each row)
// become runs, and its backlog is what it was: the same ids, in order,
// around the rows marked and the ids purged.
func TestMigrateVersion2(t *testing.T) {
	path := storetest.Path(t)
	db, err := sql.Open(store.SQLite.Driver, store.SQLite.DSN(path, store.ConnConfig{BusyTimeout: time.Second, Synchronous: "FULL"}))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{store.MigrationV1, store.MigrationV2, `PRAGMA user_version = 2`} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	// ids 1..40; marked: 1-10, 15, 21-30 (of which 24-26 purged), 40.
	marked := func(id int) bool { return id <= 10 || id == 15 || (id >= 21 && id <= 30) || id == 40 }
	var backlog []int64
	for id := 1; id <= 40; id++ {
		if id >= 24 && id <= 26 {
			continue
		}
		var at any
		if marked(id) {
			at = 1_700_000_000_000 + id
		} else {
			backlog = append(backlog, int64(id))
		}
		if _, err := db.Exec(`INSERT INTO events (id, device_id, kind, ts, uploaded_at, received_at) VALUES (?, 'd', 'k', 1, ?, 1)`, id, at); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	s := storetest.MustOpen(t, store.Options{Path: path})
	if got := storetest.Int64s(t, s.DB(), `SELECT id FROM backlog ORDER BY id`); !slices.Equal(got, backlog) {
		t.Errorf("backlog view %v, want %v", got, backlog)
	}
	got, err := s.FetchBacklog(context.Background(), 0, 100)
	if err != nil || !slices.Equal(eventIDs(got), backlog) {
		t.Errorf("backlog read %v, %v; want %v", eventIDs(got), err, backlog)
	}
	if s.Backlog() != int64(len(backlog)) {
		t.Errorf("backlog gauge %d, want %d", s.Backlog(), len(backlog))
	}
	runs := storetest.Int64s(t, s.DB(), `SELECT first_id * 1000 + last_id FROM shipped ORDER BY first_id`)
	if want := []int64{1010, 15015, 21030, 40040}; !slices.Equal(runs, want) {
		t.Errorf("runs %v, want %v (first*1000+last)", runs, want)
	}
	if n := storetest.Count(t, s.DB(), `SELECT count(*) FROM pragma_table_info('events') WHERE name = 'uploaded_at'`); n != 0 {
		t.Error("events.uploaded_at is still there")
	}
	// New events go on after the old ones, and the backlog takes them.
	storetest.MustInsertEach(t, s, storetest.Events("n", 2))
	if got, _ := s.FetchBacklog(context.Background(), 39, 10); !slices.Equal(eventIDs(got), []int64{41, 42}) {
		t.Errorf("new events read %v, want [41 42]", eventIDs(got))
	}
}

// BenchmarkCheckpoint: the cost of marking a batch, which is the
// committer's time not spent on inserts.
func BenchmarkCheckpoint(b *testing.B) {
	for _, batch := range []int{100, 1000} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			s := storetest.MustOpen(b, store.Options{Synchronous: "NORMAL"})
			ctx := context.Background()
			evs := storetest.Fleet(8, batch)
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				if _, err := s.Insert(ctx, evs); err != nil {
					b.Fatal(err)
				}
				got, err := s.FetchBacklog(ctx, 0, batch)
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if err := s.Checkpoint(ctx, got, time.Now(), nil); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/event")
		})
	}
}

// TestOpenRefusesRunsItCouldNotHaveWritten: a run edited into the file that
// covers ids not yet given, or overlaps another, would keep events from
// ever being shipped; the file is refused, naming the run.
func TestOpenRefusesRunsItCouldNotHaveWritten(t *testing.T) {
	for _, tc := range []struct{ name, edit, want string }{
		{"past the ids given", `INSERT INTO shipped VALUES ((SELECT seq FROM sqlite_sequence) + 1, (SELECT seq FROM sqlite_sequence) + 100, 1, 1)`, "reaches past the last event id"},
		{"overlapping", `INSERT INTO shipped VALUES ((SELECT min(id) FROM events), (SELECT min(id) FROM events) + 5, 1, 1),
			((SELECT min(id) FROM events) + 3, (SELECT min(id) FROM events) + 4, 1, 1)`, "overlaps the next run"},
		{"sound", `INSERT INTO shipped VALUES ((SELECT min(id) FROM events), (SELECT min(id) FROM events) + 5, 1, 1)`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := storetest.Path(t)
			s := storetest.MustOpen(t, store.Options{Path: path})
			storetest.MustInsertEach(t, s, storetest.Events("d", 10))
			s.Close()
			db, err := sql.Open(store.SQLite.Driver, store.SQLite.DSN(path, store.ConnConfig{BusyTimeout: time.Second, Synchronous: "FULL"}))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := db.Exec(tc.edit); err != nil {
				t.Fatal(err)
			}
			db.Close()
			s2, err := store.Open(context.Background(), store.Options{Path: path})
			if tc.want == "" {
				if err != nil {
					t.Fatalf("open: %v", err)
				}
				defer s2.Close()
				if got := s2.Backlog(); got != 4 {
					t.Errorf("backlog = %d, want 4", got)
				}
				return
			}
			if err == nil {
				s2.Close()
				t.Fatalf("open: no error, want %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("open: %v, want %q", err, tc.want)
			}
		})
	}
}
