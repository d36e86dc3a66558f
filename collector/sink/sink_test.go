package sink

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"edgecollector/collector"
)

var batch = []collector.Event{
	{ID: 7, DeviceID: "d1", Kind: "telemetry", TS: 1, Payload: json.RawMessage(`{"t":1}`)},
	{ID: 8, DeviceID: "d2", Kind: "error", TS: 2},
}

func TestWebhookStatusClassification(t *testing.T) {
	for _, tc := range []struct {
		status    int
		wantErr   bool
		permanent bool
	}{
		{200, false, false},
		{204, false, false},
		{400, true, true},  // the receiver will never take it
		{404, true, true},  // misconfigured URL: visible, not retried forever
		{408, true, false}, // timeout: retry
		{429, true, false}, // slow down: retry
		{500, true, false},
		{503, true, false},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(tc.status)
		}))
		err := NewWebhook(srv.URL, time.Second).Ship(context.Background(), "c", batch)
		srv.Close()
		if (err != nil) != tc.wantErr || errors.Is(err, collector.ErrRejected) != tc.permanent {
			t.Errorf("status %d: err = %v, want error %v, permanent %v", tc.status, err, tc.wantErr, tc.permanent)
		}
	}
}

func TestWebhookSendsIDsAndCollector(t *testing.T) {
	var got []collector.Shipped
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("content type %q", ct)
		}
		json.NewDecoder(r.Body).Decode(&got)
	}))
	defer srv.Close()
	if err := NewWebhook(srv.URL, time.Second).Ship(context.Background(), "edge-9", batch); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != 7 || got[0].CollectorID != "edge-9" || string(got[0].Payload) != `{"t":1}` || got[1].Payload != nil {
		t.Errorf("received %+v", got)
	}
}

func TestWebhookTimeoutIsRetryable(t *testing.T) {
	stall := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-stall }))
	defer srv.Close()
	defer close(stall)
	err := NewWebhook(srv.URL, 50*time.Millisecond).Ship(context.Background(), "c", batch)
	if err == nil || errors.Is(err, collector.ErrRejected) {
		t.Errorf("err = %v, want a retryable timeout", err)
	}
}

func TestLogWritesOneLinePerEvent(t *testing.T) {
	var buf bytes.Buffer
	if err := NewLog(&buf).Ship(context.Background(), "edge-1", batch); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"collector_id":"edge-1","id":7`) {
		t.Errorf("log output %q", buf.String())
	}
}

func TestFlakyFailsEveryNth(t *testing.T) {
	f := &Flaky{Sink: NewLog(&bytes.Buffer{}), Every: 3}
	var fails []int
	for i := 1; i <= 7; i++ {
		if f.Ship(context.Background(), "c", batch) != nil {
			fails = append(fails, i)
		}
	}
	if len(fails) != 2 || fails[0] != 3 || fails[1] != 6 {
		t.Errorf("failed calls %v, want [3 6]", fails)
	}
}

// Payloads reach the receiver byte for byte: no compaction, no escaping of
// <, > and &, odd Unicode and injection strings untouched.
func TestPayloadShippedVerbatim(t *testing.T) {
	payload := `{ "sql": "'); DROP TABLE events; --",  "html": "<b>&amp;</b>", "u": "\u00e9 ☃ 💥" }`
	ev := []collector.Event{{ID: 1, DeviceID: "<dev>&", Kind: "k", TS: 3, Payload: json.RawMessage(payload)}}
	var got []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ = io.ReadAll(r.Body)
	}))
	defer srv.Close()
	if err := NewWebhook(srv.URL, time.Second).Ship(context.Background(), "c", ev); err != nil {
		t.Fatal(err)
	}
	want := `[{"collector_id":"c","id":1,"device_id":"<dev>&","kind":"k","payload":` + payload + `,"ts":3}]`
	if string(got) != want {
		t.Errorf("webhook body\n%s\nwant\n%s", got, want)
	}
	var decoded []collector.Shipped
	if err := json.Unmarshal(got, &decoded); err != nil || string(decoded[0].Payload) != payload {
		t.Errorf("body does not decode to the same payload: %v", err)
	}
	var buf bytes.Buffer
	NewLog(&buf).Ship(context.Background(), "c", ev)
	if line := strings.TrimSuffix(buf.String(), "\n"); line != want[1:len(want)-1] {
		t.Errorf("log line\n%s\nwant\n%s", line, want[1:len(want)-1])
	}
}
