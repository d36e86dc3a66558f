package sink

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"edgecollector/collector"
)

var batch = []collector.Event{
	{ID: 7, DeviceID: "d1", Kind: "telemetry", TS: 1, Payload: json.RawMessage(`{"t":1}`)},
	{ID: 8, DeviceID: "d2", Kind: "error", TS: 2},
}

// hook is a webhook sink to url, as collector id, with a short timeout.
func hook(url, id string) *Webhook {
	return NewWebhook(WebhookOptions{URL: url, CollectorID: id, Timeout: time.Second})
}

// The receiver's status decides the batch's fate (status.go): delivered,
// refused for its content (bisected), retried later, or an endpoint that
// refuses everything (the backlog stays).
func TestWebhookStatusClassification(t *testing.T) {
	const (
		ok = iota
		content
		retry
		endpoint
	)
	for _, tc := range []struct {
		status int
		header string // Retry-After
		want   int
		after  time.Duration // the pause asked for, when one is
	}{
		{200, "", ok, 0},
		{204, "", ok, 0},
		{400, "", content, 0}, // the receiver will never take this content
		{413, "", content, 0}, // too large: a smaller batch may fit
		{422, "", content, 0},
		{401, "", endpoint, 0}, // an expired or wrong token is not a poison event
		{403, "", endpoint, 0},
		{404, "", endpoint, 0}, // a wrong URL
		{405, "", endpoint, 0},
		{409, "", endpoint, 0},
		{410, "", endpoint, 0},
		{415, "", endpoint, 0}, // it does not take JSON: the endpoint, not the events
		{418, "", endpoint, 0}, // unknown: kept, not dropped
		{408, "", retry, 0},
		{429, "", retry, 0},
		{429, "7", retry, 7 * time.Second},
		{503, "2", retry, 2 * time.Second},
		{503, "Tue, 01 Jan 2999 00:00:00 GMT", retry, -1}, // an HTTP date: far away
		{503, "soon", retry, 0},                           // unparseable: plain backoff
		{500, "", retry, 0},
		{500, "5", retry, 0}, // only 429 and 503 ask for a pause
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if tc.header != "" {
				w.Header().Set("Retry-After", tc.header)
			}
			w.WriteHeader(tc.status)
		}))
		err := hook(srv.URL, "c").Send(context.Background(), batch)
		srv.Close()
		got := ok
		switch {
		case errors.Is(err, collector.ErrRejected):
			got = content
		case errors.Is(err, collector.ErrEndpoint):
			got = endpoint
		case err != nil:
			got = retry
		}
		if got != tc.want || (errors.Is(err, collector.ErrRejected) && errors.Is(err, collector.ErrEndpoint)) {
			t.Errorf("status %d: err = %v, want class %d", tc.status, err, tc.want)
		}
		var ra *collector.RetryAfterError
		switch {
		case tc.after == 0 && errors.As(err, &ra):
			t.Errorf("status %d Retry-After %q: a pause of %s, want none", tc.status, tc.header, ra.After)
		case tc.after > 0 && (!errors.As(err, &ra) || ra.After != tc.after):
			t.Errorf("status %d Retry-After %q: err = %v, want a pause of %s", tc.status, tc.header, err, tc.after)
		case tc.after < 0 && (!errors.As(err, &ra) || ra.After < 24*time.Hour):
			t.Errorf("status %d Retry-After %q: err = %v, want a long pause", tc.status, tc.header, err)
		}
	}
}

