package diag

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"edgecollector/collector"
	"edgecollector/collector/store"
	"edgecollector/internal/storetest"
)

// liveBuffer opens a writing store and a read-only diag view of the same file,
// as an operator would while the collector runs.
func liveBuffer(t *testing.T) (*store.Store, *DB) {
	t.Helper()
	path := storetest.Path(t)
	st := storetest.MustOpen(t, store.Options{Path: path, FirstID: 1}) // the bypasses delete by id
	d, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return st, d
}

// insert commits n alike events from device at ts as one request and
// returns them with their ids.
func insert(t *testing.T, st *store.Store, device string, ts int64, n int) []collector.Event {
	t.Helper()
	evs := storetest.Repeat(collector.Event{DeviceID: device, Kind: "telemetry", TS: ts, Payload: []byte(`{"v":1}`)}, n)
	storetest.MustInsert(t, st, evs)
	return evs
}

func TestQueryReadsLiveFileAndRefusesWrites(t *testing.T) {
	st, d := liveBuffer(t)
	ctx := context.Background()
	insert(t, st, "a", 1, 3)
	res, err := d.Query(ctx, `SELECT count(*) AS n FROM events`, 10)
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Rows[0][0]; got != int64(3) {
		t.Errorf("count = %v, want 3", got)
	}
	insert(t, st, "a", 2, 2) // the writer carries on; the reader sees it
	res, _ = d.Query(ctx, `SELECT count(*) AS n FROM events`, 10)
	if got := res.Rows[0][0]; got != int64(5) {
		t.Errorf("count after more writes = %v, want 5", got)
	}
	for _, q := range []string{
		`DELETE FROM events`,
		`UPDATE events SET kind = 'x'`,
		`INSERT INTO devices (device_key) VALUES ('evil')`,
		`DROP TABLE events`,
		`PRAGMA user_version = 7`,
	} {
		if _, err := d.Query(ctx, q, 10); !errors.Is(err, ErrReadOnly) {
			t.Errorf("%s: err = %v, want ErrReadOnly", q, err)
		}
	}
	if got := st.Stats().Backlog; got != 5 {
		t.Errorf("backlog = %d after refused writes, want 5", got)
	}
	if _, err := d.Query(ctx, `SELEKT 1`, 10); err == nil || !strings.Contains(err.Error(), "syntax") {
		t.Errorf("bad SQL: err = %v, want a syntax error", err)
	}
}

func TestQueryLimitAndFormats(t *testing.T) {
	st, d := liveBuffer(t)
	insert(t, st, "dev,\"quoted\"", 5, 4)
	res, err := d.Query(context.Background(), `SELECT e.id, e.device_id, e.payload_json, s.last_at AS uploaded_at FROM events AS e LEFT JOIN shipped AS s ON e.id BETWEEN s.first_id AND s.last_id ORDER BY e.id`, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rows) != 3 || !res.Truncated {
		t.Fatalf("rows = %d truncated = %v, want 3 and true", len(res.Rows), res.Truncated)
	}
	for format, want := range map[string]string{
		"table": "id  device_id     payload_json  uploaded_at\n1   dev,\"quoted\"  {\"v\":1}       NULL\n",
		"csv":   "id,device_id,payload_json,uploaded_at\n1,\"dev,\"\"quoted\"\"\",\"{\"\"v\"\":1}\",\n",
		"json":  "[\n  {\n    \"device_id\": \"dev,\\\"quoted\\\"\",\n    \"id\": 1,\n    \"payload_json\": \"{\\\"v\\\":1}\",\n    \"uploaded_at\": null\n  },",
	} {
		var b bytes.Buffer
		if err := res.Write(&b, format); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(b.String(), want) {
			t.Errorf("%s output:\n%s\nwant prefix:\n%s", format, b.String(), want)
		}
	}
	var b bytes.Buffer
	res.Write(&b, "table")
	if !strings.Contains(b.String(), "(first 3 rows; raise -limit for more)") {
		t.Errorf("table output does not say it was truncated:\n%s", b.String())
	}
}

