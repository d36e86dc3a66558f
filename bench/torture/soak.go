package torture

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"edgecollector/bench"
	"edgecollector/bench/results"
	"edgecollector/collector/store"
)

// Soak configures the sink outage soak.
type Soak struct {
	Binary string
	DBDir  string
	Modes  []store.Mode

	Reps, Warmup int
	// MaxBacklog is the collector's -max-backlog: small, so the outage
	// reaches it.
	MaxBacklog int64
	// Outage is how long the sink fails; Phase how long each way of
	// failing lasts before the next (refused, 500, timeout, slow, again).
	Outage, Phase time.Duration
	// SinkTimeout is the collector's -webhook-timeout: the timeout phase
	// holds requests past it; the slow phase answers within it.
	SinkTimeout time.Duration
	// MaxRSS bounds the collector's peak resident set: memory must stay
	// bounded while the backlog sits at its cap.
	MaxRSS int64
	Load   LoadConfig
}

// Units of the soak experiment.
var (
	unitPeakBacklog = results.Unit{Name: "peak-backlog", Better: 0}
	unitCap         = results.Unit{Name: "backlog-cap", Better: 0}
	unit503s        = results.Unit{Name: "rejected-503", Better: 0}
	unit200s        = results.Unit{Name: "acked-requests", Better: 1}
	unitErrs        = results.Unit{Name: "other-errors", Better: -1}
	unitDrain       = results.Unit{Name: "drain-ns", Better: -1}
	unitRSS         = results.Unit{Name: "peak-rss-bytes", Better: -1}
	unitSinkTries   = results.Unit{Name: "sink-requests", Better: 0}
	soakUnits       = []results.Unit{unitPeakBacklog, unitCap, unit503s, unit200s, unitAcked, unitLost, unitDups, unitErrs, unitDrain, unitRSS, unitSinkTries}
)

// outagePhases is the order the sink fails in.
var outagePhases = []sinkMode{sinkRefused, sinkFail, sinkTimeout, sinkSlow}

// Experiment returns the soak experiment: one cell per mode.
func (cfg Soak) Experiment() *bench.Experiment {
	sh := &shared{}
	e := &bench.Experiment{
		Name: "soak",
		Plan: fmt.Sprintf("The collector binary with -max-backlog %d, -webhook-timeout %s, -upload-interval 50ms, -upload-max-backoff 1s, a fresh database per repetition. "+
			"%d producers send single events and %d send %d-event batches, closed loop, honouring Retry-After (at most %s). "+
			"After 1 s of service the sink fails for %s, in %s phases cycling through connection refused, HTTP 500, timeouts (held past %s) and slow answers (%s); "+
			"then it recovers, the producers stop, and the backlog drains; then the ledger is checked.",
			cfg.MaxBacklog, cfg.SinkTimeout, cfg.Load.Singles, cfg.Load.Batchers, cfg.Load.Batch, cfg.Load.RetryCap,
			cfg.Outage, cfg.Phase, cfg.SinkTimeout, cfg.slowDelay()),
		Units: soakUnits,
		Close: sh.close,
	}
	for _, m := range cfg.Modes {
		e.Cells = append(e.Cells, bench.Cell{
			Name:   "Soak",
			Config: []results.KV{{Key: "mode", Value: string(m)}, {Key: "cap", Value: strconv.FormatInt(cfg.MaxBacklog, 10)}},
			Cost:   cfg.Outage + 6*time.Second,
			Run:    cfg.run(sh, m),
		})
	}
	e.Reps, e.Warmup = cfg.Reps, cfg.Warmup
	return e
}

// slowDelay is how long the slow phase takes to answer: under the timeout.
func (cfg Soak) slowDelay() time.Duration { return cfg.SinkTimeout * 7 / 10 }

// health is the part of /healthz the soak reads.
type health struct {
	OK       bool `json:"ok"`
	Uploader struct {
		Healthy   bool   `json:"healthy"`
		LastError string `json:"last_error"`
	} `json:"uploader"`
	Backlog   int64 `json:"backlog"`
	BacklogOK bool  `json:"backlog_ok"`
}

