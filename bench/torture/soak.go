package torture

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"edgecollector/bench"
	"edgecollector/bench/record"
	"edgecollector/collector/store"
	"edgecollector/internal/rig"
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
	unitPeakBacklog = record.Unit{Name: "peak-backlog", Better: 0}
	unitCap         = record.Unit{Name: "backlog-cap", Better: 0}
	unit503s        = record.Unit{Name: "rejected-503", Better: 0}
	unit200s        = record.Unit{Name: "acked-requests", Better: 1}
	unitErrs        = record.Unit{Name: "other-errors", Better: -1}
	unitDrain       = record.Unit{Name: "drain-ns", Better: -1}
	unitRSS         = record.Unit{Name: "peak-rss-bytes", Better: -1}
	unitSinkTries   = record.Unit{Name: "sink-requests", Better: 0}
	soakUnits       = []record.Unit{unitPeakBacklog, unitCap, unit503s, unit200s, unitAcked, unitLost, unitDups, unitErrs, unitDrain, unitRSS, unitSinkTries}
)

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
			Config: []record.KV{{Key: "mode", Value: string(m)}, {Key: "cap", Value: strconv.FormatInt(cfg.MaxBacklog, 10)}},
			Cost:   cfg.Outage + 6*time.Second,
			Run:    cfg.run(sh, m),
		})
	}
	e.Reps, e.Warmup = cfg.Reps, cfg.Warmup
	return e
}

// slowDelay is how long the slow phase takes to answer: under the timeout.
func (cfg Soak) slowDelay() time.Duration { return cfg.SinkTimeout * 7 / 10 }

// outagePhases is the order the sink fails in: connections refused, 500s,
// requests held past the collector's timeout, slow answers within it.
func (cfg Soak) outagePhases() []rig.Mode {
	return []rig.Mode{rig.Refuse, rig.Fail(http.StatusInternalServerError), rig.Hold, rig.Slow(cfg.slowDelay())}
}

// monitor polls /stats and /healthz while the soak runs, and keeps what
// they showed.
type monitor struct {
	stop, done chan struct{}

	mu   sync.Mutex
	seen seen
}

// seen is what the monitor's polls showed so far.
type seen struct {
	peak       int64
	failing    string // a 503 /healthz naming the uploader's error
	full       bool   // a 503 /healthz saying the buffer is full
	healthy    bool   // a 200 /healthz after the recovery
	afterRecov bool   // looking for healthy
}