// A redirect is never followed: a 302 would turn the POST into a body-less
// GET that the target answers 200 (the batch marked delivered, received by
// nobody), a 307 would re-POST the batch to another host. Each is a failed
// delivery that names the endpoint as the cause.
func TestWebhookNeverFollowsRedirects(t *testing.T) {
	for _, code := range []int{301, 302, 303, 307, 308} {
		var hits atomic.Int32
		target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hits.Add(1) // answers 200 to anything: a follower would call it a delivery
		}))
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, target.URL+"/elsewhere", code)
		}))
		// Also through a caller's own client, which follows redirects by default.
		for _, wh := range []*Webhook{hook(srv.URL, "c"), NewWebhook(WebhookOptions{URL: srv.URL, Client: &http.Client{}})} {
			err := wh.Send(context.Background(), batch)
			if !errors.Is(err, collector.ErrEndpoint) || errors.Is(err, collector.ErrRejected) ||
				!strings.Contains(err.Error(), "/elsewhere") {
				t.Errorf("%d: err = %v, want an endpoint failure naming the redirect target", code, err)
			}
		}
		srv.Close()
		target.Close()
		if n := hits.Load(); n != 0 {
			t.Errorf("%d: the redirect target received %d requests, want 0", code, n)
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
	if err := hook(srv.URL, "edge-9").Send(context.Background(), batch); err != nil {
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
	err := NewWebhook(WebhookOptions{URL: srv.URL, Timeout: 50 * time.Millisecond}).Send(context.Background(), batch)
	if err == nil || errors.Is(err, collector.ErrRejected) {
		t.Errorf("err = %v, want a retryable timeout", err)
	}
}

func TestLogWritesOneLinePerEvent(t *testing.T) {
	var buf bytes.Buffer
	if _, err := NewLog(&buf, "edge-1").Ship(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"collector_id":"edge-1","id":7`) {
		t.Errorf("log output %q", buf.String())
	}
}

func TestFlakyFailsEveryNth(t *testing.T) {
	f := &Flaky{Sink: NewLog(&bytes.Buffer{}, "c"), Every: 3}
	var fails []int
	for i := 1; i <= 7; i++ {
		if _, err := f.Ship(context.Background(), batch); err != nil {
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
	if _, err := hook(srv.URL, "c").Ship(context.Background(), ev); err != nil {
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
	NewLog(&buf, "c").Ship(context.Background(), ev)
	if line := strings.TrimSuffix(buf.String(), "\n"); line != want[1:len(want)-1] {
		t.Errorf("log line\n%s\nwant\n%s", line, want[1:len(want)-1])
	}
}

// shortWriter takes the first n bytes of a write, then fails as a pipe
// whose reader went away does.
type shortWriter struct {
	n   int
	got bytes.Buffer
}

func (w *shortWriter) Write(p []byte) (int, error) {
	k := min(w.n, len(p))
	w.got.Write(p[:k])
	w.n -= k
	if k < len(p) {
		return k, syscall.EPIPE
	}
	return k, nil
}

// What the log sink reports delivered is what it wrote: whole lines only.
func TestLogFailedWriteDeliversOnlyWholeLines(t *testing.T) {
	var line bytes.Buffer
	NewLog(&line, "c").Ship(context.Background(), batch[:1])
	first := line.Len()
	for _, tc := range []struct {
		name      string
		n         int // bytes the writer takes
		delivered []int64
	}{
		{"nothing written", 0, nil},
		{"half a line", first / 2, nil},
		{"one line exactly", first, []int64{7}},
		{"one line and a bit", first + 3, []int64{7}},
	} {
		w := &shortWriter{n: tc.n}
		r, err := NewLog(w, "c").Ship(context.Background(), batch)
		if !errors.Is(err, syscall.EPIPE) {
			t.Errorf("%s: err = %v, want EPIPE", tc.name, err)
		}
		var taken []int64
		for i, e := range batch {
			switch r.Fate(i) {
			case collector.Taken:
				taken = append(taken, e.ID)
			case collector.Refused:
				t.Errorf("%s: a failed write refuses nothing: event %d refused", tc.name, e.ID)
			}
		}
		if !slices.Equal(taken, tc.delivered) {
			t.Errorf("%s: taken %v, want %v", tc.name, taken, tc.delivered)
		}
		if errors.Is(err, collector.ErrRejected) {
			t.Errorf("%s: a failed write rejects nothing: %v", tc.name, err)
		}
	}
}