// monitor polls /stats and /healthz while the soak runs.
type monitor struct {
	mu          sync.Mutex
	peak        int64
	sawFailing  string // a 503 /healthz naming the uploader's error
	sawFull     bool   // a 503 /healthz saying the buffer is full
	sawHealthy  bool   // a 200 /healthz after the recovery
	afterRecov  bool
	stop, done  chan struct{}
	pollFailure error
}

func startMonitor(ctx context.Context, base string) *monitor {
	m := &monitor{stop: make(chan struct{}), done: make(chan struct{})}
	client := &http.Client{Timeout: 2 * time.Second}
	go func() { // owned: m.close stops it and waits
		defer close(m.done)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			var s statsAnswer
			if st, err := get(ctx, client, base+"/stats", &s); err == nil && st == http.StatusOK {
				m.mu.Lock()
				m.peak = max(m.peak, s.Store.Backlog)
				m.mu.Unlock()
			}
			var h health
			st, err := get(ctx, client, base+"/healthz", &h)
			m.mu.Lock()
			switch {
			case err != nil:
				m.pollFailure = err
			case st == http.StatusServiceUnavailable && !h.OK:
				if !h.Uploader.Healthy && h.Uploader.LastError != "" && m.sawFailing == "" {
					m.sawFailing = h.Uploader.LastError
				}
				if !h.BacklogOK {
					m.sawFull = true
				}
			case st == http.StatusOK && h.OK && m.afterRecov:
				m.sawHealthy = true
			}
			m.mu.Unlock()
			select {
			case <-m.stop:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return m
}

func (m *monitor) close() {
	select {
	case <-m.stop:
	default:
		close(m.stop)
	}
	<-m.done
}

func (cfg Soak) run(sh *shared, mode store.Mode) func(context.Context, bench.Rep) (bench.Sample, error) {
	return func(ctx context.Context, rep bench.Rep) (bench.Sample, error) {
		if cfg.Binary == "" {
			return bench.Sample{}, errNoBinary
		}
		recv, err := sh.receiver()
		if err != nil {
			return bench.Sample{}, err
		}
		recv.reset()
		if err := recv.setMode(sinkOK, 0); err != nil {
			return bench.Sample{}, err
		}
		dir, err := os.MkdirTemp(cfg.DBDir, "soak-*")
		if err != nil {
			return bench.Sample{}, err
		}
		defer os.RemoveAll(dir)
		db := filepath.Join(dir, "events.db")
		proc, err := startCollector(ctx, cfg.Binary, []string{
			"-db", db, "-addr", "127.0.0.1:0", "-mode", string(mode),
			"-sink", "webhook", "-webhook-url", recv.url, "-webhook-timeout", cfg.SinkTimeout.String(),
			"-collector-id", "soak", "-log-format", "json",
			"-upload-interval", "50ms", "-upload-batch", "1000", "-upload-max-backoff", "1s",
			"-max-backlog", strconv.FormatInt(cfg.MaxBacklog, 10), "-drain-timeout", "10s",
		}, startTimeout)
		if err != nil {
			return bench.Sample{}, err
		}
		defer func() {
			if proc != nil && !proc.Exited() {
				proc.Kill()
			}
		}()
		base := "http://" + proc.Addr()
		l := newLoad(cfg.Load, rep.Seed)
		defer l.stop()
		l.target.Store(&target{url: base + "/events"})
		mon := startMonitor(ctx, base)
		defer mon.close()
		l.start()

		var s bench.Sample
		sleep(ctx, time.Second)
		// The outage: each way of failing in turn, until it has lasted Outage.
		began := time.Now()
		for i := 0; time.Since(began) < cfg.Outage; i++ {
			if err := ctx.Err(); err != nil {
				return bench.Sample{}, err
			}
			if err := recv.setMode(outagePhases[i%len(outagePhases)], cfg.slowDelay()); err != nil {
				return bench.Sample{}, err
			}
			sleep(ctx, min(cfg.Phase, cfg.Outage-time.Since(began)))
		}
		mon.mu.Lock()
		peakAtOutage, failing, full := mon.peak, mon.sawFailing, mon.sawFull
		mon.afterRecov = true
		mon.mu.Unlock()
		rejected := l.counts()[http.StatusServiceUnavailable]
		if peakAtOutage < cfg.MaxBacklog {
			s.Problems = append(s.Problems, fmt.Sprintf("the backlog peaked at %d during a %s outage, under its cap of %d: backpressure was not exercised", peakAtOutage, cfg.Outage, cfg.MaxBacklog))
		}
		if rejected == 0 {
			s.Problems = append(s.Problems, "no producer got a 503 while the backlog was at its cap")
		}
		if failing == "" {
			s.Problems = append(s.Problems, "/healthz never answered 503 naming the uploader's error during the outage")
		}
		if !full {
			s.Problems = append(s.Problems, "/healthz never said the buffer was full (backlog_ok false)")
		}

		// Recovery: the sink takes batches again, producers stop, the backlog drains.
		if err := recv.setMode(sinkOK, 0); err != nil {
			return bench.Sample{}, err
		}
		recovered := time.Now()
		l.stop()
		if err := waitBacklog(ctx, base, 0, drainTimeout); err != nil {
			return bench.Sample{}, fmt.Errorf("after the sink recovered: %w", err)
		}
		drain := time.Since(recovered)
		// Healthy again, and serving: bounded polls, not sleeps.
		deadline := time.Now().Add(10 * time.Second)
		for {
			mon.mu.Lock()
			ok := mon.sawHealthy
			mon.mu.Unlock()
			if ok || time.Now().After(deadline) {
				if !ok {
					s.Problems = append(s.Problems, "/healthz did not answer 200 within 10 s of the backlog draining")
				}
				break
			}
			sleep(ctx, 20*time.Millisecond)
		}
		if st := l.probe(nil); st != http.StatusOK {
			s.Problems = append(s.Problems, fmt.Sprintf("after the drain a new event got %d, not 200", st))
		}
		if err := waitBacklog(ctx, base, 0, drainTimeout); err != nil {
			return bench.Sample{}, err
		}
		mon.close()
		rss, rssErr := proc.PeakRSS()
		if err := proc.Stop(stopTimeout); err != nil {
			return bench.Sample{}, err
		}
		if rssErr == nil && cfg.MaxRSS > 0 && rss > cfg.MaxRSS {
			s.Problems = append(s.Problems, fmt.Sprintf("peak RSS %d MiB, over the %d MiB bound", rss>>20, cfg.MaxRSS>>20))
		}

		rows, err := readRows(ctx, db)
		if err != nil {
			return bench.Sample{}, err
		}
		got, _, bad := recv.snapshot()
		v := checkLedger(l, rows, got, bad, nil)
		s.Problems = append(s.Problems, v.problems...)
		if v.acked == 0 {
			return s, errors.New("no event was acknowledged")
		}
		counts := l.counts()
		others := 0
		for st, n := range counts {
			if st != http.StatusOK && st != http.StatusServiceUnavailable {
				others += n
			}
		}
		mon.mu.Lock()
		peak := mon.peak
		mon.mu.Unlock()
		recv.mu.Lock()
		tries := recv.requests
		recv.mu.Unlock()
		s.Iters = counts[http.StatusOK]
		s.Values = []results.Value{
			{Value: float64(peak), Unit: unitPeakBacklog.Name},
			{Value: float64(cfg.MaxBacklog), Unit: unitCap.Name},
			{Value: float64(counts[http.StatusServiceUnavailable]), Unit: unit503s.Name},
			{Value: float64(counts[http.StatusOK]), Unit: unit200s.Name},
			{Value: float64(v.acked), Unit: unitAcked.Name},
			{Value: float64(v.lost), Unit: unitLost.Name},
			{Value: float64(v.duplicates), Unit: unitDups.Name},
			{Value: float64(others), Unit: unitErrs.Name},
			{Value: float64(drain), Unit: unitDrain.Name},
		}
		if rssErr == nil {
			s.Values = append(s.Values, results.Value{Value: float64(rss), Unit: unitRSS.Name})
		}
		s.Values = append(s.Values, results.Value{Value: float64(tries), Unit: unitSinkTries.Name})
		return s, nil
	}
}