func TestStatsAnswersBacklogAndSilentDevices(t *testing.T) {
	st, d := liveBuffer(t)
	ctx := context.Background()
	now := time.Now()
	quiet := insert(t, st, "quiet", now.Add(-2*time.Hour).UnixMilli(), 2)
	insert(t, st, "chatty", now.Add(-time.Minute).UnixMilli(), 3)
	receivedWhenStamped(t, st)
	if err := st.Checkpoint(ctx, quiet, now, []collector.UploadRun{{StartedAt: now, FinishedAt: now, EventCount: 2, Status: collector.RunOK}}); err != nil {
		t.Fatal(err)
	}
	if err := st.RecordRun(ctx, collector.UploadRun{StartedAt: now, FinishedAt: now, EventCount: 3, Status: collector.RunFailed, Error: "sink down"}); err != nil {
		t.Fatal(err)
	}
	s, err := d.Stats(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	if s.Events != 5 || s.Backlog != 3 || s.FailedRunsLastHour != 1 {
		t.Errorf("events = %d, backlog = %d, failed = %d; want 5, 3, 1", s.Events, s.Backlog, s.FailedRunsLastHour)
	}
	if age := s.OldestBacklogAgeS; age < 59 || age > 61 {
		t.Errorf("oldest backlog age = %vs, want ~60s", age)
	}
	if len(s.Devices) != 2 || s.Devices[0].Device != "quiet" || s.Devices[0].SilentForS < 7199 {
		t.Errorf("devices = %+v, want quiet first, silent for 2h", s.Devices)
	}
	if len(s.RecentRuns) != 2 || s.RecentRuns[0].Status != "failed" || s.RecentRuns[0].Error != "sink down" {
		t.Errorf("recent runs = %+v", s.RecentRuns)
	}
	if s.File.Bytes == 0 || s.File.PageSize == 0 {
		t.Errorf("file = %+v", s.File)
	}
}

// receivedWhenStamped backdates the collector's receipt times to the
// events' ts, as if producers with good clocks had sent them back then:
// silence and backlog age are measured on the collector's clock.
func receivedWhenStamped(t *testing.T, st *store.Store) {
	t.Helper()
	if _, err := st.DB().Exec(`UPDATE events SET received_at = ts`); err != nil {
		t.Fatal(err)
	}
}

func TestOpenRefusesWhatIsNotABuffer(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(context.Background(), filepath.Join(dir, "missing.db")); err == nil {
		t.Error("open of a missing file succeeded (it must never create one)")
	}
	if _, err := Open(context.Background(), filepath.Join(dir)); err == nil {
		t.Error("open of a directory succeeded")
	}
}

func TestCheck(t *testing.T) {
	_, d := liveBuffer(t)
	got, err := d.Check(context.Background())
	if err != nil || fmt.Sprint(got) != "[ok]" {
		t.Errorf("check = %v, %v; want [ok]", got, err)
	}
}

// A producer's clock years ahead or at the epoch fools neither the silence
// nor the backlog's age: both are on the collector's clock.
func TestStatsOnTheCollectorsClock(t *testing.T) {
	st, d := liveBuffer(t)
	now := time.Now()
	insert(t, st, "ahead", now.Add(365*24*time.Hour).UnixMilli(), 1)
	insert(t, st, "epoch", 1, 1)
	s, err := d.Stats(context.Background(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if age := s.OldestBacklogAgeS; age < 0 || age > 60 {
		t.Errorf("oldest backlog age = %vs, want the seconds since it was received", age)
	}
	for _, ds := range s.Devices {
		if ds.SilentForS < 0 || ds.SilentForS > 60 {
			t.Errorf("%s silent for %vs, want the seconds since it was heard from", ds.Device, ds.SilentForS)
		}
	}
	if len(s.Devices) != 2 {
		t.Errorf("devices = %+v", s.Devices)
	}
}
