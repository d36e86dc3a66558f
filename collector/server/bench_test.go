package server

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"edgecollector/collector/store"
	"edgecollector/collector/uploader"
	"edgecollector/internal/sinktest"
	"edgecollector/internal/storetest"
)

// singleEvent is the request the hot path is tuned for: one event of about
// 80 bytes, as most edge producers send.
const singleEvent = `{"device_id":"sensor-0042","kind":"telemetry","payload":{"temp_c":21.4,"rh":40}}`

// BenchmarkEvents serves single-event POST /events through the server's
// whole handler (mux, metrics, auth, limits, decoding, the group committer,
// a durable commit to a real SQLite file, the response), in process: no
// sockets, so what it measures is the collector's own work per request.
// req/s, allocs/op and cpu-us/req (the process's user+system CPU time per
// request, everything in it: the committer, SQLite, the runtime) are the
// figures; producers=64 is what the http experiment's 64-connection cells
// load the same path with, less the sockets.
func BenchmarkEvents(b *testing.B) {
	for _, producers := range []int{1, 64} {
		b.Run(fmt.Sprintf("producers=%d", producers), func(b *testing.B) {
			h, st := benchHandler(b, store.Options{})
			b.ReportAllocs()
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			cpu0 := cpuTime(b)
			for range producers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					rq := newBenchRequest(singleEvent)
					for next.Add(1) <= int64(b.N) {
						if code := rq.serve(h); code != http.StatusOK {
							b.Errorf("status %d: %s", code, rq.w.body)
							return
						}
					}
				}()
			}
			wg.Wait()
			cpu := cpuTime(b) - cpu0
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-us/req")
			b.StopTimer()
			s := st.Stats()
			b.ReportMetric(s.EventsPerCommit, "events/commit")
			if s.Written != int64(b.N) {
				b.Fatalf("written = %d, want %d", s.Written, b.N)
			}
		})
	}
}

// benchHandler is the handler of a server over a real store (in o's mode,
// on a fresh file) whose uploader is not started: nothing runs beside the
// requests.
func benchHandler(tb testing.TB, o store.Options) (http.Handler, *store.Store) {
	tb.Helper()
	st := storetest.MustOpen(tb, o)
	up := uploader.New(st, &sinktest.Sink{}, uploader.Options{})
	return New(st, up, Config{MaxBacklog: 0}).Handler(), st
}

// benchRequest is one producer's request, reused from one call to the next
// as a server reuses its connection's: what the handler allocates is what
// allocs/op counts.
type benchRequest struct {
	r    *http.Request
	body benchBody
	w    benchWriter
	raw  []byte
}

func newBenchRequest(body string) *benchRequest {
	rq := &benchRequest{raw: []byte(body), w: benchWriter{h: http.Header{}}}
	rq.r, _ = http.NewRequestWithContext(context.Background(), http.MethodPost, "/events", nil)
	rq.r.Header.Set("Content-Type", "application/json")
	rq.r.Body = &rq.body
	return rq
}

// serve sends the request through h and returns the status.
func (rq *benchRequest) serve(h http.Handler) int {
	rq.body.Reset(rq.raw)
	rq.r.ContentLength = int64(len(rq.raw))
	clear(rq.w.h)
	rq.w.code, rq.w.body = 0, rq.w.body[:0]
	h.ServeHTTP(&rq.w, rq.r)
	return rq.w.code
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

type benchBody struct{ bytes.Reader }

func (*benchBody) Close() error { return nil }

// benchWriter is a ResponseWriter that, like the server's, takes read
// deadlines (the minimum body rate sets them).
type benchWriter struct {
	h    http.Header
	code int
	body []byte
}

func (w *benchWriter) Header() http.Header { return w.h }
func (w *benchWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}
func (w *benchWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	w.body = append(w.body, p...)
	return len(p), nil
}
func (w *benchWriter) SetReadDeadline(time.Time) error { return nil }
