package uploader

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"edgecollector/collector/sink"
	"edgecollector/collector/store"
	"edgecollector/internal/storetest"
)

// BenchmarkDrain drains a backlog of 20,000 events (group mode, batches of
// 1,000) to a webhook on loopback, with K batches in flight, against a
// receiver that answers at once and one that takes 5 ms per batch (a near
// uplink). It reports delivered events/s: the figure -upload-inflight's
// default was chosen on (interleave runs: scripts or a loop over -bench).
func BenchmarkDrain(b *testing.B) {
	const backlog = 20000
	for _, rtt := range []time.Duration{0, 5 * time.Millisecond} {
		for _, k := range []int{1, 2, 4, 8} {
			b.Run(fmt.Sprintf("rtt=%v/K=%d", rtt, k), func(b *testing.B) {
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					io.Copy(io.Discard, r.Body)
					time.Sleep(rtt)
				}))
				defer srv.Close()
				s := storetest.MustOpen(b, store.Options{Mode: store.Group})
				wh := sink.NewWebhook(sink.WebhookOptions{URL: srv.URL, CollectorID: "bench"})
				events := storetest.Fleet(50, 1000)
				var total time.Duration
				for range b.N {
					b.StopTimer()
					for range backlog / len(events) {
						storetest.MustInsert(b, s, events)
					}
					b.StartTimer()
					start := time.Now()
					if err := New(s, wh, Options{Batch: 1000, InFlight: k}).Drain(context.Background()); err != nil {
						b.Fatal(err)
					}
					total += time.Since(start)
				}
				b.ReportMetric(float64(backlog*b.N)/total.Seconds(), "events/s")
			})
		}
	}
}
