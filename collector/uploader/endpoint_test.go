package uploader

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"edgecollector/collector"
	"edgecollector/collector/sink"
	"edgecollector/collector/store"
	"edgecollector/internal/sinktest"
	"edgecollector/internal/storetest"
)

// A receiver that refuses everything speaks about itself, not about the
// events: a wrong URL (404), an expired token (401, 403), a wrong method
// (405), a redirect, or a 400 to every event (so that bisection ends with
// each refused on its own). None of it may empty the backlog: the cycle
// fails, health says why, nothing is audited as rejected, and once the
// receiver is fixed everything is delivered.
func TestMisconfiguredReceiverKeepsTheBacklog(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		want   string // in the health's last error
	}{
		{"404 wrong URL", 404, "404"},
		{"401 token", 401, "401"},
		{"403 forbidden", 403, "403"},
		{"405 method", 405, "405"},
		{"302 redirect", 302, "redirect"},
		{"400 to every event", 400, "refused each of 40 events on its own"},
		{"422 to every event", 422, "refused each of 40 events on its own"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var broken atomic.Bool
			broken.Store(true)
			var mu sync.Mutex
			var got []int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if broken.Load() {
					if tc.status == 302 {
						http.Redirect(w, r, "/moved", tc.status)
						return
					}
					w.WriteHeader(tc.status)
					return
				}
				var batch []collector.Shipped
				json.NewDecoder(r.Body).Decode(&batch)
				mu.Lock()
				for _, e := range batch {
					got = append(got, e.ID)
				}
				mu.Unlock()
			}))
			defer srv.Close()
			s := storetest.MustOpen(t, store.Options{})
			ids := insert(t, s, 40)
			u := New(s, sink.NewWebhook(sink.WebhookOptions{URL: srv.URL, CollectorID: "edge-1", Timeout: time.Second}), Options{Batch: 1000})

			for range 2 {
				n, err := u.Sync(context.Background())
				if n != 0 || !errors.Is(err, collector.ErrEndpoint) {
					t.Fatalf("sync = %d, %v; want 0 and an endpoint failure", n, err)
				}
			}
			if got := s.Backlog(); got != 40 {
				t.Errorf("backlog = %d, want all 40 kept", got)
			}
			if got := backlogIDs(t, s); !slices.Equal(got, ids) {
				t.Errorf("backlog ids = %v, want %v", got, ids)
			}
			h := u.Health()
			if h.Healthy || h.ConsecutiveFailures != 2 || !strings.Contains(h.LastError, tc.want) {
				t.Errorf("health = %+v, want failing twice, naming %q", h, tc.want)
			}
			st := u.Stats()
			if st.EventsRejected != 0 || st.EventsShipped != 0 {
				t.Errorf("stats = %+v, want nothing rejected or shipped", st)
			}
			if r := runs(t, s); r["rejected"] != 0 || r["ok"] != 0 || r["failed"] != 2 {
				t.Errorf("audit rows = %v, want 2 failed only", r)
			}

			broken.Store(false) // the operator fixes the receiver
			if err := u.Drain(context.Background()); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if !slices.Equal(got, ids) {
				t.Errorf("delivered after the fix: %v, want %v", got, ids)
			}
			if !u.Health().Healthy {
				t.Error("unhealthy after the fix")
			}
		})
	}
}

// The rule that tells the two apart: refused events leave only in a cycle
// where the sink took another one. A sink answering event by event that
// refuses the whole batch is the endpoint too; one poison event among good
// ones still leaves alone, and a lone poison event waits for company.
func TestRefusalsLeaveOnlyBesideADelivery(t *testing.T) {
	s := storetest.MustOpen(t, store.Options{})
	ids := insert(t, s, 4)
	all := &sinktest.Sink{PerEvent: true}
	all.Reject(ids...)
	u := New(s, all, Options{})
	if n, err := u.Sync(context.Background()); n != 0 || !errors.Is(err, collector.ErrEndpoint) {
		t.Fatalf("every event refused: sync = %d, %v; want 0 and an endpoint failure", n, err)
	}
	if got := s.Backlog(); got != 4 {
		t.Errorf("backlog = %d, want 4", got)
	}

	// One poison event among good ones leaves as rejected.
	one := &sinktest.Sink{PerEvent: true}
	one.Reject(ids[2])
	u = New(s, one, Options{})
	if n, err := u.Sync(context.Background()); n != 4 || err != nil {
		t.Fatalf("one poison event: sync = %d, %v; want 4, nil", n, err)
	}
	if got := u.Stats().EventsRejected; got != 1 {
		t.Errorf("rejected = %d, want 1", got)
	}

	// A lone poison event, then a good one joins it.
	poison := insert(t, s, 1)[0]
	rec := &sinktest.Sink{}
	rec.Reject(poison)
	u = New(s, rec, Options{})
	if _, err := u.Sync(context.Background()); !errors.Is(err, collector.ErrEndpoint) {
		t.Fatalf("lone poison event: err = %v, want an endpoint failure", err)
	}
	good := insert(t, s, 1)[0]
	if n, err := u.Sync(context.Background()); n != 2 || err != nil {
		t.Fatalf("poison with company: sync = %d, %v; want 2, nil", n, err)
	}
	if got := rec.IDs(); !slices.Equal(got, []int64{good}) {
		t.Errorf("delivered %v, want [%d]", got, good)
	}
}

// 429 and 503 with Retry-After set the pause before the next cycle, within
// -upload-max-backoff.
func TestRetryAfterIsHonouredWithinTheCap(t *testing.T) {
	for _, tc := range []struct {
		name       string
		status     int
		header     string
		maxBackoff time.Duration
		atLeast    time.Duration // the gap between the refused call and the next
	}{
		{"429 asks for 1s", 429, "1", 10 * time.Second, time.Second},
		{"503 asks for 1s", 503, "1", 10 * time.Second, time.Second},
		// Asks for an hour; the cap says 300ms, so the retry comes soon (the
		// wait below is bounded by the test's deadline, not measured).
		{"an hour, capped", 429, "3600", 300 * time.Millisecond, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var calls []time.Time
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				mu.Lock()
				defer mu.Unlock()
				calls = append(calls, time.Now())
				if len(calls) == 1 {
					w.Header().Set("Retry-After", tc.header)
					w.WriteHeader(tc.status)
				}
			}))
			defer srv.Close()
			s := storetest.MustOpen(t, store.Options{})
			insert(t, s, 3)
			u := New(s, sink.NewWebhook(sink.WebhookOptions{URL: srv.URL, CollectorID: "edge-1", Timeout: time.Second}), Options{
				Interval: 10 * time.Millisecond, MaxBackoff: tc.maxBackoff})
			u.Start(context.Background())
			defer u.Stop(context.Background())
			deadline := time.Now().Add(10 * time.Second)
			for s.Backlog() > 0 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if got := s.Backlog(); got != 0 {
				t.Fatalf("backlog = %d after 10s, want 0: the retry never came", got)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(calls) != 2 {
				t.Fatalf("%d calls, want 2", len(calls))
			}
			if gap := calls[1].Sub(calls[0]); gap < tc.atLeast {
				t.Errorf("retried %v after Retry-After %s, want at least %v", gap, tc.header, tc.atLeast)
			}
		})
	}
}
