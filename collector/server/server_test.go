package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"edgecollector/collector"
	"edgecollector/collector/store"
	"edgecollector/collector/uploader"
	"edgecollector/internal/sinktest"
	"edgecollector/internal/storetest"
)

type fixture struct {
	t     *testing.T
	store *store.Store
	up    *uploader.Uploader
	srv   *httptest.Server
	sink  *sinktest.Sink
}

func newFixture(t *testing.T, so store.Options, cfg Config) *fixture {
	t.Helper()
	return newFixtureAt(t, storetest.Path(t), so, cfg)
}

// newFixtureAt serves a store on the file at path (which may exist).
func newFixtureAt(t *testing.T, path string, so store.Options, cfg Config) *fixture {
	t.Helper()
	so.Path = path
	st := storetest.MustOpen(t, so)
	f := &fixture{t: t, store: st, sink: &sinktest.Sink{}}
	f.up = uploader.New(st, f.sink, uploader.Options{})
	f.srv = httptest.NewServer(New(st, f.up, cfg).Handler())
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fixture) do(method, path, contentType, body string) (int, http.Header, string) {
	f.t.Helper()
	req, _ := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func (f *fixture) post(body string) (int, string) {
	code, _, b := f.do("POST", "/events", "application/json", body)
	return code, b
}

func (f *fixture) rows() int {
	var n int
	f.store.DB().QueryRow(`SELECT count(*) FROM events`).Scan(&n)
	return n
}

func TestPostAcceptsObjectAndBatch(t *testing.T) {
	f := newFixture(t, store.Options{FirstID: 1}, Config{})
	code, body := f.post(`{"device_id":"sensor-001","kind":"telemetry","payload":{"temp_c":21.4}}`)
	if code != 200 || body != `{"accepted":1,"ids":[1]}`+"\n" {
		t.Fatalf("single: %d %s", code, body)
	}
	code, body = f.post(`[{"device_id":"s1","kind":"telemetry"},{"device_id":"s2","kind":"error","payload":{"code":"E07"},"ts":1748722000000}]`)
	if code != 200 || body != `{"accepted":2,"ids":[2,3]}`+"\n" {
		t.Fatalf("batch: %d %s", code, body)
	}
	var ts int64
	var payload *string
	f.store.DB().QueryRow(`SELECT ts, payload_json FROM events WHERE id = 2`).Scan(&ts, &payload)
	if ts <= 0 || payload != nil {
		t.Errorf("event 2: ts = %d (want server-stamped), payload = %v (want NULL)", ts, payload)
	}
	f.store.DB().QueryRow(`SELECT ts FROM events WHERE id = 3`).Scan(&ts)
	if ts != 1748722000000 {
		t.Errorf("event 3 ts = %d, want the producer's", ts)
	}
}

func TestBadRequestsAreRefusedAndStoreNothing(t *testing.T) {
	f := newFixture(t, store.Options{MaxCommitBytes: 4096}, Config{
		Limits: Limits{MaxBodyBytes: 8000, MaxPayloadBytes: 3000, MaxEventsPerRequest: 5, MaxEventBytes: 4096},
	})
	ok := `{"device_id":"d","kind":"k"}`
	for _, tc := range []struct {
		name, method, ctype, body string
		status                    int
		field                     string // the field the error names
		wantIn                    string // a piece of the error message
	}{
		{"malformed JSON", "POST", "application/json", `{"device_id":`, 400, "", "malformed JSON"},
		{"missing device_id", "POST", "application/json", `{"kind":"k"}`, 400, "device_id", "required"},
		{"missing kind in array", "POST", "application/json", `[` + ok + `,{"device_id":"d"}]`, 400, "kind", "event[1].kind"},
		{"device_id not a string", "POST", "application/json", `{"device_id":7,"kind":"k"}`, 400, "device_id", "string"},
		{"payload not JSON object", "POST", "application/json", `{"device_id":"d","kind":"k","payload":"{oops"}`, 400, "payload", "object or array"},
		{"empty array", "POST", "application/json", `[]`, 400, "", "empty array"},
		{"empty body", "POST", "application/json", ``, 400, "", "empty body"},
		{"scalar body", "POST", "application/json", `42`, 400, "", "want a JSON event"},
		{"trailing garbage", "POST", "application/json", ok + `}`, 400, "", "after the JSON value"},
		{"negative ts", "POST", "application/json", `{"device_id":"d","kind":"k","ts":-5}`, 400, "ts", "negative"},
		{"invalid UTF-8", "POST", "application/json", "{\"device_id\":\"d\xff\",\"kind\":\"k\"}", 400, "", "UTF-8"},
		{"deep nesting", "POST", "application/json", `{"device_id":"d","kind":"k","payload":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`, 400, "payload", "nested"},
		{"too many events", "POST", "application/json", `[` + strings.Repeat(ok+",", 5) + ok + `]`, 413, "", "more than 5 events"},
		{"body too large", "POST", "application/json", `{"device_id":"d","kind":"k","payload":{"x":"` + strings.Repeat("a", 9000) + `"}}`, 413, "", "body over the 8000-byte limit"},
		{"payload too large", "POST", "application/json", `{"device_id":"d","kind":"k","payload":{"x":"` + strings.Repeat("a", 3100) + `"}}`, 413, "payload", "over the 3000-byte limit"},
		{"request over commit cap", "POST", "application/json", `[` + strings.Repeat(`{"device_id":"d","kind":"k","payload":{"x":"`+strings.Repeat("a", 1000)+`"}},`, 4) + ok + `]`, 413, "", "commit-size cap"},
		{"wrong method", "GET", "", ``, 405, "", "use POST"},
		{"wrong content type", "POST", "text/plain", ok, 415, "", "Content-Type"},
		{"form content type", "POST", "application/x-www-form-urlencoded", ok, 415, "", "Content-Type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, hdr, body := f.do(tc.method, "/events", tc.ctype, tc.body)
			if code != tc.status {
				t.Errorf("status = %d, want %d (%s)", code, tc.status, body)
			}
			if ct := hdr.Get("Content-Type"); ct != "application/json" {
				t.Errorf("error content type %q, want application/json", ct)
			}
			var resp errorResponse
			if err := json.Unmarshal([]byte(body), &resp); err != nil || resp.Error == "" {
				t.Fatalf("error body %q is not a JSON error: %v", body, err)
			}
			if resp.Field != tc.field || !strings.Contains(resp.Error, tc.wantIn) {
				t.Errorf("error = %+v, want field %q and message containing %q", resp, tc.field, tc.wantIn)
			}
			if n := f.rows(); n != 0 {
				t.Errorf("rows after a refused request = %d, want 0", n)
			}
		})
	}
}