func startMonitor(ctx context.Context, p *rig.Process) *monitor {
	m := &monitor{stop: make(chan struct{}), done: make(chan struct{})}
	go func() { // owned: m.close stops it and waits
		defer close(m.done)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			m.poll(ctx, p)
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

func (m *monitor) poll(ctx context.Context, p *rig.Process) {
	s, serr := p.Stats(ctx)
	st, h, herr := p.Health(ctx)
	m.mu.Lock()
	defer m.mu.Unlock()
	if serr == nil {
		m.seen.peak = max(m.seen.peak, s.Store.Backlog)
	}
	switch {
	case herr != nil:
	case st == http.StatusServiceUnavailable && !h.OK:
		if !h.Uploader.Healthy && h.Uploader.LastError != "" && m.seen.failing == "" {
			m.seen.failing = h.Uploader.LastError
		}
		if !h.BacklogOK {
			m.seen.full = true
		}
	case st == http.StatusOK && h.OK && m.seen.afterRecov:
		m.seen.healthy = true
	}
}

// snapshot is what the polls showed so far; recovering has the monitor look
// for /healthz 200 from now on.
func (m *monitor) snapshot(recovering bool) seen {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.seen.afterRecov = m.seen.afterRecov || recovering
	return m.seen
}

func (m *monitor) close() {
	select {
	case <-m.stop:
	default:
		close(m.stop)
	}
	<-m.done
}

// soakCell is one repetition of a soak cell.
type soakCell struct {
	cfg  Soak
	recv *rig.Receiver
	got  *rig.Deliveries
	db   string
	proc *rig.Process
	prod *producers
	mon  *monitor
	s    bench.Sample
}

func (sc *soakCell) problem(format string, args ...any) {
	sc.s.Problems = append(sc.s.Problems, fmt.Sprintf(format, args...))
}

func (cfg Soak) run(sh *shared, mode store.Mode) func(context.Context, bench.Rep) (bench.Sample, error) {
	return func(ctx context.Context, rep bench.Rep) (bench.Sample, error) {
		db, done, err := sh.begin(cfg.Binary, cfg.DBDir)
		if err != nil {
			return bench.Sample{}, err
		}
		defer done()
		sc := &soakCell{cfg: cfg, recv: sh.recv, got: &sh.got, db: db, prod: cfg.Load.producers(rep.Seed)}
		sc.proc, err = rig.Collector{
			Bin: cfg.Binary, DB: sc.db, Mode: string(mode), ID: "soak", Webhook: sh.recv.URL,
			Flags: []string{"-webhook-timeout", cfg.SinkTimeout.String(), "-upload-interval", "50ms", "-upload-batch", "1000",
				"-upload-max-backoff", "1s", "-max-backlog", strconv.FormatInt(cfg.MaxBacklog, 10), "-drain-timeout", "10s"},
		}.Start(ctx, startTimeout)
		if err != nil {
			return bench.Sample{}, err
		}
		defer func() {
			if !sc.proc.Exited() {
				sc.proc.Kill()
			}
		}()
		defer sc.prod.stop()
		sc.prod.target.Set(sc.proc.URL("/events"), 0)
		sc.mon = startMonitor(ctx, sc.proc)
		defer sc.mon.close()
		sc.prod.start()

		rig.Sleep(ctx, time.Second)
		if err := sc.outage(ctx); err != nil {
			return bench.Sample{}, err
		}
		drain, err := sc.recover(ctx)
		if err != nil {
			return bench.Sample{}, err
		}
		return sc.check(ctx, drain)
	}
}

// outage fails the sink each way in turn until it has lasted Outage, and
// checks that the collector pushed back and said why.
func (sc *soakCell) outage(ctx context.Context) error {
	cfg := sc.cfg
	phases := cfg.outagePhases()
	began := time.Now()
	for i := 0; time.Since(began) < cfg.Outage; i++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := sc.recv.Set(phases[i%len(phases)]); err != nil {
			return err
		}
		rig.Sleep(ctx, min(cfg.Phase, cfg.Outage-time.Since(began)))
	}
	seen := sc.mon.snapshot(true)
	if seen.peak < cfg.MaxBacklog {
		sc.problem("the backlog peaked at %d during a %s outage, under its cap of %d: backpressure was not exercised", seen.peak, cfg.Outage, cfg.MaxBacklog)
	}
	if sc.prod.ledger.Statuses()[http.StatusServiceUnavailable] == 0 {
		sc.problem("no producer got a 503 while the backlog was at its cap")
	}
	if seen.failing == "" {
		sc.problem("/healthz never answered 503 naming the uploader's error during the outage")
	}
	if !seen.full {
		sc.problem("/healthz never said the buffer was full (backlog_ok false)")
	}
	return nil
}

// recover lets the sink take batches again, stops the producers, and waits
// for the backlog to drain and /healthz to say 200 (bounded polls, not
// sleeps); a new event must be accepted. It returns the drain time.
func (sc *soakCell) recover(ctx context.Context) (time.Duration, error) {
	if err := sc.recv.Set(rig.Take); err != nil {
		return 0, err
	}
	recovered := time.Now()
	sc.prod.stop()
	if err := sc.proc.WaitBacklog(ctx, 0, drainTimeout); err != nil {
		return 0, fmt.Errorf("after the sink recovered: %w", err)
	}
	drain := time.Since(recovered)
	deadline := time.Now().Add(10 * time.Second)
	for !sc.mon.snapshot(false).healthy {
		if time.Now().After(deadline) {
			sc.problem("/healthz did not answer 200 within 10 s of the backlog draining")
			break
		}
		rig.Sleep(ctx, 20*time.Millisecond)
	}
	if st := sc.prod.probe.Post(); st != http.StatusOK {
		sc.problem("after the drain a new event got %d, not 200", st)
	}
	if err := sc.proc.WaitBacklog(ctx, 0, drainTimeout); err != nil {
		return 0, err
	}
	return drain, nil
}

// check stops the collector cleanly, holds what it left to the ledger and
// the memory bound, and fills in the cell's values.
func (sc *soakCell) check(ctx context.Context, drain time.Duration) (bench.Sample, error) {
	cfg := sc.cfg
	sc.mon.close()
	rss, rssErr := sc.proc.PeakRSS()
	if err := sc.proc.Stop(stopTimeout); err != nil {
		return bench.Sample{}, err
	}
	if rssErr == nil && cfg.MaxRSS > 0 && rss > cfg.MaxRSS {
		sc.problem("peak RSS %d MiB, over the %d MiB bound", rss>>20, cfg.MaxRSS>>20)
	}
	rows, err := rig.ReadRows(ctx, sc.db)
	if err != nil {
		return bench.Sample{}, err
	}
	v := sc.prod.ledger.Check(rows, sc.got.Snapshot(), nil)
	if bad := sc.recv.Bad(); bad > 0 {
		sc.problem("the receiver took %d batches that were not JSON arrays of events", bad)
	}
	s := sc.s
	s.Problems = append(s.Problems, v.Problems...)
	if v.Acked == 0 {
		return s, errors.New("no event was acknowledged")
	}
	counts := sc.prod.ledger.Statuses()
	others := 0
	for st, n := range counts {
		if st != http.StatusOK && st != http.StatusServiceUnavailable {
			others += n
		}
	}
	s.Iters = counts[http.StatusOK]
	s.Values = []record.Value{
		{Value: float64(sc.mon.snapshot(false).peak), Unit: unitPeakBacklog.Name},
		{Value: float64(cfg.MaxBacklog), Unit: unitCap.Name},
		{Value: float64(counts[http.StatusServiceUnavailable]), Unit: unit503s.Name},
		{Value: float64(counts[http.StatusOK]), Unit: unit200s.Name},
		{Value: float64(v.Acked), Unit: unitAcked.Name},
		{Value: float64(v.Lost), Unit: unitLost.Name},
		{Value: float64(v.Duplicates), Unit: unitDups.Name},
		{Value: float64(others), Unit: unitErrs.Name},
		{Value: float64(drain), Unit: unitDrain.Name},
	}
	if rssErr == nil {
		s.Values = append(s.Values, record.Value{Value: float64(rss), Unit: unitRSS.Name})
	}
	s.Values = append(s.Values, record.Value{Value: float64(sc.recv.Requests()), Unit: unitSinkTries.Name})
	return s, nil
}
