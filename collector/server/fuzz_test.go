package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"
	"unicode/utf8"

	"edgecollector/collector"
	"edgecollector/collector/store"
	"edgecollector/collector/uploader"
	"edgecollector/internal/sinktest"
	"edgecollector/internal/storetest"
)

// seeds adds the shared sample and bad events in testdata/events as seeds.
func seeds(f *testing.F, add func(body []byte)) {
	files, _ := filepath.Glob("../../testdata/events/*.json")
	bad, _ := filepath.Glob("../../testdata/events/bad/*.json")
	for _, p := range append(files, bad...) {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		add(b)
	}
	for _, s := range []string{`{"device_id":"d","kind":"k","payload":{"a":[1,{"b":null}]},"ts":5}`, `[`, `[{}]`, `{"payload":[]}`, "\"\\ud800\""} {
		add([]byte(s))
	}
}

var fuzzLimits = Limits{MaxBodyBytes: 1 << 16, MaxPayloadBytes: 512, MaxEventsPerRequest: 20, MaxEventBytes: 4096}.withDefaults()

// FuzzDecodeEvents: any body either decodes into valid events or fails with
// an InputError; it never panics.
func FuzzDecodeEvents(f *testing.F) {
	seeds(f, func(b []byte) { f.Add(b) })
	f.Fuzz(func(t *testing.T, body []byte) {
		events, err := decodeEvents(body, fuzzLimits, fuzzNow)
		if err != nil {
			var ie *collector.InputError
			if !errors.As(err, &ie) || !(errors.Is(err, collector.ErrInvalid) || errors.Is(err, collector.ErrTooLarge)) {
				t.Fatalf("error %v (%T) is not an input error", err, err)
			}
			return
		}
		if len(events) == 0 || len(events) > fuzzLimits.MaxEventsPerRequest {
			t.Fatalf("%d events accepted", len(events))
		}
		for _, e := range events {
			if e.DeviceID == "" || e.Kind == "" || e.TS <= 0 || !utf8.ValidString(e.DeviceID) || !utf8.ValidString(e.Kind) {
				t.Fatalf("invalid event accepted: %+v", e)
			}
			if e.Payload != nil && (!json.Valid(e.Payload) || (e.Payload[0] != '{' && e.Payload[0] != '[') || len(e.Payload) > fuzzLimits.MaxPayloadBytes) {
				t.Fatalf("invalid payload accepted: %q", e.Payload)
			}
			if store.RowBytes(e) > fuzzLimits.MaxEventBytes {
				t.Fatalf("event over the commit cap accepted")
			}
		}
	})
}

// FuzzPostEvents drives the real handler and a real store: every answer is
// a well-formed 200 or 4xx; a 200 stores exactly what it acknowledges, with
// payloads verbatim; a 4xx stores nothing.
func FuzzPostEvents(f *testing.F) {
	seeds(f, func(b []byte) { f.Add("application/json", b) })
	f.Add("text/plain", []byte(`{"device_id":"d","kind":"k"}`))
	f.Add("", []byte(`{"device_id":"d","kind":"k"}`))
	st := storetest.MustOpen(f, store.Options{MaxCommitBytes: 4096, Synchronous: "NORMAL"})
	h := New(st, uploader.New(st, &sinktest.Sink{}, uploader.Options{}), Config{Limits: fuzzLimits}).Handler()
	rows := func() (n int64) {
		st.DB().QueryRow(`SELECT count(*) FROM events`).Scan(&n)
		return n
	}
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		before := rows()
		req := httptest.NewRequest("POST", "/events", bytes.NewReader(body))
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		after := rows()
		switch code := rec.Code; {
		case code == 200:
			var resp acceptedResponse
			if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil || resp.Accepted != len(resp.IDs) || resp.Accepted == 0 {
				t.Fatalf("200 with body %q", rec.Body.String())
			}
			if after-before != int64(resp.Accepted) {
				t.Fatalf("acknowledged %d events, stored %d", resp.Accepted, after-before)
			}
			events, _ := decodeEvents(body, fuzzLimits, time.Now().UnixMilli())
			for i, id := range resp.IDs {
				var payload *string
				st.DB().QueryRow(`SELECT payload_json FROM events WHERE id = ?`, id).Scan(&payload)
				if (payload == nil) != (events[i].Payload == nil) || (payload != nil && *payload != string(events[i].Payload)) {
					t.Fatalf("event %d payload stored as %v, sent %q", id, payload, events[i].Payload)
				}
			}
		case code >= 400 && code < 500:
			var resp errorResponse
			if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil || resp.Error == "" {
				t.Fatalf("%d with body %q: not a JSON error", code, rec.Body.String())
			}
			if after != before {
				t.Fatalf("%d stored %d events", code, after-before)
			}
		default:
			t.Fatalf("status %d: %s", code, rec.Body.String())
		}
	})
}