func TestBackpressureAndHealth(t *testing.T) {
	f := newFixture(t, store.Options{}, Config{MaxBacklog: 3})
	code, _, body := f.do("GET", "/healthz", "", "")
	if code != 200 || !strings.Contains(body, `"ok":true`) {
		t.Fatalf("healthz = %d %s", code, body)
	}
	if code, body := f.post(`[{"device_id":"d","kind":"k"},{"device_id":"d","kind":"k"},{"device_id":"d","kind":"k"}]`); code != 200 {
		t.Fatalf("fill: %d %s", code, body)
	}
	code, hdr, body := f.do("POST", "/events", "application/json", `{"device_id":"d","kind":"k"}`)
	if code != 503 || hdr.Get("Retry-After") == "" || !strings.Contains(body, "backlog full") {
		t.Errorf("over the backlog cap: %d Retry-After=%q %s", code, hdr.Get("Retry-After"), body)
	}
	if n := f.rows(); n != 3 {
		t.Errorf("rows = %d, want 3 (the refused request stores nothing)", n)
	}
	code, _, body = f.do("GET", "/healthz", "", "")
	var h healthResponse
	json.Unmarshal([]byte(body), &h)
	if code != 503 || h.OK || h.BacklogOK || h.Backlog != 3 {
		t.Errorf("healthz with a full buffer = %d %s", code, body)
	}
}

func TestHealthzReportsFailingUploader(t *testing.T) {
	f := newFixture(t, store.Options{}, Config{})
	f.post(`{"device_id":"d","kind":"k"}`)
	f.sink.Fail(errors.New("connection refused"))
	f.up.Sync(context.Background())
	code, _, body := f.do("GET", "/healthz", "", "")
	if code != 503 || !strings.Contains(body, "connection refused") || !strings.Contains(body, `"backlog_ok":true`) {
		t.Errorf("healthz with a failing uploader = %d %s", code, body)
	}
}

func TestStatsAndMetrics(t *testing.T) {
	f := newFixture(t, store.Options{Mode: store.Serialized}, Config{})
	f.post(`[{"device_id":"d","kind":"k"},{"device_id":"e","kind":"k"}]`)
	code, _, body := f.do("GET", "/stats", "", "")
	var s statsResponse
	if err := json.Unmarshal([]byte(body), &s); err != nil || code != 200 {
		t.Fatalf("stats = %d %s", code, body)
	}
	if s.Store.Written != 2 || s.Store.Backlog != 2 || s.Store.Mode != "serialized" || !s.Uploader.Healthy {
		t.Errorf("stats = %+v", s)
	}
	code, _, body = f.do("GET", "/metrics", "", "")
	for _, want := range []string{
		"collector_events_written_total 2",
		"collector_backlog_events 2",
		"collector_commit_conflicts_total 0",
		"collector_chunk_splits_total 0",
		`collector_http_request_duration_seconds_count{code="200",method="post",route="/events"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if code, _, _ := f.do("POST", "/stats", "", ""); code != 405 {
		t.Errorf("POST /stats = %d, want 405", code)
	}
	if code, _, _ := f.do("GET", "/nope", "", ""); code != 404 {
		t.Errorf("GET /nope = %d, want 404", code)
	}
}

func TestErrorStatus(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want int
	}{
		{&collector.InputError{Err: collector.ErrInvalid}, 400},
		{&collector.InputError{Err: collector.ErrTooLarge}, 413},
		{collector.ErrCommitTooLarge, 413},
		{collector.ErrBacklogFull, 503},
		{collector.ErrBusy, 503},
		{collector.ErrClosed, 503},
		{collector.ErrDiskFull, 507},
		{fmt.Errorf("insert: %w: fsync: disk I/O error", collector.ErrStorageFailed), 503},
		{errors.New("boom"), 500},
	} {
		if got := errorStatus(tc.err); got != tc.want {
			t.Errorf("errorStatus(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}
