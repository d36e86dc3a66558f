package server

import (
	"maps"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"edgecollector/collector/store"
	"edgecollector/collector/uploader"
)

// metrics is the /metrics registry: the store's and uploader's gauges, read
// at scrape time, and request latency per route. A registry per server keeps
// tests that run several servers apart.
type metrics struct {
	reg      *prometheus.Registry
	duration *prometheus.HistogramVec
}

func newMetrics(st *store.Store, up *uploader.Uploader) *metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	counter := func(name, help string, f func() float64) {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "collector_" + name, Help: help}, f))
	}
	gauge := func(name, help string, f func() float64) {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "collector_" + name, Help: help}, f))
	}
	ss := func(f func(store.Stats) int64) func() float64 {
		return func() float64 { return float64(f(st.Stats())) }
	}
	us := func(f func(uploader.Stats) int64) func() float64 {
		return func() float64 { return float64(f(up.Stats())) }
	}
	counter("events_written_total", "Events committed since start.", ss(func(s store.Stats) int64 { return s.Written }))
	counter("events_uploaded_total", "Events marked uploaded since start.", ss(func(s store.Stats) int64 { return s.Uploaded }))
	gauge("backlog_events", "Events waiting for upload.", ss(func(s store.Stats) int64 { return s.Backlog }))
	counter("commits_total", "Ingest transactions committed (group mode: one per group).", ss(func(s store.Stats) int64 { return s.Commits }))
	gauge("events_per_commit", "Events written per ingest commit since start.", func() float64 { return st.Stats().EventsPerCommit })
	counter("commit_conflicts_total", "Busy or conflict errors from the engine.", ss(func(s store.Stats) int64 { return s.Conflicts }))
	counter("retries_total", "Transactions retried after busy or conflict.", ss(func(s store.Stats) int64 { return s.Retries }))
	counter("retries_exhausted_total", "Transactions that ran out of retries.", ss(func(s store.Stats) int64 { return s.RetriesExhausted }))
	counter("chunk_splits_total", "Checkpoint chunks halved to fit the commit-size cap.", ss(func(s store.Stats) int64 { return s.ChunkSplits }))
	counter("events_purged_total", "Uploaded events deleted by retention.", ss(func(s store.Stats) int64 { return s.Purged }))
	gauge("devices_seen", "Devices in the devices table.", ss(func(s store.Stats) int64 { return s.Devices }))
	// The buffer's own health: its files (identity), its WAL (bound, checkpoints).
	gauge("buffer_healthy", "1 while the buffer file is the one open and its WAL is under control.", func() float64 {
		return b2f(st.Health().OK)
	})
	gauge("wal_bytes", "Size of the WAL file.", func() float64 { return float64(st.WALStats().Bytes) })
	gauge("wal_limit_bytes", "The WAL's bound (-max-wal-bytes).", func() float64 { return float64(st.WALStats().LimitBytes) })
	counter("wal_checkpoints_total", "Checkpoints the collector ran because the WAL was over its bound.", func() float64 {
		return float64(st.WALStats().Checkpoints)
	})
	counter("wal_checkpoints_blocked_total", "Of those, the ones a reader kept from copying the WAL back.", func() float64 {
		return float64(st.WALStats().Blocked)
	})
	gauge("wal_last_checkpoint_ok", "0 when the last such checkpoint was blocked by a reader or failed.", func() float64 {
		last := st.WALStats().Last
		return b2f(last == nil || (last.Outcome != "blocked" && last.Outcome != "error"))
	})
	counter("upload_cycles_total", "Uploader cycles that had events.", us(func(s uploader.Stats) int64 { return s.Cycles }))
	counter("upload_failures_total", "Uploader cycles that failed.", us(func(s uploader.Stats) int64 { return s.Failures }))
	counter("events_shipped_total", "Events delivered to the sink.", us(func(s uploader.Stats) int64 { return s.EventsShipped }))
	counter("events_rejected_total", "Events the sink refused for good, dropped from the backlog.", us(func(s uploader.Stats) int64 { return s.EventsRejected }))
	gauge("uploader_healthy", "1 while the last upload cycle succeeded.", func() float64 {
		if up.Health().Healthy {
			return 1
		}
		return 0
	})

	m := &metrics{
		reg: reg,
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "collector_http_request_duration_seconds",
			Help:    "HTTP request latency by route, method and status code.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route", "method", "code"}),
	}
	reg.MustRegister(m.duration)
	return m
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// instrument observes each request's latency in
// collector_http_request_duration_seconds{route,method,code}, with the
// label values promhttp.InstrumentHandlerDuration gives (method lower case
// or "unknown", code "200" when none was written). It binds each (method,
// code) pair's observer once, instead of building labels and looking the
// series up on every request.
func (m *metrics) instrument(route string, h http.Handler) http.Handler {
	o := &observers{vec: m.duration.MustCurryWith(prometheus.Labels{"route": route})}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := statusWriter{ResponseWriter: w}
		h.ServeHTTP(&sw, r)
		o.get(r.Method, sw.code).Observe(time.Since(start).Seconds())
	})
}

// observers are one route's latency observers, one per (method, code) met
// so far, bound on first use. The map is copied on write: reads take no lock.
type observers struct {
	vec  prometheus.ObserverVec
	mu   sync.Mutex
	seen atomic.Pointer[map[observerKey]prometheus.Observer]
}

type observerKey struct {
	method string // as labelled
	code   int
}

func (o *observers) get(method string, code int) prometheus.Observer {
	k := observerKey{methodLabel(method), code}
	if seen := o.seen.Load(); seen != nil {
		if obs, ok := (*seen)[k]; ok {
			return obs
		}
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	next := map[observerKey]prometheus.Observer{}
	if seen := o.seen.Load(); seen != nil {
		maps.Copy(next, *seen)
	}
	obs, ok := next[k]
	if !ok {
		obs = o.vec.With(prometheus.Labels{"method": k.method, "code": codeLabel(code)})
		next[k] = obs
		o.seen.Store(&next)
	}
	return obs
}

// methodLabel is promhttp's method label: the standard methods in lower
// case, anything else "unknown" (so a client cannot mint series).
func methodLabel(m string) string {
	switch m {
	case "GET", "get":
		return "get"
	case "PUT", "put":
		return "put"
	case "HEAD", "head":
		return "head"
	case "POST", "post":
		return "post"
	case "DELETE", "delete":
		return "delete"
	case "CONNECT", "connect":
		return "connect"
	case "OPTIONS", "options":
		return "options"
	case "NOTIFY", "notify":
		return "notify"
	case "TRACE", "trace":
		return "trace"
	case "PATCH", "patch":
		return "patch"
	}
	return "unknown"
}

// codeLabel is promhttp's code label: 200 when no status was written.
func codeLabel(code int) string {
	switch {
	case code == 0:
		return "200"
	case code >= 100 && code <= 599:
		return strconv.Itoa(code)
	}
	return "unknown"
}

// statusWriter remembers the status a handler answered with. Unwrap lets
// http.ResponseController reach the connection (read deadlines).
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}
