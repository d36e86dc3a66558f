package store_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"edgecollector/collector"
	"edgecollector/collector/store"
	"edgecollector/internal/storetest"
)

// Checkpoint marks by runs of consecutive ids: a checkpoint of ids with
// gaps (what is left of a backlog after some events left it, or a batch
// taken in part) marks exactly those ids, not the gaps between them.
func TestCheckpointMarksExactlyTheIDsGiven(t *testing.T) {
	storetest.ForModes(t, func(t *testing.T, mode store.Mode) {
		s := storetest.MustOpen(t, store.Options{Mode: mode})
		ctx := context.Background()
		storetest.MustInsert(t, s, storetest.Fleet(3, 12))
		evs, err := s.FetchBacklog(ctx, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		pick := []int{0, 2, 3, 4, 7, 11} // runs [0] [2-4] [7] [11]
		var chosen []collector.Event
		for _, i := range pick {
			chosen = append(chosen, evs[i])
		}
		if err := s.Checkpoint(ctx, chosen, time.Now(), nil); err != nil {
			t.Fatal(err)
		}
		var want []int64
		for i, e := range evs {
			if !slices.Contains(pick, i) {
				want = append(want, e.ID)
			}
		}
		left, err := s.FetchBacklog(ctx, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		var got []int64
		for _, e := range left {
			got = append(got, e.ID)
		}
		if !slices.Equal(got, want) {
			t.Errorf("backlog after marking %v: %v, want %v", pick, got, want)
		}
		if st := s.Stats(); st.Uploaded != int64(len(pick)) || st.Backlog != int64(len(want)) {
			t.Errorf("uploaded %d, backlog %d; want %d, %d", st.Uploaded, st.Backlog, len(pick), len(want))
		}
		// Reading past an id, as the pipeline does, skips what is at or below it.
		after, err := s.FetchBacklog(ctx, evs[5].ID, 100)
		if err != nil || len(after) == 0 || after[0].ID <= evs[5].ID {
			t.Errorf("backlog after id %d: %v, %v", evs[5].ID, after, err)
		}
	})
}

// The devices gauge follows the upserts instead of counting the table after
// every checkpoint: it must agree with the table whatever mix of new and
// known devices a checkpoint holds, across chunk splits, more devices than
// one statement takes, and a reopen. Each device's row holds its newest
// event time and the time of its last mark.
func TestCheckpointDevicesGaugeFollowsTheTable(t *testing.T) {
	storetest.ForModes(t, func(t *testing.T, mode store.Mode) {
		for _, limit := range []int{0, 4096} {
			t.Run(fmt.Sprint("cap=", limit), func(t *testing.T) {
				path := storetest.Path(t)
				s := storetest.MustOpen(t, store.Options{Path: path, Mode: mode, MaxCommitBytes: limit})
				ctx := context.Background()
				check := func(when string) {
					t.Helper()
					if got, want := s.Stats().Devices, storetest.Count(t, s.DB(), `SELECT count(*) FROM devices`); got != want {
						t.Errorf("%s: devices gauge %d, table %d", when, got, want)
					}
				}
				at := time.UnixMilli(1_700_000_000_000)
				for round, devices := range []int{5, 8, 300, 3} { // new, some new, past one statement, all known
					var evs []collector.Event
					for d := range devices {
						for i := range 2 {
							evs = append(evs, collector.Event{DeviceID: fmt.Sprintf("dev-%d", d), Kind: "k", TS: int64(1000*round + i)})
						}
					}
					for part := range slices.Chunk(evs, 50) { // under the cap
						if _, err := s.Insert(ctx, part); err != nil {
							t.Fatal(err)
						}
					}
					backlog, err := s.FetchBacklog(ctx, 0, 10000)
					if err != nil {
						t.Fatal(err)
					}
					at = at.Add(time.Minute)
					if err := s.Checkpoint(ctx, backlog, at, nil); err != nil {
						t.Fatal(err)
					}
					check(fmt.Sprintf("round %d", round))
					var seen, shipped int64
					s.DB().QueryRow(`SELECT last_seen_at, last_shipped_at FROM devices WHERE device_key = 'dev-0'`).Scan(&seen, &shipped)
					if seen != int64(1000*round+1) || shipped != at.UnixMilli() {
						t.Errorf("round %d: dev-0 last seen %d, shipped %d; want %d, %d", round, seen, shipped, 1000*round+1, at.UnixMilli())
					}
				}
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
				s = storetest.MustOpen(t, store.Options{Path: path, Mode: mode})
				check("after a reopen")
				if got := s.Stats().Devices; got != 300 {
					t.Errorf("devices = %d, want 300", got)
				}
			})
		}
	})
}
